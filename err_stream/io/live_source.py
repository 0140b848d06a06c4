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
network) are dropped and counted, never passed on concealed: those the decoder flags, those
it only logs an error for while concealing them (:class:`~.damage.DamageWatch`; a lost RTP
packet in the middle of a picture comes out this way), and the pictures after one up to the
next keyframe (they are predicted from a damaged one). Pictures missing before they
reached us (the stream's clock jumps: a sender or a relay dropped them) are counted in
:attr:`LiveSource.missing` and warned about at once.

A network input is read by a thread of its own (:class:`_PacketPump`) into a queue of
compressed packets, whatever the model's speed: a relay between the sender and us (an RTMP
or RTSP server) drops the pictures it cannot send to a slow player, and nginx-rtmp even
closes the gap in its timestamps, so a reader that stops reading loses frames without a
trace. The queues hold up to :data:`PACKET_BUFFER_BYTES`; past that, reading pauses (a
warning says so). A pipe is read on demand: its writer waits, and nothing is lost.

The one demuxer reads every stream: the video's packets are decoded here, the others' (audio,
subtitles, data) wait in :attr:`LiveSource.others` for the output, which copies them beside
the restored video with their own timestamps (the input's clock, so they stay in sync).

How a stream's end is told: a pipe, a TCP or SRT-bridged connection closes; RTMP says so
only when the server sends ``NetStream.Play.Stop`` or ``UnpublishNotify`` (nginx-rtmp with
``play_restart on`` or ``publish_notify on``; its default sends a notice FFmpeg ignores, so
the end looks like a stall); RTSP when every stream got its RTCP BYE; UDP never.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from ..errors import UserError, named
from .damage import DamageWatch
from .endpoints import Endpoint, input_timeouts, open_input
from .source import Source, SourceFrame, _attached_pic_flag, _reason, plane_views, video_info

log = logging.getLogger(__name__)

# Compressed stream a network input may hold while the model is slower than the stream
# (256 MiB: minutes of a typical live stream).
PACKET_BUFFER_BYTES = 256 << 20


class LiveSource(Source):
    """A pipe or URL, decoded as it arrives; opening it probes it (:attr:`info`)."""

    def __init__(self, ep: Endpoint, input_format: str | None = None, timeout: float | None = None, low_delay: bool = False,
                 stop: threading.Event | None = None, options: dict[str, str] | None = None) -> None:
        super().__init__(None)  # info once the first picture has arrived
        self.ep = ep
        self.stop = stop
        self.timeout = input_timeouts(ep, timeout)[1]
        self.decoded = 0
        self.packets = 0  # video packets with data read from the demuxer
        self.last_data = time.monotonic()
        self._pump: _PacketPump | None = None
        self._watch: DamageWatch | None = None
        self._broken = False  # a damaged picture was dropped: so are the next ones, up to a keyframe
        self._damaged_pts: set = set()  # pictures whose packet the decoder logged an error for
        self._last_pts: int | None = None
        self._lost_before = False  # the packet read before this one followed lost data
        self.container = open_input(ep, input_format, timeout, low_delay, options)
        try:
            vs = next((s for s in self.container.streams.video if not s.disposition & _attached_pic_flag()), None)
            if vs is None:
                raise UserError(f"{ep.label()}: the stream has no video")
            # Slice threads only: frame threading holds one frame per thread back (delay),
            # and its decoder errors are logged while another frame is handed out, so a
            # concealed picture could not be told from its neighbour (DamageWatch).
            vs.thread_type = "SLICE"
            self.stream = vs
            self._watch = DamageWatch(decoder=vs.codec_context.name, level=_av_level("WARNING")).__enter__()
            # Every stream: the video is decoded here, the others queued for the output's copier.
            self.others = PacketQueue(self.container.streams)
            self._packets = self.container.demux()
            self._ready: deque = deque()
            first = self._first_frame()
            self.first_arrival = time.monotonic()
            info = video_info(self.container, vs, first, Path(ep.text), live=ep.text)
        except BaseException:
            self.close()
            raise
        info.frames_estimate = None  # a stream's length is unknown
        info.duration = None
        self.info = info
        if ep.kind == "url":
            self._pump = _PacketPump(self._packets, vs.index, self.others, ep.label(), self.timeout)

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
            if packet.stream_index != self.stream.index:
                self.others.put(packet)
                continue
            for frame in self._decode(packet):
                self._ready.append(frame)
        return self._ready[0]

    def _decode(self, packet) -> list:
        import av

        if packet.is_corrupt:  # MPEG-TS marks a packet with a continuity gap corrupt
            self._damaged_pts.add(packet.pts)
        try:
            frames = packet.decode()
        except av.error.FFmpegError as e:
            self.damaged += 1
            self._broken = True
            if packet.pts is not None and (self._last_pts is None or packet.pts > self._last_pts):
                self._last_pts = packet.pts  # counted as damaged: not as missing too
            log.warning("%s: a damaged packet%s was dropped (%s)", self.ep.label(), self._at(packet.pts), _reason(e))
            return []
        if packet.size:
            self.packets += 1
        return self._accept(frames, packet.pts)

    def _accept(self, frames, pts=None) -> list:
        """The pictures fit to pass on; the others counted in :attr:`damaged`. An error the
        decoder logged while decoding the packet of ``pts`` marks that picture, which may
        come out a call later (the decoder's output delay)."""
        damage = self._watch.check(self.decoded, []) if self._watch is not None else []
        for d in damage:
            # The decoder's message names its picture's time where it can (FFV1 does): two
            # damaged pictures logged in one call are two, each marked by its own time.
            at = pts if d.seconds is None or self.stream.time_base is None else round(d.seconds / self.stream.time_base)
            self._damaged_pts.add(at)  # None (flushing, or a packet without pts): the next picture out
            log.warning("%s: a damaged picture%s was dropped (FFmpeg: %s); so are the next ones up to a keyframe",
                        self.ep.label(), self._at(at), d.message)
        good = []
        for frame in frames:
            self._check_clock(frame)
            marked = frame.pts in self._damaged_pts or (None in self._damaged_pts)
            if marked:
                self._damaged_pts.discard(frame.pts if frame.pts in self._damaged_pts else None)
            if frame.is_corrupt or marked or (self._broken and not frame.key_frame):
                self.damaged += 1
                self._broken = True
                continue
            self._broken = False
            good.append(frame)
        return good

    def _at(self, pts) -> str:
        """" at T s": where in the stream a packet is, for messages ("" when it has no time)."""
        return "" if pts is None else f" at {float(pts * self.stream.time_base):.3f} s"

    def _check_clock(self, frame) -> None:
        """Every picture the decoder gives, kept or not, moves the stream's clock on."""
        if frame.pts is None:
            return
        last, self._last_pts = self._last_pts, frame.pts
        if last is not None and frame.pts > last and self.info is not None:
            self._count_jump(self.decoded, frame.pts - last, max(self.info.tick, int(frame.duration or 0)))

    def frames(self) -> Iterator[SourceFrame]:
        info = self.info
        index = 0
        last_pts: int | None = None
        try:
            while True:
                while self._ready:
                    frame = self._ready.popleft()
                    info.check_frame(frame, index)
                    pts = frame.pts
                    if pts is None or (last_pts is not None and pts <= last_pts):
                        pts = 0 if last_pts is None else last_pts + max(1, int(frame.duration or 0) or info.tick)
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
                packet = self._next_packet()
                if packet is None:
                    if self.ended is None and self.stop is not None and self.stop.is_set():
                        self.ended, self.reason = "stopped", "stopped by the user"
                    self.ended = self.ended or "end"
                    self._flush()
                    continue
                self.last_data = time.monotonic()
                self._ready.extend(self._decode(packet))
        finally:
            self._stop_reading()  # the container stays open until close(): the output may still copy its packets

    def _next_packet(self):
        """The next video packet; None once the stream ended (:attr:`ended` says how) or
        ``stop`` was set (then :attr:`ended` is still None)."""
        import av

        if self._pump is not None:
            item = self._pump.get(self.stop)
            if item is None:
                if self._pump.ended is not None:
                    self.ended, error = self._pump.ended
                    self.reason = self._ending_reason(self.ended, error)
                return None
            packet, lost = item
            if lost or self._lost_before:
                # The gap may end one picture and begin the next: both are suspect.
                self._damaged_pts.add(packet.pts)
                self._lost_before = lost
            return packet
        try:
            while True:
                packet = next(self._packets, None)
                if packet is None or packet.stream_index == self.stream.index:
                    return packet
                self.others.put(packet)  # read in step with the video: the writer of a pipe waits for both
        except av.error.ExitError:
            self.ended, self.reason = "stalled", self._ending_reason("stalled", None)
        except av.error.FFmpegError as e:
            self.ended, self.reason = "failed", self._ending_reason("failed", e)
        return None

    def _ending_reason(self, ended: str, error) -> str:
        if ended == "stalled":
            return f"nothing arrived for {self.timeout:g} s ({named('timeout')})" + self._stall_hint()
        if ended == "failed":
            return f"reading failed: {_reason(error)}"
        return ""

    def _count_jump(self, index: int, step: int, tick: int) -> None:
        """A step of more than one and a half frames in a steady stream: pictures were lost
        before they reached us (a relay that dropped them for a slow reader, a sender that
        skipped them). Counted, and said at once."""
        if not self.info.average_rate or step * 2 <= tick * 3:
            return
        lost = round(step / tick) - 1
        if lost < 1:
            return
        self.missing += lost
        log.warning("%s: the stream's clock jumps by %.3f s before frame %d: about %d pictures never arrived "
                    "(%d so far)", self.ep.label(), float(step * self.info.time_base), index, lost, self.missing)

    def _stall_hint(self) -> str:
        if self.ep.scheme in ("rtmp", "rtmps"):
            return ("; an RTMP server that keeps its players connected when the publisher leaves looks like this "
                    "(nginx-rtmp does by default: 'play_restart on;' in its application tells the end)")
        return ""

    def _flush(self) -> None:
        """The decoder's last pictures once the stream stopped (a cut-off last picture is
        damaged and dropped)."""
        import av

        try:
            self._ready.extend(self._accept(self.stream.codec_context.decode(None)))
        except av.error.FFmpegError:
            pass

    def _stop_reading(self) -> bool:
        """Stop the reading thread of a network input; whether no thread is inside FFmpeg's
        read (then the container may be closed)."""
        pump = getattr(self, "_pump", None)
        if pump is None:
            return True
        done = pump.close()
        self.buffered_peak = pump.peak_bytes
        if done:
            self._pump = None
        return done

    def close(self) -> None:
        if not self._stop_reading():
            return  # still inside FFmpeg's read: closing the container under it would crash
        watch, self._watch = getattr(self, "_watch", None), None
        if watch is not None:
            watch.__exit__(None, None, None)
        c, self.container = getattr(self, "container", None), None
        if c is not None:
            try:
                c.close()
            except Exception:
                pass


def _av_level(name: str) -> int:
    import av

    return getattr(av.logging, name)


class PacketQueue:
    """The packets of a stream input's other streams (audio, subtitles, data), in the order
    they were read, for the output's copier (:class:`~.sink.StreamCopier`): the reading thread
    puts, the encoding thread takes. ``streams``: the input's streams, which the copier maps
    to the output's."""

    def __init__(self, streams) -> None:
        self.streams = list(streams)
        self._items: deque = deque()
        self._lock = threading.Lock()
        self.bytes = 0

    def put(self, packet) -> None:
        with self._lock:
            self._items.append(packet)
            self.bytes += packet.size

    def take(self):
        """The oldest packet, or None when none is waiting now (more may come)."""
        with self._lock:
            if not self._items:
                return None
            packet = self._items.popleft()
            self.bytes -= packet.size
            return packet


class _PacketPump:
    """Reads a network stream's packets in a thread of its own, as fast as they arrive: the
    video's (``video_index``) into a queue the decoder takes them from, the others' into
    ``others`` (see the module's docstring). ``ended`` is set when reading stopped:
    ``("end", None)``, ``("stalled", None)`` (nothing for the read timeout) or
    ``("failed", error)``."""

    def __init__(self, packets, video_index: int, others: PacketQueue, label: str, timeout: float | None,
                 limit: int = PACKET_BUFFER_BYTES) -> None:
        self.packets, self.video_index, self.others = packets, video_index, others
        self.label, self.timeout, self.limit = label, timeout, limit
        self.queue: deque = deque()
        self.bytes = 0
        self.peak_bytes = 0
        self.ended: tuple[str, object] | None = None
        self.closing = False
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="err-stream-demux", daemon=True)
        self.thread.start()

    def _held(self) -> int:
        return self.bytes + self.others.bytes

    def _run(self) -> None:
        import av

        ended: tuple[str, object] = ("end", None)
        warned = lost = False
        capture = av.logging.Capture(local=True)  # what FFmpeg logs in this thread: the demuxer's words
        said = capture.__enter__()
        try:
            while True:
                with self.cond:
                    while self._held() > self.limit and not self.closing:
                        if not warned:
                            warned = True
                            log.warning("%s: %d MiB of stream wait for the model, which is slower than the stream: "
                                        "reading pauses until it catches up (a relay may then drop pictures)",
                                        self.label, self._held() >> 20)
                        self.cond.wait(0.1)  # the output's copier takes from ``others`` without notifying
                    if self.closing:
                        return
                del said[:]
                try:
                    packet = next(self.packets, None)
                except av.error.ExitError:
                    ended = ("stalled", None)
                    return
                except av.error.FFmpegError as e:
                    ended = ("failed", e)
                    return
                if packet is None:
                    return
                # FFmpeg's RTP layer says when packets went missing (a warning, not a flag, and
                # not naming the stream): the picture being put together then has a hole.
                lost = lost or any("missed" in text and "packets" in text for _level, _name, text in said)
                if packet.stream_index != self.video_index:
                    self.others.put(packet)
                    self.peak_bytes = max(self.peak_bytes, self._held())
                    continue
                with self.cond:
                    self.queue.append((packet, lost))
                    self.bytes += packet.size
                    self.peak_bytes = max(self.peak_bytes, self._held())
                    self.cond.notify_all()
                lost = False
        except BaseException as e:  # reported by the decoder as a read failure
            ended = ("failed", e)
        finally:
            capture.__exit__(None, None, None)
            with self.cond:
                self.ended = ended
                self.cond.notify_all()

    def get(self, stop: threading.Event | None):
        """The next ``(packet, lost)``, waiting for it; None when reading ended or ``stop``
        is set."""
        with self.cond:
            while not self.queue and self.ended is None:
                if stop is not None and stop.is_set():
                    return None
                self.cond.wait(0.1)
            if not self.queue:
                return None
            item = self.queue.popleft()
            self.bytes -= item[0].size
            self.cond.notify_all()
            return item

    def close(self) -> bool:
        """Stop reading; whether the thread is out of FFmpeg (it leaves at its next packet
        or read timeout)."""
        with self.cond:
            self.closing = True
            self.queue.clear()
            self.cond.notify_all()
        self.thread.join((self.timeout or 10.0) + 2.0)
        return not self.thread.is_alive()
