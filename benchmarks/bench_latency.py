"""Latency and throughput of err-stream on a live loopback stream.

A sender streams MPEG-TS over TCP (127.0.0.1) into ``err-stream tcp://...?listen``, which
sends its output as MPEG-TS to a receiver over TCP; the receiver decodes as bytes arrive.
Each frame's latency is the time from the moment its last byte left the sender to the
moment the receiver decoded it. For each frame size, in one run on one machine:

* ``direct``: the sender straight into the receiver: what MPEG-TS itself costs (a demuxer
  hands a video frame on only when the next one starts, about two frames at 5 fps);
* ``passthrough``: through err-stream without the model (demuxing, decoding, colour,
  encoding and muxing): minus ``direct``, the delay err-stream's plumbing adds;
* ``model``: the same with the model: minus ``passthrough``, the delay the model adds;
* through a real relay, nginx-rtmp on 127.0.0.1 (``nginx-light`` and ``libnginx-mod-rtmp``;
  skipped, saying so, when absent), both paced at 25 frames/s: ``nginx direct``, a sender
  publishing FLV and a plain PyAV player of the same server (what the relay itself costs), and
  ``nginx passthrough``, err-stream playing that stream and publishing its output as FLV to the
  same server, where the same kind of player plays it: minus ``nginx direct``, the delay
  err-stream adds between two points of a relay.

Two phases per mode (the nginx rows: latency only): throughput (the sender as fast as TCP backpressure lets it), then
latency with the sender paced at half that throughput (so frames do not queue up). The
table gives the latency (median and p99, in ms and in frames of the paced stream), the
throughput, and the latency the model adds over the passthrough baseline.

    python benchmarks/bench_latency.py                       # CPU, 640x360
    python benchmarks/bench_latency.py --device cuda --sizes 1920x1080 3840x2160 --precision fp16
    python benchmarks/bench_latency.py --no-nginx            # without the rows through nginx-rtmp

The model has seeded random weights (same compute as any ERR checkpoint) unless --weights
is given.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _video_stream(c, width: int, height: int, fps: float):
    """The sender's H.264 stream (timestamps in ms, a keyframe a second, no lookahead)."""
    s = c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
    s.width, s.height, s.pix_fmt = width, height, "yuv420p"
    s.time_base = Fraction(1, 1000)
    s.codec_context.time_base = Fraction(1, 1000)
    s.codec_context.options = {"preset": "ultrafast", "crf": "20", "tune": "zerolatency", "g": str(max(1, round(fps)))}
    return s


def picture(i: int, width: int, height: int, fps: float):
    """Frame ``i`` of the sender: a moving pattern, at its time in ms."""
    import av

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(xx / 23.0) * np.cos(yy / 17.0)
    cw, ch = (width + 1) // 2, (height + 1) // 2
    f = av.VideoFrame(width, height, "yuv420p")
    y = np.clip(16 + 219 * 0.3 * np.roll(base, 4 * i, axis=1), 16, 235).astype(np.uint8)
    for plane, a in zip(f.planes, (y, np.full((ch, cw), 128, np.uint8), np.full((ch, cw), 128, np.uint8))):
        np.frombuffer(plane, np.uint8).reshape(a.shape[0], -1)[:, : a.shape[1]] = a
    f.pts, f.time_base = round(i * 1000 / fps), Fraction(1, 1000)
    return f


def encode_chunks(width: int, height: int, frames: int, fps: float) -> list[bytes]:
    """The stream as MPEG-TS at ``fps`` frames per second (timestamps in ms), cut after each
    frame: chunk i completes frame i."""
    import av

    buf = io.BytesIO()
    chunks, at = [], 0
    with av.open(buf, "w", format="mpegts", options={"flush_packets": "1"}) as c:
        s = _video_stream(c, width, height, fps)
        for i in range(frames):
            f = picture(i, width, height, fps)
            for p in s.encode(f):
                c.mux(p)
            chunks.append(buf.getvalue()[at:])
            at = len(buf.getvalue())
        for p in s.encode(None):
            c.mux(p)
    chunks[-1] += buf.getvalue()[at:]
    return chunks


def send(port: int, chunks: list[bytes], rate: float | None, stamps: list[float], deadline: float, proc=None) -> None:
    """Connect (retrying until err-stream listens), then send chunk i at i / rate (or at once)."""
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            break
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise SystemExit(f"err-stream ended before it listened ({proc.returncode}): {proc.stderr.read().strip()}")
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with sock:
        t0 = time.monotonic()
        for i, chunk in enumerate(chunks):
            if rate:
                wait = t0 + i / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            sock.sendall(chunk)
            stamps.append(time.time())


class Receiver(threading.Thread):
    """Accepts err-stream's connection and decodes its MPEG-TS as it arrives."""

    def __init__(self, timeout: float) -> None:
        super().__init__(daemon=True)
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.server.settimeout(timeout)
        self.port = self.server.getsockname()[1]
        self.arrivals: list[tuple[float, int]] = []  # (time.time(), pts)
        self.error: BaseException | None = None

    def run(self) -> None:
        import av

        try:
            conn, _ = self.server.accept()
            conn.settimeout(self.server.gettimeout())
            with conn, conn.makefile("rb", buffering=0) as stream:
                with av.open(stream, "r", format="mpegts", options={"probesize": "32", "analyzeduration": "0", "fpsprobesize": "0"}) as c:
                    for frame in c.decode(c.streams.video[0]):
                        self.arrivals.append((time.time(), frame.pts))
        except BaseException as e:
            self.error = e
        finally:
            self.server.close()


def run_direct(chunks, rate, size, timeout) -> dict:
    rx = Receiver(timeout)
    rx.start()
    stamps: list[float] = []
    send(rx.port, chunks, rate, stamps, deadline=time.monotonic() + timeout)
    rx.join(timeout)
    if len(rx.arrivals) != len(chunks):
        raise SystemExit(f"{size}: sent {len(chunks)} frames, received {len(rx.arrivals)} ({rx.error})")
    arrivals = [t for t, _ in rx.arrivals]
    span = arrivals[-1] - arrivals[0]
    return {"latency": np.array(arrivals) - np.array(stamps), "fps": (len(arrivals) - 1) / span if span > 0 else float("inf")}


def run_once(chunks, rate, model_args, size, max_delay, timeout) -> dict:
    if model_args is None:
        return run_direct(chunks, rate, size, timeout)
    rx = Receiver(timeout)
    rx.start()
    port = free_port()
    cmd = [sys.executable, "-m", "err_stream.cli", f"tcp://127.0.0.1:{port}?listen", f"tcp://127.0.0.1:{rx.port}",
           "--format", "mpegts", "--max-delay", str(max_delay), "--timeout", str(timeout), "--quiet", "--json", *model_args]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stamps: list[float] = []
    try:
        send(port, chunks, rate, stamps, deadline=time.monotonic() + timeout, proc=proc)
        out, err = proc.communicate(timeout=timeout + 60 + 10 * len(chunks))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rx.join(30)
    if proc.returncode != 0:
        raise SystemExit(f"err-stream failed ({proc.returncode}): {err.strip()}")
    if len(rx.arrivals) != len(chunks):
        raise SystemExit(f"{size}: sent {len(chunks)} frames, received {len(rx.arrivals)} ({rx.error})")
    summary = json.loads(out.strip().splitlines()[-1])
    arrivals = [t for t, _ in rx.arrivals]
    latency = np.array(arrivals) - np.array(stamps)
    span = arrivals[-1] - arrivals[0]
    return {"latency": latency, "fps": (len(arrivals) - 1) / span if span > 0 else float("inf"), "summary": summary}


def publish_flv(url: str, width: int, height: int, frames: int, fps: float, stamps: list[float], deadline: float) -> None:
    """Publish the sender's stream to an RTMP server as FLV at ``fps``, stamping each frame
    (``time.time()``) once its packet has gone out."""
    import av

    while True:
        try:
            c = av.open(url, "w", format="flv", options={"flush_packets": "1"})
            s = _video_stream(c, width, height, fps)
            c.start_encoding()
            break
        except av.error.FFmpegError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with c:
        t0 = time.monotonic()
        for i in range(frames):
            wait = t0 + i / fps - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            for p in s.encode(picture(i, width, height, fps)):
                c.mux(p)
            stamps.append(time.time())
        for p in s.encode(None):
            c.mux(p)


class RtmpPlayer(threading.Thread):
    """A plain PyAV player of an RTMP stream: decodes it as it arrives (the ``nginx direct`` row)."""

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(daemon=True)
        self.url, self.timeout = url, timeout
        self.arrivals: list[tuple[float, int]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        import av

        try:
            with av.open(self.url, "r", options={"probesize": "32768", "analyzeduration": "0"},
                         timeout=(self.timeout, self.timeout)) as c:
                for frame in c.decode(c.streams.video[0]):
                    self.arrivals.append((time.time(), frame.pts))
        except BaseException as e:
            self.error = e


def start_nginx(workdir: Path):
    """nginx-rtmp on 127.0.0.1 (tests/servers.py), with ``play_restart on`` so that a player
    sees the publisher's end; None, saying why, when it cannot run here."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import servers

        return servers.start_nginx_rtmp(workdir, "play_restart on;")
    except BaseException as e:  # ImportError (no pytest), or pytest's skip: nginx or its RTMP module absent
        if isinstance(e, KeyboardInterrupt):
            raise
        print(f"nginx-rtmp rows skipped: {getattr(e, 'msg', None) or e}", file=sys.stderr)
        return None


def measure_nginx(size: str, mode: str, args, workdir: Path) -> dict | None:
    """One latency row through nginx-rtmp at 25 frames/s: ``nginx direct`` (a plain player of
    the sender's stream) or ``nginx passthrough`` (err-stream plays it and publishes its output
    to the same server; the plain player plays that)."""
    w, h = (int(v) for v in size.split("x"))
    fps = 25.0
    frames = min(600, max(args.frames, round(fps * args.seconds)))
    server = start_nginx(workdir / mode.replace(" ", "-"))
    if server is None:
        return None
    url = server.url("bench")
    proc = None
    stamps: list[float] = []
    try:
        deadline = time.monotonic() + args.timeout + 60
        if mode == "nginx direct":
            rx = RtmpPlayer(url, args.timeout)
            rx.start()
        else:
            rx = RtmpPlayer(server.url("restored"), args.timeout)
            rx.start()
            while server.players("restored") == 0:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{mode}: the player never connected")
                time.sleep(0.05)
            cmd = [sys.executable, "-m", "err_stream.cli", url, server.url("restored"), "--max-delay", str(args.max_delay),
                   "--timeout", str(args.timeout), "--quiet", "--json", "--device", args.device, "--passthrough"]
            env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while server.players("bench") == 0:  # the player first: it gets every frame from the first
            if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
                raise SystemExit(f"{mode}: the player never connected ({proc.stderr.read().strip() if proc else ''})")
            time.sleep(0.05)
        publish_flv(url, w, h, frames, fps, stamps, deadline)
        if proc is not None:
            out, err = proc.communicate(timeout=args.timeout + 60)
            if proc.returncode != 0:
                raise SystemExit(f"{mode}: err-stream failed ({proc.returncode}): {err.strip()}")
        rx.join(args.timeout + 30)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        server.stop()
    if len(rx.arrivals) != frames:
        raise SystemExit(f"{size} {mode}: sent {frames} frames, received {len(rx.arrivals)} ({rx.error})")
    latency = np.array([t for t, _ in rx.arrivals]) - np.array(stamps)
    lat = latency[len(latency) // 2 :]  # past the start (probing at both ends), as the other rows
    return {
        "size": size, "mode": mode, "throughput_fps": float("nan"), "paced_fps": fps,
        "median_ms": 1000 * float(np.median(lat)), "p99_ms": 1000 * float(np.percentile(lat, 99)),
        "median_frames": float(np.median(lat)) * fps, "p99_frames": float(np.percentile(lat, 99)) * fps,
        "first_ms": 1000 * float(latency[0]),
    }


def measure(size: str, mode: str, args) -> dict:
    w, h = (int(v) for v in size.split("x"))
    model_args: list[str] | None = ["--device", args.device]
    if mode == "direct":
        model_args = None
    elif mode == "passthrough":
        model_args.append("--passthrough")
    else:
        model_args += ["--weights", str(args.weights), "--accept-out-of-range"]  # seeded weights leave [0, 1]
        if args.precision:
            model_args += ["--precision", args.precision]
    # Throughput: as fast as backpressure allows.
    burst = run_once(encode_chunks(w, h, args.frames, 25), None, model_args, size, args.max_delay, args.timeout)
    # Latency: paced at half that, with matching timestamps (so the stream runs in real time).
    fps = args.rate or round(max(0.1, min(60.0, burst["fps"] / 2)), 2)
    if mode == "direct":
        fps = args.rate or 25
    # At least --seconds of stream, so that fast modes are measured past their start.
    frames = min(600, max(args.frames, round(fps * args.seconds)))
    paced = run_once(encode_chunks(w, h, frames, fps), fps, model_args, size, args.max_delay, args.timeout)
    # The first frames also wait for the stream to be probed (at both ends); at half the
    # throughput that backlog is gone after as many frames again: keep the second half.
    lat = paced["latency"][len(paced["latency"]) // 2 :]
    return {
        "size": size, "mode": mode, "throughput_fps": burst["fps"], "paced_fps": fps,
        "median_ms": 1000 * float(np.median(lat)), "p99_ms": 1000 * float(np.percentile(lat, 99)),
        "median_frames": float(np.median(lat)) * fps, "p99_frames": float(np.percentile(lat, 99)) * fps,
        "first_ms": 1000 * float(paced["latency"][0]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=None, help="WxH (default: 640x360 on CPU, 1920x1080 3840x2160 on CUDA)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", choices=["fp32", "fp16", "bf16"])
    ap.add_argument("--weights", type=Path, help="an ERR checkpoint (default: seeded random weights)")
    ap.add_argument("--frames", type=int, default=16, help="frames per phase (latency statistics use the second half)")
    ap.add_argument("--seconds", type=float, default=4.0, help="the latency phase streams at least this long (or --frames)")
    ap.add_argument("--max-delay", type=int, default=4)
    ap.add_argument("--rate", type=float, help="pace the latency phase at this many frames/s (default: half the throughput)")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--no-nginx", action="store_true", help="leave out the rows through nginx-rtmp")
    args = ap.parse_args()
    sizes = args.sizes or (["640x360"] if args.device == "cpu" else ["1920x1080", "3840x2160"])
    tmp = tempfile.TemporaryDirectory()
    if args.weights is None:
        import torch

        sys.path.insert(0, str(ROOT))
        from err_stream.model import ERR

        torch.manual_seed(0)
        args.weights = Path(tmp.name) / "seeded.pth"
        torch.save(ERR().state_dict(), args.weights)
    rows = []
    for size in sizes:
        direct = measure(size, "direct", args)
        base = measure(size, "passthrough", args)
        model = measure(size, "model", args)
        base["added_median_ms"] = base["median_ms"] - direct["median_ms"]
        base["added_p99_ms"] = base["p99_ms"] - direct["p99_ms"]
        model["added_median_ms"] = model["median_ms"] - base["median_ms"]
        model["added_p99_ms"] = model["p99_ms"] - base["p99_ms"]
        model["throughput_vs_passthrough"] = model["throughput_fps"] / base["throughput_fps"]
        rows += [direct, base, model]
        if not args.no_nginx:
            relay = measure_nginx(size, "nginx direct", args, Path(tmp.name))
            through = relay and measure_nginx(size, "nginx passthrough", args, Path(tmp.name))
            if through:
                through["added_median_ms"] = through["median_ms"] - relay["median_ms"]
                through["added_p99_ms"] = through["p99_ms"] - relay["p99_ms"]
                rows += [relay, through]
    print(f"device {args.device}, --max-delay {args.max_delay}, {args.frames} frames per phase; latency = sender -> receiver, "
          "both on 127.0.0.1")
    print("| size | mode | throughput fps | paced at fps | latency median ms | p99 ms | median frames | p99 frames | added over the row above (median / p99 ms) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        added = f"{r['added_median_ms']:.0f} / {r['added_p99_ms']:.0f}" if "added_median_ms" in r else "baseline"
        tput = "-" if r["throughput_fps"] != r["throughput_fps"] else f"{r['throughput_fps']:.2f}"  # nan: not measured
        print(f"| {r['size']} | {r['mode']} | {tput} | {r['paced_fps']:g} | {r['median_ms']:.0f} | {r['p99_ms']:.0f} | "
              f"{r['median_frames']:.2f} | {r['p99_frames']:.2f} | {added} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
