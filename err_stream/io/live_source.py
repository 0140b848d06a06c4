"""Frames from a pipe or a live URL: opened once, probed on what arrives, never seeked.

A file can be opened twice (once to probe, once to decode); a stream cannot: standard input
is consumed as it is read and a live sender does not start over. :class:`LiveSource` opens
the stream once, decodes until the first picture to learn its format, keeps what it decoded
on the way, and then goes on decoding from there.

A stream's end is not an error: whatever arrived is restored and the output is finished.
How it ended is kept in :attr:`LiveSource.ended` so the run can report it: ``"end"`` (the
sender closed the stream), ``"stalled"`` (nothing arrived for ``timeout`` seconds) or
``"failed"`` (a read error, e.g. the connection was reset) or ``"stopped"`` (``stop`` was
set: the user pressed Ctrl-C to end a recording). Damaged pictures (lost packets on a
network) are dropped and counted, never passed on concealed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from ..errors import UserError, named
from .endpoints import Endpoint, input_timeouts, open_input
from .source import Source, SourceFrame, _attached_pic_flag, _reason, plain_pix_fmt, plane_views, video_info

log = logging.getLogger(__name__)


class LiveSource(Source):
    """A pipe or URL, decoded as it arrives; opening it probes it (:attr:`info`)."""

    def __init__(self, ep: Endpoint, input_format: str | None = None, timeout: float | None = None, low_delay: bool = False,
                 stop: threading.Event | None = None) -> None:
        self.ep = ep
        self.stop = stop
        self.timeout = input_timeouts(ep, timeout)[1]
        self.ended: str | None = None
        self.reason = ""
        self.damage: list = []
        self.damaged = 0
        self.decoded = 0
        self.last_data = time.monotonic()
        self.container = open_input(ep, input_format, timeout, low_delay)
        try:
            vs = next((s for s in self.container.streams.video if not s.disposition & _attached_pic_flag()), None)
            if vs is None:
                raise UserError(f"{ep.label()}: the stream has no video")
            # Frame threading holds one frame per thread back; slice threading does not.
            vs.thread_type = "SLICE" if low_delay else "AUTO"
            self.stream = vs
            self._packets = self.container.demux(vs)  # only the video is read from a stream (see README)
            self._ready: deque = deque()
            first = self._first_frame()
            info = video_info(self.container, vs, first, Path(ep.text), live=ep.text)
        except BaseException:
            self.close()
            raise
        if info.other_streams:
            kinds = ", ".join(sorted({s.type for s in info.other_streams}))
            log.warning("%s: its %s streams are not copied (only files have their other streams copied)", ep.label(), kinds)
        info.other_streams = []
        info.frames_estimate = None  # a stream's length is unknown
        info.duration = None
        self.info = info

    def _first_frame(self):
        import av

        while not self._ready:
            try:
                packet = next(self._packets, None)
            except av.error.ExitError:
                raise UserError(f"{self.ep.label()}: no picture arrived within {self.timeout:g} s ({named('timeout')})") from None
            except av.error.FFmpegError as e:
                raise UserError(f"{self.ep.label()}: reading the stream failed before its first picture ({_reason(e)})") from None
            if packet is None:
                raise UserError(f"{self.ep.label()}: the stream ended before its first picture")
            for frame in self._decode(packet):
                self._ready.append(frame)
        return self._ready[0]

    def _decode(self, packet) -> list:
        import av

        try:
            frames = packet.decode()
        except av.error.FFmpegError as e:
            self.damaged += 1
            log.warning("%s: a damaged packet was dropped (%s)", self.ep.label(), _reason(e))
            return []
        good = []
        for frame in frames:
            if frame.is_corrupt:
                self.damaged += 1
                continue
            good.append(frame)
        return good

    def frames(self) -> Iterator[SourceFrame]:
        import av

        info = self.info
        index = 0
        last_pts: int | None = None
        tick = max(1, round(1 / (info.average_rate * info.time_base))) if info.average_rate else 1
        try:
            while True:
                while self._ready:
                    frame = self._ready.popleft()
                    if frame.width != info.width or frame.height != info.height or plain_pix_fmt(frame.format.name)[0] != info.pix_fmt.name:
                        raise UserError(
                            f"{info.label}: the picture changes from {info.width}x{info.height} {info.pix_fmt.name} to "
                            f"{frame.width}x{frame.height} {frame.format.name} at frame {index}; not supported"
                        )
                    pts = frame.pts
                    if pts is None or (last_pts is not None and pts <= last_pts):
                        pts = 0 if last_pts is None else last_pts + max(1, int(frame.duration or 0) or tick)
                    last_pts = pts
                    self.decoded += 1
                    yield SourceFrame(index=index, pts=pts, duration=int(frame.duration or 0),
                                      planes=plane_views(frame, info.pix_fmt), keepalive=frame)
                    index += 1
                if self.ended is not None:
                    return
                if self.stop is not None and self.stop.is_set():
                    self.ended, self.reason = "stopped", "stopped by the user"
                    self._flush()
                    continue
                try:
                    packet = next(self._packets, None)
                except av.error.ExitError:
                    self.ended, self.reason = "stalled", f"nothing arrived for {self.timeout:g} s ({named('timeout')})"
                    packet = None
                except av.error.FFmpegError as e:
                    self.ended, self.reason = "failed", f"reading failed: {_reason(e)}"
                    packet = None
                if packet is None:
                    self.ended = self.ended or "end"
                    self._flush()
                    continue
                self.last_data = time.monotonic()
                self._ready.extend(self._decode(packet))
        finally:
            self.close()

    def _flush(self) -> None:
        """The decoder's last pictures once the stream stopped (a cut-off last picture is
        damaged and dropped)."""
        import av

        try:
            for frame in self.stream.codec_context.decode(None):
                if frame.is_corrupt:
                    self.damaged += 1
                else:
                    self._ready.append(frame)
        except av.error.FFmpegError:
            pass

    def close(self) -> None:
        c, self.container = getattr(self, "container", None), None
        if c is not None:
            try:
                c.close()
            except Exception:
                pass
