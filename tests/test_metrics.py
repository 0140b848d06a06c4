"""PSNR / SSIM (basicsr's definitions) against independent computations, and `err-stream eval`."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import scipy.ndimage as ndimage  # scipy and scikit-image are in the 'test' extra
import skimage.color as skimage_color
import skimage.metrics as skimage_metrics
import torch
import torch.nn.functional as F
from PIL import Image

from err_stream.cli import main as cli
from err_stream.image import restore_image
from err_stream.model import ERR
from err_stream.train.losses import ssim_rgb
from err_stream.train.metrics import psnr, rgb_to_y, ssim
from err_stream.weights import save_checkpoint



def photo_pair(seed: int = 0, h: int = 96, w: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """A smooth 'photo' and a noisy, slightly shifted-in-tone version of it (uint8)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([np.sin(6 * xx + c) * np.cos(4 * yy - c) for c in range(3)], axis=2) * 90 + 128
    base += ndimage.gaussian_filter(rng.normal(0, 25, (h, w, 3)), (2, 2, 0))
    target = np.clip(np.rint(base), 0, 255).astype(np.uint8)
    restored = np.clip(np.rint(base * 0.95 + 6 + rng.normal(0, 6, base.shape)), 0, 255).astype(np.uint8)
    return restored, target


def test_y_channel_is_matlab_bt601():
    img = np.random.default_rng(1).integers(0, 256, (7, 9, 3)).astype(np.uint8)
    # skimage's rgb2ycbcr uses the same ITU-R BT.601 matrix (Y in [16, 235]).
    ref = skimage_color.rgb2ycbcr(img)[..., 0]
    np.testing.assert_allclose(rgb_to_y(img.astype(np.float64)), ref, rtol=0, atol=1e-9)
    assert rgb_to_y(np.zeros((1, 1, 3)))[0, 0] == pytest.approx(16.0)
    assert rgb_to_y(np.full((1, 1, 3), 255.0))[0, 0] == pytest.approx(235.0)


def test_psnr_by_hand():
    target = np.full((20, 20, 3), 100, np.uint8)
    restored = np.full((20, 20, 3), 110, np.uint8)
    dy = 10 * (65.481 + 128.553 + 24.966) / 255  # Y difference of a +10 grey shift
    assert psnr(restored, target) == pytest.approx(10 * math.log10(255**2 / dy**2), abs=1e-9)
    assert psnr(target, target) == math.inf


@pytest.mark.parametrize("crop", [0, 4])
def test_psnr_ssim_match_skimage(crop):
    restored, target = photo_pair()
    yr = skimage_color.rgb2ycbcr(restored)[..., 0]
    yt = skimage_color.rgb2ycbcr(target)[..., 0]
    if crop:
        yr, yt = yr[crop:-crop, crop:-crop], yt[crop:-crop, crop:-crop]
    ref_psnr = skimage_metrics.peak_signal_noise_ratio(yt, yr, data_range=255)
    # Gaussian window sigma 1.5 (skimage truncates at 3.5 sigma: 11x11), population
    # covariances, mean over the valid region: basicsr's SSIM.
    ref_ssim = skimage_metrics.structural_similarity(
        yt, yr, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert psnr(restored, target, crop) == pytest.approx(ref_psnr, abs=1e-9)
    assert ssim(restored, target, crop) == pytest.approx(ref_ssim, abs=1e-7)
    assert 0.3 < ref_ssim < 0.99  # a pair that actually exercises SSIM


def test_ssim_valid_region_by_hand():
    """SSIM from its formula with scipy's correlate, keeping only windows inside the image."""
    restored, target = photo_pair(seed=3, h=40, w=50)
    a = rgb_to_y(restored.astype(np.float64))
    b = rgb_to_y(target.astype(np.float64))
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    win = np.outer(g, g) / np.outer(g, g).sum()
    f = lambda x: ndimage.correlate(x, win, mode="constant")[5:-5, 5:-5]  # noqa: E731
    ma, mb = f(a), f(b)
    va, vb, cov = f(a * a) - ma**2, f(b * b) - mb**2, f(a * b) - ma * mb
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ref = np.mean((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    assert ssim(restored, target, crop_border=0) == pytest.approx(ref, abs=1e-10)


def test_bit_depths_agree():
    restored, target = photo_pair(seed=5)
    as16 = lambda a: a.astype(np.uint16) * 257  # noqa: E731
    asf = lambda a: a.astype(np.float32) / 255  # noqa: E731
    assert psnr(as16(restored), as16(target)) == pytest.approx(psnr(restored, target), abs=1e-9)
    assert ssim(asf(restored), asf(target)) == pytest.approx(ssim(restored, target), abs=1e-6)


def test_training_ssim_is_zero_padded_gaussian_ssim():
    """The loss's SSIM (RGB in [0, 1], "same" zero padding, C = 0.01^2, 0.03^2) by hand."""
    restored, target = photo_pair(seed=7, h=32, w=40)
    x = torch.from_numpy(restored / 255.0).permute(2, 0, 1)[None]
    y = torch.from_numpy(target / 255.0).permute(2, 0, 1)[None]
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    win = np.outer(g, g) / np.outer(g, g).sum()
    maps = []
    for c in range(3):
        a, b = restored[..., c] / 255.0, target[..., c] / 255.0
        f = lambda t: ndimage.correlate(t, win, mode="constant")  # noqa: E731
        ma, mb = f(a), f(b)
        va, vb, cov = f(a * a) - ma**2, f(b * b) - mb**2, f(a * b) - ma * mb
        maps.append((2 * ma * mb + 1e-4) * (2 * cov + 9e-4) / ((ma**2 + mb**2 + 1e-4) * (va + vb + 9e-4)))
    assert float(ssim_rgb(x, y)) == pytest.approx(float(np.mean(maps)), abs=1e-10)
    assert float(ssim_rgb(y, y)) == pytest.approx(1.0, abs=1e-12)


def test_training_ssim_separable_window_matches_the_2d_window_in_float32():
    """The loss filters with the two 1-D factors of the Gaussian window: in float32, value and
    gradient equal the 2-D window's (computed here in float64) within float32 rounding."""
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(4, 3, 64, 96, generator=gen)
    y = (x + 0.1 * torch.randn(x.shape, generator=gen)).clamp(0, 1)

    def ssim_2d(a, b):
        t = torch.arange(11, dtype=torch.float64) - 5
        g = torch.exp(-(t**2) / (2 * 1.5**2))
        w = (torch.outer(g, g) / torch.outer(g, g).sum()).expand(3, 1, 11, 11)
        f = lambda v: F.conv2d(v, w, padding=5, groups=3)  # noqa: E731
        ma, mb = f(a), f(b)
        va, vb, cov = f(a * a) - ma**2, f(b * b) - mb**2, f(a * b) - ma * mb
        return ((2 * ma * mb + 1e-4) * (2 * cov + 9e-4) / ((ma**2 + mb**2 + 1e-4) * (va + vb + 9e-4))).mean()

    x32, x64 = x.clone().requires_grad_(), x.double().requires_grad_()
    got, ref = ssim_rgb(x32, y), ssim_2d(x64, y.double())
    got.backward()
    ref.backward()
    assert got.dtype == torch.float32
    # float32 rounding: the value to about 8 eps (seen 0.5 eps), the gradient to 1e-5 of its
    # largest element (seen 7e-7; the 2-D window in float32 gives 2e-6)
    assert abs(got.item() - ref.item()) < 1e-6
    scale = x64.grad.abs().max().item()
    assert (x32.grad.double() - x64.grad).abs().max().item() < 1e-5 * scale


# ----------------------------------------------------------------------------- the command
def _write_pairs(tmp_path, n=2, size=(128, 128)):
    inp, gt = tmp_path / "in", tmp_path / "gt"
    inp.mkdir()
    gt.mkdir()
    pairs = []
    for i in range(n):
        r, t = photo_pair(seed=10 + i, h=size[0], w=size[1])
        Image.fromarray(r).save(inp / f"img{i}.png")
        Image.fromarray(t).save(gt / f"img{i}.png")
        pairs.append((r, t))
    return inp, gt, pairs


def test_eval_restored_json(tmp_path, capsys):
    inp, gt, pairs = _write_pairs(tmp_path)
    assert cli(["eval", "--input", str(inp), "--target", str(gt), "--restored", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [im["name"] for im in out["images"]] == ["img0", "img1"]
    for im, (r, t) in zip(out["images"], pairs):
        assert im["psnr"] == pytest.approx(psnr(r, t))
        assert im["ssim"] == pytest.approx(ssim(r, t))
    assert out["mean"]["psnr"] == pytest.approx(np.mean([psnr(r, t) for r, t in pairs]))
    assert set(out["mean"]) == {"psnr", "ssim"}


def test_eval_runs_the_model_and_prints_a_table(tmp_path, capsys):
    inp, gt, pairs = _write_pairs(tmp_path, n=1)
    torch.manual_seed(0)
    model = ERR().eval()
    weights = save_checkpoint(model, tmp_path / "w.pth")
    args = ["eval", "--input", str(inp), "--target", str(gt), "--weights", str(weights), "--device", "cpu", "--crop-border", "0"]
    assert cli(args) == 2  # seeded random weights: far out of range, the output check stops
    assert "img0" in capsys.readouterr().err
    assert cli([*args, "--accept-out-of-range"]) == 0
    table = capsys.readouterr().out
    expected = restore_image(model, pairs[0][0], accept_out_of_range=True)
    value = psnr(expected, pairs[0][1], crop_border=0)
    assert f"{value:.3f}" in table and "mean" in table and "img0" in table


def test_eval_unpaired_and_lpips_errors(tmp_path, capsys, monkeypatch):
    inp, gt, _ = _write_pairs(tmp_path)
    (gt / "img1.png").rename(gt / "other.png")
    assert cli(["eval", "--input", str(inp), "--target", str(gt), "--restored"]) == 1
    err = capsys.readouterr().err
    assert "img1" in err and "other" in err and "file name" in err
    (gt / "other.png").rename(gt / "img1.png")
    monkeypatch.setitem(sys.modules, "lpips", None)  # as if the optional package were not installed
    assert cli(["eval", "--input", str(inp), "--target", str(gt), "--restored", "--lpips"]) == 1
    assert "pip install 'err-stream[train]'" in capsys.readouterr().err
