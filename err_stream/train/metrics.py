"""Image quality metrics as the paper reports them (basicsr's definitions).

* PSNR and SSIM on the Y channel of BT.601 YCbCr (the MATLAB ``rgb2ycbcr`` formula,
  Y in [16, 235] for RGB in [0, 255]), after cropping ``crop_border`` pixels from every side.
* SSIM: 11 x 11 Gaussian window with sigma 1.5, computed on the valid region only (no
  padding), C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2, the mean of the SSIM map.
* LPIPS (AlexNet) through the optional ``lpips`` package.

Inputs are H x W x 3 numpy arrays: uint8 (0..255), uint16 (scaled to 0..255), or float in
[0, 1] (scaled to 0..255). Everything is computed in float64.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError, named

__all__ = ["to_255", "rgb_to_y", "psnr", "ssim", "image_metrics", "LPIPS"]

# MATLAB rgb2ycbcr's luma row, for RGB in [0, 1] giving Y in [16, 235].
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966])


def to_255(image: np.ndarray) -> np.ndarray:
    """H x W x C image as float64 on the 0..255 scale (uint8, uint16 or float in [0, 1])."""
    if image.dtype == np.uint8:
        return image.astype(np.float64)
    if image.dtype == np.uint16:
        return image.astype(np.float64) / 257.0
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float64) * 255.0
    raise ValueError(f"unsupported image dtype {image.dtype}; use uint8, uint16 or float in [0, 1]")


def rgb_to_y(image_255: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB image on the 0..255 scale: H x W x 3 -> H x W, in [16, 235]."""
    return image_255 @ _Y_WEIGHTS / 255.0 + 16.0


def _prepare(a: np.ndarray, b: np.ndarray, crop_border: int, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    a, b = to_255(a), to_255(b)
    if y_channel and a.ndim == 3 and a.shape[2] == 3:
        a, b = rgb_to_y(a), rgb_to_y(b)
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    return a, b


def psnr(restored: np.ndarray, target: np.ndarray, crop_border: int = 4, y_channel: bool = True) -> float:
    """PSNR in dB (peak 255); ``inf`` for identical images."""
    a, b = _prepare(restored, target, crop_border, y_channel)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


@lru_cache(maxsize=4)
def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)[None, None]


def _ssim_plane(a: np.ndarray, b: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    win = _gaussian_window()
    x = torch.from_numpy(np.ascontiguousarray(a))[None, None]
    y = torch.from_numpy(np.ascontiguousarray(b))[None, None]
    # Valid region only: the statistics of every window that lies fully inside the image.
    mx, my = F.conv2d(x, win), F.conv2d(y, win)
    sxx = F.conv2d(x * x, win) - mx**2
    syy = F.conv2d(y * y, win) - my**2
    sxy = F.conv2d(x * y, win) - mx * my
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return float(m.mean())


def ssim(restored: np.ndarray, target: np.ndarray, crop_border: int = 4, y_channel: bool = True) -> float:
    """SSIM (mean over channels when not on Y)."""
    a, b = _prepare(restored, target, crop_border, y_channel)
    if min(a.shape[:2]) < 11:
        raise ValueError(f"image too small for SSIM's 11x11 window after cropping: {a.shape[:2]}")
    if a.ndim == 2:
        return _ssim_plane(a, b)
    return float(np.mean([_ssim_plane(a[..., c], b[..., c]) for c in range(a.shape[2])]))


def image_metrics(restored: np.ndarray, target: np.ndarray, crop_border: int = 4) -> dict[str, float]:
    """``{"psnr", "ssim"}`` on the Y channel, as in the paper's tables."""
    return {"psnr": psnr(restored, target, crop_border), "ssim": ssim(restored, target, crop_border)}


class LPIPS:
    """LPIPS (AlexNet) distance through the optional ``lpips`` package (lower is better).

    Raises :class:`UserError` with what to install when the package or the AlexNet weights
    (which torchvision downloads on first use) are unavailable.
    """

    def __init__(self, device: str | torch.device = "cpu") -> None:
        try:
            import lpips  # optional extra
        except ImportError:
            raise UserError("LPIPS needs the 'lpips' package: pip install 'err-stream[train]'") from None
        try:
            self.net = lpips.LPIPS(net="alex", verbose=False).to(device).eval()
        except Exception as e:  # torchvision fetches AlexNet's weights from the internet
            raise UserError(
                "LPIPS: could not load the AlexNet weights it needs "
                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); they are downloaded by torchvision "
                "on first use: run once with internet access, or put alexnet-owt-7be5be79.pth in "
                f"$TORCH_HOME/hub/checkpoints, or leave out {named('lpips')}"
            ) from None
        self.device = device

    @torch.no_grad()
    def __call__(self, restored: np.ndarray, target: np.ndarray) -> float:
        def t(a: np.ndarray) -> torch.Tensor:
            x = torch.from_numpy(to_255(a) / 255.0).float().permute(2, 0, 1)[None].to(self.device)
            return x * 2 - 1  # lpips expects [-1, 1]

        return float(self.net(t(restored), t(target)).item())
