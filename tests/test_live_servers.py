"""Live streams through real servers on 127.0.0.1 (tests/servers.py): nginx-rtmp, Debian's
RTSP relay (UDP only), srt-live-transmit; and the checks at the edges that need no server:
FFmpeg's input options, protocols this FFmpeg lacks, live outputs' keyframe interval.

Senders are tests/streams.py processes: 320x240 25 fps lossless H.264 (x264 qp 0), so the
frames that come out of a passthrough run are compared with what was sent, exactly. Every
process is bounded in time; servers skip the test when their Debian package is absent.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np
import pytest

from err_stream import cli

try:
    import broadcast_clips as bc
    import clips
    import servers
    import streams
    from golden import GOLDEN_CKPT as GOLDEN
    from servers import nginx_rtmp, rtsp_relay  # noqa: F401 (fixtures)
except ImportError:  # tests/ imported as a package
    from tests import broadcast_clips as bc
    from tests import clips, servers, streams
    from tests.golden import GOLDEN_CKPT as GOLDEN
    from tests.servers import nginx_rtmp, rtsp_relay  # noqa: F401

W, H, FPS = 320, 240, 25
SIZE = f"{W}x{H}"
LOSSLESS = ["--passthrough", "--codec", "ffv1"]
# A model slower than a 25 fps feed at 160x120 on one thread (the golden checkpoint's seeded
# weights leave [0, 1]: clamped, as asked).
MODEL = ["--weights", GOLDEN, "--device", "cpu", "--accept-out-of-range"]


def decode(path):
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        frames, times, keys = [], [], []
        for f in c.decode(vs):
            frames.append(clips.frame_planes(f))
            times.append(float(f.pts * vs.time_base))
            keys.append(f.key_frame)
        return frames, times, keys


def assert_sent(frames, times, first: int = 0, size: tuple[int, int] = (W, H)) -> None:
    """Frames ``first, first+1, ...`` of the sender, exactly, one 1/FPS apart."""
    for k, (got, t) in enumerate(zip(frames, times)):
        want = clips.yuv_planes(first + k, *size)
        assert all(np.array_equal(a, b) for a, b in zip(got, want)), f"frame {first + k} differs"
        assert abs((t - times[0]) - k / FPS) < 0.0011, f"frame {first + k} at {t - times[0]:.4f} s"


def err_stream(*args, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "err_stream.cli", *map(str, args)], env={**streams.child_env(), **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=30)
        raise AssertionError(f"err-stream did not finish in {timeout} s:\n{err[-3000:]}")
    return proc.returncode, out, err


def send(url: str, frames: int, size: str = SIZE, **kw) -> subprocess.Popen:
    return subprocess.Popen(streams.sender_command(url, frames=frames, fps=FPS, size=size, **kw), env=streams.child_env(),
                            stderr=subprocess.PIPE)


def sender_done(sender: subprocess.Popen) -> int:
    """The sender's exit status, once it finished (bounded); its error output if it failed."""
    code = sender.wait(60)
    assert code == 0, sender.stderr.read().decode(errors="replace")[-2000:]
    return code


def stop(*procs: subprocess.Popen) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(30)


# ----------------------------------------------------------------------------- at the edges, no server
def test_input_options_are_checked_against_ffmpeg():
    from err_stream.errors import SettingError
    from err_stream.io.input_options import check_input_options

    ok = check_input_options("rtsp://127.0.0.1/cam", ["rtsp_transport=udp", "timeout=5000000", "probesize=4096", "rw_timeout=1"])
    assert ok == {"rtsp_transport": "udp", "timeout": "5000000", "probesize": "4096", "rw_timeout": "1"}
    assert check_input_options("udp://127.0.0.1:5000", ["buffer_size=65536", "fifo_size=10"]) == {"buffer_size": "65536", "fifo_size": "10"}
    assert check_input_options("rtmp://127.0.0.1/live/k", ["rtmp_buffer=100"]) == {"rtmp_buffer": "100"}
    assert check_input_options("pipe:0", ["probesize=100"], "nut") == {"probesize": "100"}
    refused = {
        ("rtsp://127.0.0.1/cam", "rtsp_transprot=udp"): "FFmpeg has no input option 'rtsp_transprot' here",
        ("udp://127.0.0.1:5000", "rtsp_transport=udp"): "FFmpeg has no input option 'rtsp_transport' here",
        ("rtsp://127.0.0.1/cam", "rtsp_transport=carrier-pigeon"): "FFmpeg refuses this value for the rtsp demuxer's 'rtsp_transport'",
        ("udp://127.0.0.1:5000", "buffer_size=lots"): "FFmpeg refuses this value for the udp protocol's 'buffer_size'",
        ("udp://127.0.0.1:5000", "buffer_size"): "expected KEY=VALUE",
    }
    for (url, item), why in refused.items():
        with pytest.raises(SettingError, match=why) as e:
            check_input_options(url, [item])
        assert e.value.option == "input_opt" and e.value.value == item


def test_a_bad_input_option_is_refused_before_anything_starts(tmp_path, capsys):
    port = streams.free_port()
    t0 = time.monotonic()
    code = cli.main([f"tcp://127.0.0.1:{port}?listen", str(tmp_path / "o.mkv"), "--input-opt", "listen_timout=5",
                     "--weights", "/nonexistent.pth"])  # the weights are never looked at
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.strip() == ("err-stream: error: --input-opt listen_timout=5: FFmpeg has no input option 'listen_timout' "
                           "here (demuxing context, I/O layer, tcp protocol, demuxers)")
    assert time.monotonic() - t0 < 10 and list(tmp_path.iterdir()) == []
    src = clips.make_h264_aac(tmp_path / "in.mp4", frames=2, audio=False)
    assert cli.main([str(src), str(tmp_path / "o.mkv"), "--input-opt", "probesize=32", "--weights", "/nonexistent.pth"]) == 1
    assert capsys.readouterr().err.strip() == ("err-stream: error: --input-opt probesize=32: input options apply to pipes "
                                               "and URLs (a file is opened as it is)")


def test_srt_is_refused_at_once_in_one_line(tmp_path, capsys):
    from err_stream.io.input_options import has_protocol

    if has_protocol("srt"):
        pytest.skip("this PyAV's FFmpeg has SRT: srt:// is read and written by FFmpeg itself")
    src = clips.make_h264_aac(tmp_path / "in.mp4", frames=4, audio=False)
    for args in (["srt://127.0.0.1:9000?mode=listener&latency=1000", str(tmp_path / "o.mkv")], [str(src), "srt://127.0.0.1:9000"]):
        code = cli.main([*args, "--passthrough"])
        err = capsys.readouterr().err
        assert code == 1
        assert len(err.strip().splitlines()) == 1, err
        assert "this FFmpeg (PyAV's build) has no srt:// protocol; bridge it with srt-live-transmit" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_live_outputs_have_a_keyframe_a_second_unless_told(tmp_path):
    """A player that joins a live output late decodes from the next keyframe: one a second
    (the encoders' default is 250 frames); the user's g= wins."""
    src = clips.make_h264_aac(tmp_path / "in.mp4", frames=60, fps=FPS, audio=False)
    for extra in ([], ["--encoder-opt", "g=50"]):
        receiver = streams.Receiver(tmp_path / "out.ts", timeout=60)
        assert cli.main([str(src), receiver.url, "--passthrough", "--codec", "libx264", "--quiet", *extra]) == 0
        receiver.join()
        _, _, flags = decode(tmp_path / "out.ts")
        assert len(flags) == 60
        keys = [i for i, k in enumerate(flags) if k]
        if not extra:  # x264 may add one at a scene cut, never fewer
            assert {0, 25, 50} <= set(keys) and max(b - a for a, b in zip(keys, keys[1:] + [60])) <= FPS, keys
        else:
            assert {0, 50} <= set(keys) and 25 not in keys, keys


# ----------------------------------------------------------------------------- through each real server
@dataclass
class Route:
    """A real server between the sender and err-stream. ``publish``: where the sender sends;
    ``play``: what err-stream reads; ``tells_end``: the sender's end reaches err-stream (else
    the run ends as a stall after --timeout: exit 2, as the README says); ``joined(proc)``:
    err-stream (``proc``) is reading; ``published(sender)``: the publisher is set up (a relay
    that refuses a player before its publisher); ``audio``: the route carries the sender's AAC;
    ``lossy``: the route may lose data on a busy machine (RTP over UDP through a Perl relay
    forwarding ~65 datagrams a picture): what it loses must be counted, never written
    concealed."""

    name: str
    publish: str
    play: str
    tells_end: bool
    joined: Callable[[subprocess.Popen], bool]
    published: Callable[[subprocess.Popen], bool] | None = None
    audio: bool = False
    lossy: bool = False


ROUTES = ("nginx-rtmp", "rtsp-server-perl", "srt-live-transmit")


@contextlib.contextmanager
def route(kind: str, tmp_path):
    """The servers of one route, stopped (bounded) when the test is done."""
    started = []
    try:
        if kind == "nginx-rtmp":  # play_restart on: nginx tells its players when the publisher leaves
            nginx = servers.start_nginx_rtmp(tmp_path / "nginx", "play_restart on;")
            started.append(nginx)
            yield Route(kind, nginx.url(), nginx.url(), True, lambda proc: nginx.players() > 0, audio=True)
        elif kind == "rtsp-server-perl":  # RTP over UDP; no teardown reaches its players
            relay = servers.start_rtsp_relay(tmp_path / "rtsp")
            started.append(relay)
            # err-stream has joined once the relay took its PLAY (the only player of the route).
            yield Route(kind, relay.publish_url(), relay.play_url(), False, lambda proc: relay.players() > 0,
                        published=lambda sender: streams.has_udp_socket(sender.pid), lossy=True)
        else:  # the srt:// refusal's bridge: UDP -> srt-live-transmit caller -> SRT -> listener -> UDP
            srt, in_port, out_port = (streams.free_port(streams.socket.SOCK_DGRAM) for _ in range(3))
            started.append(servers.start_srt_live_transmit(tmp_path / "srt", f"srt://127.0.0.1:{srt}?mode=listener",
                                                           f"udp://127.0.0.1:{out_port}", name="listener"))
            # rcvbuf: a picture's datagrams come at once (a lossless 320x240 one: ~70), more than
            # the default UDP buffer holds (as the refusal's recipe says)
            started.append(servers.start_srt_live_transmit(tmp_path / "srt", f"udp://127.0.0.1:{in_port}?rcvbuf=8388608",
                                                           f"srt://127.0.0.1:{srt}?mode=caller", name="caller"))
            # SRT carries 1316-byte payloads (7 TS packets); UDP has no end of stream
            yield Route(kind, f"udp://127.0.0.1:{in_port}?pkt_size=1316", f"udp://127.0.0.1:{out_port}", False,
                        lambda proc: streams.udp_port_bound(out_port), audio=True)
    finally:
        for server in reversed(started):
            server.stop()


def through(r: Route, tmp_path, frames: int, *args, size: str = SIZE, kill_after: int | None = None,
            env: dict | None = None, audio: bool = True) -> tuple[int, dict, str, int]:
    """Sender -> server -> err-stream with ``args``: the sender connects and waits until
    err-stream has joined, so every frame is sent to it; with the route's audio unless ``audio``
    is False. Returns err-stream's exit code, its --json summary, its error output, and the
    sender's exit code."""
    go = tmp_path / "go"
    sender = send(r.publish, frames, size=size, kill_after=kill_after, audio=r.audio and audio, start_file=go, connect_timeout=90)
    proc = None
    try:
        if r.published is not None:
            streams.wait_until(lambda: r.published(sender) or sender.poll() is not None, 60, f"the publisher on {r.name}")
        proc = err_stream(r.play, *args, "--json", "--quiet", env=env)
        streams.wait_until(lambda: r.joined(proc) or proc.poll() is not None, 90, f"err-stream to join {r.name}")
        go.touch()
        code, stdout, err = finish(proc)
        sent = sender.wait(90)
    finally:
        stop(*[p for p in (sender, proc) if p is not None])
    if kill_after is None:
        assert sent == 0, sender.stderr.read().decode(errors="replace")[-2000:]
    return code, json.loads(stdout) if stdout.strip() else {}, err, sent


def assert_ended(r: Route, code: int, summary: dict, err: str, timeout: float = 2) -> None:
    """The run ended as the README says for this route: the end told (exit 0, unless pictures
    were lost on the way: then exit 2 saying so), or a stall after --timeout (exit 2) whose
    message says every frame received was written."""
    if r.tells_end:
        assert summary["ended"] == "end", err
        assert code == (2 if summary["damaged"] or summary["missing"] else 0), err
    else:
        assert code == 2 and summary["ended"] == "stalled", err
        assert f"nothing arrived for {timeout:g} s (--timeout); the {summary['frames']} frames received" in err, err


def assert_accounted(r: Route, summary: dict, err: str, sent: int) -> None:
    """Every picture sent is written, or (on a lossy route only) counted as damaged or missing;
    except that rtsp-server-perl drops the datagrams still in flight when its publisher tears
    down (measured: a publisher that waits 1.5 s before its TEARDOWN gets every picture
    through), so the last picture may never arrive, and nothing after it can tell."""
    assert summary["frames"] == summary["arrived"], err
    if r.lossy:
        assert sent - 1 <= summary["frames"] + summary["damaged"] + summary["missing"] <= sent, err
        assert summary["frames"] >= sent // 2, err  # losses, not a broken route
    else:
        assert summary["frames"] == sent and summary["damaged"] == summary["missing"] == 0, err


def assert_sent_with_gaps(frames, times, sent: int) -> None:
    """Each picture written is the one the sender sent at that time, exactly (pictures a lossy
    route lost leave gaps in time, never wrong pictures)."""
    first = next(i for i in range(sent) if np.array_equal(frames[0][0], clips.yuv_planes(i, W, H)[0]))
    for got, t in zip(frames, times):
        i = first + round((t - times[0]) * FPS)
        assert abs((t - times[0]) - (i - first) / FPS) < 0.0011, f"picture at {t - times[0]:.4f} s is off the sender's clock"
        assert all(np.array_equal(a, b) for a, b in zip(got, clips.yuv_planes(i, W, H))), f"frame {i} differs"


def assert_audio_in_step(path, video_times) -> None:
    """The sender's AAC tone was copied: it covers the video's span, its packets one AAC frame
    apart, starting and ending with the video within one AAC frame (and FLV's 1 ms clock)."""
    aac = 1024 / streams.AUDIO_RATE
    with av.open(str(path)) as c:
        assert [s.codec_context.name for s in c.streams.audio] == ["aac"]
        a = c.streams.audio[0]
        times = [float(p.pts * a.time_base) for p in c.demux(a) if p.pts is not None]
    steps = np.diff(times)
    assert np.all(np.abs(steps - aac) < 0.0015), steps
    assert abs(times[0] - video_times[0]) <= aac + 0.0015, (times[0], video_times[0])
    assert abs(times[-1] - video_times[-1]) <= 1 / FPS + aac + 0.0015, (times[-1], video_times[-1])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ROUTES)
def test_a_sender_that_finishes_gives_every_frame(kind, tmp_path):
    """Every frame the sender sent, exactly, at its own time, with its audio in step where the
    route carries it; exit 0 where the server tells the end (nginx-rtmp with play_restart),
    else exit 2 once nothing arrived for --timeout."""
    n = 50
    out = tmp_path / "o.mkv"
    with route(kind, tmp_path) as r:
        code, summary, err, _ = through(r, tmp_path, n, out, *LOSSLESS, "--timeout", "2")
    assert_ended(r, code, summary, err)
    assert_accounted(r, summary, err, n)
    frames, times, _ = decode(out)
    assert len(frames) == summary["frames"]
    assert_sent_with_gaps(frames, times, n)
    if r.audio:
        assert_audio_in_step(out, times)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ROUTES)
def test_a_sender_that_is_killed_leaves_the_frames_received_in_a_playable_file(kind, tmp_path):
    """The sender dies (SIGKILL) after frame 24: the 25 frames it sent are in a finished,
    playable file; the exit code is the README's (0 where the server tells the end, else 2).
    (Video only: a sender's muxer holds the last video packets back until the audio catches up,
    so with audio a killed sender has sent fewer.)"""
    out = tmp_path / "o.mkv"
    with route(kind, tmp_path) as r:
        code, summary, err, sent = through(r, tmp_path, 100, out, *LOSSLESS, "--timeout", "2", kill_after=24, audio=False)
    assert sent == -9  # it really died mid-stream
    assert_ended(r, code, summary, err)
    assert_accounted(r, summary, err, 25)
    frames, times, _ = decode(out)  # a complete file: its trailer was written
    assert len(frames) == summary["frames"]
    assert_sent_with_gaps(frames, times, 25)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ROUTES)
def test_a_model_slower_than_the_feed_writes_every_frame(kind, tmp_path):
    """The golden model on one thread restores 160x120 frames at about half the feed's 25
    frames/s, so frames pile up behind it (its --max-delay 8 frames in flight are always full):
    a relay drops what a slow player does not take, but err-stream reads a network input
    whatever the model's speed, so every frame is restored and written, at its own time."""
    n, size = 50, "160x120"
    out = tmp_path / "o.mkv"
    with route(kind, tmp_path) as r:
        code, summary, err, _ = through(r, tmp_path, n, out, *MODEL, "--codec", "ffv1", "--timeout", "3", size=size,
                                        env={"OMP_NUM_THREADS": "1"})
    assert_ended(r, code, summary, err, timeout=3)
    assert_accounted(r, summary, err, n)
    assert summary["peak_in_flight"] == summary["max_delay"] == 8  # the model was the bottleneck
    with av.open(str(out)) as c:
        times = [float(f.pts * c.streams.video[0].time_base) for f in c.decode(video=0)]
    steps = np.diff(times) * FPS  # one frame apart, or whole frames where a lossy route lost some (counted)
    assert len(times) == summary["frames"] and np.allclose(steps, np.round(steps), atol=0.03) and steps.min() > 0.5
    if not r.lossy:
        assert np.allclose(steps, 1)


# ----------------------------------------------------------------------------- nginx-rtmp
@pytest.mark.slow
def test_rtmp_relay_with_no_publisher_says_nothing_arrived(nginx_rtmp, tmp_path):
    """FFmpeg's RTMP reports the interrupted wait as 'Input/output error': it is the timeout."""
    proc = err_stream(nginx_rtmp.url(), tmp_path / "o.mkv", "--passthrough", "--timeout", "2")
    code, _, err = finish(proc, 120)
    assert code == 1
    assert err.strip() == f"err-stream: error: {nginx_rtmp.url()}: no stream arrived within --timeout 2 s"
    assert list(p.name for p in tmp_path.iterdir()) == ["nginx"]


@pytest.mark.slow
def test_rtmp_behind_nginx_default_end_is_a_stall_that_keeps_every_frame(nginx_rtmp, tmp_path):
    """nginx-rtmp's default application keeps its players connected when the publisher
    leaves and says nothing FFmpeg reads: the end cannot be told from a stall. The run ends
    after --timeout, exit 2, with every frame received written, and says how to tell."""
    out = tmp_path / "o.mkv"
    proc = err_stream(nginx_rtmp.url(), out, *LOSSLESS, "--timeout", "2", "--quiet")
    sender = None
    try:
        streams.wait_until(lambda: nginx_rtmp.players() > 0 or proc.poll() is not None, 90, "err-stream to connect")
        sender = send(nginx_rtmp.url(), 30)
        code, _, err = finish(proc)
        sender_done(sender)
    finally:
        stop(*[p for p in (sender,) if p is not None])
    assert code == 2, err
    assert "nothing arrived for 2 s (--timeout); an RTMP server that keeps its players connected" in err
    assert "'play_restart on;'" in err and "the 30 frames received (1.16 s of stream) were restored and written" in err
    frames, times, _ = decode(out)
    assert len(frames) == 30
    assert_sent(frames, times)


@pytest.mark.slow
def test_a_run_slower_than_the_feed_through_nginx_writes_every_frame(tmp_path):
    """The consumer is slower than the 25 fps feed (its receiver reads 1 MB/s, about 11
    lossless frames/s), so frames pile up: a relay drops what a slow player does not take
    (nginx-rtmp: silently, closing the gap in its timestamps); err-stream reads a network
    input whatever the model's or receiver's speed, so every frame is written, exactly."""
    server = servers.start_nginx_rtmp(tmp_path / "nginx", "play_restart on;")
    receiver = streams.Receiver(tmp_path / "out.ts", timeout=240, rate=1_000_000)
    sender = None
    try:
        proc = err_stream(server.url(), receiver.url, "--passthrough", "--codec", "libx264", "--crf", "0",
                          "--timeout", "30", "--json", "--quiet")
        streams.wait_until(lambda: server.players() > 0 or proc.poll() is not None, 90, "err-stream to connect")
        sender = send(server.url(), SLOW_FEED, gop=25)
        code, stdout, err = finish(proc)
        sender_done(sender)
        receiver.join(60)
    finally:
        stop(*[p for p in (sender,) if p is not None])
        server.stop()
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["frames"] == SLOW_FEED and summary["ended"] == "end" and summary["damaged"] == 0
    assert summary["fps"] < FPS  # it really was slower than the feed
    frames, times, _ = decode(tmp_path / "out.ts")
    assert len(frames) == SLOW_FEED
    assert_sent(frames, times)


SLOW_FEED = 200


# ----------------------------------------------------------------------------- RTSP relay
SENT = 500  # 20 s: err-stream (a new process: seconds to start) joins while the publisher sends
@pytest.mark.slow
def test_rtsp_transport_can_be_asked_for(rtsp_relay, tmp_path):
    """--input-opt reaches FFmpeg: asking this UDP-only relay for TCP is its 400."""
    stamps = tmp_path / "sent.txt"
    sender = send(rtsp_relay.publish_url(), SENT, stamps=stamps)
    try:
        streams.wait_until(lambda: stamps.exists() and stamps.stat().st_size or sender.poll() is not None, 30, "the publisher")
        code, _, err = finish(err_stream(rtsp_relay.play_url(), tmp_path / "o.mkv", "--passthrough",
                                         "--input-opt", "rtsp_transport=tcp", "--timeout", "3"), 60)
    finally:
        stop(sender)
    assert code == 1
    assert f"cannot open {rtsp_relay.play_url()}: Server returned 400 Bad Request" in err


@pytest.mark.slow
@pytest.mark.parametrize("killed", [False, True], ids=["teardown", "killed"])
def test_rtsp_publisher_end_ends_a_listening_run_with_exit_0(tmp_path, killed):
    """err-stream as the RTSP server (FFmpeg's rtsp_flags=listen, through --input-opt): the
    publisher's TEARDOWN, or its connection closing when it is killed (after frame 24), is
    the end of the stream: exit 0, every frame sent, exactly."""
    port = streams.free_port()
    url = f"rtsp://127.0.0.1:{port}/cam"
    out = tmp_path / "o.mkv"
    # This FFmpeg refuses its own default listen_timeout (-1) when listening ("Numerical
    # result out of range"): give one.
    proc = err_stream(url, out, *LOSSLESS, "--input-opt", "rtsp_flags=listen", "--input-opt", "listen_timeout=60",
                      "--timeout", "60", "--json", "--quiet")
    sender = send(url, 100 if killed else 50, connect_timeout=90, kill_after=24 if killed else None)  # it retries until err-stream listens
    try:
        code, stdout, err = finish(proc)
        if killed:
            assert sender.wait(60) == -9
        else:
            sender_done(sender)
    finally:
        stop(sender, proc)
    assert code == 0, err
    summary = json.loads(stdout)
    n = 25 if killed else 50
    assert summary["ended"] == "end" and summary["frames"] == n and summary["damaged"] == summary["missing"] == 0, err
    frames, times, _ = decode(out)
    assert len(frames) == n
    assert_sent(frames, times)


@pytest.mark.slow
def test_a_player_joining_a_live_output_late_starts_within_2_s(rtsp_relay, tmp_path):
    """err-stream publishes a file at its own rate (--realtime) to an RTSP relay; a player
    that joins 3 s later decodes its first picture within 2 s (a keyframe every second; with
    the encoders' default of 250 frames it would wait until the stream's end)."""
    src = clips.make_h264_aac(tmp_path / "in.mp4", w=160, h=120, frames=200, fps=FPS, audio=False)  # 8 s
    proc = err_stream(src, rtsp_relay.publish_url(), "--passthrough", "--realtime", "--json", "--quiet")
    try:
        streams.wait_until(lambda: streams.has_udp_socket(proc.pid) or proc.poll() is not None, 90, "err-stream to publish")
        time.sleep(3)
        joined = time.monotonic()
        started = None
        with av.open(rtsp_relay.play_url(), options={"probesize": "32768", "analyzeduration": "100000"}, timeout=(10, 5)) as player:
            for frame in player.decode(video=0):
                started = time.monotonic() - joined
                assert frame.key_frame
                break
        code, stdout, err = finish(proc, 60)
    finally:
        stop(proc)
    assert started is not None and started < 2.0, started
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["frames"] == 200 and summary["seconds"] >= 199 / FPS - 0.1  # sent at its own rate


def test_realtime_pacer_holds_frames_to_their_own_clock():
    """FFmpeg's -re: frame t goes no earlier than its time after the first, on a clock the
    test drives; a late frame goes at once and is not made up for."""
    from fractions import Fraction

    from err_stream.io.pacing import RealtimePacer, paced

    now = [100.0]
    slept = []

    def sleep(s):
        slept.append(round(s, 6))
        now[0] += s

    pacer = RealtimePacer(Fraction(1, 1000), clock=lambda: now[0], sleep=sleep)
    out = []
    for pts in paced([0, 40, 80, 120, 400, 440], Fraction(1, 1000), pts=lambda p: p, pacer=pacer):
        out.append((pts, round(now[0], 6)))
        if pts == 80:
            now[0] += 0.2  # the model took long on this one: 120 is late
    assert out == [(0, 100.0), (40, 100.04), (80, 100.08), (120, 100.28), (400, 100.4), (440, 100.44)]
    assert slept == [0.04, 0.04, 0.12, 0.04]


def test_two_damaged_pictures_in_a_row_are_both_dropped(tmp_path):
    """A stream's decoder conceals damage and only logs it, while decoding the packet; the
    picture comes out a call later (the decoder's delay), so the damage is placed by the
    packet's time. Frames 10 and 11 of an FFV1 stream (a CRC per slice) are garbled: both
    are dropped and counted, every other frame is written exactly, and the run ends with
    exit 2 (not every frame of the input is in the output)."""
    n = 24
    src = bc.make_ffv1_with_bad_slice(tmp_path / "in.nut", damaged_frame=(10, 11), frames=n)
    out = tmp_path / "o.mkv"
    with open(src, "rb") as stdin:
        r = subprocess.run([sys.executable, "-m", "err_stream.cli", "-", str(out), "--input-format", "nut", *LOSSLESS,
                            "--json", "--quiet"], stdin=stdin, capture_output=True, text=True, env=streams.child_env(), timeout=120)
    assert r.returncode == 2, r.stderr  # pictures were lost: the output is finished, and the exit code says so
    summary = json.loads(r.stdout)
    assert summary["damaged"] == 2 and summary["frames"] == n - 2, r.stderr
    assert r.stderr.strip().splitlines()[-1] == (f"err-stream: failed: standard input: 2 damaged pictures were dropped; the "
                                                 f"{n - 2} frames received (0.92 s of stream) were restored and written to {out}")
    with av.open(str(out)) as c:
        got = [clips.frame_planes(f) for f in c.decode(video=0)]
    for k, i in enumerate([i for i in range(n) if i not in (10, 11)]):
        assert all(np.array_equal(a, b) for a, b in zip(got[k], clips.yuv_planes(i, 64, 48))), f"frame {i}"
