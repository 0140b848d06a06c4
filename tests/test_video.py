"""The video transcoder end to end, on small clips the tests make with PyAV.

Most runs use ``--passthrough`` with a lossless encoder, which checks decode, colour
conversion, timestamps, stream copying and encode without the (slow on CPU) model; one run
uses the golden checkpoint and compares every frame with a reference computed here.
"""

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
import torch

from err_stream import cli
from err_stream.colour import ColourSpec, Matrix, Range, Transfer
from err_stream.io.source import probe

try:
    import clips
    from golden import GOLDEN_CKPT as GOLDEN
    from procwatch import StderrReader, wait_for_frames, wait_for_path
except ImportError:  # tests/ imported as a package
    from tests import clips
    from tests.golden import GOLDEN_CKPT as GOLDEN
    from tests.procwatch import StderrReader, wait_for_frames, wait_for_path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, capsys=None) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr() if capsys is not None else ("", "")
    return code, out, err


def max_code_diff(a, b) -> int:
    return max(int(np.abs(x.astype(np.int64) - y.astype(np.int64)).max()) for fa, fb in zip(a, b) for x, y in zip(fa, fb))


def seconds(pts, tb) -> list[float]:
    return [round(float(p * tb), 6) for p in pts]


def same_times(pa, tba, pb, tbb) -> bool:
    """Same presentation times; Matroska keeps milliseconds, so allow half of one there."""
    a, b = seconds(pa, tba), seconds(pb, tbb)
    tol = 0.0 if tba == tbb else 0.0005 + 1e-9
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    return {
        "h264": clips.make_h264_aac(d / "h264_aac.mp4"),
        "hevc": clips.make_hevc_pq(d / "hevc_pq.mp4"),
        "vfr": clips.make_vfr_mkv_with_subtitles(d / "vfr_subs.mkv"),
        "prores": clips.make_prores_422_10bit(d / "prores.mov"),
        "vp9": clips.make_vp9_webm(d / "vp9.webm", chroma=0.08),
    }


def test_h264_bt709_with_aac_passthrough_is_lossless(media, tmp_path, capsys):
    src, out = media["h264"], tmp_path / "out.mp4"
    code, stdout, err = run_cli(src, out, "--passthrough", "--codec", "libx264", "--crf", "0", "--json", "--quiet", capsys=capsys)
    assert code == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["frames"] == 12 and summary["decoder"] == "pyav" and summary["device"] == "cpu"
    assert {"frames", "seconds", "fps", "decoder", "device", "precision"} <= set(summary)

    a, pa, tba, fa = clips.decode_all(src)
    b, pb, tbb, fb = clips.decode_all(out)
    assert len(b) == len(a) == 12  # counted by decoding
    assert seconds(pb, tbb) == seconds(pa, tba)
    assert fb.format.name == "yuv420p"
    assert ColourSpec.from_av(fb) == clips.BT709
    assert max_code_diff(a, b) <= 1
    # The audio is copied, not re-encoded: the same packets at the same times.
    audio_in, audio_out = clips.packets(src, "audio"), clips.packets(out, "audio")
    assert len(audio_in) > 10 and audio_out == audio_in
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"


def test_hevc_10bit_bt2020_pq_keeps_depth_tags_and_hdr10_metadata(media, tmp_path, capsys):
    src, out = media["hevc"], tmp_path / "out.mkv"
    code, _, err = run_cli(src, out, "--passthrough", "--encoder-opt", "x265-params=lossless=1", "--quiet", capsys=capsys)
    assert code == 0, err
    a, pa, tba, fa = clips.decode_all(src)
    b, pb, tbb, fb = clips.decode_all(out)
    assert len(b) == len(a)
    assert same_times(pa, tba, pb, tbb)
    assert fb.format.name == "yuv420p10le"
    assert ColourSpec.from_av(fb) == clips.HDR10  # chroma sited top-left, as the master
    assert max_code_diff(a, b) <= 1  # within one 10-bit code value
    info_in, info_out = probe(src), probe(out)
    assert info_out.codec == "hevc"
    assert info_out.hdr is not None and info_out.hdr == info_in.hdr
    assert info_out.hdr.max_cll == clips.HDR_MAX_CLL[0] and info_out.hdr.max_luminance == 1000


def test_vfr_mkv_keeps_every_timestamp_and_the_subtitles(media, tmp_path, capsys):
    src, out = media["vfr"], tmp_path / "out.mkv"
    code, _, err = run_cli(src, out, "--passthrough", "--codec", "ffv1", "--quiet", capsys=capsys)
    assert code == 0, err
    a, _, _, fa = clips.decode_all(src)
    b, pb, tbb, fb = clips.decode_all(out)
    assert [round(float(p * tbb) * 1000) for p in pb] == clips.VFR_PTS_MS
    assert ColourSpec.from_av(fb) == clips.BT601  # BT.601 stays BT.601
    assert max_code_diff(a, b) <= 1
    subs_in, subs_out = clips.packets(src, "subtitle"), clips.packets(out, "subtitle")
    assert len(subs_in) == 2 and subs_out == subs_in
    with av.open(str(out)) as c:
        assert c.streams.subtitles[0].metadata.get("language") == "eng"


def test_prores_422_10bit_mov(media, tmp_path, capsys):
    src = media["prores"]
    # Default codec: the input's family (ProRes), same pixel format.
    out = tmp_path / "out.mov"
    code, stdout, err = run_cli(src, out, "--passthrough", "--json", "--quiet", capsys=capsys)
    assert code == 0, err
    assert json.loads(stdout)["codec"] == "prores_ks"
    a, pa, tba, _ = clips.decode_all(src)
    b, pb, tbb, fb = clips.decode_all(out)
    assert len(b) == len(a) and seconds(pb, tbb) == seconds(pa, tba)
    assert fb.format.name == "yuv422p10le" and (fb.colorspace, fb.color_trc) == (Matrix.BT709, Transfer.BT709)
    assert max_code_diff(a, b) <= 40  # ProRes is lossy, but close (10-bit codes)
    # Lossless: 4:2:2 10-bit through our colour conversion and back, within one code value.
    lossless = tmp_path / "out.mkv"
    code, _, err = run_cli(src, lossless, "--passthrough", "--codec", "ffv1", "--quiet", capsys=capsys)
    assert code == 0, err
    c, _, _, fc = clips.decode_all(lossless)
    assert fc.format.name == "yuv422p10le" and max_code_diff(a, c) <= 1


def test_pix_fmt_option_changes_depth_and_subsampling(media, tmp_path, capsys):
    out = tmp_path / "out.mkv"
    code, _, err = run_cli(media["h264"], out, "--passthrough", "--codec", "ffv1", "--pix-fmt", "yuv444p10le", "--quiet", capsys=capsys)
    assert code == 0, err
    a, _, _, _ = clips.decode_all(media["h264"])
    b, _, _, fb = clips.decode_all(out)
    assert fb.format.name == "yuv444p10le"
    # 8-bit luma x4 is the same level in 10-bit limited range.
    assert np.abs(b[0][0].astype(int) - 4 * a[0][0].astype(int)).max() <= 1


def test_model_restores_every_frame_with_the_streams_colours(tmp_path, capsys):
    """Each output frame equals what the Restorer gives for that input frame, with the
    YCbCr<->RGB conversion done independently here (numpy, BT.709 limited; the chroma
    resampler, checked against zimg in test_video_colour.py, is shared)."""
    from err_stream.colour import chroma
    from err_stream.engine import Restorer
    from err_stream.weights import load_model

    src = clips.make_h264_aac(tmp_path / "in.mp4", frames=3, audio=False, crf=10)
    out = tmp_path / "out.mkv"
    # The golden checkpoint's random weights leave [0, 1] far: accept and clamp (as the
    # reference below does; the guard is tested in test_executor.py).
    code, stdout, err = run_cli(src, out, "--weights", GOLDEN, "--codec", "ffv1", "--json", "--quiet", "--accept-out-of-range", capsys=capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["precision"] == "fp32" and summary["passthrough"] is False and summary["frames"] == 3

    restorer = Restorer(load_model(GOLDEN, device="cpu"), device="cpu", tiling="off")
    kr, kb = 0.2126, 0.0722
    kg = 1 - kr - kb
    left = ("left", "center")  # untagged chroma location: left (the zimg-checked resampler below)
    a, _, _, _ = clips.decode_all(src)
    b, _, _, _ = clips.decode_all(out)
    assert len(b) == 3
    for (y, u, v), got in zip(a, b):
        c_in = torch.from_numpy(np.stack([u, v]).astype(np.float32))
        up = chroma.upsample(c_in, 1, 1, 48, 64, left).double().numpy()
        yv = (y.astype(np.float64) - 16) / 219
        cb, cr = (up[0] - 128) / 224, (up[1] - 128) / 224
        r = yv + 2 * (1 - kr) * cr
        bl = yv + 2 * (1 - kb) * cb
        g = (yv - kr * r - kb * bl) / kg
        rgb = torch.from_numpy(np.stack([r, g, bl])[None].astype(np.float32))
        res = restorer.restore(rgb)[0].clamp(0, 1).double().numpy()
        ry = kr * res[0] + kg * res[1] + kb * res[2]
        want_y = np.rint(16 + 219 * ry)
        c_out = np.stack([128 + 224 * (res[2] - ry) / (2 - 2 * kb), 128 + 224 * (res[0] - ry) / (2 - 2 * kr)])
        # The input's chroma plus the change the model made, downsampled (err_stream.colour.convert).
        want_c = c_in.numpy() + chroma.downsample(torch.from_numpy(c_out - up).float(), 1, 1, left).numpy()
        assert np.abs(got[0].astype(int) - want_y).max() <= 1
        assert np.abs(np.stack(got[1:]).astype(float) - want_c).max() <= 1.0
        assert np.abs(got[0].astype(int) - y.astype(int)).max() > 5  # the model did change the picture


def test_dali_cpu_decoder_on_vp9(media, tmp_path, capsys):
    pytest.importorskip("nvidia.dali", reason="NVIDIA DALI not installed (pip install 'err-stream[dali]')")
    src, out = media["vp9"], tmp_path / "out.mkv"
    code, stdout, err = run_cli(src, out, "--decoder", "dali", "--passthrough", "--codec", "ffv1", "--json", "--quiet", capsys=capsys)
    assert code == 0, err
    assert json.loads(stdout)["decoder"] == "dali"
    a, pa, tba, _ = clips.decode_all(src)
    b, pb, tbb, fb = clips.decode_all(out)
    assert len(b) == len(a) == 10 and same_times(pa, tba, pb, tbb)
    assert (fb.colorspace, fb.color_range) == (Matrix.BT709, Range.LIMITED)
    # DALI upsamples chroma bilinearly, rounds its RGB to 8 bits and clips it (a few noisy
    # pixels leave the gamut): not bit-exact. With its BT.601 assumption left in, luma would
    # be off by ~7 codes on average on this BT.709 clip.
    ya = np.stack([f[0] for f in a]).astype(int)
    yb = np.stack([f[0] for f in b]).astype(int)
    assert np.abs(ya - yb).mean() < 0.1 and np.percentile(np.abs(ya - yb), 99) <= 1
    for k in (1, 2):
        ca = np.stack([f[k] for f in a]).astype(int)
        cb = np.stack([f[k] for f in b]).astype(int)
        assert np.abs(ca - cb).mean() < 1.0 and np.percentile(np.abs(ca - cb), 99) <= 3


def test_dali_cpu_decoder_refuses_h264(media, tmp_path, capsys):
    pytest.importorskip("nvidia.dali")
    code, _, err = run_cli(media["h264"], tmp_path / "o.mp4", "--decoder", "dali", "--passthrough", "--device", "cpu", capsys=capsys)
    assert code == 1 and "VP8, VP9, MJPEG" in err
    assert not (tmp_path / "o.mp4").exists()


# ----------------------------------------------------------------------------- output size
def _lossless_h264(path: Path, w: int, h: int, frames: int = 3, sar: Fraction | None = None, pix_fmt: str = "yuv444p") -> Path:
    """Lossless H.264, 4:4:4 or 4:2:0 (it carries the sample aspect ratio in its bitstream)."""
    tags = clips.BT709
    sub = 1 if pix_fmt == "yuv420p" else 0
    with av.open(str(path), "w") as c:
        v = clips._video_stream(c, "libx264", w, h, pix_fmt, 12, Fraction(1, 12), tags, {"qp": "0", "preset": "ultrafast"})
        if sar is not None:
            v.codec_context.sample_aspect_ratio = sar
        for i in range(frames):
            f = clips.fill(av.VideoFrame(w, h, pix_fmt), clips.yuv_planes(i, w, h, sx=sub, sy=sub, chroma=0.08), tags)
            f.pts = i
            for pk in v.encode(f):
                c.mux(pk)
        for pk in v.encode(None):
            c.mux(pk)
    return path


def test_size_of_the_input_is_no_scaling_at_all(media, tmp_path, capsys):
    plain, same = tmp_path / "plain.mkv", tmp_path / "same.mkv"
    for out, extra in ((plain, []), (same, ["--size", "64x48"])):
        code, _, err = run_cli(media["h264"], out, "--passthrough", "--codec", "ffv1", "--quiet", *extra, capsys=capsys)
        assert code == 0, err
    a, b = clips.decode_all(plain)[0], clips.decode_all(same)[0]
    assert len(a) == len(b) == 12
    assert all(np.array_equal(x, y) for fa, fb in zip(a, b) for x, y in zip(fa, fb))  # colour-exact: no resampling path


def test_size_scales_with_antialiased_bicubic(tmp_path, capsys):
    """Each output plane is PIL's (antialiased) bicubic resize of the input's: resampling the
    R'G'B' frames commutes with the affine YCbCr<->RGB conversion (4:4:4: no chroma siting)."""
    from PIL import Image

    src = _lossless_h264(tmp_path / "in.mkv", 128, 96, sar=Fraction(4, 3))  # anamorphic: pixels 4:3 wide
    assert probe(src).sample_aspect_ratio == Fraction(4, 3)
    for size in ((64, 48), (160, 120), (64, 64)):  # shrink, enlarge, and a new shape
        out = tmp_path / f"o{size[0]}x{size[1]}.mkv"
        code, _, err = run_cli(src, out, "--passthrough", "--codec", "libx264", "--crf", "0", "--quiet", "--size", f"{size[0]}x{size[1]}",
                               capsys=capsys)
        assert code == 0, err
        a, _, _, _ = clips.decode_all(src)
        b, pb, _, fb = clips.decode_all(out)
        assert len(b) == 3 and (fb.width, fb.height) == size and fb.format.name == "yuv444p"
        assert (fb.colorspace, fb.color_range) == (1, 1)
        for fa, fo in zip(a, b):
            for plane, got in zip(fa, fo):
                want = np.asarray(Image.fromarray(plane.astype(np.float32), mode="F").resize(size, Image.BICUBIC))
                assert np.abs(got.astype(np.float64) - np.clip(np.rint(want), 0, 255)).max() <= 1
        with av.open(str(out)) as c:  # the picture keeps its display shape, as with FFmpeg's scale filter
            assert c.streams.video[0].sample_aspect_ratio == Fraction(4, 3) * Fraction(128 * size[1], 96 * size[0])


def test_size_of_subsampled_input_downsamples_its_chroma_afresh(tmp_path, capsys):
    """4:2:0 in, another size out: the output is the colour package's conversion of the
    resized R'G'B' with chroma downsampled from it (the input's chroma, of the input's size,
    cannot take part in the way back)."""
    from err_stream.colour import YCbCrConverter
    from err_stream.colour.planes import PlaneFormat
    from err_stream.video.restore import scale

    src = _lossless_h264(tmp_path / "in.mkv", 64, 48, frames=2, pix_fmt="yuv420p")
    out = tmp_path / "out.mkv"
    code, _, err = run_cli(src, out, "--passthrough", "--codec", "ffv1", "--quiet", "--size", "32x24", capsys=capsys)
    assert code == 0, err
    fmt, conv = PlaneFormat.parse("yuv420p"), YCbCrConverter(Matrix.BT709, False)
    a, _, _, _ = clips.decode_all(src)
    b, _, _, fb = clips.decode_all(out)
    assert len(b) == 2 and (fb.width, fb.height) == (32, 24)
    for fa, fo in zip(a, b):
        planes = [torch.from_numpy(p)[None] for p in fa]
        want = conv.rgb_to_planes(scale(conv.planes_to_rgb(*planes, fmt), 32, 24), fmt)
        assert all(np.array_equal(got, w_[0].numpy()) for got, w_ in zip(fo, want))


def test_size_that_the_chroma_cannot_take_is_refused(media, tmp_path, capsys):
    out = tmp_path / "o.mkv"
    code, _, err = run_cli(media["h264"], out, "--passthrough", "--codec", "ffv1", "--size", "63x48", capsys=capsys)
    line = one_line_error(err)
    assert code == 1 and "--size 63x48" in line and "4:2:0" in line and "multiple of 2" in line and "62x48" in line
    code, _, err = run_cli(media["h264"], out, "--passthrough", "--size", "wide", capsys=capsys)
    assert code == 1 and "--size wide: expected a picture size" in one_line_error(err)
    assert not out.exists()


# ----------------------------------------------------------------------------- errors
def one_line_error(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("err-stream:")]
    assert len(lines) == 1, err
    return lines[0]


def test_missing_file(tmp_path, capsys):
    code, _, err = run_cli(tmp_path / "nope.mp4", tmp_path / "o.mp4", "--passthrough", capsys=capsys)
    assert code == 1 and "no such file" in one_line_error(err)


def test_not_a_video(tmp_path, capsys):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 50)
    code, _, err = run_cli(bad, tmp_path / "o.mp4", "--passthrough", capsys=capsys)
    assert code == 1 and "not a video" in one_line_error(err)
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("kind", ["mp4_faststart", "mkv"])
def test_truncated_input_reports_the_frame(tmp_path, capsys, kind):
    src = tmp_path / ("clip.mp4" if kind == "mp4_faststart" else "clip.mkv")
    with av.open(str(src), "w", options={"movflags": "faststart"} if kind == "mp4_faststart" else {}) as c:
        s = c.add_stream("libx264", rate=12)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.options = {"preset": "ultrafast", "crf": "10"}
        for i in range(24):
            f = clips.fill(av.VideoFrame(64, 48, "yuv420p"), clips.yuv_planes(i, 64, 48))
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    data = src.read_bytes()
    cut = tmp_path / ("cut" + src.suffix)
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "o.mkv"
    code, _, err = run_cli(cut, out, "--passthrough", "--quiet", capsys=capsys)
    line = one_line_error(err)
    assert code == 1 and "truncated" in line and "frame" in line, line
    assert not out.exists() and not list(tmp_path.glob(".o.mkv*"))


def test_unwritable_output(media, tmp_path, capsys):
    code, _, err = run_cli(media["h264"], tmp_path / "missing" / "o.mp4", "--passthrough", capsys=capsys)
    assert code == 1 and "no such folder" in one_line_error(err)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(media["h264"], blocker / "o.mp4", "--passthrough", capsys=capsys)
    assert code == 1 and "not a folder" in one_line_error(err)
    code, _, err = run_cli(media["h264"], tmp_path / "o.xyz", "--passthrough", capsys=capsys)
    assert code == 1 and "unknown video container" in one_line_error(err)


def test_existing_output_needs_overwrite(media, tmp_path, capsys):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"precious")
    code, _, err = run_cli(media["h264"], out, "--passthrough", capsys=capsys)
    assert code == 1 and "--overwrite" in one_line_error(err)
    assert out.read_bytes() == b"precious"


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("o.mp4", ["--codec", "no-such-codec"], "no such encoder"),
        ("o.mov", ["--codec", "prores_ks", "--crf", "10"], "no constant-quality"),
        ("o.mp4", ["--codec", "prores_ks"], "cannot be stored in .mp4"),
        ("o.webm", ["--codec", "ffv1"], "cannot be stored in .webm"),
        ("o.mp4", ["--encoder-opt", "novalue"], "KEY=VALUE"),
        ("o.mp4", ["--pix-fmt", "rgb24"], "not supported"),
        ("o.mp4", ["--codec", "libx264", "--pix-fmt", "yuv420p12le"], "cannot encode"),
    ],
)
def test_bad_options(media, tmp_path, capsys, name, options, message):
    out = tmp_path / name
    code, _, err = run_cli(media["h264"], out, "--passthrough", *options, capsys=capsys)
    assert code == 1 and message in one_line_error(err)
    assert not out.exists()


def test_a_matrix_without_a_conversion_is_refused_when_planning(tmp_path, capsys):
    """YCgCo has no YCbCr conversion here: refused by plan(), before any model loads."""
    import dataclasses

    from err_stream.errors import UserError
    from err_stream.video import plan

    src = tmp_path / "ycgco.mkv"
    tags = dataclasses.replace(clips.BT709, matrix=Matrix.YCGCO)
    with av.open(str(src), "w") as c:
        v = clips._video_stream(c, "ffv1", 64, 48, "yuv420p", 12, Fraction(1, 12), tags, {})
        for i in range(3):
            f = clips.fill(av.VideoFrame(64, 48, "yuv420p"), clips.yuv_planes(i, 64, 48), tags)
            f.pts, f.time_base = i, v.time_base
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
    assert probe(src).tags.matrix == Matrix.YCGCO
    with pytest.raises(UserError, match="(?i)ycgco"):
        plan(src, tmp_path / "o.mkv")
    code, _, err = run_cli(src, tmp_path / "o.mkv", capsys=capsys)
    assert code == 1 and "ycgco" in err.lower() and not (tmp_path / "o.mkv").exists()


def test_stream_the_container_cannot_hold(media, tmp_path, capsys):
    # SubRip subtitles cannot go into MP4: say so instead of dropping them.
    code, _, err = run_cli(media["vfr"], tmp_path / "o.mp4", "--passthrough", capsys=capsys)
    assert code == 1 and "subtitle" in one_line_error(err) and "cannot be stored" in err


# ----------------------------------------------------------------------------- atomic output
def _start(args: list, tmp_path: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-m", "err_stream.cli", *map(str, args)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_killed_run_leaves_no_output_and_the_next_run_cleans_up(tmp_path):
    src = clips.make_h264_aac(tmp_path / "in.mp4", frames=40, audio=True)
    out = tmp_path / "out.mp4"
    # The golden weights' output is far out of range: accepted, so that frames flow.
    proc = _start([src, out, "--weights", GOLDEN, "--accept-out-of-range"], tmp_path)
    reader = StderrReader(proc)
    partial = wait_for_path(proc, tmp_path, ".out.mp4.err-stream-partial.*.mp4")
    wait_for_frames(proc, reader)  # mid-run: the model is restoring frames
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert not out.exists()
    assert partial.exists()  # nobody could clean up after SIGKILL; the name says what it is
    # The next run for the same OUT removes the stale partial file and succeeds.
    proc = _start([src, out, "--passthrough", "--quiet"], tmp_path)
    assert proc.wait(120) == 0, proc.stderr.read().decode()
    assert out.exists() and not partial.exists()
    assert len(clips.decode_all(out)[0]) == 40


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_keeps_the_existing_output_and_leaves_no_temp(tmp_path, sig):
    src = clips.make_h264_aac(tmp_path / "in.mp4", frames=40, audio=False)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"the previous result")
    proc = _start([src, out, "--weights", GOLDEN, "--overwrite", "--accept-out-of-range"], tmp_path)
    reader = StderrReader(proc)
    wait_for_frames(proc, reader)  # mid-run
    proc.send_signal(sig)
    code = proc.wait(60)
    assert code == 130, reader.rest()
    assert out.read_bytes() == b"the previous result"
    assert {p.name for p in tmp_path.iterdir()} == {"in.mp4", "out.mp4"}
