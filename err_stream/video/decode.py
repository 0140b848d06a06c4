"""The decode stage: the source's frames, in order, into host buffers and on to the model."""

from __future__ import annotations

from ..io.priority import lower_thread_priority
from ..io.source import Source
from .clock import Pace
from .pipeline import END, Channel
from .restore import RestoreStage


class DecodeStage:
    """Runs in its own thread: reads ``source``, drops frames that fall too far behind a live
    feed (``drop_late``), waits for a permit while a live run has ``max_delay`` frames in
    flight, and packs each frame for the restore stage."""

    def __init__(self, source: Source, restore: RestoreStage, frames_out: Channel, pace: Pace) -> None:
        self.source, self.restore, self.frames_out, self.pace = source, restore, frames_out, pace

    def run(self) -> None:
        lower_thread_priority()  # FFmpeg's decoder threads, created here, inherit it
        for frame in self.source.frames():
            if self.pace.clock.late(frame.pts):
                self.pace.dropped_late += 1
                continue
            self.pace.in_flight.take()
            self.restore.pack(frame)
            self.frames_out.put(frame)
        self.frames_out.put(END)
