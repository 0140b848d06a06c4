"""Reading a file at its own pace (FFmpeg's ``-re``): a file sent to a live output would
otherwise go out as fast as it is restored (160-180 frames/s in passthrough), which a
player or relay takes as a burst, not a stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from typing import TypeVar

T = TypeVar("T")


class RealtimePacer:
    """Holds each frame until its time has come: frame pts ``t`` is handed on no earlier
    than ``start + (t - t0) * time_base`` on the wall clock, where the first frame fixes
    ``start`` and ``t0``. A frame already late goes at once (the pacer never catches up by
    skipping: what is late stays late, and the lag shows it)."""

    def __init__(self, time_base: Fraction, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.time_base = time_base
        self.clock, self.sleep = clock, sleep
        self.origin: tuple[float, int] | None = None

    def wait(self, pts: int) -> float:
        """Sleep until frame ``pts`` is due; returns how long it slept (seconds)."""
        now = self.clock()
        if self.origin is None:
            self.origin = (now, pts)
            return 0.0
        start, pts0 = self.origin
        due = start + float((pts - pts0) * self.time_base)
        if due <= now:
            return 0.0
        self.sleep(due - now)
        return due - now


def paced(frames: Iterable[T], time_base: Fraction, pts: Callable[[T], int] = lambda f: f.pts,
          pacer: RealtimePacer | None = None) -> Iterator[T]:
    """``frames`` handed on at their own rate (see :class:`RealtimePacer`)."""
    pacer = pacer or RealtimePacer(time_base)
    for frame in frames:
        pacer.wait(pts(frame))
        yield frame
