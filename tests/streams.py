"""Loopback stream helpers for the tests and benchmarks: free ports, a paced MPEG-TS sender
(run as its own process so it can be killed mid-stream), and a TCP receiver.

Everything talks to 127.0.0.1 only, and every wait is bounded in time.

Run as a script, it is the sender::

    python tests/streams.py URL --frames N --fps F [--size WxH] [--kill-after K] [--stamps FILE] [--gop G] [--audio]
                            [--skip FROM,COUNT] [--start-file FILE]

It encodes frame ``i`` of :func:`clips.yuv_planes` losslessly (x264 qp 0, no B-frames,
every frame an IDR unless ``--gop`` says otherwise) with pts ``i`` in 1/fps, paced in real
time, and writes each frame's send time (``time.time()``) to ``--stamps``. ``--kill-after K``
ends the process with SIGKILL right after frame K was sent: no trailer, no goodbye.
``--audio`` adds an AAC tone (48 kHz mono) in step with the video. ``--skip FROM,COUNT``
leaves frames FROM .. FROM+COUNT-1 out (their time passes: the stream's clock jumps over
them). ``--start-file FILE``: once connected, wait (bounded by the connect timeout) until FILE
exists before the first frame (so a player can join a relay before it). The container follows
the URL: FLV for ``rtmp://`` (publishing to a server), RTSP for ``rtsp://`` (ANNOUNCE and
RECORD, RTP over UDP), MPEG-TS otherwise.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port nobody uses on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_port_bound(port: int) -> bool:
    """Whether someone has bound UDP ``port``: read from /proc/net/udp on Linux (a trial bind
    could take the port from under err-stream), else a trial bind."""
    table = Path("/proc/net/udp")
    if table.exists():
        for line in table.read_text().splitlines()[1:]:
            local = line.split()[1]
            if int(local.rsplit(":", 1)[1], 16) == port:
                return True
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def has_udp_socket(pid: int) -> bool:
    """Whether process ``pid`` has a UDP socket bound (Linux: its descriptors' socket inodes
    looked up in /proc/net/udp): an RTSP client has one once it has set up its RTP ports."""
    try:
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        rows = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:  # the process has gone
        return False
    return any(row.split()[9] in inodes for row in rows)


def wait_until(check, timeout: float, what: str, step: float = 0.02) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if check():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def sender_command(url: str, frames: int, fps: int = 25, size: str = "64x48", kill_after: int | None = None,
                   stamps: Path | None = None, connect_timeout: float = 20.0, gop: int = 1, audio: bool = False,
                   skip: tuple[int, int] | None = None, start_file: Path | None = None) -> list[str]:
    """The sender as a process. TCP: it retries connecting for ``connect_timeout`` seconds;
    UDP: it waits as long for the receiver to bind its port (datagrams sent before are lost)."""
    cmd = [sys.executable, str(HERE / "streams.py"), url, "--frames", str(frames), "--fps", str(fps), "--size", size,
           "--connect-timeout", str(connect_timeout)]
    if kill_after is not None:
        cmd += ["--kill-after", str(kill_after)]
    if stamps is not None:
        cmd += ["--stamps", str(stamps)]
    if gop != 1:
        cmd += ["--gop", str(gop)]
    if audio:
        cmd.append("--audio")
    if skip is not None:
        cmd += ["--skip", f"{skip[0]},{skip[1]}"]
    if start_file is not None:
        cmd += ["--start-file", str(start_file)]
    return cmd


def child_env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE), os.environ.get("PYTHONPATH", "")]))


class Receiver:
    """A TCP listener on 127.0.0.1 that stores everything one client sends, in a thread.
    Listening starts in the constructor, so a client may connect right away."""

    def __init__(self, path: Path, timeout: float = 120.0, read_limit: int | None = None, rate: float | None = None) -> None:
        """``rate``: read at most this many bytes a second (a slow network or player: the
        sender's writes block, as TCP makes them)."""
        self.path = path
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(timeout)
        self.port = self.sock.getsockname()[1]
        self.read_limit = read_limit
        self.rate = rate
        self.received = 0
        self.arrivals: list[tuple[float, int]] = []  # (time.time(), bytes so far)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="receiver", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def _run(self) -> None:
        try:
            conn, _ = self.sock.accept()
            conn.settimeout(self.sock.gettimeout())
            with conn, open(self.path, "wb") as f:
                t0 = time.monotonic()
                while True:
                    if self.rate:  # the bytes so far are due no earlier than received / rate
                        time.sleep(max(0.0, t0 + self.received / self.rate - time.monotonic()))
                    data = conn.recv(1 << 14 if self.rate else 1 << 16)
                    if not data:
                        return
                    f.write(data)
                    f.flush()
                    self.received += len(data)
                    self.arrivals.append((time.time(), self.received))
                    if self.read_limit is not None and self.received >= self.read_limit:
                        return  # hang up: the sender finds its receiver gone
        except BaseException as e:  # reported by join()
            self.error = e
        finally:
            self.sock.close()

    def join(self, timeout: float = 120.0) -> None:
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError("the receiver did not finish in time")
        if self.error is not None and not isinstance(self.error, (ConnectionResetError,)):
            raise self.error


# The container a sender writes to each kind of URL, and its options.
SENDER_FORMATS = {"rtmp": ("flv", {}), "rtsp": ("rtsp", {"rtsp_transport": "udp"})}
AUDIO_RATE = 48000


def send(url: str, frames: int, fps: int, size: str, kill_after: int | None, stamps: Path | None, connect_timeout: float,
         gop: int = 1, audio: bool = False, skip: tuple[int, int] | None = None, start_file: Path | None = None) -> None:
    import av

    import clips

    w, h = (int(v) for v in size.split("x"))
    fmt, fmt_options = SENDER_FORMATS.get(url.partition("://")[0], ("mpegts", {}))
    deadline = time.monotonic() + connect_timeout
    if url.startswith("udp://"):
        port = int(url.split(":")[-1].split("?")[0])
        wait_until(lambda: udp_port_bound(port), connect_timeout, f"a receiver on UDP port {port}")
    while True:  # the listener (err-stream) may not be up yet: retry, bounded
        try:
            c = av.open(url, "w", format=fmt, options={"flush_packets": "1", **fmt_options})
            s = c.add_stream("libx264", rate=fps)
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            s.time_base = Fraction(1, fps)
            s.codec_context.time_base = Fraction(1, fps)
            s.codec_context.options = {"qp": "0", "tune": "zerolatency", "g": str(gop), "bf": "0", "preset": "ultrafast"}
            a = None
            if audio:
                a = c.add_stream("aac", rate=AUDIO_RATE)
                a.layout = "mono"
            c.start_encoding()
            break
        except (av.error.ConnectionRefusedError, av.error.FFmpegError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    if start_file is not None:
        wait_until(start_file.exists, max(0.0, deadline - time.monotonic()) + 1.0, f"{start_file} (the go-ahead)")
    out = open(stamps, "w") if stamps else None
    t0 = time.monotonic()
    for i in range(frames):
        if skip is not None and skip[0] <= i < skip[0] + skip[1]:
            continue  # left out: the next frame's timestamp jumps over it
        wait = t0 + i / fps - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        f = av.VideoFrame(w, h, "yuv420p")
        clips.fill(f, clips.yuv_planes(i, w, h))
        f.pts = i
        f.time_base = Fraction(1, fps)
        for p in s.encode(f):
            c.mux(p)
        if a is not None:  # this frame's share of the tone, in 1024-sample AAC frames
            for p in a.encode(_tone(i, fps)):
                c.mux(p)
        if out:
            out.write(f"{i} {time.time():.6f}\n")
            out.flush()
        if kill_after is not None and i == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
    for p in s.encode(None):
        c.mux(p)
    if a is not None:
        for p in a.encode(None):
            c.mux(p)
    c.close()


def _tone(i: int, fps: int):
    """Frame ``i``'s 1/fps of a 440 Hz tone (float planar, mono), timestamped in samples."""
    import av
    import numpy as np

    start, end = i * AUDIO_RATE // fps, (i + 1) * AUDIO_RATE // fps
    t = np.arange(start, end) / AUDIO_RATE
    frame = av.AudioFrame.from_ndarray((0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], format="fltp", layout="mono")
    frame.sample_rate = AUDIO_RATE
    frame.pts, frame.time_base = start, Fraction(1, AUDIO_RATE)
    return frame


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--frames", type=int, required=True)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--size", default="64x48")
    ap.add_argument("--kill-after", type=int)
    ap.add_argument("--stamps", type=Path)
    ap.add_argument("--connect-timeout", type=float, default=20.0)
    ap.add_argument("--gop", type=int, default=1)
    ap.add_argument("--audio", action="store_true")
    ap.add_argument("--skip", type=lambda v: tuple(int(x) for x in v.split(",")))
    ap.add_argument("--start-file", type=Path)
    a = ap.parse_args()
    sys.path.insert(0, str(HERE))
    send(a.url, a.frames, a.fps, a.size, a.kill_after, a.stamps, a.connect_timeout, a.gop, a.audio, a.skip, a.start_file)
