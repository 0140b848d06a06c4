"""A live run's bounds: where it stands against the stream's clock, and how many frames it
holds between decoder and encoder."""

from __future__ import annotations

import threading
import time
from fractions import Fraction

from .pipeline import Cancelled


class StreamClock:
    """Where a run stands against the stream's own clock.

    The first frame decoded fixes the origin (wall clock, stream time). A frame of stream
    time t is *behind* by ``now - origin_wall - (t - origin_t)`` seconds: how much later
    than real time it is being handled. For a live input that is the delay the run adds
    (plus the first frame's own), shown as ``lag`` in the progress line; with ``drop_late``
    a frame decoded further behind than ``max_lag`` is dropped."""

    def __init__(self, time_base: Fraction, max_lag: float | None = None) -> None:
        self.time_base = time_base
        self.max_lag = max_lag
        self.origin: tuple[float, int] | None = None
        self.last_pts: int | None = None
        self.lag = 0.0

    def behind(self, pts: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        if self.origin is None:
            self.origin = (now, pts)
        wall0, pts0 = self.origin
        return (now - wall0) - float((pts - pts0) * self.time_base)

    def late(self, pts: int) -> bool:
        return self.max_lag is not None and self.behind(pts) > self.max_lag

    def written(self, pts: int) -> None:
        self.lag = self.behind(pts)
        self.last_pts = pts

    @property
    def stream_seconds(self) -> float:
        if self.origin is None or self.last_pts is None:
            return 0.0
        return float((self.last_pts - self.origin[1]) * self.time_base)


class InFlight:
    """A live run's bound on frames between decoder and encoder: the decoder takes a permit
    per frame and the encoder gives it back once the frame is written, so a slow model stops
    the reading (backpressure to the sender) instead of queueing. ``limit=None``: no bound
    (a file run), and nothing is counted."""

    def __init__(self, limit: int | None, stop: threading.Event) -> None:
        self.limit = limit
        self.stop = stop
        self._permits = threading.Semaphore(limit) if limit is not None else None
        self._lock = threading.Lock()
        self._now = 0
        self.peak = 0  # the most frames in flight at once

    def take(self) -> None:
        if self._permits is None:
            return
        while not self._permits.acquire(timeout=0.1):
            if self.stop.is_set():
                raise Cancelled
        with self._lock:
            self._now += 1
            self.peak = max(self.peak, self._now)

    def give_back(self) -> None:
        if self._permits is None:
            return
        with self._lock:
            self._now -= 1
        self._permits.release()


class Pace:
    """A run against real time: the stream clock, the frames in flight (``max_delay``; None:
    not a live run) and the frames dropped for falling behind (``drop_late``: more than
    ``max_delay`` frame periods)."""

    def __init__(self, time_base: Fraction, frame_rate: Fraction | None, max_delay: int | None, drop_late: bool,
                 stop: threading.Event) -> None:
        frame_s = float(1 / frame_rate) if frame_rate else 0.04
        self.clock = StreamClock(time_base, max_lag=max_delay * frame_s if drop_late and max_delay else None)
        self.in_flight = InFlight(max_delay, stop)
        self.dropped_late = 0
