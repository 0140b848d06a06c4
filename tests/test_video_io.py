"""Broadcast input and output: the command line users know, the pre-flight check of the
output, timecode, TS/M2TS/MXF/AVI, and the metadata of a master (rotation, field order,
chapters, languages, titles, dispositions, creation time). Clips are made like the real
ones with PyAV (tests/broadcast_clips.py); everything runs with --passthrough."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from err_stream import cli
from err_stream.colour import Matrix, Primaries, Range, Transfer

try:
    import broadcast_clips as bc
    import clips
    from procwatch import wait_for_library, wait_for_path
except ImportError:  # tests/ imported as a package
    from tests import broadcast_clips as bc
    from tests import clips
    from tests.procwatch import wait_for_library, wait_for_path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, capsys) -> tuple[int, str]:
    code = cli.main([str(a) for a in args])
    return code, capsys.readouterr().err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("err-stream:")]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("broadcast")
    return {
        "h264": clips.make_h264_aac(d / "h264.mp4", frames=8, fps=24),
        "h264_hd": clips.make_h264_aac(d / "h264_hd.mp4", w=256, h=144, frames=8, fps=24, audio=False),  # DNxHR: >= 256x120
        "timecode": bc.make_prores_with_timecode(d / "camera.mov"),
        "klv": bc.make_h264_with_klv(d / "feed.ts"),
        "master": bc.make_described_master(d / "master.mkv"),
    }


# ----------------------------------------------------------------------------- command line
@pytest.mark.parametrize(
    "argv",
    [
        ["--passthrough", "in.mp4", "out.mkv"],
        ["--codec", "ffv1", "--passthrough", "in.mp4", "out.mkv"],
        ["in.mp4", "--codec", "ffv1", "out.mkv", "--passthrough"],
        ["in.mp4", "out.mkv", "--passthrough", "--codec", "ffv1"],
        ["-v", "--passthrough", "in.mp4", "out.mkv", "--codec=ffv1"],
    ],
)
def test_options_go_before_between_or_after_in_out(argv):
    args = cli.parse_arguments(argv)
    assert args.command == "transcode"
    assert (args.input, args.output, args.passthrough) == ("in.mp4", "out.mkv", True)
    assert args.codec == ("ffv1" if "ffv1" in " ".join(argv) else None)


def test_options_first_transcodes_for_real(media, tmp_path, capsys):
    out = tmp_path / "o.mkv"
    code, err = run_cli("--codec", "ffv1", "--passthrough", "--quiet", media["h264"], out, capsys=capsys)
    assert code == 0, err
    assert len(clips.decode_all(out)[0]) == 8


@pytest.mark.parametrize(
    "argv, says",
    [
        (["in.mp4"], "the following arguments are required: output"),
        (["in.mp4", "out.mp4", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["in.mp4", "out.mp4", "--decoder", "gpu"], "invalid choice: 'gpu'"),
        (["image"], "required"),
    ],
)
def test_usage_errors_are_one_line_and_exit_1(argv, says, capsys):
    code, err = run_cli(*argv, capsys=capsys)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and says in err and "-h" in err


def test_unknown_encoder_option_is_reported_like_ffmpeg(media, tmp_path, capsys):
    out = tmp_path / "o.mp4"
    code, err = run_cli(media["h264"], out, "--passthrough", "--codec", "libx264", "--encoder-opt", "tune=film",
                        "--encoder-opt", "bogus-key=1", capsys=capsys)
    assert code == 1 and "'bogus-key'" in err and "Unrecognized option" in err and "tune" not in err.split("option")[1]
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_full_range_yuvj_input_becomes_yuv_with_the_range_tag(tmp_path, capsys):
    src = tmp_path / "camera.avi"
    planes = [clips.yuv_planes(i, 64, 48, full=True) for i in range(4)]
    with av.open(str(src), "w") as c:
        v = c.add_stream("mjpeg", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuvj420p"
        v.codec_context.options = {"q:v": "1"}
        for i, p in enumerate(planes):
            f = clips.fill(av.VideoFrame(64, 48, "yuvj420p"), p)
            f.pts = i
            for pk in v.encode(f):
                c.mux(pk)
        for pk in v.encode(None):
            c.mux(pk)
    out = tmp_path / "o.mkv"
    code, err = run_cli(src, out, "--codec", "ffv1", "--passthrough", "--quiet", capsys=capsys)
    assert code == 0, err
    got, _, _, first = clips.decode_all(out)
    want = clips.decode_all(src)[0]
    assert first.format.name == "yuv420p" and first.color_range == Range.FULL
    assert max(int(np.abs(a.astype(int) - b.astype(int)).max()) for fa, fb in zip(got, want) for a, b in zip(fa, fb)) == 0


def _start(args, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", "err_stream.cli", *map(str, args)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("moment", ["importing torch", "planning"])
def test_ctrl_c_during_start_up_exits_130_with_one_line(media, tmp_path, moment):
    proc = _start([media["h264"], tmp_path / "o.mp4", "--quiet"], tmp_path)
    if moment == "importing torch":  # its libraries are being mapped
        wait_for_library(proc, "libtorch")
    else:  # the output is locked: probing, the dry run and loading the model follow
        wait_for_path(proc, tmp_path, ".o.mp4.err-stream-lock")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["err-stream: interrupted"]
    assert not (tmp_path / "o.mp4").exists()


# ----------------------------------------------------------------------------- pre-flight, timecode
def timecodes(path: Path) -> dict:
    with av.open(str(path)) as c:
        found = {"container": c.metadata.get("timecode") or c.metadata.get("TIMECODE")}
        for s in c.streams:
            found[f"{s.type}{s.index}"] = s.metadata.get("timecode") or s.metadata.get("TIMECODE")
        return found


@pytest.mark.parametrize("ext", [".mov", ".mp4", ".mkv", ".mxf"])
def test_timecode_is_carried(media, tmp_path, capsys, ext):
    out = tmp_path / f"o{ext}"
    code, err = run_cli(media["timecode"], out, "--passthrough", "--quiet", capsys=capsys)
    assert code == 0, err
    tc = timecodes(out)
    assert "01:00:00:00" in tc.values(), tc
    with av.open(str(out)) as c:
        if ext in (".mov", ".mp4"):  # a new tmcd track, as the input had
            assert [s.type for s in c.streams] == ["video", "data"]
        assert sum(1 for _ in c.decode(video=0)) == 6


def test_a_stream_the_output_refuses_fails_before_the_model_loads(media, tmp_path, capsys):
    out = tmp_path / "o.mp4"
    # The weights do not exist: the output's problem must be found first.
    code, err = run_cli(media["klv"], out, "--weights", tmp_path / "missing.pth", capsys=capsys)
    assert code == 1
    (line,) = error_lines(err)
    assert "stream #1 (data" in line and ".mp4" in line and "--no-data" in line and "klv" in line
    assert list(tmp_path.iterdir()) == []
    code, err = run_cli(media["klv"], out, "--passthrough", "--no-data", "--quiet", capsys=capsys)
    assert code == 0, err
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video"]


def test_data_streams_are_copied_where_the_container_takes_them(media, tmp_path, capsys):
    out = tmp_path / "o.ts"
    code, err = run_cli(media["klv"], out, "--passthrough", "--quiet", capsys=capsys)
    assert code == 0, err
    assert [b for b, _ in clips.packets(out, "data")] == [b for b, _ in clips.packets(media["klv"], "data")]


# ----------------------------------------------------------------------------- broadcast containers
@pytest.mark.parametrize(
    "ext, options, codec",
    [
        (".ts", [], "h264"),
        (".m2ts", [], "h264"),
        (".ts", ["--codec", "libx265"], "hevc"),
        # MXF carries PCM audio only: these inputs have none.
        (".mxf", ["--codec", "mpeg2video", "--pix-fmt", "yuv422p", "--encoder-opt", "b=50M"], "mpeg2video"),  # XDCAM HD422-style
        (".mxf", ["--codec", "prores_ks"], "prores"),
        (".mxf", ["--codec", "dnxhd", "--encoder-opt", "profile=dnxhr_hq", "--pix-fmt", "yuv422p"], "dnxhd"),
    ],
)
def test_broadcast_containers(media, tmp_path, capsys, ext, options, codec):
    out = tmp_path / f"o{ext}"
    code, err = run_cli(media["h264" if ext != ".mxf" else "h264_hd"], out, "--passthrough", "--quiet", *options, capsys=capsys)
    assert code == 0, err
    _, pts, tb, first = clips.decode_all(out)
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == codec
    assert len(pts) == 8
    times = [float((p - pts[0]) * tb) for p in pts]
    assert np.allclose(times, np.arange(8) / 24, atol=1e-3)
    if ext == ".m2ts":
        assert out.stat().st_size % 192 == 0  # Blu-ray's 192-byte packets, not 188


def test_prores_in_ts_is_refused_and_the_default_moves_to_h264(media, tmp_path, capsys, caplog):
    out = tmp_path / "o.ts"
    code, err = run_cli(media["timecode"], out, "--passthrough", "--quiet", "--codec", "prores_ks", capsys=capsys)
    assert code == 1 and "cannot take prores_ks" in err and not out.exists()
    code, err = run_cli(media["timecode"], out, "--passthrough", "--quiet", capsys=capsys)
    said = caplog.text
    assert code == 0 and "using libx264" in said and "timecode 01:00:00:00" in said  # no place for it in TS: said
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "h264"


def test_avi_declares_the_input_rate_and_keeps_frame_times(tmp_path, capsys):
    src = bc._write(tmp_path / "ntsc.mov", "libx264", "yuv420p", frames=12, options={"crf": "0", "preset": "ultrafast"})
    out = tmp_path / "o.avi"
    code, err = run_cli(src, out, "--passthrough", "--quiet", "--codec", "ffv1", capsys=capsys)
    assert code == 0, err
    with av.open(str(out)) as c:
        assert c.streams.video[0].average_rate == Fraction(24000, 1001)
    _, pts, tb, _ = clips.decode_all(out)
    _, pin, tbin, _ = clips.decode_all(src)
    assert np.allclose([float(p * tb) for p in pts], [float((p - pin[0]) * tbin) for p in pin], atol=1e-6)


@pytest.mark.parametrize("ext", [".avi", ".mxf"])
def test_h264_into_containers_without_times_has_no_b_frames_and_keeps_frame_times(tmp_path, capsys, ext):
    """AVI and MXF store no presentation times (a frame's place is its index): H.264 B-frames
    would read back up to three frames out of place, so the encoder makes none there."""
    src = clips.make_h264_aac(tmp_path / "in.mp4", w=128, h=96, frames=24, fps=24, audio=False)
    out = tmp_path / f"o{ext}"
    code, err = run_cli(src, out, "--passthrough", "--quiet", "--codec", "libx264", capsys=capsys)
    assert code == 0, err
    _, pts, tb, _ = clips.decode_all(out)
    _, pin, tbin, _ = clips.decode_all(src)
    assert [round(float((p - pts[0]) * tb), 6) for p in pts] == [round(float((p - pin[0]) * tbin), 6) for p in pin]


# ----------------------------------------------------------------------------- metadata
@pytest.mark.parametrize("ext", [".mkv", ".mov"])
def test_master_metadata_is_kept(media, tmp_path, capsys, ext):
    src, out = media["master"], tmp_path / f"o{ext}"
    code, err = run_cli(src, out, "--passthrough", "--quiet", capsys=capsys)
    assert code == 0, err
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert c.metadata["title"] == "Harbour, take 3"
        assert c.metadata.get("creation_time", c.metadata.get("CREATION_TIME")).startswith("2024-05-06T07:08:09")
        assert "graded" in (c.metadata.get("comment"), c.metadata.get("COMMENT"))
        assert [ch["metadata"]["title"] for ch in c.chapters()] == ["Opening", "Close"]
        assert abs(float(c.chapters()[1]["start"] * c.chapters()[1]["time_base"]) - 3 * 1001 / 24000) < 1e-3
        assert next(c.decode(v)).rotation == 90
        assert v.codec_context.field_order == 2  # top field first
        assert v.metadata["language"] == "fra" and "picture" in (v.metadata.get("title"), v.metadata.get("name"))
        assert a.metadata["language"] == "spa" and "commentary" in (a.metadata.get("title"), a.metadata.get("name"))
        if ext == ".mkv":  # MOV has no flag for it
            assert a.disposition & av.stream.Disposition.comment


# ----------------------------------------------------------------------------- concealed damage
def test_concealed_decoder_errors_fail_the_run_unless_ignored(tmp_path, capsys):
    src = bc.make_ffv1_with_bad_slice(tmp_path / "bad.mkv", damaged_frame=3)
    assert len(clips.decode_all(src)[0]) == 6  # FFmpeg alone returns every frame, no error
    out = tmp_path / "o.mkv"
    code, err = run_cli(src, out, "--passthrough", "--quiet", "--codec", "ffv1", capsys=capsys)
    (line,) = error_lines(err)
    assert code == 1 and "damaged video" in line and "frame 3 (t=0.120 s)" in line and "slice CRC mismatch" in line
    assert "--ignore-errors" in line and not out.exists()
    code = cli.main([str(src), str(out), "--passthrough", "--quiet", "--codec", "ffv1", "--ignore-errors", "--json"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["frames"] == 6 and summary["decode_errors"] == 1


def test_clean_input_counts_no_decode_errors(media, tmp_path, capsys):
    code = cli.main([str(media["h264"]), str(tmp_path / "o.mkv"), "--passthrough", "--quiet", "--json"])
    out = capsys.readouterr().out
    assert code == 0 and json.loads(out)["decode_errors"] == 0


# ----------------------------------------------------------------------------- decoders
def test_auto_never_picks_the_inexact_dali_decoder(media):
    from err_stream.io.endpoints import endpoint
    from err_stream.io.sources import choose_source
    from err_stream.video.options import DecodeOptions

    ep = endpoint(str(media["h264"]))  # 8-bit 4:2:0 H.264: what auto used to hand to DALI on a GPU
    assert choose_source(ep, DecodeOptions(decoder="auto")).name == "pyav"  # on any device
    assert choose_source(ep, DecodeOptions(decoder="dali")).name == "dali"


# ----------------------------------------------------------------------------- alpha
def _alpha_clip(path: Path, codec: str, options: dict) -> Path:
    with av.open(str(path), "w") as c:
        v = c.add_stream(codec, rate=12)
        v.width, v.height, v.pix_fmt = 64, 48, "yuva420p"
        v.codec_context.options = options
        for i in range(4):
            y, cb, cr = clips.yuv_planes(i, 64, 48)
            f = clips.fill(av.VideoFrame(64, 48, "yuva420p"), (y, cb, cr, np.full_like(y, 200)))
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
    return path


@pytest.mark.parametrize("codec, ext, options", [
    ("ffv1", ".mkv", {"level": "3"}),
    ("libvpx-vp9", ".webm", {"deadline": "realtime", "cpu-used": "8", "crf": "10", "b": "0"}),
])
def test_alpha_is_refused_alike_unless_dropped(tmp_path, capsys, caplog, codec, ext, options):
    src = _alpha_clip(tmp_path / f"alpha{ext}", codec, options)
    out = tmp_path / f"o{ext}"
    code, err = run_cli(src, out, "--passthrough", "--quiet", capsys=capsys)
    (line,) = error_lines(err)
    assert code == 1 and "alpha channel" in line and "--drop-alpha" in line and not out.exists()
    code, err = run_cli(src, out, "--passthrough", "--quiet", "--drop-alpha", capsys=capsys)
    assert code == 0, err
    assert "dropping the alpha channel" in caplog.text
    got, _, _, first = clips.decode_all(out)
    assert len(got) == 4 and not first.format.name.startswith("yuva")


# ----------------------------------------------------------------------------- .vpy input
VPY = """
import vapoursynth as vs
import numpy as np
from err_stream.colour.codes import Matrix, Primaries, Transfer, VSColorRange, VSRange
core = vs.core
clip = core.std.BlankClip(format=vs.YUV422P10, width=64, height=48, length=7, fpsnum=24000, fpsden=1001)

def paint(n, f):
    out = f.copy()
    for p in range(3):
        a = np.asarray(out[p])
        a[...] = (np.arange(a.size).reshape(a.shape) * (n + 3 + p)) % 876 + 64
    return out

clip = core.std.ModifyFrame(clip, clip, paint)
limited = {"_Range": VSRange.LIMITED} if vs.__api_version__.api_major >= 4 and hasattr(vs, "RANGE_LIMITED") else {"_ColorRange": VSColorRange.LIMITED}  # R81 renamed it
clip = core.std.SetFrameProps(clip, _Matrix=Matrix.BT2020NC, _Primaries=Primaries.BT2020, _Transfer=Transfer.BT2020_10, **limited)
clip.set_output(0)
core.std.BlankAudio(channels=[0, 1], samplerate=48000, length=14014, sampletype=vs.FLOAT, bits=32).set_output(1)
"""


def test_vpy_script_as_input(tmp_path, capsys):
    pytest.importorskip("vapoursynth")
    script = tmp_path / "grade.vpy"
    script.write_text(VPY)
    out = tmp_path / "o.mkv"
    code, err = run_cli(script, out, "--passthrough", "--quiet", "--codec", "ffv1", capsys=capsys)
    assert code == 0, err
    got, pts, tb, first = clips.decode_all(out)
    assert len(got) == 7 and first.format.name == "yuv422p10le"
    assert (first.colorspace, first.color_range, first.color_primaries, first.color_trc) == (Matrix.BT2020NC, Range.LIMITED, Primaries.BT2020, Transfer.BT2020_10)
    for n, planes in enumerate(got):  # every code value, as the script made it
        for p, a in enumerate(planes):
            want = (np.arange(a.size).reshape(a.shape) * (n + 3 + p)) % 876 + 64
            assert np.array_equal(a, want)
    assert np.allclose([float(p * tb) for p in pts], np.arange(7) * 1001 / 24000, atol=6e-4)
    with av.open(str(out)) as c:
        assert sum(f.samples for f in c.decode(audio=0)) == 14014


@pytest.mark.parametrize("body, says", [
    ("raise ValueError('no source given')", "the script failed: ValueError: no source given"),
    ("import vapoursynth as vs\nvs.core.std.BlankClip(format=vs.RGB24).set_output(0)", "give err-stream integer YUV"),
    ("x = 1", "sets no video output 0"),
])
def test_vpy_script_errors_are_one_line(tmp_path, capsys, body, says):
    pytest.importorskip("vapoursynth")
    script = tmp_path / "bad.vpy"
    script.write_text(body + "\n")
    code, err = run_cli(script, tmp_path / "o.mkv", "--passthrough", capsys=capsys)
    (line,) = error_lines(err)
    assert code == 1 and says in line


def test_avi_from_variable_rate_input_says_frames_moved(tmp_path, capsys, caplog):
    src = tmp_path / "vfr.mkv"
    with av.open(str(src), "w") as c:  # the irregular frame times of clips.VFR_PTS_MS (average 15 fps)
        v = c.add_stream("libx264", rate=15)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.time_base = v.codec_context.time_base = Fraction(1, 1000)
        v.codec_context.options = {"crf": "18", "preset": "ultrafast"}
        for i, t in enumerate(clips.VFR_PTS_MS):
            f = clips.fill(av.VideoFrame(64, 48, "yuv420p"), clips.yuv_planes(i, 64, 48))
            f.pts, f.time_base = t, Fraction(1, 1000)
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
    out = tmp_path / "o.avi"
    code, err = run_cli(src, out, "--passthrough", "--quiet", "--codec", "ffv1", capsys=capsys)
    assert code == 0, err
    assert "frame rate varies" in caplog.text and "moved onto the constant" in caplog.text
    _, pts, tb, _ = clips.decode_all(out)
    assert len(pts) == len(clips.VFR_PTS_MS) and pts == sorted(set(pts))  # every frame, none sharing a slot
    want = np.array(clips.VFR_PTS_MS) / 1000
    assert np.abs(np.array([float(p * tb) for p in pts]) - want).max() <= float(tb)  # within one frame period


@pytest.mark.parametrize("order", [2, 3])  # top field first, bottom field first
@pytest.mark.parametrize("ext, codec", [(".ts", "mpeg2video"), (".mp4", "libx264"), (".mkv", "ffv1")])
def test_field_order_reaches_the_bitstream_and_the_container(tmp_path, capsys, order, ext, codec):
    def interlaced(c, v):
        v.codec_context.field_order = order

    src = bc._write(tmp_path / "fields.mkv", "ffv1", "yuv420p", rate=25, frames=6, setup=interlaced)
    out = tmp_path / f"o{ext}"
    code, err = run_cli(src, out, "--passthrough", "--quiet", "--codec", codec, capsys=capsys)
    assert code == 0, err
    with av.open(str(out)) as c:  # TS and MP4 report the bitstream's order
        assert c.streams.video[0].codec_context.field_order == order


def test_concealed_h264_damage_is_caught_too(tmp_path, capsys):
    import re

    src = clips.make_h264_aac(tmp_path / "h.mkv", w=128, h=96, frames=24, audio=False)
    with av.open(str(src)) as c:
        packet = [bytes(p) for p in c.demux(video=0) if p.size][10]
    data = bytearray(src.read_bytes())
    at = data.find(packet[len(packet) // 2 : len(packet) // 2 + 16])
    for j in range(8):  # garble the middle of frame 10's slice
        data[at + j] ^= 0x5A
    src.write_bytes(bytes(data))
    code, err = run_cli(src, tmp_path / "o.mkv", "--passthrough", "--quiet", "--codec", "ffv1", capsys=capsys)
    (line,) = error_lines(err)
    # FFmpeg's words, or (when its frame threads log a moment after handing out the frame) the
    # decoder's corrupt flag on that frame: either way the damage is named and the run fails.
    assert code == 1 and "damaged video" in line
    # (H.264 logs a garbled slice in several lines, e.g. "mb_skip_run 431 is invalid" then "error
    # while decoding MB 4 2"; a frame thread may log the second after the check that names the first.)
    assert re.search(r"error while decoding MB|mb_skip_run|mb_type|the decoder marked the frame corrupt", line), line
    # No time in H.264's message: the frame is the one being decoded (frame threads may lag a little).
    assert abs(int(re.search(r"at frame (\d+)", line).group(1)) - 10) <= 2


def test_damage_watch_counts_each_damaged_picture_once_wherever_a_check_falls(tmp_path):
    """FFmpeg logs one FFV1 error in two calls (the CRC, then "at T seconds"), from the decoder's
    threads, so a check can fall anywhere among them. Wherever it falls, two damaged pictures
    are two Damages at their own frames, never one and never three."""
    from err_stream.io.damage import DamageWatch

    src = bc.make_ffv1_with_bad_slice(tmp_path / "in.nut", damaged_frame=(10, 11), frames=24)
    with DamageWatch() as watch:  # the records FFmpeg really logs for this clip
        with av.open(str(src)) as c:
            for _ in c.decode(video=0):
                pass
        records = list(watch._logs)
    assert len(records) == 4 and records[1][2].startswith("at 0.4") and not records[0][2].endswith("\n")
    packet_times = [i / 25 for i in range(24)]
    for cuts in [(), (1,), (2,), (3,), (1, 3), (1, 2, 3)]:
        watch = DamageWatch(decoder="ffv1")
        watch._logs, found, last = [], [], 0
        for cut in (*cuts, len(records)):
            watch._logs.extend(records[last:cut])
            found += watch.check(12, packet_times)
            last = cut
        found += watch.finish(12, packet_times)
        assert [d.frame for d in found] == [10, 11], cuts
        assert all("slice CRC mismatch" in d.message for d in found), cuts


def test_an_encoders_unset_decode_times_are_rebuilt_from_presentation_times(caplog):
    """libx265 leaves the first picture's decode time unset in an encode shorter than its
    reordering delay (garbage such as 4860105961587561837), which the muxer refuses: the
    sink rebuilds decode times from the presentation times; sound ones are left alone."""
    from err_stream.io.sink import _valid_decode_times

    def packets(times):
        out = []
        for pts, dts in times:
            p = av.Packet(b"\0")
            p.pts, p.dts = pts, dts
            out.append(p)
        return out

    def dts(ps):
        return [p.dts for p in ps]

    garbage = 4860105961587561837
    assert dts(_valid_decode_times(packets([(0, garbage), (42, -42)]), None)) == [0, 42]
    assert dts(_valid_decode_times(packets([(0, garbage), (84, -42), (42, 0)]), None)) == [-42, 0, 42]
    sound = [(0, -84), (84, -42), (42, 0)]
    assert dts(_valid_decode_times(packets(sound), None)) == [-84, -42, 0]
    assert dts(_valid_decode_times(packets([(126, garbage), (168, 125)]), 84)) == [126, 168]
    assert dts(_valid_decode_times(packets([(126, garbage)]), 200)) == [garbage]  # cannot be repaired: the muxer says so
    assert "rebuilt from their presentation times" in caplog.text


def _raw_h264(w: int, h: int, frames: int) -> bytes:
    """An Annex B H.264 elementary stream (no container, so no timestamps) of flat frames."""
    import io

    buf = io.BytesIO()
    with av.open(buf, "w", format="h264") as c:
        s = c.add_stream("libx264", rate=12)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "bframes": "0"}
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(np.full((h, w, 3), 40 * i, np.uint8), format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return buf.getvalue()


def test_a_picture_that_changes_size_is_refused_from_a_file_and_a_pipe(tmp_path, capsys):
    """Two elementary streams back to back: the decoder switches from 64x48 to 80x48 at frame 3.
    A file and standard input (the two sources that decode with PyAV) refuse it alike, naming
    the frame, and write nothing."""
    src = tmp_path / "changes.h264"
    src.write_bytes(_raw_h264(64, 48, 3) + _raw_h264(80, 48, 3))
    code, err = run_cli(src, tmp_path / "o.mkv", "--passthrough", "--quiet", "--codec", "ffv1", capsys=capsys)
    (line,) = [line for line in error_lines(err) if "error:" in line]  # (beside the untagged matrix's warning)
    assert code == 1 and line.endswith(f"{src}: the picture changes from 64x48 yuv420p to 80x48 yuv420p at frame 3; not supported")
    assert not (tmp_path / "o.mkv").exists()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with src.open("rb") as stdin:
        run = subprocess.run([sys.executable, "-m", "err_stream.cli", "-", str(tmp_path / "p.mkv"), "--input-format", "h264",
                              "--passthrough", "--quiet", "--codec", "ffv1"], stdin=stdin, capture_output=True, text=True,
                             timeout=120, env=env)
    assert run.returncode == 1
    assert "standard input: the picture changes from 64x48 yuv420p to 80x48 yuv420p at frame 3; not supported" in run.stderr
    assert not (tmp_path / "p.mkv").exists()


def test_ffmpeg_log_level_comes_back_whatever_order_its_users_leave_in(tmp_path, capsys):
    """PyAV's level is one per process: a damage watch that begins during a dry run and ends
    after it must not put the dry run's level back (FFmpeg's threads would go on calling into
    Python, where a decoder's teardown holding the GIL waits on them: a deadlock)."""
    from err_stream.io.damage import DamageWatch
    from err_stream.io.ffmpeg_log import ffmpeg_log_level

    before = av.logging.get_level()
    dry_run = ffmpeg_log_level(av.logging.ERROR)
    dry_run.__enter__()
    live = DamageWatch(level=av.logging.WARNING).__enter__()
    assert av.logging.get_level() == av.logging.WARNING and not av.logging.get_skip_repeated()
    dry_run.__exit__(None, None, None)  # the first in leaves first
    assert av.logging.get_level() == av.logging.WARNING
    live.__exit__(None, None, None)
    assert av.logging.get_level() == before and av.logging.get_skip_repeated()
    # A whole run (dry run, decode with a watch, encode) leaves the level as it found it.
    src = clips.make_h264_aac(tmp_path / "in.mp4", frames=6, audio=False)
    code, err = run_cli(src, tmp_path / "o.mkv", "--passthrough", "--quiet", "--codec", "ffv1", capsys=capsys)
    assert code == 0, err
    assert av.logging.get_level() == before
