"""The decode stage: the source's frames, in order, into host buffers and on to the model."""

from __future__ import annotations

from ..io.pacing import paced
from ..io.priority import lower_thread_priority
from ..io.source import Source
from .clock import Pace
from .pipeline import END, Channel
from .restore import RestoreStage


class DecodeStage:
    """Runs in its own thread: reads ``source`` (``realtime``: a file at its own rate, as
    FFmpeg's ``-re``), counts every frame that arrives (:attr:`arrived`), drops those that
    arrive too far behind a live feed (``drop_late``, counted in the pace), waits for a permit
    while a live run has ``max_delay`` frames in flight, and packs each frame for the restore
    stage. Every frame that arrived is either dropped late or handed on: the run checks it."""

    def __init__(self, source: Source, restore: RestoreStage, frames_out: Channel, pace: Pace,
                 realtime: bool = False) -> None:
        self.source, self.restore, self.frames_out, self.pace = source, restore, frames_out, pace
        self.realtime = realtime
        self.arrived = 0

    def run(self) -> None:
        lower_thread_priority()  # FFmpeg's decoder threads, created here, inherit it
        clock = self.pace.clock
        frames = self.source.frames()
        if self.realtime:
            frames = paced(frames, clock.time_base)
        for frame in frames:
            if not self.arrived:  # the clock starts when the source had its first frame
                clock.start(frame.pts, self.source.first_arrival)
            self.arrived += 1
            if clock.arrived(frame.pts):
                self.pace.dropped_late += 1
                continue
            self.pace.in_flight.take()
            self.restore.pack(frame)
            self.frames_out.put(frame)
        self.frames_out.put(END)
