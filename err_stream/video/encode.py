"""The encode stage: each batch's restored code planes, in order, into the output."""

from __future__ import annotations

import numpy as np

from ..io.priority import lower_thread_priority
from ..io.sink import VideoSink
from ..progress import Progress
from .clock import Pace
from .pipeline import END, Channel


class NoticedProgress:
    """The caller's progress callback (or none), given the run's description with ``begin``."""

    def __init__(self, inner: Progress | None, note: str) -> None:
        self.inner, self.note = inner, note

    def begin(self, task: str, total: int | None) -> None:
        if self.inner is not None:
            self.inner.begin(task, total, self.note)

    def advance(self, n: int = 1) -> None:
        if self.inner is not None:
            self.inner.advance(n)

    def status(self, text: str) -> None:
        if self.inner is not None:
            self.inner.status(text)

    def end(self) -> None:
        if self.inner is not None:
            self.inner.end()


class EncodeStage:
    """Runs in its own thread: takes each batch's ticket in order (the only wait for the
    device), writes the frames with their own timestamps (the sink muxes the other streams
    beside them), gives a live run's permits back and reports progress."""

    def __init__(self, sink: VideoSink, out_shapes: list[tuple[int, int]], tickets_in: Channel, pace: Pace,
                 progress: NoticedProgress, task: str, total: int | None) -> None:
        self.sink, self.out_shapes, self.tickets_in, self.pace = sink, out_shapes, tickets_in, pace
        self.progress, self.task, self.total = progress, task, total
        self.written = 0

    def run(self) -> None:
        lower_thread_priority()
        bar, clock = self.progress, self.pace.clock
        bar.begin(self.task, self.total)
        try:
            while True:
                item = self.tickets_in.get()
                if item is END:
                    break
                frames, ticket = item
                with ticket as out:  # waits for this batch's copy to the host, checks it
                    host = out.numpy()
                    if host.dtype == np.int16:
                        host = host.view(np.uint16)
                    for i, frame in enumerate(frames):
                        self.sink.write(self._planes(host[i]), frame.pts, frame.duration)
                        self.written += 1
                        clock.written(frame.pts)
                        self.pace.in_flight.give_back()
                        if self.total is None:  # no length, so no ETA: how far into the stream (and, live, how far behind it)
                            lag = f" lag={clock.lag:.2f}s" if self.pace.in_flight.limit is not None else ""
                            extra = f", {self.pace.dropped_late} dropped late" if self.pace.dropped_late else ""
                            bar.status(f"t={clock.stream_seconds:.2f}s{lag}{extra}")
                        bar.advance(1)
            self.sink.finish()
        finally:
            bar.end()

    def _planes(self, packed: np.ndarray) -> tuple:
        at, planes = 0, []
        for h, w in self.out_shapes:
            planes.append(packed[at : at + h * w].reshape(h, w))
            at += h * w
        return tuple(planes)
