"""What a batch worker does with one piece: cut it out of the input, restore it with the
transcoder, and say how it went. A worker keeps each model it loaded for the next pieces.

The same class runs in-process (``engine: local``) and as a Ray actor (``engine: ray``);
errors come back as values so that the driver decides about retries.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from err_stream.engine.output_check import OutputRangeError
from err_stream.errors import ProcessingError, UserError

from .job import Request, job_spelling
from .segments import Segment, SegmentPlan, sha256, write_segment_input


@dataclass
class PieceTask:
    input_id: int
    input: Path
    output: Path  # the piece's restored file, or the final output when ``whole``
    request: Request
    segment: Segment
    plan: SegmentPlan | None = None  # None when ``whole``
    piece_input: Path | None = None
    whole: bool = False  # one piece: the transcoder writes the final output itself
    encoder: Any = None  # the encoder settings the driver's plan chose for the final output
    attempts: int = 0
    extra: dict = field(default_factory=dict)


class FrameCounter:
    """Frames restored so far, per piece, as workers report them (a Ray actor on a cluster);
    the driver takes the counts to draw one progress bar for the batch."""

    def __init__(self) -> None:
        self.counts: dict[tuple[int, int], int] = {}

    def add(self, key: tuple[int, int], n: int) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def take(self) -> dict[tuple[int, int], int]:
        counts, self.counts = self.counts, {}
        return counts


class _PieceProgress:
    """The transcoder's progress callback in a worker: frames go to the counter, at most
    about twice a second (and at the end)."""

    def __init__(self, counter, key: tuple[int, int]) -> None:
        self.counter, self.key = counter, key
        self.pending, self.last = 0, time.monotonic()

    def begin(self, task: str, total: int | None, note: str = "") -> None:
        pass

    def advance(self, n: int = 1) -> None:
        self.pending += n
        if time.monotonic() - self.last >= 0.5:
            self.flush()

    def status(self, text: str) -> None:
        pass

    def end(self) -> None:
        self.flush()

    def flush(self) -> None:
        if self.pending:
            add = self.counter.add
            (add.remote if hasattr(add, "remote") else add)(self.key, self.pending)
            self.pending = 0
        self.last = time.monotonic()


class SegmentWorker:
    def __init__(self, threads: int | None = None, own_gpu: bool = False) -> None:
        import torch

        # A Ray worker sees only the GPU Ray gave it: "cuda:N" in a job means "a GPU" there.
        self.own_gpu = own_gpu
        # Workers are their own processes: the same process-wide settings as the command line
        # (denormals flushed: the scan is 10-20x slower on them; the thread count asked for).
        from err_stream import runtime

        runtime.configure(max(1, int(threads)) if threads else None)
        self.restorers: dict[tuple, Any] = {}
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        gpus = os.environ.get("CUDA_VISIBLE_DEVICES")
        if gpus and torch.cuda.is_available():
            self.name += f":gpu{gpus}"

    def request(self, request: Request) -> Request:
        """A Ray worker sees only the GPU Ray gave it: "cuda:N" in a job means "a GPU" there."""
        device = request.restore.device or ""
        if not (self.own_gpu and device.startswith("cuda")):
            return request
        return dataclasses.replace(request, restore=dataclasses.replace(request.restore, device="cuda"),
                                   options=request.options.replace(device="cuda"))

    def restorer(self, request: Request):
        if request.passthrough:
            return None
        key = (request.model, request.restore)
        if key not in self.restorers:
            from err_stream.engine.restorer import load_restorer

            self.restorers[key] = load_restorer(request.model, request.restore)
        return self.restorers[key]

    def run(self, task: PieceTask, counter=None) -> dict[str, Any]:
        """Restore one piece; ``counter`` (a :class:`FrameCounter` or its Ray actor) hears
        of every frame."""
        t0 = time.perf_counter()
        try:
            progress = _PieceProgress(counter, (task.input_id, task.segment.index)) if counter is not None else None
            frames = self._run(task, progress)
            return {"ok": True, "frames": frames, "seconds": time.perf_counter() - t0, "checksum": sha256(task.output), "worker": self.name}
        except OutputRangeError as e:
            # Diverged or over-exposed output: trying again gives the same frames (kind
            # "output": no retry).
            # Number the frame in the whole input and name the job's key that accepts it.
            frame = None if e.frame is None else e.frame + (0 if task.whole else task.segment.first_packet)
            e = e.for_option("'accept_out_of_range: true' in the job file", where=str(task.input), frame=frame)
            return {"ok": False, "kind": "output", "error": str(e), "worker": self.name}
        except UserError as e:
            return {"ok": False, "kind": "user", "error": self._where(task, e.describe(job_spelling)), "worker": self.name}
        except ProcessingError as e:
            return {"ok": False, "kind": "processing", "error": self._where(task, e.describe(job_spelling)), "worker": self.name}
        except MemoryError:
            return {"ok": False, "kind": "processing", "error": "out of memory", "worker": self.name}
        except Exception as e:  # anything else is a failure of this attempt, retried
            return {"ok": False, "kind": "processing", "error": f"{type(e).__name__}: {e}", "worker": self.name}

    def _run(self, task: PieceTask, progress=None) -> int:
        from err_stream.video.execution import execute
        from err_stream.video.planning import plan

        request = self.request(task.request)
        restorer = self.restorer(request)
        # Every piece gets the encoder chosen for the whole output.
        if task.whole:
            return execute(plan(task.input, task.output, request.options, encoder=task.encoder), restorer, progress).frames
        assert task.plan is not None and task.piece_input is not None
        try:
            write_segment_input(task.plan, task.segment, task.piece_input)
            # A restored piece left by a killed attempt is replaced.
            piece = plan(task.piece_input, task.output, request.options.replace(overwrite=True), encoder=task.encoder)
            return execute(piece, restorer, progress).frames
        finally:
            task.piece_input.unlink(missing_ok=True)

    @staticmethod
    def _where(task: PieceTask, message: str) -> str:
        """Errors about a piece's file are about the input, from the piece's start."""
        if task.piece_input is not None:
            message = message.replace(str(task.piece_input), f"{task.input} (piece {task.segment.index}, from t={task.segment.start:.3f} s)")
        return message
