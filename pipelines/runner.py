"""The batch driver: plan every input, hand pieces to workers, retry failures, join finished
inputs, keep the manifest, and report.

An input whose probe, planning, encoder choice or a piece fails with the transcoder's
:class:`UserError` (a corrupt file, a stream the container cannot hold, an output that
exists) fails alone and at once; a piece that fails otherwise, or whose worker is lost, is
tried again up to ``retries`` more times. Everything that finished is recorded as it
finishes, so ``--resume`` after any interruption redoes only the rest, and a finished
output is never written again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import sys
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from err_stream.errors import ProcessingError, UserError

from .job import InputJob, Job, job_spelling
from .manifest import MANIFEST_NAME, Manifest
from .segments import (
    RATE_IN_HEADERS,
    SegmentPlan,
    constant_rate,
    join_segments,
    piece_suffix,
    plan_segments,
    segment_container,
    sha256,
)
from .worker import PieceTask

log = logging.getLogger(__name__)

PIECES_DIR = ".err-stream-pieces"
REPORT_NAME = "err-stream-batch-report.json"
LOCK_NAME = ".err-stream-batch.lock"


@dataclass
class InputReport:
    input: str
    output: str
    status: str  # done, done earlier, failed, planned
    frames: int | None = None
    segments: int | None = None
    seconds: float | None = None
    fps: float | None = None
    attempts: int = 0
    error: str | None = None
    checksum: str | None = None


@dataclass
class BatchReport:
    job: str
    output_dir: str
    engine: str
    workers: str
    dry_run: bool
    seconds: float
    inputs: list[InputReport] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.inputs if r.status == "failed")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["failed"] = self.failed
        d["frames"] = sum(r.frames or 0 for r in self.inputs if r.status == "done")
        return d

    def table(self) -> str:
        rows = [("input", "output", "status", "frames", "segments", "seconds", "fps", "error")]
        for r in self.inputs:
            rows.append((
                r.input, r.output, r.status, "" if r.frames is None else str(r.frames), "" if r.segments is None else str(r.segments),
                "" if r.seconds is None else f"{r.seconds:.1f}", "" if r.fps is None else f"{r.fps:.2f}", r.error or "",
            ))
        widths = [max(len(row[i]) for row in rows) for i in range(7)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row[:7], widths)).rstrip() + ("  " + row[7] if row[7] else "") for row in rows]
        done = sum(1 for r in self.inputs if r.status.startswith("done"))
        verb = "would run" if self.dry_run else "done"
        lines.append(f"{done if not self.dry_run else len(self.inputs)} of {len(self.inputs)} inputs {verb}, "
                     f"{self.failed} failed; {self.seconds:.1f} s; {self.engine}: {self.workers}")
        return "\n".join(lines)


@dataclass
class _Input:
    job: InputJob
    id: int | None = None
    plan: SegmentPlan | None = None
    remaining: set[int] = field(default_factory=set)
    pieces: dict[int, Path] = field(default_factory=dict)
    report: InputReport | None = None
    started: float = 0.0
    worker_seconds: float = 0.0
    attempts: int = 0
    resumed: bool = False  # an earlier run knew this input: its leftovers are ours to replace

    @property
    def whole(self) -> bool:
        return self.plan is not None and len(self.plan.segments) == 1


def fingerprint(item: InputJob) -> str:
    """What decides an input's result: the file (size, time), the settings, the output and the cuts."""
    st = item.path.stat()
    blob = json.dumps(
        [str(item.path.resolve()), st.st_size, st.st_mtime_ns, item.settings, str(item.output.resolve()), item.segment_seconds],
        sort_keys=True, default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _folder_lock(folder: Path):
    """One driver per output folder: the output files' own lock, on the folder."""
    from err_stream.io.output_file import OutputLock

    def busy(folder: Path, pid: int | None) -> UserError:
        return UserError(f"{folder}: another batch (pid {pid or '?'}) is writing here; wait for it or choose another output_dir")

    return OutputLock(folder, lock=folder / LOCK_NAME, busy=busy)


def run_batch(
    job: Job,
    *,
    engine: str | None = None,
    address: str | None = None,
    resume: bool = False,
    dry_run: bool = False,
    progress: bool = True,
) -> BatchReport:
    """Run (or with ``dry_run`` only plan) a job; see the module docstring."""
    t0 = time.perf_counter()
    engine = engine or ("ray" if address else job.engine)
    address = address or job.address
    if engine == "local" and address:
        raise UserError("--address joins a Ray cluster; it cannot go with --engine local")
    out_dir = job.output_dir
    if dry_run:
        return _dry_run(job, engine, address, resume, t0)

    out_dir.mkdir(parents=True, exist_ok=True)
    lock = _folder_lock(out_dir)
    lock.acquire()
    try:
        if Manifest.exists(out_dir) and not resume:
            raise UserError(
                f"{out_dir / MANIFEST_NAME}: an earlier batch wrote into {out_dir}; run with --resume to finish it "
                "(finished outputs are kept), or choose another output_dir"
            )
        manifest = Manifest.open(out_dir)
        try:
            driver = _Driver(job, manifest, engine, address, progress)
            report = driver.run(resume)
        finally:
            manifest.close()
    finally:
        lock.release()
    report.seconds = round(time.perf_counter() - t0, 3)
    _write_report(out_dir / REPORT_NAME, report)
    return report


def _write_report(path: Path, report: BatchReport) -> None:
    from err_stream.io.output_file import write_file

    write_file(path, json.dumps(report.as_dict(), indent=2).encode())


def _dry_run(job: Job, engine: str, address: str | None, resume: bool, t0: float) -> BatchReport:
    """Plan every input (reading packets, not pictures) and say what would run; writes nothing."""
    manifest = Manifest(job.output_dir / MANIFEST_NAME) if Manifest.exists(job.output_dir) else None
    report = BatchReport(str(job.source), str(job.output_dir), engine, address or "this machine", True, 0.0)
    for item in job.inputs:
        r = InputReport(str(item.path), str(item.output), "planned")
        row = manifest.input(item.path) if manifest is not None else None
        if row is not None and row["state"] == "done" and item.output.exists():
            r.status, r.frames, r.segments = "done earlier", row["frames"], row["segments"]
        else:
            try:
                plan, _ = _check_input(item, resume=resume and row is not None and row["state"] == "running", dry_run=True)
                r.frames, r.segments = plan.frames, len(plan.segments)
                r.seconds = round(plan.duration, 3)
            except UserError as e:
                r.status, r.error = "failed", e.describe(job_spelling)
        report.inputs.append(r)
    if manifest is not None:
        manifest.close()
    report.seconds = round(time.perf_counter() - t0, 3)
    return report


def _check_input(item: InputJob, resume: bool, dry_run: bool = False) -> tuple[SegmentPlan, Any]:
    """The transcoder's own plan (the probe, the alpha rule, the output proven by a dry run
    of the encoder and muxer, the output path), then the cuts. Returns the cuts and the
    encoder settings every piece uses."""
    from err_stream.io.sink import OutputClock
    from err_stream.video.planning import plan

    options = item.request.options
    # An output that exists is kept unless the job says overwrite (or it is our own unfinished one).
    options = options.replace(overwrite=options.run.overwrite or resume)
    if not dry_run:
        item.output.parent.mkdir(parents=True, exist_ok=True)
    planned = plan(item.path, item.output, options, check_output=item.output.parent.is_dir())  # (a dry run creates no folders)
    encoder = planned.encoder
    seconds = item.segment_seconds
    if planned.container in OutputClock.CONSTANT_RATE_CONTAINERS or encoder.codec in OutputClock.CONSTANT_RATE_ENCODERS:
        seconds = 0  # frames are placed on a constant-rate grid there: restored in one piece
    cuts = plan_segments(item.path, seconds, planned.info, packets=planned.source.packets)
    if len(cuts.segments) > 1 and encoder.codec in RATE_IN_HEADERS and not constant_rate(cuts):
        cuts = plan_segments(item.path, 0, planned.info)  # see RATE_IN_HEADERS
    return cuts, encoder


class _Driver:
    def __init__(self, job: Job, manifest: Manifest, engine: str, address: str | None, progress: bool) -> None:
        self.job, self.manifest, self.engine, self.address = job, manifest, engine, address
        self.progress = progress
        self.inputs: list[_Input] = [_Input(item) for item in job.inputs]
        self.pending: deque[PieceTask] = deque()
        self.joins: dict[Future, _Input] = {}
        self.bar = None
        self.piece_frames: dict[tuple[int, int], int] = {}  # frames restored, per running piece
        self.counted = 0  # what the bar shows
        self.settled: set[tuple[int, int]] = set()  # finished pieces: late counts for them are ignored
        self.polled = 0.0

    # -- planning
    def prepare(self, resume: bool) -> None:
        m = self.manifest
        for inp in self.inputs:
            item = inp.job
            inp.report = InputReport(str(item.path), str(item.output), "pending")
            try:
                fp = fingerprint(item)
            except OSError as e:
                self._fail(inp, f"{item.path}: cannot read it ({e.strerror})")
                continue
            row = m.input(item.path)
            if row is not None and row["state"] == "done" and Path(row["output"]).exists() and row["output"] == str(item.output):
                # Finished outputs are never written again.
                inp.id = row["id"]
                r = inp.report
                r.status, r.frames, r.segments, r.seconds, r.checksum = "done earlier", row["frames"], row["segments"], row["seconds"], row["checksum"]
                r.fps = round(r.frames / r.seconds, 3) if r.frames and r.seconds else None
                if row["fingerprint"] != fp:
                    log.warning("%s: finished by an earlier run with other settings; kept (remove %s to redo it)", item.path, item.output)
                continue
            inp.id = m.add_input(item.path, item.output, fp, item.settings)
            # Only an input an earlier run was writing may replace what it left at the destination.
            inp.resumed = row is not None and row["state"] == "running"
            try:
                plan, planned = _check_input(item, resume=inp.resumed)
            except UserError as e:
                self._fail(inp, e.describe(job_spelling))
                continue
            inp.plan = plan
            m.plan_segments(inp.id, [(s.index, s.frames, s.start, s.end) for s in plan.segments])
            m.set_input(inp.id, state="running", error=None, frames=plan.frames)
            folder = self.job.output_dir / PIECES_DIR / f"{inp.id:05d}"
            ext = piece_suffix(planned.codec, item.output.suffix)
            done_rows = {r["idx"]: r for r in m.segments(inp.id)}
            request = item.request
            for seg in plan.segments:
                if inp.whole:
                    options = request.options.replace(overwrite=request.options.run.overwrite or inp.resumed)
                    task = PieceTask(inp.id, item.path, item.output, dataclasses.replace(request, options=options), seg,
                                     whole=True, encoder=planned)
                else:
                    piece_out = folder / f"piece-{seg.index:05d}{ext}"
                    piece_in = folder / f"piece-{seg.index:05d}.in.{segment_container(plan.codec, plan.time_base)}"
                    r = done_rows.get(seg.index)
                    if r is not None and r["state"] == "done" and piece_out.exists() and r["checksum"] == sha256(piece_out):
                        inp.pieces[seg.index] = piece_out
                        continue  # restored by an earlier run
                    task = PieceTask(inp.id, item.path, piece_out, request, seg, plan=plan, piece_input=piece_in,
                                     encoder=planned)
                    folder.mkdir(parents=True, exist_ok=True)
                m.set_segment(inp.id, seg.index, state="pending")
                inp.remaining.add(seg.index)
                self.pending.append(task)

    # -- running
    def run(self, resume: bool) -> BatchReport:
        run_id = self.manifest.start_run(self.engine, resume)
        self.prepare(resume)
        todo = [inp for inp in self.inputs if inp.plan is not None]
        pool = None
        try:
            if self.pending:
                pool = self._pool()
            workers = pool.description if pool is not None else "nothing to run"
            self._open_bar()
            for inp in todo:
                if not inp.remaining:  # every piece restored earlier: only the join is left
                    self._join(inp)
            while self.pending or (pool is not None and pool.busy()) or self.joins:
                while pool is not None and self.pending and pool.free():
                    task = self.pending.popleft()
                    inp = self._input(task.input_id)
                    if inp.report.status == "failed":
                        continue
                    if not inp.started:
                        inp.started = time.time()
                        self.manifest.set_input(inp.id, started=inp.started)
                    worker = pool.submit(task)
                    task.attempts += 1
                    inp.attempts += 1
                    self.manifest.segment_started(task.input_id, task.segment.index, worker)
                if pool is not None and pool.busy():
                    for task, result in pool.collect(timeout=0.2):
                        self._count(pool)
                        self._finished(task, result)
                    if time.monotonic() - self.polled > 0.5:
                        self._count(pool)
                else:
                    time.sleep(0.05)
                self._reap_joins()
        finally:
            if self.bar is not None:
                self.bar.close()
            if pool is not None:
                pool.close()
            if hasattr(self, "joiner"):
                self.joiner.shutdown(wait=True, cancel_futures=True)
            try:
                (self.job.output_dir / PIECES_DIR).rmdir()  # only when empty: pieces of unfinished inputs stay
            except OSError:
                pass
            self.manifest.finish_run(run_id)
        report = BatchReport(str(self.job.source), str(self.job.output_dir), self.engine, workers, False, 0.0)
        report.inputs = [inp.report for inp in self.inputs]
        return report

    def _pool(self):
        from .pools import InProcessPool, RayPool

        job = self.job
        if self.engine == "local":
            return InProcessPool(threads=int(job.cpus_per_worker) if job.cpus_per_worker else None)
        gpus = job.gpus_per_worker
        if gpus is None and all((i.request.restore.device or "").startswith("cpu") for i in job.inputs):
            gpus = 0.0  # a CPU-only job takes no GPUs from the cluster
        return RayPool(self.address, job.workers, job.cpus_per_worker, gpus)

    def _open_bar(self) -> None:
        from tqdm import tqdm

        total = sum(t.segment.frames for t in self.pending)
        self.bar = tqdm(total=total, unit="frame", desc="batch", disable=not self.progress or total == 0,
                        file=sys.stderr, dynamic_ncols=True)

    def _input(self, input_id: int) -> _Input:
        return next(inp for inp in self.inputs if inp.id == input_id)

    def _finished(self, task: PieceTask, result: dict[str, Any]) -> None:
        m, inp, seg = self.manifest, self._input(task.input_id), task.segment
        if result["ok"]:
            m.set_segment(inp.id, seg.index, state="done", worker=result["worker"], seconds=round(result["seconds"], 3),
                          checksum=result["checksum"], piece=None if task.whole else str(task.output), finished=time.time())
            inp.worker_seconds += result["seconds"]
            inp.remaining.discard(seg.index)
            inp.pieces[seg.index] = task.output
            self.settled.add((inp.id, seg.index))
            self._advance(seg.frames - self.piece_frames.pop((inp.id, seg.index), 0))
            if self.bar is not None:
                self.bar.set_postfix_str(f"{len(self.pending)} waiting")
            if inp.report.status != "failed" and not inp.remaining:
                if task.whole:
                    self._input_done(inp, result["frames"], result["checksum"])
                else:
                    self._join(inp)
            return
        self._advance(-self.piece_frames.pop((inp.id, seg.index), 0))  # its frames will be restored again
        m.set_segment(inp.id, seg.index, state="failed", worker=result["worker"], error=result["error"], finished=time.time())
        # User errors and diverged output would fail the same way again: no retry.
        if result["kind"] not in ("user", "output") and task.attempts <= self.job.retries and inp.report.status != "failed":
            log.warning("%s piece %d failed (%s); trying again (%d of %d)", inp.job.path, seg.index, result["error"],
                        task.attempts + 1, self.job.retries + 1)
            m.set_segment(inp.id, seg.index, state="pending")
            self.pending.append(task)
            return
        if inp.report.status != "failed":
            tries = f" (after {task.attempts} attempts)" if task.attempts > 1 else ""
            self._fail(inp, result["error"] + tries)

    def _count(self, pool) -> None:
        """Frames the workers restored since the last look: the bar moves frame by frame."""
        self.polled = time.monotonic()
        for key, n in pool.frames().items():
            if key in self.settled:
                continue
            self.piece_frames[key] = self.piece_frames.get(key, 0) + n
            self._advance(n)

    def _advance(self, n: int) -> None:
        self.counted += n
        if self.bar is not None and n:
            self.bar.update(n)

    def _join(self, inp: _Input) -> None:
        if not hasattr(self, "joiner"):
            self.joiner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="err-stream-join")
        pieces = [inp.pieces[s.index] for s in inp.plan.segments]
        options = inp.job.request.options
        overwrite = options.run.overwrite or inp.resumed
        copy_data = not options.streams.no_data
        self.joins[self.joiner.submit(_join_and_check, inp.plan, pieces, inp.job.output, overwrite, copy_data)] = inp

    def _reap_joins(self) -> None:
        for fut in [f for f in self.joins if f.done()]:
            inp = self.joins.pop(fut)
            try:
                frames, checksum = fut.result()
            except (UserError, ProcessingError) as e:
                self._fail(inp, e.describe(job_spelling))
                continue
            except Exception as e:
                self._fail(inp, f"joining failed: {type(e).__name__}: {e}")
                continue
            self._input_done(inp, frames, checksum)
            shutil.rmtree(self.job.output_dir / PIECES_DIR / f"{inp.id:05d}", ignore_errors=True)

    def _input_done(self, inp: _Input, frames: int, checksum: str) -> None:
        now = time.time()
        row = self.manifest.input(inp.job.path)
        started = row["started"] or inp.started or now
        seconds = round(now - started, 3)
        self.manifest.set_input(inp.id, state="done", frames=frames, seconds=seconds, checksum=checksum, finished=now, error=None)
        r = inp.report
        r.status, r.frames, r.segments, r.seconds, r.checksum = "done", frames, len(inp.plan.segments), seconds, checksum
        r.fps = round(frames / seconds, 3) if seconds > 0 else None
        r.attempts = inp.attempts

    def _fail(self, inp: _Input, error: str) -> None:
        r = inp.report
        r.status, r.error, r.attempts = "failed", error, inp.attempts
        if inp.id is not None:
            self.manifest.set_input(inp.id, state="failed", error=error, finished=time.time())
        if inp.plan is not None:
            r.segments = len(inp.plan.segments)
        # Its other pieces are not started; the ones running finish and are ignored.
        self.pending = deque(t for t in self.pending if t.input_id != inp.id)


def _join_and_check(plan: SegmentPlan, pieces: list[Path], out: Path, overwrite: bool, copy_data: bool) -> tuple[int, str]:
    frames = join_segments(plan, pieces, out, overwrite=overwrite, copy_data=copy_data)
    return frames, sha256(out)
