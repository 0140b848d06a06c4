"""Streams, not only files: pipes (``-``), live TCP/UDP inputs and outputs on loopback, a
sender killed mid-stream, a stalled input, a receiver that hangs up, bounded latency.

A sender process (tests/streams.py) streams losslessly coded MPEG-TS in real time; the
restored output is checked frame by frame (pictures and timestamps) against what was sent.
Everything uses 127.0.0.1 and ports the kernel picks; every wait is bounded.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from err_stream import cli

try:
    import clips
    import streams
    from golden import GOLDEN_CKPT as GOLDEN
except ImportError:  # tests/ imported as a package
    from tests import clips, streams
    from tests.golden import GOLDEN_CKPT as GOLDEN

ROOT = Path(__file__).resolve().parents[1]
# The golden checkpoint's seeded weights give values outside [0, 1]: clamp them, as asked.
MODEL = ["--weights", str(GOLDEN), "--device", "cpu", "--accept-out-of-range"]
W, H, FPS = 64, 48, 25


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Frames here are tiny: one thread restores them fastest (on a busy machine, many
    times faster than a thread pool that waits on its slowest member)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def decode(data_or_path):
    src = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else str(data_or_path)
    with av.open(src) as c:
        vs = c.streams.video[0]
        frames, times = [], []
        for f in c.decode(vs):
            frames.append(clips.frame_planes(f))
            times.append(float(f.pts * vs.time_base))
        return frames, times


def assert_sent_frames(frames, times, first: int = 0):
    """Frames ``first, first+1, ...`` of the sender, exactly, one 1/FPS apart."""
    for k, (got, t) in enumerate(zip(frames, times)):
        want = clips.yuv_planes(first + k, W, H)
        assert all(np.array_equal(a, b) for a, b in zip(got, want)), f"frame {first + k} differs"
        assert abs((t - times[0]) - k / FPS) < 0.0011, f"frame {first + k} at {t - times[0]:.4f} s, sent at {k / FPS:.4f} s"


def run_in_thread(args: list) -> dict:
    """cli.main in a thread (so the test can feed it); returns a dict filled when it ends."""
    box: dict = {}

    def body():
        box["code"] = cli.main([str(a) for a in args])

    box["thread"] = threading.Thread(target=body, daemon=True)
    box["thread"].start()
    return box


def finish(box: dict, timeout: float = 300.0) -> int:
    box["thread"].join(timeout)
    assert not box["thread"].is_alive(), "err-stream did not finish in time"
    return box["code"]


# ----------------------------------------------------------------------------- live TCP/UDP
def test_tcp_listen_into_a_file_keeps_what_arrived_when_the_sender_is_killed(tmp_path, capsys):
    port = streams.free_port()
    out = tmp_path / "live.mkv"
    sender = subprocess.Popen(streams.sender_command(f"tcp://127.0.0.1:{port}", frames=60, fps=FPS, kill_after=14),
                              env=streams.child_env())
    try:
        code = cli.main([f"tcp://127.0.0.1:{port}?listen", str(out), "--passthrough", "--codec", "ffv1",
                         "--timeout", "30", "--json", "--quiet"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert sender.wait(30) == -9  # it really died mid-stream
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(30)
    summary = json.loads(captured.out)
    assert summary["ended"] == "end" and summary["frames"] == 15 and summary["max_delay"] == 8
    frames, times = decode(out)  # a complete file: its trailer was written
    assert len(frames) == 15
    assert_sent_frames(frames, times)
    assert {p.name for p in tmp_path.iterdir()} == {"live.mkv"}


def test_udp_in_restored_into_a_tcp_listener_and_a_stall_is_exit_2(tmp_path, capsys):
    """The model runs on a live UDP stream and sends it on to a TCP receiver; the sender
    stops (UDP has no end), so after --timeout the run finishes the output and exits 2. The
    stream's frames are the ones a file run restores, exactly (lossless coding both ways)."""
    n = 6
    lossless = ["--codec", "libx264", "--crf", "0"]  # crf 0: lossless 8-bit x264
    # The same frames from a file, restored the ordinary way: the reference.
    ref_in = tmp_path / "ref.mkv"
    with av.open(str(ref_in), "w") as c:
        s = c.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.codec_context.options = {"qp": "0", "bf": "0"}
        for i in range(n):
            f = clips.fill(av.VideoFrame(W, H, "yuv420p"), clips.yuv_planes(i, W, H))
            f.pts, f.time_base = i, Fraction(1, FPS)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    assert cli.main([str(ref_in), str(tmp_path / "ref_out.mkv"), *MODEL, *lossless, "--quiet"]) == 0
    want, _ = decode(tmp_path / "ref_out.mkv")

    receiver = streams.Receiver(tmp_path / "received.ts")
    port = streams.free_port(streams.socket.SOCK_DGRAM)
    # The sender starts first and sends once err-stream has bound its port: --timeout also
    # bounds the wait for the first datagram.
    sender = subprocess.Popen(streams.sender_command(f"udp://127.0.0.1:{port}", frames=n, fps=FPS, connect_timeout=120),
                              env=streams.child_env())
    try:
        box = run_in_thread([f"udp://127.0.0.1:{port}", receiver.url, *MODEL, *lossless,
                             "--timeout", "1.5", "--max-delay", "3", "--json", "--quiet"])
        assert sender.wait(150) == 0
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(30)
    code = finish(box)
    captured = capsys.readouterr()
    assert code == 2, captured.err
    receiver.join()
    assert f"nothing arrived for 1.5 s (--timeout); the {n} frames received" in captured.err
    assert "were restored and written to tcp://127.0.0.1" in captured.err
    summary = json.loads(captured.out)
    assert summary["ended"] == "stalled" and summary["frames"] == n
    assert summary["max_delay"] == 3 and 1 <= summary["peak_in_flight"] <= 3
    got, times = decode(tmp_path / "received.ts")
    assert len(got) == n
    for i, (a, b) in enumerate(zip(got, want)):
        assert all(np.array_equal(x, y) for x, y in zip(a, b)), f"frame {i} differs from the file run"
    assert all(abs((t - times[0]) - k / FPS) < 0.0011 for k, t in enumerate(times))


def test_a_listener_nobody_sends_to_times_out(tmp_path, capsys):
    port = streams.free_port()
    t0 = time.monotonic()
    code = cli.main([f"tcp://127.0.0.1:{port}?listen", str(tmp_path / "o.mkv"), "--passthrough", "--timeout", "0.5", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "no stream arrived within --timeout 0.5 s" in err
    assert time.monotonic() - t0 < 15
    assert list(tmp_path.iterdir()) == []


def test_a_receiver_that_hangs_up_is_exit_2_saying_how_much_was_written(tmp_path, capsys):
    src = clips.make_h264_aac(tmp_path / "in.mp4", frames=48, audio=False)
    receiver = streams.Receiver(tmp_path / "part.ts", read_limit=1)
    code = cli.main([str(src), receiver.url, "--passthrough", "--quiet"])
    err = capsys.readouterr().err
    receiver.join()
    assert code == 2, err
    assert f"{receiver.url}: the receiver went away after" in err and "frames were written" in err
    assert len(err.strip().splitlines()) == 1


def test_stream_clock_lag_and_lateness():
    from err_stream.video import StreamClock

    clock = StreamClock(Fraction(1, 1000), max_lag=0.1)
    assert clock.behind(0, now=10.0) == 0.0
    assert clock.behind(40, now=10.02) == pytest.approx(-0.02)  # ahead of real time
    assert clock.behind(40, now=10.20) == pytest.approx(0.16)
    clock.written(40)
    assert clock.stream_seconds == pytest.approx(0.04)
    # Received: the origin is the first frame's arrival, moved back by a frame that comes sooner.
    clock = StreamClock(Fraction(1, 1000), max_lag=0.1)
    clock.start(0, wall=10.0)
    assert not clock.arrived(40, now=10.0)  # 40 ms ahead of the origin's real time: the origin moves 40 ms back
    assert clock.origin == (pytest.approx(9.96), 0) and clock.behind(40, now=10.0) == pytest.approx(0.0)
    assert not clock.arrived(80, now=10.13) and clock.arrived(120, now=10.24)  # 0.09 s behind is not late; 0.16 s is


def test_drop_late_keeps_a_slow_model_within_reach_of_a_live_feed(tmp_path, capsys):
    """At 256x192 the model is slower than 25 frames/s on one CPU thread: with --drop-late
    the run drops what falls behind instead of lagging more and more."""
    port = streams.free_port()
    out = tmp_path / "o.mkv"
    sender = subprocess.Popen(streams.sender_command(f"tcp://127.0.0.1:{port}", frames=30, fps=FPS, size="256x192"),
                              env=streams.child_env())
    try:
        code = cli.main([f"tcp://127.0.0.1:{port}?listen", str(out), *MODEL, "--max-delay", "2",
                         "--drop-late", "--timeout", "30", "--json", "--quiet"])
        captured = capsys.readouterr()
        assert sender.wait(60) == 0
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(30)
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["dropped_late"] > 0 and summary["damaged"] == 0
    assert summary["max_delay"] == 2 and 1 <= summary["peak_in_flight"] <= 2
    assert summary["frames"] + summary["dropped_late"] == summary["arrived"] == 30  # TCP loses nothing: every frame is written or dropped
    assert f"{summary['dropped_late']} dropped late (--drop-late)" in captured.err
    assert len(decode(out)[0]) == summary["frames"]


def test_pictures_that_never_arrived_are_counted_warned_at_once_and_exit_2(tmp_path):
    """A sender leaves frames 10-12 out (its clock jumps over them): the other frames are
    written exactly, the gap is warned about when it comes, counted in --json and the run
    ends with exit 2 (the output is finished and kept)."""
    port = streams.free_port()
    out = tmp_path / "o.mkv"
    sender = subprocess.Popen(streams.sender_command(f"tcp://127.0.0.1:{port}", frames=30, fps=FPS, skip=(10, 3),
                                                     connect_timeout=60), env=streams.child_env())
    try:
        r = subprocess.run([sys.executable, "-m", "err_stream.cli", f"tcp://127.0.0.1:{port}?listen", str(out), "--passthrough",
                            "--codec", "ffv1", "--timeout", "30", "--json", "--quiet"], capture_output=True, text=True,
                           env=streams.child_env(), timeout=120)
        assert sender.wait(60) == 0
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(30)
    assert r.returncode == 2, r.stderr
    summary = json.loads(r.stdout)
    assert summary["missing"] == 3 and summary["frames"] == summary["arrived"] == 27 and summary["ended"] == "end"
    lines = r.stderr.strip().splitlines()
    warned = next(i for i, line in enumerate(lines) if "the stream's clock jumps by 0.160 s before frame 10" in line)
    assert warned < len(lines) - 1  # said when it happened, before the run's end
    assert lines[-1].endswith(f"3 pictures never arrived (see the warnings); the 27 frames received "
                              f"(1.16 s of stream) were restored and written to {out}")
    frames, times = decode(out)
    sent = [i for i in range(30) if not 10 <= i < 13]
    assert len(frames) == 27
    for got, t, i in zip(frames, times, sent):
        assert all(np.array_equal(a, b) for a, b in zip(got, clips.yuv_planes(i, W, H))), f"frame {i}"
        assert abs((t - times[0]) - i / FPS) < 0.0011


def test_the_lag_is_counted_from_the_first_frame_received(tmp_path):
    """Frames that arrive while the run is busy elsewhere (here a front end slow to draw its
    progress bar) wait, and are then written faster than real time: they are behind real time,
    never ahead of it (the clock's origin is the first frame received, not the first written)."""
    from err_stream.video import transcode

    class SlowToStart:
        def __init__(self):
            self.lags = []

        def begin(self, task, total, note=""):
            time.sleep(0.5)  # a dozen frames arrive meanwhile

        def advance(self, n=1):
            pass

        def status(self, text):
            self.lags.append(float(text.split("lag=")[1].split("s")[0]))

        def end(self):
            pass

    port = streams.free_port()
    sender = subprocess.Popen(streams.sender_command(f"tcp://127.0.0.1:{port}", frames=30, fps=FPS, connect_timeout=60),
                              env=streams.child_env())
    progress = SlowToStart()
    try:
        result = transcode(f"tcp://127.0.0.1:{port}?listen", tmp_path / "o.mkv", None, codec="ffv1", timeout=30,
                           progress=progress)
        assert sender.wait(60) == 0
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(30)
    assert result.frames == 30 and len(progress.lags) == 30
    assert min(progress.lags) >= -0.01 and max(progress.lags) >= 0.3, progress.lags


def test_realtime_sends_a_file_at_its_own_rate(tmp_path, capsys):
    """--realtime (FFmpeg's -re): 50 frames of 25 fps take 2 s to go out, not a burst; it
    applies to files only (a stream comes at its own rate)."""
    src = clips.make_h264_aac(tmp_path / "in.mp4", frames=50, fps=FPS, audio=False)
    receiver = streams.Receiver(tmp_path / "out.ts", timeout=60)
    assert cli.main([str(src), receiver.url, "--passthrough", "--realtime", "--quiet"]) == 0
    receiver.join()
    assert len(decode(tmp_path / "out.ts")[0]) == 50
    first, last = receiver.arrivals[0][0], receiver.arrivals[-1][0]
    assert last - first >= 49 / FPS - 0.05, (first, last)
    port = streams.free_port()
    assert cli.main([f"tcp://127.0.0.1:{port}?listen", str(tmp_path / "o.mkv"), "--realtime", "--passthrough"]) == 1
    assert capsys.readouterr().err.strip() == (f"err-stream: error: --realtime: applies to file inputs: "
                                               f"tcp://127.0.0.1:{port}?listen comes at its own rate")


# ----------------------------------------------------------------------------- pipes
def test_a_pipes_audio_is_copied_beside_the_video_in_step(tmp_path):
    """MPEG-TS with AAC on standard input: the one demuxer reads both; the audio is copied
    packet for packet with its own timestamps, which share the video's clock."""
    src = tmp_path / "in.ts"
    streams.send(str(src), 30, FPS, f"{W}x{H}", None, None, 5.0, gop=10, audio=True)
    out = tmp_path / "o.mkv"
    with open(src, "rb") as stdin:
        r = subprocess.run([sys.executable, "-m", "err_stream.cli", "-", str(out), "--input-format", "mpegts", "--passthrough",
                            "--codec", "ffv1", "--json", "--quiet"], stdin=stdin, capture_output=True, text=True,
                           env=streams.child_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    assert "not copied" not in r.stderr

    def packets(path):
        with av.open(str(path)) as c:
            kinds = {s.index: (s.type, s.codec_context.name) for s in c.streams}
            found: dict = {}
            for p in c.demux():
                if p.pts is not None:
                    data = bytes(p)
                    if data[:2] in (b"\xff\xf1", b"\xff\xf9"):  # MPEG-TS carries AAC with ADTS headers, Matroska without
                        data = data[7:]
                    found.setdefault(kinds[p.stream.index], []).append((round(float(p.pts * p.time_base), 3), data))
            return found

    sent, got = packets(src), packets(out)
    assert set(got) == {("video", "ffv1"), ("audio", "aac")}
    assert got[("audio", "aac")] == sent[("audio", "aac")]  # every packet, byte for byte, at its own time
    assert json.loads(r.stdout)["copied_packets"] == len(sent[("audio", "aac")])
    video = [t for t, _ in got[("video", "ffv1")]]
    assert video == [t for t, _ in sent[("video", "h264")]]


def _container_bytes(fmt: str, n: int = 8) -> bytes:
    """n frames as a ``fmt`` stream, coded losslessly (y4m: raw pictures, as vspipe writes them)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as c:
        codec = "wrapped_avframe" if fmt == "yuv4mpegpipe" else "ffv1"
        s = c.add_stream(codec, rate=FPS)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for i in range(n):
            f = clips.fill(av.VideoFrame(W, H, "yuv420p"), clips.yuv_planes(i, W, H))
            f.pts, f.time_base = i, Fraction(1, FPS)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return buf.getvalue()


def test_pipes_in_and_out_nut_matroska_y4m(tmp_path):
    """``producer | err-stream - - --format X | reader`` for three containers at once; the
    reader gets every frame exactly and nothing else (stdout carries only the video)."""
    cases = {"nut": "nut", "matroska": "matroska", "yuv4mpegpipe": "nut"}  # input format -> output format
    procs = {}
    for fmt_in, fmt_out in cases.items():
        src = tmp_path / f"in.{fmt_in}"
        src.write_bytes(_container_bytes(fmt_in))
        codec = ["--codec", "ffv1"]
        cmd = (f"cat {src} | {sys.executable} -m err_stream.cli - - --format {fmt_out} --passthrough "
               f"{' '.join(codec)} --json | cat > {tmp_path / ('out.' + fmt_in)}")
        procs[fmt_in] = subprocess.Popen(["bash", "-o", "pipefail", "-c", cmd], env=streams.child_env(), stderr=subprocess.PIPE)
    for fmt_in, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        summary = json.loads(err.decode().strip().splitlines()[-1])  # --json goes to stderr when stdout is the video
        assert summary["frames"] == 8 and summary["input"] == "-" and summary["output"] == "-"
        frames, times = decode((tmp_path / f"out.{fmt_in}").read_bytes())
        assert len(frames) == 8, fmt_in
        assert_sent_frames(frames, times)


def test_y4m_out_to_stdout(tmp_path, capfdbinary):
    src = tmp_path / "in.nut"
    src.write_bytes(_container_bytes("nut", n=5))
    code = cli.main([str(src), "-", "--format", "yuv4mpegpipe", "--passthrough", "--quiet"])
    out, err = capfdbinary.readouterr()
    assert code == 0, err.decode()
    assert out.startswith(b"YUV4MPEG2 W64 H48 F25:1")
    frames, times = decode(out)
    assert len(frames) == 5
    assert_sent_frames(frames, times)


def test_stdout_needs_a_format(tmp_path, capsys):
    src = tmp_path / "in.nut"
    src.write_bytes(_container_bytes("nut", n=2))
    assert cli.main([str(src), "-", "--passthrough"]) == 1
    assert "name its container with --format" in capsys.readouterr().err


def test_a_second_writer_stops_while_the_first_reads_a_pipe(tmp_path):
    """Two real err-stream processes, one OUT: the first is mid-stream on its standard
    input; the second stops at once naming it; the first then finishes normally."""
    data = _container_bytes("nut", n=8)
    out = tmp_path / "out.mkv"
    src = tmp_path / "in.nut"
    src.write_bytes(data)
    base = [sys.executable, "-m", "err_stream.cli"]
    first = subprocess.Popen([*base, "-", str(out), "--passthrough", "--codec", "ffv1", "--quiet"], env=streams.child_env(),
                             stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first.stdin.write(data[: len(data) // 2])
        first.stdin.flush()
        streams.wait_until(lambda: any(tmp_path.glob(".out.mkv.err-stream-partial.*")) or first.poll() is not None, 60,
                           "the first run to start writing")
        assert first.poll() is None, first.stderr.read().decode()
        second = subprocess.run([*base, str(src), str(out), "--passthrough", "--overwrite"], env=streams.child_env(),
                                capture_output=True, timeout=60)
        assert second.returncode == 1
        assert f"{out} is being written by another err-stream (pid {first.pid})" in second.stderr.decode()
        first.stdin.write(data[len(data) // 2:])
        first.stdin.close()
        assert first.wait(60) == 0, first.stderr.read().decode()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(30)
    frames, times = decode(out)
    assert len(frames) == 8
    assert_sent_frames(frames, times)
    assert {p.name for p in tmp_path.iterdir()} == {"in.nut", "out.mkv"}


def test_ctrl_c_ends_a_recording_and_keeps_what_arrived(tmp_path, capsys):
    """Reading a live stream, Ctrl-C stops the input like a sender that hangs up: the file is
    finished and kept (exit 0); it holds the frames received, exactly. (In this process: the
    SIGINT is sent only once frames flow, so err-stream's handler is in place.)"""
    import os
    import signal

    port = streams.free_port()
    out = tmp_path / "rec.mkv"
    stamps = tmp_path / "sent.txt"
    sender = subprocess.Popen(streams.sender_command(f"tcp://127.0.0.1:{port}", frames=500, fps=FPS, stamps=stamps, connect_timeout=60),
                              env=streams.child_env(), stderr=subprocess.DEVNULL)
    finished = threading.Event()

    def press_ctrl_c():
        t0 = time.monotonic()
        while time.monotonic() - t0 < 90 and not finished.is_set():
            if stamps.exists() and len(stamps.read_text().splitlines()) >= 10:
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    presser = threading.Thread(target=press_ctrl_c, daemon=True)
    presser.start()
    try:
        code = cli.main([f"tcp://127.0.0.1:{port}?listen", str(out), "--passthrough", "--codec", "ffv1", "--json"])
    finally:
        finished.set()
        presser.join(10)
        if sender.poll() is None:
            sender.kill()
        sender.wait(30)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "stopping the input and finishing the output" in captured.err and "the input was stopped with Ctrl-C" in captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["ended"] == "stopped" and summary["frames"] >= 1  # what it had read when stopped (it may lag the sender)
    frames, times = decode(out)
    assert len(frames) == summary["frames"]
    assert_sent_frames(frames, times)
    assert {p.name for p in tmp_path.iterdir()} == {"rec.mkv", "sent.txt"}


def test_endpoints_and_their_containers():
    from err_stream.cli import cli_spelling
    from err_stream.errors import UserError
    from err_stream.io.endpoints import endpoint, input_timeouts, output_format

    assert endpoint("-").kind == "pipe"
    assert endpoint("clip.mp4").kind == "file" and endpoint(Path("-")).kind == "file"  # ./- is a file named '-'
    assert endpoint("file:///tmp/a.mkv").path == Path("/tmp/a.mkv")
    udp, listen, rtmp = endpoint("udp://127.0.0.1:5000"), endpoint("tcp://0.0.0.0:9000?listen"), endpoint("rtmp://host/app/key")
    assert udp.kind == listen.kind == rtmp.kind == "url"
    assert output_format(udp, None) == "mpegts" and output_format(rtmp, None) == "flv"
    assert output_format(endpoint("o.mkv"), "nut") == "nut"
    # The library names the setting; the command line words it as its flag.
    with pytest.raises(UserError) as e:
        output_format(endpoint("-"), None)
    assert "name its container with --format" in e.value.describe(cli_spelling)
    with pytest.raises(UserError) as e:
        output_format(endpoint("-"), "nosuch")
    assert "--format nosuch: FFmpeg has no such container" in e.value.describe(cli_spelling)
    # A listener or UDP port waits for its sender; reads time out after 10 s; --timeout sets both.
    assert input_timeouts(listen, None) == (None, 10.0) and input_timeouts(udp, None) == (None, 10.0)
    assert input_timeouts(rtmp, None) == (10.0, 10.0) and input_timeouts(udp, 2.0) == (2.0, 2.0)
    assert input_timeouts(endpoint("-"), None) == (None, None)
