"""Where a run reads from and writes to: a file, a pipe (``-``) or a live URL.

Files are probed, seeked and written atomically (see :class:`~.output_file.OutputFile`). Pipes
and network URLs are streams: read once from the start, never seeked, of unknown length,
and written as they go (no atomic rename: the receiver sees every byte as it is written).

This module names the endpoint kinds, opens them through FFmpeg (PyAV) with the right
options (timeouts, low-delay demuxing and muxing, the container to use) and owns standard
output while a run writes video there, so that nothing else can reach it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import SettingError, UserError, named

log = logging.getLogger(__name__)

PIPE = "-"
# Protocols FFmpeg writes live streams to, and the container written when no format is given.
OUTPUT_SCHEMES = {"udp": "mpegts", "tcp": "mpegts", "srt": "mpegts", "rtp": "rtp_mpegts", "rtmp": "flv", "rtmps": "flv", "rtsp": "rtsp"}
PIPE_FORMATS = ("nut", "matroska", "mpegts", "yuv4mpegpipe", "flv")
# How long a network input may send nothing, once it has started, before the run ends with
# exit 2 (seconds). A listener and a UDP input wait for their sender without limit unless the
# timeout setting is given.
DEFAULT_TIMEOUT = 10.0

_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


@dataclass(frozen=True)
class Endpoint:
    """An input or output as the user named it."""

    text: str
    kind: str  # "file", "pipe" or "url"

    @property
    def scheme(self) -> str | None:
        m = _URL.match(self.text)
        return m.group(1).lower() if m else None

    @property
    def is_file(self) -> bool:
        return self.kind == "file"

    @property
    def is_network(self) -> bool:
        return self.kind == "url"

    @property
    def path(self) -> Path:
        if self.kind != "file":
            raise ValueError(f"{self.text} is not a file")
        return Path(self.text)

    def __str__(self) -> str:
        return self.text

    def label(self, output: bool = False) -> str:
        """How messages name it."""
        if self.kind == "pipe":
            return "standard output" if output else "standard input"
        return self.text


def endpoint(text: str | os.PathLike) -> Endpoint:
    """Classify IN/OUT: ``-`` is a pipe; ``scheme://...`` a URL FFmpeg handles (``file://``
    is a file); anything else a path."""
    if isinstance(text, os.PathLike):
        return Endpoint(os.fspath(text), "file")
    if text == PIPE:
        return Endpoint(text, "pipe")
    m = _URL.match(text)
    if m is None:
        return Endpoint(text, "file")
    scheme = m.group(1).lower()
    if scheme == "file":
        return Endpoint(text[len("file://"):], "file")
    check_protocol(scheme, text)
    return Endpoint(text, "url")


# What to use instead of a protocol this FFmpeg lacks (PyAV's wheels are built without libsrt).
INSTEAD = {
    "srt": ("bridge it with srt-live-transmit (package srt-tools): input: "
            "srt-live-transmit 'srt://:9000?mode=listener' udp://127.0.0.1:9001 and read udp://127.0.0.1:9001; "
            "output: write udp://127.0.0.1:9001 and run srt-live-transmit 'udp://:9001?rcvbuf=8388608' 'srt://HOST:PORT'"),
}


def check_protocol(scheme: str, text: str) -> None:
    """Refuse, before anything starts, a URL whose protocol this FFmpeg does not have, in one
    line saying what to use instead (FFmpeg itself would say ``Protocol not found`` only once
    the stream is opened, after the model has loaded, or blame the encoder for an output)."""
    from .input_options import has_protocol

    if "+" in scheme or has_protocol(scheme):  # "hls+http": FFmpeg's nested protocols
        return
    instead = INSTEAD.get(scheme, "use one it has: udp://, tcp://, rtmp://, rtsp://, http(s)://")
    raise UserError(f"{text}: this FFmpeg (PyAV's build) has no {scheme}:// protocol; {instead}")


def output_format(ep: Endpoint, requested: str | None) -> str:
    """The container written to ``ep``: ``requested`` (the ``format`` setting), else the file
    extension, else the protocol's usual one."""
    from .sink import CONTAINERS

    if requested:
        check_muxer(requested)
        return requested
    if ep.kind == "pipe":
        raise UserError(f"OUT is '-' (standard output): name its container with {named('format')} ({', '.join(PIPE_FORMATS)}, ...)")
    if ep.kind == "url":
        fmt = OUTPUT_SCHEMES.get(ep.scheme or "")
        if fmt is None:
            raise UserError(f"{ep}: name the container to send with {named('format')} (e.g. mpegts)")
        return fmt
    fmt = CONTAINERS.get(ep.path.suffix.lower())
    if fmt is None:
        raise UserError(f"{ep}: unknown video container {ep.path.suffix!r}; use one of {', '.join(CONTAINERS)} (or {named('format')})")
    return fmt


def check_muxer(name: str) -> None:
    import av

    if name not in av.formats_available:
        raise SettingError("format", name, f"FFmpeg has no such container (try {', '.join(PIPE_FORMATS)})")
    try:
        av.format.ContainerFormat(name, "w")
    except Exception:
        raise SettingError("format", name, "FFmpeg cannot write this container") from None


def input_options(ep: Endpoint, low_delay: bool, user: dict[str, str] | None = None) -> dict[str, str]:
    """Demuxer/protocol options: a short probe for a live run (the frames read while
    probing wait for it to end, and every later frame inherits that delay), a large UDP
    buffer (the kernel drops datagrams that arrive while we are busy restoring), then the
    user's own (``user``, checked by :func:`.input_options.check_input_options`), which win.
    RTSP keeps FFmpeg's default transport (UDP, then TCP if UDP is refused or gets nothing):
    forcing TCP made UDP-only servers answer 400; a lost UDP packet shows as a damaged
    picture, dropped and counted."""
    opts: dict[str, str] = {}
    if ep.scheme == "udp":
        opts.update({"buffer_size": str(8 << 20), "overrun_nonfatal": "1"})
    if ep.scheme in ("rtsp", "rtsps"):
        opts["buffer_size"] = str(8 << 20)  # its RTP sockets, when over UDP: the same reason
    if low_delay:
        # 0.1 s of stream: enough for the other streams' parameters (an AAC frame is 21 ms). Not
        # 0, which FFmpeg reads as its default (5 s; more for FLV, whose RTMP header announces
        # audio it then waits for): the probe then read 32 KiB, seconds of a low-rate stream.
        opts.update({"probesize": "32768", "analyzeduration": "100000"})
    opts.update(user or {})
    return opts


def output_options(ep: Endpoint, fmt: str, low_delay: bool) -> dict[str, str]:
    """Muxer/protocol options: packets leave as soon as they are muxed for a live run."""
    opts: dict[str, str] = {}
    if ep.kind != "file" and low_delay:
        opts["flush_packets"] = "1"
    if ep.scheme == "udp":
        opts["pkt_size"] = "1316"  # 7 TS packets: one datagram under a typical MTU
    return opts


# Encoder options for a live run: no lookahead, no B-frames, no frame threading (each would
# hold frames back). The user's encoder_opt still overrides them (e.g. bf=2 asks for B-frames).
LOW_DELAY_ENCODER_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"tune": "zerolatency"},
    "libx265": {"tune": "zerolatency"},
    "libvpx-vp9": {"deadline": "realtime", "lag-in-frames": "0", "cpu-used": "8"},
    "libsvtav1": {"preset": "10", "svtav1-params": "lookahead=0:pred-struct=1"},
    "hevc_nvenc": {"tune": "ll", "bf": "0", "delay": "0", "zerolatency": "1", "rc-lookahead": "0"},
    "h264_nvenc": {"tune": "ll", "bf": "0", "delay": "0", "zerolatency": "1", "rc-lookahead": "0"},
}


# A live output's keyframe interval (seconds): a player that joins, or a relay that drops a
# picture, waits at most this long for a picture it can decode (the encoders' own defaults
# are 250 frames, 10 s at 25 fps).
LIVE_KEYFRAME_SECONDS = 1.0


def low_delay_encoder_options(codec: str, rate=None) -> dict[str, str]:
    """The encoder options of a live run for ``codec`` at frame ``rate`` (frames per second,
    None when unknown: 25 is assumed): no lookahead, B-frames or frame threads, and a
    keyframe every :data:`LIVE_KEYFRAME_SECONDS` (FFmpeg's generic ``g``, which every
    encoder here maps to its own keyframe interval)."""
    fps = float(rate) if rate else 25.0
    return {"g": str(max(1, round(fps * LIVE_KEYFRAME_SECONDS))), **LOW_DELAY_ENCODER_OPTIONS.get(codec, {})}


def waits_for_sender(ep: Endpoint) -> bool:
    """A listener or a UDP port: the stream starts whenever its sender does."""
    return ep.scheme == "udp" or (ep.kind == "url" and "listen" in ep.text.partition("?")[2])


def input_timeouts(ep: Endpoint, timeout: float | None) -> tuple[float | None, float | None]:
    """(wait for the stream to start, wait for each read) in seconds; None: no limit."""
    if timeout is not None or ep.kind != "url":
        return timeout, timeout
    return (None if waits_for_sender(ep) else DEFAULT_TIMEOUT), DEFAULT_TIMEOUT


def open_input(ep: Endpoint, input_format: str | None = None, timeout: float | None = None, low_delay: bool = False,
               options: dict[str, str] | None = None):
    """Open a pipe or URL for reading (files are opened by :mod:`.source`); ``timeout``
    (seconds) bounds the wait for the stream to start and each read (see
    :func:`input_timeouts` for the defaults); ``options``: the user's demuxer/protocol
    options (checked: see :func:`.input_options.check_input_options`)."""
    import time

    import av

    from .source import _reason

    target = "pipe:0" if ep.kind == "pipe" else ep.text
    if input_format is not None and input_format not in av.formats_available:
        raise SettingError("input_format", input_format, "FFmpeg has no such container")
    opening, reading = input_timeouts(ep, timeout)
    t0 = time.monotonic()
    try:
        return av.open(target, "r", format=input_format, options=input_options(ep, low_delay, options),
                       timeout=(opening, reading) if opening or reading else None)
    except av.error.ExitError:
        raise UserError(f"{ep.label()}: no stream arrived within {named('timeout')} {opening:g} s") from None
    except av.error.FFmpegError as e:
        # Some protocols turn the interruption at the deadline into their own error (RTMP:
        # "Input/output error" while a relay has no publisher yet): past the deadline, it is that.
        if opening is not None and time.monotonic() - t0 >= opening:
            raise UserError(f"{ep.label()}: no stream arrived within {named('timeout')} {opening:g} s") from None
        what = f"cannot open {ep.label()}" if ep.kind == "url" else "cannot read a video container from standard input"
        hint = f" (name it with {named('input_format')})" if input_format is None and ep.kind == "pipe" else ""
        raise UserError(f"{what}: {_reason(e)}{hint}") from None


class StdoutClaim:
    """While video goes to standard output, file descriptor 1 points at standard error, so a
    stray print (ours or a library's) cannot corrupt the stream; the video is written through
    a private duplicate of the original descriptor."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.saved: int | None = None

    def __enter__(self) -> StdoutClaim:
        sys.stdout.flush()
        self.fd = os.dup(1)
        self.saved = os.dup(1)
        os.dup2(2, 1)
        return self

    @property
    def target(self) -> str:
        return f"pipe:{self.fd}"

    def close_stream(self) -> None:
        """Close our descriptor of the pipe (the reader sees the end once no one holds it)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __exit__(self, *exc) -> None:
        self.close_stream()
        if self.saved is not None:
            sys.stdout.flush()
            os.dup2(self.saved, 1)
            os.close(self.saved)
            self.saved = None
