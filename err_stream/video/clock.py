"""A live run's bounds: where it stands against the stream's clock, and how many frames it
holds between decoder and encoder."""

from __future__ import annotations

import threading
import time
from fractions import Fraction

from .pipeline import Cancelled


class StreamClock:
    """Where a run stands against the stream's own clock.

    The origin (wall clock, stream time) is where real time and the stream's time meet: fixed
    by the first frame received (:meth:`start`, with the moment the source had it: a stream's
    first picture arrives while it is probed, before the run's stages start; else the first
    :meth:`arrived`), and moved earlier by any frame that arrives sooner than it implies (the
    probe hands several frames on at once; a pipe's writer may run ahead of real time). A frame
    of stream time t is *behind* by ``now - origin_wall - (t - origin_t)`` seconds: how much later
    than real time it is being handled, never less than 0 when it is received. For a live input
    that is the delay the run adds, shown as ``lag`` in the progress line; with ``drop_late`` a
    frame received further behind than ``max_lag`` is dropped. (Were the origin the first frame
    *written*, the frames queued behind it would be written "ahead of real time".)"""

    def __init__(self, time_base: Fraction, max_lag: float | None = None) -> None:
        self.time_base = time_base
        self.max_lag = max_lag
        self.origin: tuple[float, int] | None = None
        self.last_pts: int | None = None
        self.lag = 0.0

    def start(self, pts: int, wall: float | None = None) -> None:
        """Fix the origin at frame ``pts``, received at ``wall`` (``time.monotonic()``;
        default: now), unless it is fixed already."""
        if self.origin is None:
            self.origin = (time.monotonic() if wall is None else wall, pts)

    def behind(self, pts: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        if self.origin is None:
            self.origin = (now, pts)
        wall0, pts0 = self.origin
        return (now - wall0) - float((pts - pts0) * self.time_base)

    def arrived(self, pts: int, now: float | None = None) -> bool:
        """Frame ``pts`` was received (``now``): whether it is late (``drop_late``: further
        behind than ``max_lag``). The first one fixes the origin if :meth:`start` did not; one
        that arrives ahead of the origin's real time moves the origin back to it."""
        behind = self.behind(pts, now)
        if behind < 0:
            wall0, pts0 = self.origin
            self.origin = (wall0 + behind, pts0)
            behind = 0.0
        return self.max_lag is not None and behind > self.max_lag

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
