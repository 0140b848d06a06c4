"""The HDR path (err_stream.colour.transfer, .gamut, .hdr): the curves and matrices against
colour-science (the field's reference library, used here as an oracle only), the highlight
shoulder, exact identity round trips of PQ and HLG masters through the SDR-referred picture
the model sees, and the MaxCLL/MaxFALL measurement."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from err_stream.colour import ChromaLocation, HdrPath, LightLevel, Matrix, PackedFrameColour, PlaneFormat, Primaries, Transfer, YCbCrConverter
from err_stream.colour import gamut
from err_stream.colour import transfer as tf
from err_stream.colour.hdr import REFERENCE_WHITE, HighlightRollOff
from err_stream.colour.planes import split_planes

PQ, HLG = Transfer.SMPTE2084, Transfer.ARIB_STD_B67


@pytest.fixture(scope="module")
def colour():
    return pytest.importorskip("colour", reason="colour-science (the test extra) is the oracle")


def t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float32)


def close(ours: torch.Tensor, theirs, rel: float = 2e-6, abs_: float = 1e-6) -> None:
    """Within float32 rounding of the float64 reference (a few ulps of the value)."""
    np.testing.assert_allclose(ours.double().numpy(), np.asarray(theirs, dtype=np.float64), rtol=rel, atol=abs_)


# ----------------------------------------------------------------------------- against colour-science
def test_pq_eotf_and_inverse_match_colour_science(colour):
    e = np.linspace(0.0, 1.0, 4097)
    # PQ's slope reaches ~1.4e5 cd/m2 per unit signal near the top: float32's rounding of E'
    # alone moves the light by 1e-5 relative there.
    close(tf.pq_eotf(t(e)), colour.models.eotf_ST2084(e), rel=3e-5, abs_=1e-6)
    nits = np.concatenate([[0.0], np.geomspace(1e-4, 10000.0, 4096)])
    close(tf.pq_inverse_eotf(t(nits)), colour.models.eotf_inverse_ST2084(nits), rel=2e-6, abs_=2e-7)


def test_hlg_oetf_and_inverse_match_colour_science(colour):
    e = np.linspace(0.0, 1.0, 4097)
    with np.errstate(invalid="ignore", divide="ignore"):  # its unused log branch at E < 1/12
        theirs = colour.models.oetf_BT2100_HLG(e)
    close(tf.hlg_oetf(t(e)), theirs)
    close(tf.hlg_inverse_oetf(t(e)), colour.models.oetf_inverse_BT2100_HLG(e))


@pytest.mark.parametrize("peak", [1000.0, 400.0, 2000.0, 4000.0])
def test_hlg_ootf_matches_colour_science(colour, peak):
    rng = np.random.default_rng(1)
    scene = rng.random((64, 3))
    scene[:4] = [[1, 1, 1], [0.26, 0.26, 0.26], [1, 0, 0], [0, 0, 1]]
    theirs = colour.models.ootf_BT2100_HLG(scene, L_B=0, L_W=peak)
    ours = tf.hlg_ootf(t(scene.T[None, :, :, None]), peak)[0, :, :, 0].T
    close(ours, theirs, rel=3e-6, abs_=1e-4)
    back = tf.hlg_inverse_ootf(t(np.asarray(theirs).T[None, :, :, None]), peak)[0, :, :, 0].T
    close(back, colour.models.ootf_inverse_BT2100_HLG(theirs, L_B=0, L_W=peak), rel=3e-6, abs_=1e-6)
    if peak == 1000.0:
        assert tf.hlg_system_gamma(peak) == pytest.approx(1.2)


def test_srgb_and_bt1886_match_colour_science(colour):
    x = np.linspace(0.0, 1.0, 4097)
    close(tf.srgb_encode(t(x)), colour.models.eotf_inverse_sRGB(x))
    close(tf.srgb_decode(t(x)), colour.models.eotf_sRGB(x))
    close(tf.bt1886_encode(t(x)), colour.models.eotf_inverse_BT1886(x, L_B=0, L_W=1))
    close(tf.bt1886_decode(t(x)), colour.models.eotf_BT1886(x, L_B=0, L_W=1))


@pytest.mark.parametrize("src,dst,theirs", [
    (Primaries.BT2020, Primaries.BT709, ("ITU-R BT.2020", "ITU-R BT.709")),
    (Primaries.BT709, Primaries.BT2020, ("ITU-R BT.709", "ITU-R BT.2020")),
    (Primaries.SMPTE432, Primaries.BT2020, ("Display P3", "ITU-R BT.2020")),
])
def test_primaries_matrices_match_colour_science(colour, src, dst, theirs):
    spaces = colour.RGB_COLOURSPACES
    expected = colour.matrix_RGB_to_RGB(spaces[theirs[0]], spaces[theirs[1]], chromatic_adaptation_transform=None)
    np.testing.assert_allclose(np.array(gamut.conversion_matrix(src, dst)), expected, atol=2e-7)
    rng = np.random.default_rng(2)
    rgb = rng.random((2, 3, 5, 7)) * 4 - 1
    ours = gamut.convert(t(rgb), src, dst)
    close(ours, np.einsum("ij,bjhw->bihw", expected, rgb), rel=1e-6, abs_=1e-6)
    close(gamut.convert(ours, dst, src), rgb, rel=1e-6, abs_=3e-6)


# ----------------------------------------------------------------------------- the shoulder
@pytest.mark.parametrize("peak_nits", [400.0, 1000.0, 4000.0, 10000.0])
def test_the_highlight_shoulder_is_smooth_monotonic_and_lands_the_peak_on_one(peak_nits):
    r = HighlightRollOff(peak_nits / REFERENCE_WHITE)
    x = torch.linspace(-60.0, 60.0, 400001, dtype=torch.float64)
    y = r.forward(x)
    assert torch.equal(y[x.abs() <= r.knee], x[x.abs() <= r.knee])  # the straight part is untouched
    assert torch.equal(r.forward(-x), -y)  # odd
    assert bool((y.diff() > 0).all())  # strictly increasing: invertible
    h = 1e-7  # slope 1 on both sides of the knee: no crease
    k = torch.tensor([r.knee - h, r.knee, r.knee + h], dtype=torch.float64)
    left, right = r.forward(k).diff() / h
    assert float(left) == pytest.approx(1.0, abs=1e-9) and float(right) == pytest.approx(1.0, abs=1e-5)
    assert float(r.forward(torch.tensor(peak_nits / REFERENCE_WHITE, dtype=torch.float64))) == pytest.approx(1.0, abs=1e-9)
    assert 0.8 < float(r.forward(torch.tensor(1.0, dtype=torch.float64))) < 0.95  # reference white: a little under 1
    back = r.inverse(y)
    assert torch.allclose(back, x, rtol=1e-9, atol=1e-9)


def test_nothing_to_compress_below_the_reference_white():
    r = HighlightRollOff(150.0 / REFERENCE_WHITE)
    x = torch.linspace(0, 2, 11)
    assert torch.equal(r.forward(x), x) and torch.equal(r.inverse(x), x)


# ----------------------------------------------------------------------------- the path's levels
def test_the_model_sees_an_sdr_referred_picture():
    pq = HdrPath(PQ)
    grey = lambda nits: tf.pq_inverse_eotf(torch.full((1, 3, 1, 1), nits))  # noqa: E731
    # Below the knee, light / 203 cd/m2 is SDR linear light, sRGB-encoded.
    assert float(pq.to_sdr(grey(20.3))[0, 0]) == pytest.approx(float(tf.srgb_encode(torch.tensor(0.1))), abs=1e-5)
    assert float(pq.to_sdr(grey(0.0))[0, 0]) == 0.0
    # The mastering peak on 1, the reference white a little under it.
    assert float(pq.to_sdr(grey(1000.0))[0, 0]) == pytest.approx(1.0, abs=1e-5)
    assert 0.9 < float(pq.to_sdr(grey(203.0))[0, 0]) < 0.97
    # HLG: 75 % signal is the reference white on the 1000 cd/m2 reference display.
    hlg = HdrPath(HLG)
    assert float(hlg.display_light(torch.full((1, 3, 1, 1), 0.75))[0, 0]) == pytest.approx(203.0, rel=2e-3)
    assert float(hlg.to_sdr(torch.ones(1, 3, 1, 1))[0, 0]) == pytest.approx(1.0, abs=1e-5)
    # The model sees the stream's primaries unless told otherwise; in BT.709, a colour outside
    # it goes negative for the model, and is not clipped.
    assert pq.model_primaries == Primaries.BT2020
    pq709 = HdrPath(PQ, model_primaries=Primaries.BT709)
    green2020 = tf.pq_inverse_eotf(torch.tensor([0.0, 100.0, 0.0]).view(1, 3, 1, 1))
    assert float(pq.to_sdr(green2020).min()) == 0.0
    sdr = pq709.to_sdr(green2020)
    assert float(sdr[0, 0]) < -0.1 and float(sdr[0, 2]) < -0.05
    assert torch.allclose(pq709.from_sdr(sdr), green2020, atol=3e-4)  # 0.3 code (PQ is steep at black)


def test_a_model_that_brightens_brightens_the_master_in_light():
    """The way back is the inverse, not a passthrough: doubling SDR linear light doubles the
    master's light below the knee (and the input-relative form agrees with the plain one)."""
    for path in (HdrPath(PQ), HdrPath(HLG), HdrPath(PQ, model_primaries=Primaries.BT709)):
        nits = torch.tensor([5.0, 10.0, 40.0]).view(1, 3, 1, 1)
        signal = path.signal(nits)
        brighter = tf.srgb_encode(2.0 * tf.srgb_decode(path.to_sdr(signal)))
        out = path.display_light(path.from_sdr(brighter))
        assert torch.allclose(out, 2.0 * nits, rtol=2e-4)
        assert torch.allclose(path.from_sdr(brighter, signal), path.from_sdr(brighter), atol=2e-6)


def test_the_way_back_holds_the_models_output_within_the_peak():
    """Overshoot lands on the peak (not on light far past it), nonsense on finite codes, and
    what the model did not change still comes back exactly."""
    path = HdrPath(PQ)
    y = torch.tensor([math.nan, math.inf, -math.inf, 1e30, -1e30, 1.05]).view(1, 3, 2, 1)
    light = path.display_light(path.from_sdr(y))
    assert bool(torch.isfinite(light).all())
    grey = torch.full((1, 3, 1, 1), 1.05)
    assert torch.allclose(path.display_light(path.from_sdr(grey)), torch.tensor(1000.0), rtol=1e-4)
    beyond = path.signal(torch.tensor([3000.0, 20.0, 5.0]).view(1, 3, 1, 1))
    assert torch.equal(path.from_sdr(path.to_sdr(beyond), beyond), beyond)


# ----------------------------------------------------------------------------- identity round trips
def master_light(h: int, w: int, peak: float) -> torch.Tensor:
    """1 x 3 x h x w BT.2020 display light (cd/m2) with what masters hold: a neutral ramp from
    black to the peak, textured mid-tones, the BT.2020 and P3 primaries (outside BT.709) from
    dim to the peak, and a pixel-sharp edge between saturated colours."""
    rng = np.random.default_rng(3)
    img = np.empty((3, h, w))
    ramp = np.geomspace(0.005, peak, w)
    img[:, : h // 4] = ramp
    img[:, h // 4 : h // 2] = 50.0 * (1 + 0.8 * rng.standard_normal((3, h // 2 - h // 4, w)).clip(-1, 3))
    p3 = np.array(gamut.conversion_matrix(Primaries.SMPTE432, Primaries.BT2020))
    colours = [np.eye(3)[i] for i in range(3)] + [p3[:, i] for i in range(3)] + [np.array([1.0, 1.0, 0.0]), np.array([0.0, 1.0, 1.0])]
    levels = np.geomspace(1.0, peak, (w // len(colours)) or 1)
    row = np.concatenate([c[:, None] * levels[None, :] for c in colours], axis=1)
    row = np.pad(row, ((0, 0), (0, w - row.shape[1])), mode="edge")
    img[:, h // 2 : 3 * h // 4] = row[:, None, :]
    img[:, 3 * h // 4 :] = np.where((np.arange(w) // 3) % 2, 1.0, 0.0)[None, None, :] * np.array([peak, 0, 0])[:, None, None] + np.where(
        (np.arange(w) // 3) % 2, 0.0, 1.0)[None, None, :] * np.array([0, 0.1 * peak, 0.5 * peak])[:, None, None]
    return torch.from_numpy(img).float()[None]


def master_codes(path: HdrPath, conv: YCbCrConverter, fmt: PlaneFormat, h: int, w: int, brightest: float | None = None) -> torch.Tensor:
    signal = path.signal(master_light(h, w, brightest or path.peak)).clamp(0.0, 1.0)
    planes = conv.rgb_to_planes(signal, fmt)
    return torch.cat([p.reshape(1, -1).to(fmt.torch_dtype) for p in planes], dim=1)


@pytest.mark.parametrize("transfer", [PQ, HLG])
@pytest.mark.parametrize("name", ["yuv420p10le", "yuv422p10le"])
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("model_primaries", [None, Primaries.BT709])
def test_an_hdr_master_comes_back_through_an_identity_model(transfer, name, full, model_primaries):
    """PQ and HLG, 4:2:0 and 4:2:2 10-bit, limited and full range: codes -> the picture the
    model sees -> (identity) -> codes, every code value back, highlights up to the peak and
    colours outside BT.709 included; the same for random codes over the whole code range
    (super-whites, sub-blacks, colours no RGB holds). The model in BT.2020 (as built) or BT.709."""
    h, w = 34, 66  # odd chroma sizes at the edges
    fmt = PlaneFormat.parse(name)
    conv = YCbCrConverter(Matrix.BT2020NC, full, ChromaLocation.TOPLEFT)
    path = HdrPath(transfer, model_primaries=model_primaries)
    colour_path = PackedFrameColour(conv, fmt, fmt, w, h, hdr=path)
    g = torch.Generator().manual_seed(4)
    rand = torch.randint(0, 1024, (1, fmt.frame_elements(w, h)), generator=g).to(torch.int16)
    for codes in (master_codes(path, conv, fmt, h, w), rand):
        sdr = colour_path.to_rgb(codes)
        assert bool(torch.isfinite(sdr).all())
        back = colour_path.from_rgb(sdr.clone(), codes, clamp=True)
        diff = (back.int() - codes.int()).abs()
        assert int(diff.max()) <= 1, f"{int((diff > 1).sum())} code values moved by up to {int(diff.max())}"
    # The master's picture does reach the peak (and, shown in BT.709, leaves it).
    sdr = colour_path.to_rgb(master_codes(path, conv, fmt, h, w))
    assert float(sdr.max()) > 0.98
    if model_primaries == Primaries.BT709:
        assert float(sdr.min()) < -0.2


def test_without_the_input_codes_the_way_back_is_still_within_a_few_codes():
    """The plain inverse (no input to add the change to), for the record: BT.2020 -> BT.709
    and back in float32 is exact to a few code values near black of saturated highlights
    (light within the peak in BT.709: beyond it, the way back holds the model's output)."""
    h, w = 34, 66
    fmt = PlaneFormat.parse("yuv444p10le")
    conv = YCbCrConverter(Matrix.BT2020NC, False, ChromaLocation.TOPLEFT)
    for transfer in (PQ, HLG):
        path = HdrPath(transfer, model_primaries=Primaries.BT709)
        colour_path = PackedFrameColour(conv, fmt, fmt, w, h, hdr=path)
        codes = master_codes(path, conv, fmt, h, w, brightest=path.peak / 2)
        back = colour_path.from_rgb(colour_path.to_rgb(codes))
        assert int((back.int() - codes.int()).abs().max()) <= 4


# ----------------------------------------------------------------------------- light level
def test_light_level_measures_maxcll_and_maxfall_across_batches():
    level = LightLevel()
    assert level.result() is None
    a = torch.zeros(2, 3, 4, 5)
    a[0, 1, 0, 0] = 812.2  # one bright pixel: MaxCLL; frame average 812.2 / 20
    a[1] = 30.0
    a[1, 2] = 45.0  # max(R, G, B) = 45 everywhere: this frame's average is the largest
    level.add(a)
    b = torch.full((1, 3, 4, 5), -5.0)  # negative light counts as 0
    b[0, 0, 3, 4] = 20000.0  # beyond PQ's range counts as 10000
    level.add(b)
    assert level.frames == 3
    assert level.result() == (10000, 500)  # frame b: 10000 / 20 = 500 > 45
    level2 = LightLevel()
    level2.add(a)
    assert level2.result() == (812, 45)


def test_the_way_back_feeds_the_light_level():
    path = HdrPath(PQ)
    nits = torch.full((1, 3, 2, 2), 100.0)
    nits[0, 0, 0, 0] = 600.0
    level = LightLevel()
    path.from_sdr(path.to_sdr(path.signal(nits)), light_level=level)
    assert level.result() == (600, 225)


# ----------------------------------------------------------------------------- choosing the path
def test_the_hdr_setting_chooses_the_path():
    from err_stream.colour import ColourSpec, HdrMetadata, Range
    from err_stream.errors import SettingError

    pq = ColourSpec(Matrix.BT2020NC, Range.LIMITED, Primaries.BT2020, PQ, ChromaLocation.TOPLEFT)
    assert HdrPath.for_spec(pq).peak == 1000.0
    assert HdrPath.for_spec(pq, metadata=HdrMetadata(max_luminance=4000.0)).peak == 4000.0
    assert HdrPath.for_spec(pq, metadata=HdrMetadata(max_luminance=4000.0), peak=600).peak == 600.0
    hlg = ColourSpec(Matrix.BT2020NC, Range.LIMITED, Primaries.BT2020, HLG, ChromaLocation.LEFT)
    assert HdrPath.for_spec(hlg, metadata=HdrMetadata(max_luminance=4000.0)).peak == 1000.0  # HLG: the reference display
    assert HdrPath.for_spec(pq, "passthrough") is None
    sdr = ColourSpec(Matrix.BT709, Range.LIMITED, Primaries.BT709, Transfer.BT709, ChromaLocation.LEFT)
    assert HdrPath.for_spec(sdr) is None
    with pytest.raises(SettingError) as e:
        HdrPath.for_spec(pq, "tonemap")
    assert e.value.option == "hdr" and "auto, passthrough" in str(e.value)
    with pytest.raises(SettingError) as e:
        HdrPath.for_spec(pq, peak=-5)
    assert e.value.option == "hdr_peak"
    odd = ColourSpec(Matrix.BT2020NC, Range.LIMITED, Primaries.FILM, PQ, ChromaLocation.LEFT)
    with pytest.raises(SettingError, match="passthrough"):
        HdrPath.for_spec(odd)
