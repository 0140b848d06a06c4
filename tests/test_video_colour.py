"""YCbCr <-> R'G'B' conversion (err_stream.io.colour) against the standards' numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from err_stream.errors import UserError
from err_stream.io.colour import (
    ColourTags,
    HdrMetadata,
    PlaneFormat,
    YCbCrConverter,
    resolve_full_range,
    resolve_matrix,
)

FORMATS = ["yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p12le"]


@pytest.mark.parametrize("matrix", [1, 6, 9])
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("name", FORMATS)
def test_planes_round_trip_exactly(matrix, full, name):
    """planes -> RGB -> planes gives back every code value (what --passthrough relies on),
    odd frame sizes included."""
    fmt = PlaneFormat.parse(name)
    conv = YCbCrConverter(matrix, full)
    g = torch.Generator().manual_seed(matrix * 10 + full)
    h, w = 7, 13
    top = fmt.max_code
    lo_y, hi_y = (0, top) if full else (16 << (fmt.bits - 8), 235 << (fmt.bits - 8))
    lo_c, hi_c = (0, top) if full else (16 << (fmt.bits - 8), 240 << (fmt.bits - 8))
    (ch, cw) = fmt.plane_shapes(w, h)[1]
    y = torch.randint(lo_y, hi_y + 1, (2, h, w), generator=g)
    cb = torch.randint(lo_c, hi_c + 1, (2, ch, cw), generator=g)
    cr = torch.randint(lo_c, hi_c + 1, (2, ch, cw), generator=g)
    rgb = conv.planes_to_rgb(y, cb, cr, fmt)
    assert rgb.shape == (2, 3, h, w) and rgb.dtype == torch.float32
    back = conv.rgb_to_planes(rgb, fmt)
    for a, b in zip((y, cb, cr), back):
        assert torch.equal(a.to(torch.int64), b.to(torch.int64))


def test_bt709_limited_reference_values():
    conv = YCbCrConverter(1, full_range=False)
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
    out = {m: YCbCrConverter(m, False).codes_to_rgb(y, cb, cr, 8).flatten() for m in (1, 6, 9)}
    assert (out[1] - out[6]).abs().max() > 0.02
    assert (out[1] - out[9]).abs().max() > 0.01
    # BT.601 green from the textbook formula: G = Y - 0.344136 Cb - 0.714136 Cr (full scale)
    yv, u, v = (120 - 16) / 219, (90 - 128) / 224, (180 - 128) / 224
    assert abs(out[6][1].item() - (yv - 0.344136 * u - 0.714136 * v)) < 1e-4


def test_ten_bit_limited_range_scaling():
    conv = YCbCrConverter(9, full_range=False)
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
    dali_rgb = YCbCrConverter(6, False).codes_to_rgb(y, cb, cr, 8)
    assert dali_rgb.min() > 0 and dali_rgb.max() < 1  # in gamut: nothing clipped
    rgb8 = (dali_rgb * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    bt709 = YCbCrConverter(1, False)
    fixed = bt709.from_bt601_limited_rgb(rgb8)
    truth = bt709.codes_to_rgb(y, cb, cr, 8)
    assert (fixed - truth).abs().max() < 1.5 / 255
    assert (dali_rgb - truth).abs().max() > 5 / 255  # without the fix the colours would be off


def test_unspecified_tags_are_guessed_like_players():
    unspecified = ColourTags()
    assert resolve_matrix(unspecified, 640, 360) == 6
    assert resolve_matrix(unspecified, 1920, 1080) == 1
    assert resolve_matrix(ColourTags(primaries=9), 3840, 2160) == 9
    assert resolve_full_range(unspecified, "yuv420p") is False
    assert resolve_full_range(unspecified, "yuvj420p") is True
    with pytest.raises(UserError, match="not supported"):
        resolve_matrix(ColourTags(matrix=10), 64, 48)  # BT.2020 constant luminance


def test_pixel_formats():
    f = PlaneFormat.parse("yuv422p10le")
    assert (f.bits, f.log2_chroma_w, f.log2_chroma_h, f.subsampling()) == (10, 1, 0, "4:2:2")
    assert f.plane_shapes(65, 33) == [(33, 65), (33, 33), (33, 33)]
    assert PlaneFormat.parse("p010le").semi_planar
    for bad in ("rgb24", "yuva420p", "gray", "not-a-format"):
        with pytest.raises(UserError):
            PlaneFormat.parse(bad)


def test_hdr_metadata_parses_ffmpeg_structs_into_x265_words():
    import struct

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


def test_box_downsample_of_odd_sizes_keeps_edge_values():
    fmt = PlaneFormat.parse("yuv420p")
    conv = YCbCrConverter(1, False)
    y = torch.full((1, 3, 5), 100)
    cb = torch.tensor([[[90, 100, 110], [120, 130, 140]]])
    cr = torch.full((1, 2, 3), 128)
    back = conv.rgb_to_planes(conv.planes_to_rgb(y, cb, cr, fmt), fmt)
    assert np.array_equal(back[1].numpy(), cb.numpy())
