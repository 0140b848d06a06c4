"""CameraLowLight and its camera model (err_stream/train/camera.py): each step does what it says."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from err_stream.train import camera
from err_stream.train.datasets import to_numpy
from err_stream.train.degradations import CameraLowLight, ExposureNoise, LowLight, build_degradation
from err_stream.train.metrics import psnr


def _photo(h: int = 64, w: int = 96, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand((3, h // 8, w // 8), generator=g)
    return torch.nn.functional.interpolate(base[None], size=(h, w), mode="bilinear", align_corners=False)[0].clamp(0, 1)


def _plain(**over) -> dict:
    """Parameters with every optional effect off, overridable."""
    p = CameraLowLight().sample(np.random.default_rng(0))
    p.update(ev=3.0, gain_ev=0.0, cast=[1.0, 1.0, 1.0], electrons_per_unit=1e9, read_electrons=0.0, post_gain_std=0.0,
             chroma_sigma=0.0, illumination_stops=0.0, vignette=0.0, lamps=[], codec="none")
    p.update(over)
    return p


def test_srgb_transfer_round_trips():
    x = torch.linspace(0, 1, 1001)
    assert torch.allclose(camera.linear_to_srgb(camera.srgb_to_linear(x)), x, atol=1e-6)
    assert abs(float(camera.srgb_to_linear(torch.tensor(0.5))) - 0.214041) < 1e-5


def test_planckian_white_points():
    x, y = camera.cct_to_xy(6504)
    assert abs(x - 0.3127) < 0.003 and abs(y - 0.3290) < 0.006  # D65 lies just above the locus
    tungsten = camera.white_point_gains(camera.cct_to_xy(2856))  # CIE illuminant A
    assert tungsten[0] > tungsten[1] > tungsten[2] and tungsten[0] / tungsten[2] > 3
    sky = camera.white_point_gains(camera.cct_to_xy(10000))
    assert sky[2] > sky[0]
    assert np.allclose(camera.white_point_gains((0.31271, 0.32902)), 1.0, atol=1e-3)
    sodium = camera.white_point_gains(camera.LIGHT_SOURCES["low_pressure_sodium"])
    assert sodium[2] < 0.2 * sodium[0]


def test_exposure_drop_in_linear_light():
    x = _photo()
    deg = CameraLowLight()
    lin = [camera.srgb_to_linear(deg.apply(x, _plain(ev=ev))).mean().item() for ev in (2.0, 5.0)]
    ref = camera.srgb_to_linear(x).mean().item()
    assert lin[0] / ref == pytest.approx(2**-2, rel=0.05)
    assert lin[1] / ref == pytest.approx(2**-5, rel=0.15)  # 8-bit quantisation of very dark values


def test_poisson_gaussian_variance_on_the_mosaic():
    flat = torch.full((3, 256, 256), 0.1)
    k, read, post = 400.0, 3.0, 0.002
    m = camera.mosaic_noise(flat, k, read, post, torch.Generator().manual_seed(1))
    expected = 0.1 / k + (read / k) ** 2 + post**2
    assert m.var().item() == pytest.approx(expected, rel=0.05)
    assert m.mean().item() == pytest.approx(0.1, rel=0.01)


def test_iso_gain_raises_shot_noise():
    """The same output brightness from less light and more gain: fewer electrons, noisier."""
    deg = CameraLowLight(gain_share=(0.7, 0.7), ev=(6.0, 6.0), full_well=(5000.0, 5000.0))
    p = deg.sample(np.random.default_rng(3))
    assert p["electrons_per_unit"] == pytest.approx(5000 * 2 ** -(6 * 0.7))
    flat = torch.full((3, 128, 128), 0.5)
    noisy = [deg.apply(flat, _plain(ev=3.0 + g, gain_ev=g, electrons_per_unit=5000 * 2**-g, read_electrons=2.0),
                       torch.Generator().manual_seed(0)) for g in (0.0, 4.0)]  # both 3 EV dark
    # Compare relative noise (std over mean) in linear light.
    rel = [camera.srgb_to_linear(n)[1].std().item() / camera.srgb_to_linear(n)[1].mean().item() for n in noisy]
    assert rel[1] > 2 * rel[0]


def test_demosaic_is_exact_on_flat_colour_and_spreads_noise():
    colour = torch.tensor([0.2, 0.5, 0.7])[:, None, None].expand(3, 32, 48)
    mosaic = camera.mosaic_noise(colour, 1e12, 0.0, 0.0, torch.Generator().manual_seed(0))
    assert torch.allclose(camera.bilinear_demosaic(mosaic), colour, atol=1e-5)
    # Independent noise per photosite becomes correlated between neighbours after demosaicking.
    noise = torch.randn((1, 128, 128), generator=torch.Generator().manual_seed(2))
    rgb = camera.bilinear_demosaic(noise)
    g = rgb[1]
    corr = torch.corrcoef(torch.stack([g[:, :-1].flatten(), g[:, 1:].flatten()]))[0, 1].item()
    assert corr > 0.2


def test_chroma_blur_keeps_luma_and_smooths_colour_noise():
    g = torch.Generator().manual_seed(4)
    x = 0.5 + 0.1 * torch.randn((3, 64, 64), generator=g)
    y = camera.blur_chroma(x, 2.0)
    luma = lambda t: 0.299 * t[0] + 0.587 * t[1] + 0.114 * t[2]  # noqa: E731
    assert torch.allclose(luma(y), luma(x), atol=1e-5)
    assert (y[2] - luma(y)).std() < 0.4 * (x[2] - luma(x)).std()


def test_lamps_clip_and_belong_to_the_target():
    x = _photo(64, 64) * 0.5
    lamp = {"y": 0.5, "x": 0.5, "radius": 0.05, "peak": 4.0, "rgb": [1.0, 0.8, 0.5]}
    deg = CameraLowLight()
    p = _plain(ev=6.0, lamps=[lamp])
    dark, target = deg.apply(x, p), deg.target(x, p)
    assert dark[0, 32, 32] == 1.0 and target[0, 32, 32] > 0.999  # clipped core in both
    assert dark[0, 2, 2] < 0.2  # the rest stays dark
    assert torch.equal(deg.target(x, _plain()), x)  # no lamps: the clean image


@pytest.mark.parametrize("codec", ["jpeg", "h264"])
def test_compression_round_trip(codec):
    x = _photo(64, 96)
    y = camera.jpeg_roundtrip(x, 90) if codec == "jpeg" else camera.h264_roundtrip(x, 18)
    assert y.shape == x.shape
    mse = (y - x).pow(2).mean().item()
    assert 0 < mse < 2e-3  # lossy, but close at high quality
    low = camera.jpeg_roundtrip(x, 20) if codec == "jpeg" else camera.h264_roundtrip(x, 45)
    assert (low - x).pow(2).mean().item() > mse


def test_pairs_are_a_pure_function_of_the_seed():
    x = _photo(128, 128)
    deg = build_degradation({"kind": "camera_lowlight", "lit_probability": 0.3})
    a = deg.pair(x, np.random.default_rng([7, 1]))
    b = deg.pair(x, np.random.default_rng([7, 1]))
    c = deg.pair(x, np.random.default_rng([7, 2]))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert a[0].shape == x.shape and a[0].min() >= 0 and a[0].max() <= 1
    assert torch.allclose(a[0] * 255, (a[0] * 255).round(), atol=1e-4)  # 8-bit values


def test_dark_draws_are_dark_and_lit_draws_are_not():
    x = _photo(128, 128, seed=5) * 0.6 + 0.2
    dark = CameraLowLight(lamp_probability=0.0)
    lit = CameraLowLight(lit_probability=1.0)
    for s in range(4):
        d, _ = dark.pair(x, np.random.default_rng(s))
        l_, _ = lit.pair(x, np.random.default_rng(s))
        assert d.mean() < 0.75 * x.mean()  # at least 1 EV darker: gain makes up at most half the drop
        assert l_.mean() > 0.6 * x.mean()  # at most 1 EV darker, with some uneven light


def test_lit_pairs_are_the_photograph_with_mild_noise_and_compression():
    """Issue 18 item 4: a well-exposed frame trains towards itself; nothing clips that was not clipped."""
    x = _photo(128, 128, seed=6) * 0.85 + 0.05
    x[:, :16, :16] = 1.0  # a clipped highlight stays clipped
    deg = CameraLowLight(lit_probability=1.0)
    codecs = set()
    for s in range(8):
        p = deg.sample(np.random.default_rng(s))
        assert p["lit"] and p["ev"] == 0 and p["gain_ev"] == 0 and not p["lamps"]
        assert p["cast"] == [1.0, 1.0, 1.0] and p["illumination_stops"] == 0 and p["vignette"] == 0
        assert 70 <= p["jpeg_quality"] <= 95 and 16 <= p["h264_crf"] <= 28
        codecs.add(p["codec"])
        lq, target = deg.pair(x, np.random.default_rng(s))
        assert target is x
        assert psnr(to_numpy(lq), to_numpy(x)) > 30  # mild: sensor noise at base ISO and a light codec
        newly_clipped = ((lq >= 1.0) & (x < 0.95)).float().mean().item()
        assert newly_clipped < 1e-3
        assert lq[:, 2:14, 2:14].mean() > 0.98  # the clipped patch is still white (but for sensor noise)
        means = lq.mean(dim=(1, 2)) / x.mean(dim=(1, 2))
        assert means.max() / means.min() < 1.02  # no colour cast, no exposure change
    assert len(codecs) >= 2


def test_exposure_noise_is_a_plain_darkening():
    x = _photo(128, 128, seed=2) * 0.8 + 0.1
    deg = build_degradation("exposure_noise")
    assert isinstance(deg, ExposureNoise) and deg.gamma == (1.0, 1.0) and deg.cast == 0.0
    for s in range(3):
        exposure = deg.sample(np.random.default_rng(s))["exposure"]
        dark = deg(x, np.random.default_rng(s))
        assert torch.allclose(dark * 255, (dark * 255).round(), atol=1e-4)  # 8-bit
        ratio = dark.mean(dim=(1, 2)) / x.mean(dim=(1, 2))
        assert ratio.mean().item() == pytest.approx(exposure, rel=0.1)  # a plain gain, no gamma
        assert (ratio.max() / ratio.min()).item() < 1.1  # the same for every channel: no cast


def test_lowlight_pair_keeps_its_target_and_draws():
    x = _photo()
    deg = LowLight()
    lq, gt = deg.pair(x, np.random.default_rng(9))
    assert gt is x and torch.equal(lq, deg(x, np.random.default_rng(9)))


def test_unknown_parameter_is_named():
    with pytest.raises(ValueError, match="unknown parameter.*exposure"):
        build_degradation({"kind": "camera_lowlight", "exposure": [0.1, 0.2]})
