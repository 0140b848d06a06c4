"""The VapourSynth filter on the real VapourSynth core (no mock): formats, properties,
concurrency, out-of-order requests, errors, and vspipe on the example script."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

vs = pytest.importorskip("vapoursynth", reason="VapourSynth is in the 'vs'/'test' extras: pip install 'err-stream[test]'")

from err_stream import restore_image as _restore_image  # noqa: E402
from vs_plugin import err as _err  # noqa: E402


# The golden checkpoint's seeded random weights give outputs far outside [0, 1] (about 65 %
# of the pixels of these clips outside [-0.1, 1.1]), which the output guard refuses. The
# tests of formats, properties and concurrency compare the filter with restore_image, so
# both accept and clamp; the guard itself is tested with _err below.
def err(clip, **kwargs):
    return _err(clip, **{"accept_out_of_range": True, **kwargs})


def restore_image(model, image):
    return _restore_image(model, image, accept_out_of_range=True)

REPO = Path(__file__).resolve().parents[1]
core = vs.core


# ----------------------------------------------------------------------------- test clips
def content(width: int, height: int, length: int, seed: int = 0) -> vs.VideoNode:
    """RGBS frames with smooth colour patterns plus noise (different per frame), and
    per-frame properties as a scene-change detector would set them."""
    blank = core.std.BlankClip(width=width, height=height, format=vs.RGBS, length=length, fpsnum=30000, fpsden=1001, keep=True)
    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)

    def fill(n: int, f):
        rng = np.random.default_rng(seed * 1000 + n)
        out = f.copy()
        for p in range(3):
            a = 0.35 + 0.25 * np.sin(7 * xx * (p + 1) + 4 * yy + n) + 0.08 * rng.standard_normal((height, width))
            np.copyto(np.asarray(out[p]), np.clip(a, 0, 1).astype(np.float32))
        out.props["_SceneChangePrev"] = int(n == 0)
        out.props["_SceneChangeNext"] = int(n == length - 1)
        out.props["FrameLabel"] = f"frame-{n}"
        return out

    clip = core.std.ModifyFrame(blank, blank, fill)
    return core.std.SetFrameProps(clip, _Transfer=vs.TRANSFER_BT709, _Primaries=vs.PRIMARIES_BT709, _SARNum=4, _SARDen=3)


def yuv(clip: vs.VideoNode, fmt: int, matrix: int = vs.MATRIX_BT709, chromaloc: str = "left") -> vs.VideoNode:
    return core.resize.Bicubic(clip, format=fmt, matrix=matrix, range_s="limited", chromaloc_s=chromaloc)


def planes(frame) -> np.ndarray:
    return np.stack([np.asarray(frame[p]) for p in range(frame.format.num_planes)], axis=-1)


def reference_rgb(model, clip: vs.VideoNode, n: int) -> np.ndarray:
    return restore_image(model, planes(clip.get_frame(n)))


@pytest.fixture(scope="module")
def weights(golden_path) -> str:
    return str(golden_path)


# ----------------------------------------------------------------------------- float RGB
@pytest.mark.parametrize("fmt,atol", [(vs.RGBS, 1e-5), (vs.RGBH, 2e-3)])
def test_float_rgb_equals_restore_image_and_keeps_props(weights, golden_model, fmt, atol):
    src = content(101, 67, 3)  # odd size: padding and cropping are inside
    if fmt == vs.RGBH:
        src = core.resize.Point(src, format=vs.RGBH)
    out = err(src, weights=weights, device_index=-1)
    assert (out.format.id, out.width, out.height, out.num_frames) == (fmt, 101, 67, 3)
    assert (out.fps_num, out.fps_den) == (30000, 1001)
    for n in range(3):
        fi, fo = src.get_frame(n), out.get_frame(n)
        got = planes(fo).astype(np.float32)
        want = restore_image(golden_model, planes(fi).astype(np.float32))
        assert np.abs(got - want).max() <= atol
        assert np.abs(got - planes(fi)).mean() > 0.01  # the network did change the frame
        assert dict(fo.props) == dict(fi.props)


# ----------------------------------------------------------------------------- YUV
def _via_restore_image(model, clip: vs.VideoNode, converter=None) -> vs.VideoNode:
    """What the filter must compute for a YUV clip: the same frame through restore_image,
    between err_stream.colour's conversions to RGB and back (the transcoder's; by default
    BT.709 limited, chroma sited left)."""
    import torch

    from err_stream.colour import Matrix, PackedFrameColour, PlaneFormat, YCbCrConverter

    bits = clip.format.bits_per_sample
    fmt = PlaneFormat.parse("yuv420p" if bits == 8 else f"yuv420p{bits}le")
    converter = converter or YCbCrConverter(Matrix.BT709, full_range=False)
    colour = PackedFrameColour(converter, fmt, fmt, clip.width, clip.height)

    def restore(n: int, f):
        out = f.copy()
        packed = torch.from_numpy(np.concatenate([np.asarray(f[p]).astype(np.int32).ravel() for p in range(3)]))[None]
        rgb = colour.to_rgb(packed)[0].permute(1, 2, 0).numpy()
        y = torch.from_numpy(np.clip(restore_image(model, rgb), 0, 1)).permute(2, 0, 1)[None]
        codes = colour.from_rgb(y, packed)[0].numpy().astype(np.int64) & 0xFFFF
        at = 0
        for p in range(3):
            plane = np.asarray(out[p])
            np.copyto(plane, codes[at : at + plane.size].reshape(plane.shape), casting="unsafe")
            at += plane.size
        return out

    return core.std.ModifyFrame(clip, clip, restore)


def _same_planes(a: vs.VideoNode, b: vs.VideoNode, frames: int, tolerance: int = 0) -> None:
    for n in range(frames):
        for p in range(3):
            diff = np.abs(np.asarray(a.get_frame(n)[p]).astype(np.int32) - np.asarray(b.get_frame(n)[p]).astype(np.int32))
            assert diff.max() <= tolerance, f"frame {n} plane {p}: max difference {diff.max()}"


@pytest.mark.parametrize("fmt", [vs.YUV420P8, vs.YUV420P10])
def test_yuv_equals_restore_image_and_keeps_format_and_props(weights, golden_model, fmt):
    src = yuv(content(96, 66, 3, seed=1), fmt)
    out = err(src, weights=weights, device_index=-1)
    assert (out.format.id, out.width, out.height, out.num_frames) == (fmt, 96, 66, 3)
    want = _via_restore_image(golden_model, src)
    for n in range(3):
        fi, fo = src.get_frame(n), out.get_frame(n)
        for p in range(3):
            diff = np.abs(np.asarray(fo[p]).astype(np.int32) - np.asarray(want.get_frame(n)[p]).astype(np.int32))
            assert diff.max() <= 1, f"frame {n} plane {p}: max difference {diff.max()}"
        assert np.abs(np.asarray(fo[0]).astype(np.int32) - np.asarray(fi[0]).astype(np.int32)).mean() > 2
        assert dict(fo.props) == dict(fi.props)
        assert fo.props["_Matrix"] == vs.MATRIX_BT709 and fo.props["_SARNum"] == 4 and fo.props["FrameLabel"] == f"frame-{n}"


def test_yuv_without_matrix_is_guessed_as_the_transcoder_guesses(weights):
    """No _Matrix: the one rule for untagged input (from the primaries, else the size: BT.601
    at 96x64), with a warning naming the guess; matrix= fills it in instead; the properties
    stay as they were."""
    tagged = yuv(content(96, 64, 2, seed=2), vs.YUV420P10)  # BT.709 primaries and matrix
    bare = core.std.RemoveFrameProps(tagged, props=["_Matrix"])
    barer = core.std.RemoveFrameProps(bare, props=["_Primaries"])
    said = []
    handle = core.add_log_handler(lambda kind, message: said.append((kind, message.removeprefix("err: colour matrix not tagged: "))))
    try:
        from_primaries, from_size = err(bare, weights=weights, device_index=-1), err(barer, weights=weights, device_index=-1)
    finally:
        core.remove_log_handler(handle)
    warned = "; pass matrix= or set _Matrix to say otherwise"
    assert (vs.MESSAGE_TYPE_WARNING, "assuming bt709 (BT.709 primaries tagged)" + warned) in said
    assert (vs.MESSAGE_TYPE_WARNING, "assuming smpte170m (SD size 96x64)" + warned) in said
    reference = err(tagged, weights=weights, device_index=-1)
    _same_planes(from_primaries, reference, 2)
    _same_planes(from_size, err(barer, weights=weights, device_index=-1, matrix=vs.MATRIX_ST170_M), 2)
    given = err(barer, weights=weights, device_index=-1, matrix=vs.MATRIX_BT709)
    _same_planes(given, reference, 2)
    assert "_Matrix" not in given.get_frame(0).props  # the input's properties, as they were
    # A stated _Matrix wins over the argument (as it does over resize's matrix_in).
    _same_planes(err(tagged, weights=weights, device_index=-1, matrix=vs.MATRIX_ST170_M), reference, 2)


def test_colour_props_are_read_and_kept(weights, golden_model):
    """An HDR10-style clip (BT.2020, PQ, chroma sited top-left): the filter converts with what
    its properties say, siting included, and its output says the same."""
    from err_stream.colour import ChromaLocation, ColourSpec, Matrix, YCbCrConverter

    src = core.std.SetFrameProps(yuv(content(96, 64, 2, seed=7), vs.YUV420P10, vs.MATRIX_BT2020_NCL, "top_left"),
                                 _Primaries=vs.PRIMARIES_BT2020, _Transfer=vs.TRANSFER_ST2084)
    spec = ColourSpec.from_vs_props(src.get_frame(0).props)
    assert spec == ColourSpec(Matrix.BT2020NC, 1, 9, 16, ChromaLocation.TOPLEFT)
    out = err(src, weights=weights, device_index=-1, hdr="passthrough")  # the HDR path: test_hdr_* below
    for n in range(2):
        assert ColourSpec.from_vs_props(out.get_frame(n).props) == spec
        assert dict(out.get_frame(n).props) == dict(src.get_frame(n).props)
    top_left = YCbCrConverter(Matrix.BT2020NC, False, ChromaLocation.TOPLEFT)
    _same_planes(out, _via_restore_image(golden_model, src, top_left), 2, tolerance=1)
    left = _via_restore_image(golden_model, src, YCbCrConverter(Matrix.BT2020NC, False, ChromaLocation.LEFT))
    with pytest.raises(AssertionError):
        _same_planes(out, left, 1, tolerance=1)  # the siting is not ignored


def _hdr_master(fmt: int, transfer: int) -> vs.VideoNode:
    """A PQ or HLG BT.2020 clip whose light reaches 1000 cd/m2 and leaves BT.709."""
    import torch

    from err_stream.colour import HdrPath, Primaries, Transfer

    path = HdrPath(Transfer(transfer))
    base = content(96, 64, 2, seed=5)

    def to_signal(n: int, f):
        out = f.copy()
        light = torch.from_numpy(planes(f).transpose(2, 0, 1).copy())[None] ** 3 * 1200.0  # up to past the peak
        light[:, 1, :8] = 0.0  # saturated BT.2020 magenta: outside BT.709
        signal = path.signal(light).clamp(0, 1)[0].numpy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), signal[p])
        return out

    rgb = core.std.SetFrameProps(core.std.ModifyFrame(base, base, to_signal), _Primaries=vs.PRIMARIES_BT2020, _Transfer=transfer)
    if fmt == vs.RGBS:
        return rgb
    if fmt == vs.RGB48:
        return core.resize.Point(rgb, format=fmt)
    return core.resize.Bicubic(rgb, format=fmt, matrix=vs.MATRIX_BT2020_NCL, range_s="limited", chromaloc_s="top_left")


@pytest.mark.parametrize("transfer", [vs.TRANSFER_ST2084, vs.TRANSFER_ARIB_B67], ids=["pq", "hlg"])
@pytest.mark.parametrize("fmt", [vs.YUV420P10, vs.YUV422P10, vs.RGBS, vs.RGB48], ids=["420p10", "422p10", "rgbs", "rgb48"])
def test_hdr_clips_take_the_hdr_path(weights, golden_model, transfer, fmt):
    """PQ/HLG clips (from _Transfer and _Primaries): the model sees the SDR-referred picture
    (as the transcoder's HdrPath gives it) and the clip comes back in its own format; with the
    identity in place of the model (a colour passthrough through the same conversions), every
    code value back."""
    import torch

    from err_stream.colour import HdrPath, PackedFrameColour, PlaneFormat, Primaries, Transfer, YCbCrConverter
    from err_stream.colour.spec import ColourSpec

    src = _hdr_master(fmt, transfer)
    path = HdrPath(Transfer(transfer))
    out = err(src, weights=weights, device_index=-1)
    assert out.format.id == fmt and dict(out.get_frame(0).props) == dict(src.get_frame(0).props)
    if fmt in (vs.YUV420P10, vs.YUV422P10):
        name = "yuv420p10le" if fmt == vs.YUV420P10 else "yuv422p10le"
        pf = PlaneFormat.parse(name)
        colour = PackedFrameColour(YCbCrConverter.for_spec(ColourSpec.from_vs_props(src.get_frame(0).props)), pf, pf, 96, 64, hdr=path)
        for n in range(2):
            f = src.get_frame(n)
            codes = torch.from_numpy(np.concatenate([np.asarray(f[p]).astype(np.int32).ravel() for p in range(3)]))[None].to(torch.int16)
            sdr = colour.to_rgb(codes)
            assert float(sdr.max()) <= 1.01  # the peak on 1.0: what the model was trained on
            assert torch.equal(colour.from_rgb(sdr, codes), codes)  # identity: every code back
            y = torch.from_numpy(restore_image(golden_model, sdr[0].permute(1, 2, 0).numpy())).permute(2, 0, 1)[None]
            want = (colour.from_rgb(y, codes)[0].to(torch.int32) & 0xFFFF).numpy()
            got = np.concatenate([np.asarray(out.get_frame(n)[p]).astype(np.int32).ravel() for p in range(3)])
            assert np.abs(got - want).max() <= 1
    elif fmt == vs.RGBS:
        for n in range(2):
            x = torch.from_numpy(planes(src.get_frame(n)).transpose(2, 0, 1).copy())[None]
            y = torch.from_numpy(restore_image(golden_model, path.to_sdr(x)[0].permute(1, 2, 0).numpy())).permute(2, 0, 1)[None]
            want = path.from_sdr(y, x)[0].permute(1, 2, 0).numpy()
            assert np.abs(planes(out.get_frame(n)) - want).max() <= 1e-5
    passthrough = err(src, weights=weights, device_index=-1, hdr="passthrough")
    a, b = out.get_frame(0), passthrough.get_frame(0)
    assert max(np.abs(np.asarray(a[p]).astype(np.float64) - np.asarray(b[p])).max() for p in range(3)) > 0


def test_hdr_arguments_are_checked(weights):
    src = _hdr_master(vs.YUV420P10, vs.TRANSFER_ST2084)
    with pytest.raises(vs.Error, match=r"err: hdr='tonemap': choose one of auto, passthrough|err: hdr='tonemap': must be one of auto, passthrough"):
        err(src, weights=weights, device_index=-1, hdr="tonemap")
    with pytest.raises(vs.Error, match=r"err: hdr_peak=-5"):
        err(src, weights=weights, device_index=-1, hdr_peak=-5)


def test_integer_rgb(weights, golden_model):
    src = core.resize.Point(content(80, 72, 2, seed=3), format=vs.RGB24)
    out = err(src, weights=weights, device_index=-1)
    assert out.format.id == vs.RGB24
    for n in range(2):
        want = restore_image(golden_model, planes(src.get_frame(n)))  # uint8 in, uint8 out
        diff = np.abs(planes(out.get_frame(n)).astype(np.int32) - want.astype(np.int32))
        assert diff.max() <= 1


# ----------------------------------------------------------------------------- frame serving
def test_num_streams_and_request_order_give_the_same_frames(weights, golden_model):
    threads = core.num_threads
    core.num_threads = 4  # several VapourSynth threads request frames at once
    try:
        src = content(96, 64, 6, seed=4)
        one = err(src, weights=weights, device_index=-1, num_streams=1)
        two = err(src, weights=weights, device_index=-1, num_streams=2)
        first = [planes(one.get_frame(n)) for n in range(6)]
        # every frame at once, in a random order, from the thread pool
        order = random.Random(0).sample(range(6), 6)
        futures = {n: two.get_frame_async(n) for n in order}
        second = {n: planes(f.result()) for n, f in futures.items()}
        backwards = [planes(f) for f in err(src, weights=weights, device_index=-1, num_streams=2)[::-1].frames()]
    finally:
        core.num_threads = threads
    for n in range(6):
        assert np.array_equal(second[n], first[n]), f"frame {n}: num_streams=2 differs from num_streams=1"
        assert np.array_equal(backwards[5 - n], first[n]), f"frame {n} differs when read backwards"
    # and they are the right frames, not the same frame six times
    assert np.abs(first[3] - restore_image(golden_model, planes(src.get_frame(3)))).max() <= 1e-5
    assert np.abs(first[3] - first[4]).max() > 0.05


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "make,kwargs,message",
    [
        (lambda: core.std.BlankClip(format=vs.GRAY8, width=64, height=64, length=2), {}, r"err: GRAY clips are not supported.*RGB"),
        (
            lambda: core.std.Splice([core.std.BlankClip(format=vs.RGBS, length=1), core.std.BlankClip(format=vs.YUV420P8, length=1)], mismatch=True),
            {},
            r"err: variable-format clips.*format=vs.RGBS",
        ),
        (
            lambda: core.std.Splice([core.std.BlankClip(width=64, height=64, format=vs.RGBS, length=1), core.std.BlankClip(width=96, height=64, format=vs.RGBS, length=1)], mismatch=True),
            {},
            r"err: variable-size clips.*width=",
        ),
        (lambda: content(64, 64, 1), {"preset": "uhd-ll"}, r"err: pass either preset or weights"),
        (lambda: content(64, 64, 1), {"tile": [64, 64]}, r"err: tile=\[64, 64\]: tiles must be at least 128 pixels wide and high; for whole frames pass tile=\[0, 0\]"),
        (lambda: content(64, 64, 1), {"tile": "512x512"}, r"err: tile must be \[w, h\]"),
        (lambda: content(64, 64, 1), {"num_streams": 0}, r"err: num_streams must be a whole number >= 1"),
        (lambda: content(64, 64, 1), {"device_index": -2}, r"err: device_index must be .*-1 for the CPU"),
        (lambda: content(64, 64, 1), {"precision": "fp8"}, r"err: precision='fp8': choose one of fp32, fp16, bf16"),
        (lambda: content(64, 64, 1), {"precision": "bf16", "fp16": False}, r"err: pass either fp16 or precision"),
        (lambda: content(64, 64, 1), {"matrix": 2}, r"err: matrix=2 is not a YUV matrix"),  # a user's raw number: "unspecified"
    ],
)
def test_bad_arguments_raise_at_call_time(weights, make, kwargs, message):
    with pytest.raises(vs.Error, match=message):
        err(make(), weights=weights, **{"device_index": -1, **kwargs})


def test_bad_preset_and_missing_weights(tmp_path, monkeypatch):
    clip = content(64, 64, 1)
    with pytest.raises(vs.Error, match=r"err: unknown preset 'dark'; pass one of: uhd-ll"):
        err(clip, preset="dark", device_index=-1)
    with pytest.raises(vs.Error, match=r"err: checkpoint .*nothing.pth: no such file"):
        err(clip, weights=str(tmp_path / "nothing.pth"), device_index=-1)
    import err_stream.weights

    monkeypatch.setattr(err_stream.weights, "DEMO_WEIGHTS", tmp_path / "absent.safetensors")
    with pytest.raises(vs.Error, match=r'err: no weights given.*weights="file.pth" or preset=NAME'):
        err(clip, device_index=-1)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_gpu_index_without_cuda(weights):
    with pytest.raises(vs.Error, match=r"^err: device_index=0: CUDA is not available on this machine; pass device_index=-1$"):
        err(content(64, 64, 1), weights=weights, device_index=0)


# ----------------------------------------------------------------------------- vspipe and the example
def _video(path: Path, frames: int, width: int = 96, height: int = 64) -> Path:
    import av

    rng = np.random.default_rng(5)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        yy, xx = np.mgrid[0:height, 0:width]
        for i in range(frames):
            img = (40 + 30 * np.sin(xx[..., None] / (5 + i) + yy[..., None] / 7 + np.arange(3)) + rng.normal(0, 6, (height, width, 3)))
            for p in s.encode(av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def _y4m_frames(data: bytes) -> tuple[dict, int]:
    header, _, body = data.partition(b"\n")
    fields = header.split(b" ")
    assert fields[0] == b"YUV4MPEG2", data[:80]
    params = {f[:1].decode(): f[1:].decode() for f in fields[1:]}
    w, h = int(params["W"]), int(params["H"])
    assert params["C"].startswith("420")
    size = w * h * 3 // 2 * (2 if "p" in params["C"] else 1)
    count = 0
    while body:
        assert body.startswith(b"FRAME"), f"frame {count}: no FRAME marker (something else wrote to stdout?)"
        body = body[body.index(b"\n") + 1 + size :]
        count += 1
    return params, count


@pytest.mark.slow
def test_vspipe_runs_the_example_script(tmp_path, weights):
    video = _video(tmp_path / "dark.mp4", frames=5)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), XDG_CONFIG_HOME=str(tmp_path / "config"))
    # vspipe (the binary in the wheel) finds Python through this configuration file.
    subprocess.run([sys.executable, "-m", "vapoursynth", "config"], env=env, check=True, capture_output=True)
    vspipe = Path(vs.__file__).with_name("vspipe")
    cmd = [str(vspipe), "-c", "y4m", "-a", f"video={video}", "-a", f"weights={weights}", "-a", "device_index=-1", "-a", "accept_out_of_range=1"]
    run = subprocess.run([*cmd, str(REPO / "examples" / "lowlight.vpy"), "-"], env=env, capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-2000:]
    params, count = _y4m_frames(run.stdout)
    assert count == 5 and params["W"] == "96" and params["H"] == "64" and params["F"] == "24:1"


def test_the_transcoders_vpy_source_reads_the_example_with_its_arguments(tmp_path, weights):
    """The example script through the transcoder's own .vpy source (err_stream.io.vpy, which
    `err-stream script.vpy OUT` and batch jobs use), with vspipe-style arguments."""
    from err_stream.io.vpy import VpySource, probe_vpy

    video = _video(tmp_path / "dark.mp4", frames=3, width=64, height=48)
    args = {"video": str(video), "weights": weights, "device_index": "-1", "accept_out_of_range": "1"}
    info = probe_vpy(REPO / "examples" / "lowlight.vpy", args)
    assert (info.width, info.height, info.frames_estimate, info.average_rate) == (64, 48, 3, Fraction(24))
    frames = list(VpySource(info).frames())
    assert [f.pts * info.time_base for f in frames] == [Fraction(0), Fraction(1, 24), Fraction(2, 24)]
    # The script keeps its input's format: 8-bit 4:2:0 code planes.
    assert all([p.shape for p in f.planes] == [(48, 64), (24, 32), (24, 32)] and f.planes[0].dtype == np.uint8 for f in frames)
    assert np.abs(frames[1].planes[0].astype(float) - frames[0].planes[0]).mean() > 1  # distinct frames, in order


def test_same_clip_same_pixels_through_vapoursynth_and_the_transcoder(tmp_path, weights):
    """One colour path: a YUV file read by BestSource and restored by the filter gives the
    transcoder's output for the same frames, to within 1 code value."""
    import av

    from err_stream.cli import main as cli

    assert hasattr(core, "bs"), "BestSource (vapoursynth-bestsource, in the test extra) is missing"
    video = _video(tmp_path / "in.mp4", frames=3)  # 96x64 4:2:0, matrix not tagged: BT.601 below 720 lines
    out = tmp_path / "out.mkv"
    assert cli([str(video), str(out), "--weights", weights, "--codec", "ffv1", "--device", "cpu", "--quiet",
                "--accept-out-of-range"]) == 0
    with av.open(str(out)) as c:
        transcoded = []
        for f in c.decode(video=0):
            assert f.format.name == "yuv420p"
            sizes = [(f.height, f.width), ((f.height + 1) // 2, (f.width + 1) // 2), ((f.height + 1) // 2, (f.width + 1) // 2)]
            transcoded.append([np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:h, :w] for p, (h, w) in zip(f.planes, sizes)])
    clip = err(core.bs.VideoSource(str(video)), weights=weights, device_index=-1, matrix=vs.MATRIX_ST170_M)
    assert clip.num_frames == len(transcoded) == 3
    for n, want in enumerate(transcoded):
        f = clip.get_frame(n)
        for p in range(3):
            diff = np.abs(np.asarray(f[p]).astype(np.int32) - want[p].astype(np.int32))
            assert diff.max() <= 1, f"frame {n} plane {p}: max difference {diff.max()}"


# ----------------------------------------------------------------------------- on a GPU
@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_gpu_streams_match_the_model(weights, golden_path):
    from err_stream import Restorer, load_model

    model = load_model(golden_path, device="cuda")
    threads = core.num_threads
    core.num_threads = 8
    try:
        src = content(256, 200, 8, seed=6)
        one = err(src, weights=weights, device_index=0, num_streams=1)
        three = err(src, weights=weights, device_index=0, num_streams=3)
        order = random.Random(1).sample(range(8), 8)
        futures = {n: three.get_frame_async(n) for n in order}
        got3 = {n: planes(f.result()) for n, f in futures.items()}
        got1 = [planes(one.get_frame(n)) for n in range(8)]
        half = core.resize.Point(src, format=vs.RGBH)
        got_half = [planes(f).astype(np.float32) for f in err(half, weights=weights, device_index=0, num_streams=2).frames()]
    finally:
        core.num_threads = threads
    fp16 = Restorer(model, precision="fp16", tiling="off")
    for n in range(8):
        x = planes(src.get_frame(n))
        assert np.abs(got1[n] - restore_image(model, x)).max() <= 1e-4
        assert np.abs(got3[n] - got1[n]).max() <= 1e-5, f"frame {n}: num_streams=3 differs from num_streams=1"
        want_half = restore_image(fp16, x.astype(np.float16).astype(np.float32))
        assert np.abs(got_half[n] - want_half).max() <= 2e-2  # fp16 compute (default for RGBH on a GPU)
