"""Colour (err_stream.colour): the codes, ColourSpec, the untagged-input rule, and YCbCr <->
R'G'B' against the standards' numbers and against zimg (VapourSynth's resize)."""

from __future__ import annotations

import logging
import struct
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from err_stream.colour import (
    ChromaLocation,
    ColourSpec,
    HdrMetadata,
    Matrix,
    PackedFrameColour,
    PlaneFormat,
    Primaries,
    Range,
    Transfer,
    YCbCrConverter,
    resolve,
)
from err_stream.colour import chroma
from err_stream.colour.codes import VSColorRange, VSRange
from err_stream.errors import UserError

try:
    import clips
except ImportError:  # tests/ imported as a package
    from tests import clips

FORMATS = ["yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p12le"]
BT709, BT601, BT2020 = Matrix.BT709, Matrix.SMPTE170M, Matrix.BT2020NC


def random_planes(fmt: PlaneFormat, full: bool, h: int, w: int, seed: int, batch: int = 2):
    g = torch.Generator().manual_seed(seed)
    top = fmt.max_code
    lo_y, hi_y = (0, top) if full else (16 << (fmt.bits - 8), 235 << (fmt.bits - 8))
    lo_c, hi_c = (0, top) if full else (16 << (fmt.bits - 8), 240 << (fmt.bits - 8))
    (ch, cw) = fmt.plane_shapes(w, h)[1]
    y = torch.randint(lo_y, hi_y + 1, (batch, h, w), generator=g)
    cb = torch.randint(lo_c, hi_c + 1, (batch, ch, cw), generator=g)
    cr = torch.randint(lo_c, hi_c + 1, (batch, ch, cw), generator=g)
    return y, cb, cr


# ----------------------------------------------------------------------------- conversion
@pytest.mark.parametrize("matrix", [BT709, BT601, BT2020])
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("siting", [ChromaLocation.LEFT, ChromaLocation.TOPLEFT, ChromaLocation.CENTER])
def test_planes_round_trip_exactly(matrix, full, name, siting):
    """planes -> RGB -> planes gives back every code value (what --passthrough relies on),
    odd frame sizes included: the way back keeps the input's chroma where the picture did not
    change, though the resampling (zimg's bicubic) is not its own inverse."""
    fmt = PlaneFormat.parse(name)
    conv = YCbCrConverter(matrix, full, siting)
    y, cb, cr = random_planes(fmt, full, 7, 13, seed=int(matrix) * 10 + full)
    rgb = conv.planes_to_rgb(y, cb, cr, fmt)
    assert rgb.shape == (2, 3, 7, 13) and rgb.dtype == torch.float32
    back = conv.rgb_to_planes(rgb, fmt, source=(cb, cr, fmt))
    for a, b in zip((y, cb, cr), back):
        assert torch.equal(a.to(torch.int64), b.to(torch.int64))


def test_bt709_limited_reference_values():
    conv = YCbCrConverter(BT709, full_range=False)
    codes = lambda y, cb, cr: [torch.tensor([[[float(v)]]]) for v in (y, cb, cr)]  # noqa: E731
    white = conv.codes_to_rgb(*codes(235, 128, 128), 8).flatten()
    black = conv.codes_to_rgb(*codes(16, 128, 128), 8).flatten()
    assert torch.allclose(white, torch.ones(3), atol=1e-6)
    assert torch.allclose(black, torch.zeros(3), atol=1e-6)
    # Pure red in BT.709: Y' = 0.2126, Cb = -0.2126/1.8556 * 0.5..., Cr = 0.5
    y = 16 + 219 * 0.2126
    cb = 128 + 224 * (-0.2126 / 1.8556)
    cr = 128 + 224 * 0.5
    red = conv.codes_to_rgb(*codes(y, cb, cr), 8).flatten()
    assert torch.allclose(red, torch.tensor([1.0, 0.0, 0.0]), atol=1e-5)


def test_matrices_differ_where_they_should():
    """The same codes mean different colours in BT.601, BT.709 and BT.2020."""
    y, cb, cr = (torch.full((1, 1, 1), v) for v in (120.0, 90.0, 180.0))
    out = {m: YCbCrConverter(m, False).codes_to_rgb(y, cb, cr, 8).flatten() for m in (BT709, BT601, BT2020)}
    assert (out[BT709] - out[BT601]).abs().max() > 0.02
    assert (out[BT709] - out[BT2020]).abs().max() > 0.01
    # BT.601 green from the textbook formula: G = Y - 0.344136 Cb - 0.714136 Cr (full scale)
    yv, u, v = (120 - 16) / 219, (90 - 128) / 224, (180 - 128) / 224
    assert abs(out[BT601][1].item() - (yv - 0.344136 * u - 0.714136 * v)) < 1e-4


def test_ten_bit_limited_range_scaling():
    conv = YCbCrConverter(BT2020, full_range=False)
    fmt = PlaneFormat.parse("yuv420p10le")
    y = torch.full((1, 2, 2), 940)
    c = torch.full((1, 1, 1), 512)
    rgb = conv.planes_to_rgb(y, c, c, fmt)
    assert torch.allclose(rgb, torch.ones_like(rgb), atol=1e-6)


def test_undoing_dalis_bt601_rgb_recovers_the_stream_colours():
    """DALI converts with BT.601 limited whatever the stream says; from_bt601_limited_rgb
    must give what a BT.709 conversion of the same codes gives (within DALI's rounding)."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(60, 180, (1, 8, 8), generator=g).float()
    cb = torch.randint(110, 146, (1, 8, 8), generator=g).float()
    cr = torch.randint(110, 146, (1, 8, 8), generator=g).float()
    dali_rgb = YCbCrConverter(BT601, False).codes_to_rgb(y, cb, cr, 8)
    assert dali_rgb.min() > 0 and dali_rgb.max() < 1  # in gamut: nothing clipped
    rgb8 = (dali_rgb * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    bt709 = YCbCrConverter(BT709, False)
    fixed = bt709.from_bt601_limited_rgb(rgb8)
    truth = bt709.codes_to_rgb(y, cb, cr, 8)
    assert (fixed - truth).abs().max() < 1.5 / 255
    assert (dali_rgb - truth).abs().max() > 5 / 255  # without the fix the colours would be off


def test_pixel_formats():
    f = PlaneFormat.parse("yuv422p10le")
    assert (f.bits, f.log2_chroma_w, f.log2_chroma_h, f.subsampling()) == (10, 1, 0, "4:2:2")
    assert f.plane_shapes(65, 33) == [(33, 65), (33, 33), (33, 33)]
    assert PlaneFormat.parse("p010le").semi_planar
    assert PlaneFormat.parse("yuv411p").subsampling() == "4:1:1"
    for bad in ("rgb24", "yuva420p", "gray", "not-a-format"):
        with pytest.raises(UserError):
            PlaneFormat.parse(bad)


def test_hdr_metadata_parses_ffmpeg_structs_into_x265_words():
    def rat(v, den=50000):
        return (round(v * den), den)

    prim = [rat(0.68), rat(0.32), rat(0.265), rat(0.69), rat(0.15), rat(0.06)]
    wp = [rat(0.3127), rat(0.329)]
    lum = [(50, 10000), (10000000, 10000)]
    raw = struct.pack("<20i2i", *[x for r in prim + wp + lum for x in r], 1, 1)
    hdr = HdrMetadata.from_side_data(raw, struct.pack("<2I", 1000, 400))
    assert hdr.max_luminance == 1000 and hdr.min_luminance == 0.005
    assert hdr.x265_params() == [
        "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)",
        "max-cll=1000,400",
    ]
    assert HdrMetadata.from_side_data(None, None) is None


def test_odd_sizes_keep_edge_values():
    fmt = PlaneFormat.parse("yuv420p")
    conv = YCbCrConverter(BT709, False)
    y = torch.full((1, 3, 5), 100)
    cb = torch.tensor([[[90, 100, 110], [120, 130, 140]]])
    cr = torch.full((1, 2, 3), 128)
    back = conv.rgb_to_planes(conv.planes_to_rgb(y, cb, cr, fmt), fmt, source=(cb, cr, fmt))
    assert np.array_equal(back[1].numpy(), cb.numpy())
    # Without the source, a flat picture still comes back flat (the filter sums to one).
    flat = torch.full((1, 2, 3), 77)
    plain = conv.rgb_to_planes(conv.planes_to_rgb(y, flat, flat, fmt), fmt)
    assert (plain[1] == 77).all() and (plain[2] == 77).all()


# ----------------------------------------------------------------------------- the way back
def smooth_chroma(fmt: PlaneFormat, h: int, w: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A picture with smooth colour (what (I - down(up(.))) leaves untouched) and busy luma."""
    s = 1 << (fmt.bits - 8)
    ch, cw = fmt.plane_shapes(w, h)[1]
    cy, cx = torch.meshgrid(torch.arange(ch, dtype=torch.float32), torch.arange(cw, dtype=torch.float32), indexing="ij")
    g = torch.Generator().manual_seed(seed)
    y = (16 * s + 219 * s * torch.rand((1, h, w), generator=g)).round()
    cb = (128 * s + 40 * s * torch.sin(cx / 9 + cy / 11)).round()[None]
    cr = (128 * s + 40 * s * torch.cos(cx / 7 - cy / 13)).round()[None]
    return y, cb, cr


@pytest.mark.parametrize("name", ["yuv420p", "yuv422p10le"])
def test_a_changed_picture_gets_zimgs_downsampled_chroma(name):
    """Where the picture changed, the way back gives what downsampling the new picture
    gives (zimg's filter; within one code where the input's chroma was smooth), and a
    picture the model left alone comes back exactly."""
    fmt = PlaneFormat.parse(name)
    conv = YCbCrConverter(BT709, False, ChromaLocation.LEFT)
    y, cb, cr = smooth_chroma(fmt, 48, 64, seed=3)
    rgb = conv.planes_to_rgb(y, cb, cr, fmt)
    changed = (rgb * torch.tensor([1.6, 1.2, 0.7])[:, None, None] + 0.05 * torch.sin(torch.arange(64.0) / 2)).clamp(0, 1)
    kept = conv.rgb_to_planes(changed, fmt, source=(cb, cr, fmt))
    plain = conv.rgb_to_planes(changed, fmt)
    for k in (1, 2):
        assert (kept[k].long() - plain[k].long()).abs().max() <= 1
        assert (kept[k].long() - (cb, cr)[k - 1].long()).abs().max() > 20  # the colour did change
    same = conv.rgb_to_planes(rgb, fmt, source=(cb, cr, fmt))
    assert all(torch.equal(a.long(), b.long()) for a, b in zip(same, (y, cb, cr)))


def test_a_deeper_output_keeps_the_codes_scaled():
    """8-bit 4:2:0 in, 10-bit 4:2:0 out (--pix-fmt yuv420p10le): every code x 4."""
    f8, f10 = PlaneFormat.parse("yuv420p"), PlaneFormat.parse("yuv420p10le")
    y, cb, cr = random_planes(f8, False, 9, 14, seed=5, batch=1)
    colour = PackedFrameColour(YCbCrConverter(BT709, False), f8, f10, 14, 9)
    packed = torch.cat([p.reshape(1, -1) for p in (y, cb, cr)], dim=1).to(torch.uint8)
    out = colour.from_rgb(colour.to_rgb(packed), packed, clamp=False).long() & 0xFFFF
    assert torch.equal(out, packed.long() * 4)


def test_a_resized_picture_is_downsampled_afresh():
    """The input's chroma only helps a picture of its own size (an output --size differs)."""
    fmt = PlaneFormat.parse("yuv420p")
    conv = YCbCrConverter(BT709, False)
    y, cb, cr = smooth_chroma(fmt, 48, 64, seed=4)
    half = torch.nn.functional.interpolate(conv.planes_to_rgb(y, cb, cr, fmt), size=(24, 32), mode="area")
    got = conv.rgb_to_planes(half, fmt, source=(cb, cr, fmt))
    assert got[1].shape == (1, 12, 16)
    assert all(torch.equal(a, b) for a, b in zip(got, conv.rgb_to_planes(half, fmt)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_resampling_on_cuda_equals_the_cpu():
    fmt = PlaneFormat.parse("yuv420p10le")
    conv = YCbCrConverter(BT2020, False, ChromaLocation.TOPLEFT)
    y, cb, cr = random_planes(fmt, False, 36, 70, seed=9)
    cpu = conv.planes_to_rgb(y, cb, cr, fmt)
    gpu = conv.planes_to_rgb(y.cuda(), cb.cuda(), cr.cuda(), fmt)
    assert (gpu.cpu() - cpu).abs().max() < 1e-5
    back = conv.rgb_to_planes(gpu, fmt, source=(cb.cuda(), cr.cuda(), fmt))
    assert all(torch.equal(a.long(), b.cpu().long()) for a, b in zip((y, cb, cr), back))


# ----------------------------------------------------------------------------- against zimg
SITINGS = {"left": (ChromaLocation.LEFT, 0), "top_left": (ChromaLocation.TOPLEFT, 2)}


def _vs_clip(vs, fmt_id, planes, props):
    core = vs.core
    h, w = planes[0].shape
    blank = core.std.BlankClip(format=fmt_id, width=w, height=h, length=1)

    def paint(n, f):
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), planes[p])
        return out

    return core.std.SetFrameProps(core.std.ModifyFrame(blank, blank, paint), **props)


def _noisy(shape, bits, rng, lo=16, hi=240):
    s = 1 << (bits - 8)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    a = 128 * s + 60 * s * np.sin(xx / 3.0 + yy / 5.0) + rng.normal(0, 25 * s, shape)
    return np.clip(np.rint(a), lo * s, hi * s).astype(np.uint8 if bits == 8 else np.uint16)


@pytest.mark.parametrize("bits", [8, 10])
@pytest.mark.parametrize("sub", ["420", "422"])
@pytest.mark.parametrize("siting", list(SITINGS))
def test_chroma_resampling_matches_zimg(bits, sub, siting):
    """4:2:x -> 4:4:4 and 4:4:4 -> 4:2:x as VapourSynth's resize.Bicubic does them, within
    one code value, on noisy chroma (where a misplaced sample would show)."""
    vs = pytest.importorskip("vapoursynth", reason="VapourSynth is in the 'vs'/'test' extras")
    sx, sy = (1, 1) if sub == "420" else (1, 0)
    loc, vs_loc = SITINGS[siting]
    core = vs.core
    rng = np.random.default_rng(bits + sy)
    h, w = 48, 64
    fmt_sub = core.query_video_format(vs.YUV, vs.INTEGER, bits, sx, sy).id
    fmt_444 = core.query_video_format(vs.YUV, vs.INTEGER, bits, 0, 0).id
    luma = _noisy((h, w), bits, rng, 16, 235)
    props = dict(_Matrix=vs.MATRIX_BT709, _Range=vs.RANGE_LIMITED)

    small = [_noisy((h >> sy, w >> sx), bits, rng) for _ in range(2)]
    up = core.resize.Bicubic(_vs_clip(vs, fmt_sub, [luma, *small], {**props, "_ChromaLocation": vs_loc}), format=fmt_444).get_frame(0)
    ours = chroma.upsample(torch.from_numpy(np.stack(small).astype(np.float32)), sx, sy, h, w, loc.siting())
    for k in range(2):
        diff = np.abs(np.asarray(up[k + 1]).astype(int) - ours[k].round().numpy().astype(int))
        assert diff.max() <= 1, f"up, plane {k + 1}: {diff.max()}"

    full = [_noisy((h, w), bits, rng) for _ in range(2)]
    down = core.resize.Bicubic(_vs_clip(vs, fmt_444, [luma, *full], props), format=fmt_sub, chromaloc_s=siting).get_frame(0)
    ours = chroma.downsample(torch.from_numpy(np.stack(full).astype(np.float32)), sx, sy, loc.siting())
    for k in range(2):
        diff = np.abs(np.asarray(down[k + 1]).astype(int) - ours[k].round().numpy().astype(int))
        assert diff.max() <= 1, f"down, plane {k + 1}: {diff.max()}"
    # The siting matters: placed as the other location, the same samples land elsewhere.
    other = ChromaLocation.CENTER.siting()
    wrong = chroma.downsample(torch.from_numpy(np.stack(full).astype(np.float32)), sx, sy, other)
    assert np.abs(np.asarray(down[1]).astype(int) - wrong[0].round().numpy().astype(int)).max() > 5


@pytest.mark.parametrize("bits", [8, 10])
@pytest.mark.parametrize("siting", list(SITINGS))
def test_yuv_rgb_conversion_matches_zimg(bits, siting):
    """The whole conversion both ways: 4:2:0 -> RGBS as resize.Bicubic gives it (float), and
    RGBS -> 4:2:0 within one code value."""
    vs = pytest.importorskip("vapoursynth", reason="VapourSynth is in the 'vs'/'test' extras")
    core = vs.core
    loc, vs_loc = SITINGS[siting]
    rng = np.random.default_rng(bits)
    h, w = 32, 48
    fmt_id = core.query_video_format(vs.YUV, vs.INTEGER, bits, 1, 1).id
    planes = [_noisy((h, w), bits, rng, 16, 235), *(_noisy((h // 2, w // 2), bits, rng) for _ in range(2))]
    clip = _vs_clip(vs, fmt_id, planes, dict(_Matrix=vs.MATRIX_BT709, _Range=vs.RANGE_LIMITED, _ChromaLocation=vs_loc))
    rgbs = core.resize.Bicubic(clip, format=vs.RGBS)
    want = np.stack([np.asarray(rgbs.get_frame(0)[p]) for p in range(3)])
    fmt = PlaneFormat.parse("yuv420p" if bits == 8 else "yuv420p10le")
    conv = YCbCrConverter(BT709, False, loc)
    got = conv.planes_to_rgb(*(torch.from_numpy(p.astype(np.int32))[None] for p in planes), fmt)[0].numpy()
    assert np.abs(got - want).max() < 1e-4

    back = core.resize.Bicubic(rgbs, format=fmt_id, matrix_s="709", range_s="limited", chromaloc_s=siting).get_frame(0)
    ours = conv.rgb_to_planes(torch.from_numpy(want)[None], fmt)
    for k in range(3):
        diff = np.abs(np.asarray(back[k]).astype(int) - ours[k][0].numpy().astype(int))
        assert diff.max() <= 1, f"plane {k}: {diff.max()}"


# ----------------------------------------------------------------------------- codes and spec
def ffv1_clip(path, spec: ColourSpec, w: int = 64, h: int = 48):
    """Two lossless 4:2:0 frames tagged with ``spec`` (on the stream and the frames)."""
    with av.open(str(path), "w") as c:
        v = clips._video_stream(c, "ffv1", w, h, "yuv420p", 10, Fraction(1, 10), spec, {})
        for i in range(2):
            f = clips.fill(av.VideoFrame(w, h, "yuv420p"), clips.yuv_planes(i, w, h, chroma=0.08), spec)
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
    return path



def test_vapoursynth_and_ffmpeg_numbers():
    assert Range.from_vs({"_Range": VSRange.FULL}) == Range.FULL
    assert Range.from_vs({"_Range": VSRange.LIMITED}) == Range.LIMITED
    assert Range.from_vs({"_ColorRange": VSColorRange.FULL}) == Range.FULL  # before R81: flipped
    assert Range.from_vs({"_ColorRange": VSColorRange.LIMITED}) == Range.LIMITED
    assert Range.from_vs({}) == Range.UNSPECIFIED
    assert [ChromaLocation.from_vs(v) for v in range(6)] == [ChromaLocation(v) for v in range(1, 7)]
    assert ChromaLocation.TOPLEFT.vs == 2 and ChromaLocation.UNSPECIFIED.vs is None
    assert ChromaLocation.LEFT.siting() == ("left", "center") and ChromaLocation.TOPLEFT.siting() == ("left", "top")
    assert (Matrix.BT2020NC.label, Transfer.SMPTE2084.label, Transfer.ARIB_STD_B67.label) == ("bt2020nc", "smpte2084", "arib-std-b67")
    # A code point newer than our tables is carried as its number.
    assert ColourSpec(transfer=42).transfer == 42 and ColourSpec(transfer=42).describe()["transfer"] == "42"


def test_colour_spec_through_vapoursynth_props():
    # VapourSynth's numbers spelled out (this checks the mapping): BT.2020, limited in the
    # old _ColorRange, PQ, top-left.
    props = {"_Matrix": 9, "_ColorRange": 1, "_Primaries": 9, "_Transfer": 16, "_ChromaLocation": 2, "_SARNum": 1}
    spec = ColourSpec.from_vs_props(props)
    assert spec == clips.HDR10
    assert ColourSpec.from_vs_props(spec.vs_props()) == spec
    spec.write_vs_props(props)  # _ColorRange gives way to _Range, the rest stays
    assert props == {"_Matrix": 9, "_Range": 0, "_Primaries": 9, "_Transfer": 16, "_ChromaLocation": 2, "_SARNum": 1}
    assert ColourSpec().vs_props() == {}  # nothing stated, nothing written


def test_colour_spec_through_a_stream(tmp_path):
    """Tags written on a stream come back from it, chroma location included."""
    from err_stream.io.source import probe

    spec = ColourSpec(BT601, Range.FULL, Primaries.BT470BG, Transfer.GAMMA28, ChromaLocation.CENTER)
    info = probe(ffv1_clip(tmp_path / "tagged.mkv", spec))
    assert info.tags == spec
    assert "smpte170m/full/bt470bg/gamma28" in info.describe()


# ----------------------------------------------------------------------------- untagged input
def test_untagged_matrix_is_guessed_from_primaries_then_size():
    def matrix(spec, w, h):
        return resolve(spec, w, h).spec.matrix

    untagged = ColourSpec()
    assert matrix(untagged, 640, 360) == BT601
    assert matrix(untagged, 720, 576) == BT601
    assert matrix(untagged, 1024, 600) == BT709  # more than 576 lines
    assert matrix(untagged, 1920, 1080) == BT709
    assert matrix(untagged, 3840, 2160) == BT709  # 4K alone says nothing (10-bit SDR BT.709 is common)
    assert matrix(ColourSpec(primaries=Primaries.BT2020), 3840, 2160) == BT2020
    assert matrix(ColourSpec(transfer=Transfer.SMPTE2084), 3840, 2160) == BT2020
    assert matrix(ColourSpec(transfer=Transfer.ARIB_STD_B67), 1920, 1080) == BT2020
    assert matrix(ColourSpec(primaries=Primaries.BT709), 640, 480) == BT709
    assert matrix(ColourSpec(primaries=Primaries.BT470BG), 1920, 1080) == BT601
    resolved = resolve(untagged, 640, 360)
    assert resolved.warnings == ["colour matrix not tagged: assuming smpte170m (SD size 640x360)"]
    assert resolve(clips.BT709, 640, 360).warnings == []
    with pytest.raises(UserError, match="bt2020c is not supported"):
        resolve(ColourSpec(matrix=Matrix.BT2020C), 64, 48)  # BT.2020 constant luminance
    with pytest.raises(UserError, match="rgb is not supported"):
        resolve(ColourSpec(matrix=Matrix.RGB), 64, 48)


def test_untagged_range_primaries_transfer_and_siting():
    sd = resolve(ColourSpec(), 720, 576).spec
    assert sd == ColourSpec(BT601, Range.LIMITED, Primaries.BT470BG, Transfer.BT709, ChromaLocation.LEFT)
    assert resolve(ColourSpec(), 720, 480).spec.primaries == Primaries.SMPTE170M
    assert resolve(ColourSpec(), 1920, 1080).spec.primaries == Primaries.BT709
    assert resolve(ColourSpec(primaries=Primaries.BT2020), 3840, 2160).spec.primaries == Primaries.BT2020
    # What is stated stays, the HDR master's siting included.
    assert resolve(clips.HDR10, 3840, 2160).spec == clips.HDR10 and resolve(clips.HDR10, 64, 48).guesses == ()
    # RGB pictures (image files): sRGB unless they say otherwise.
    rgb = resolve(ColourSpec(), 64, 48, rgb=True).spec
    assert (rgb.matrix, rgb.range, rgb.primaries, rgb.transfer) == (Matrix.RGB, Range.FULL, Primaries.BT709, Transfer.IEC61966_2_1)
    pq = resolve(ColourSpec(primaries=Primaries.BT2020, transfer=Transfer.SMPTE2084), 64, 48, rgb=True).spec
    assert (pq.primaries, pq.transfer) == (Primaries.BT2020, Transfer.SMPTE2084)


def test_the_transcoder_names_its_guess(tmp_path, caplog):
    """An untagged SD file: converted as BT.601, with a warning saying so; the output stays
    untagged, as the input was (a player guesses the same for both)."""
    from err_stream import cli

    src = ffv1_clip(tmp_path / "untagged.mkv", ColourSpec())
    out = tmp_path / "out.mkv"
    with caplog.at_level(logging.WARNING, logger="err_stream"):
        assert cli.main([str(src), str(out), "--passthrough", "--codec", "ffv1", "--quiet"]) == 0
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert said == ["colour matrix not tagged: assuming smpte170m (SD size 64x48)"]  # the rest: not warned
    a, _, _, _ = clips.decode_all(src)
    b, _, _, fb = clips.decode_all(out)
    assert ColourSpec.from_av(fb) == ColourSpec()
    assert all(np.array_equal(x, y) for fa, fbb in zip(a, b) for x, y in zip(fa, fbb))
