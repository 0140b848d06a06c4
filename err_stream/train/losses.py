"""ERR's training objective (the paper's UHD-LL recipe).

For the three outputs ``out1`` (zero-frequency stage), ``out2`` (low-frequency stage) and
``out`` (final):

* L1 (plain mean) on each, summed;
* (1 - SSIM) on each, summed (SSIM on RGB in [0, 1], 11 x 11 Gaussian window, sigma 1.5,
  zero-padded "same" filtering, done as two 1-D passes, C1 = 0.01^2, C2 = 0.03^2, mean over
  the map);
* DCT losses on the orthonormal DCT of the whole image: *global*, the L1 of the [0, 0]
  coefficient of ``out1``; *low*, the L1 of the first ``split x split`` coefficients except
  [0, 0] of ``out2``; *high*, the sum of the L1s of the three blocks outside the first
  ``split x split`` of ``out``.

Each stage is thus pulled towards the band it is responsible for, on top of the pixel losses.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from ..ops import dct2

__all__ = ["LossWeights", "ERRLoss", "ssim_rgb"]


@lru_cache(maxsize=8)
def _window(
    channels: int, device: torch.device, dtype: torch.dtype, size: int = 11, sigma: float = 1.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Gaussian window as its two 1-D factors, (channels, 1, 1, size) and (channels, 1, size, 1).
    The 2-D window is their outer product, so filtering with one then the other is the same
    zero-padded filtering (within float rounding) at 2 x 11 instead of 121 products a pixel."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = (g / g.sum()).to(device=device, dtype=dtype)
    across = g.view(1, 1, 1, size).expand(channels, 1, 1, size).contiguous()
    return across, across.view(channels, 1, size, 1)


def ssim_rgb(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of B x C x H x W images in [0, 1] (differentiable, "same" zero padding)."""
    c = x.shape[1]
    # The five local statistics filtered at once (one grouped convolution per direction).
    stats = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    across, down = _window(5 * c, x.device, x.dtype)
    pad = across.shape[-1] // 2
    stats = F.conv2d(F.conv2d(stats, across, padding=(0, pad), groups=5 * c), down, padding=(pad, 0), groups=5 * c)
    mx, my, exx, eyy, exy = stats.split(c, dim=1)
    sxx = exx - mx * mx
    syy = eyy - my * my
    sxy = exy - mx * my
    c1, c2 = 0.01**2, 0.03**2
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return m.mean()


@dataclass(frozen=True)
class LossWeights:
    l1: float = 1.0
    ssim: float = 1.0
    dct_global: float = 0.5
    dct_low: float = 1.0
    dct_high: float = 0.5
    dct_split: int = 64  # side of the low-frequency block of DCT coefficients


class ERRLoss(torch.nn.Module):
    """``loss(out, out1, out2, target) -> (total, {term: value})``; computed in float32."""

    def __init__(self, weights: LossWeights | None = None) -> None:
        super().__init__()
        self.w = weights or LossWeights()

    def forward(
        self, out: torch.Tensor, out1: torch.Tensor, out2: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out, out1, out2, target = (t.float() for t in (out, out1, out2, target))
        w = self.w
        terms: dict[str, torch.Tensor] = {}
        outputs = (out1, out2, out)
        if w.l1:
            terms["l1"] = w.l1 * sum(F.l1_loss(o, target) for o in outputs)
        if w.ssim:
            terms["ssim"] = w.ssim * sum(1 - ssim_rgb(o, target) for o in outputs)
        if w.dct_global or w.dct_low or w.dct_high:
            s = w.dct_split
            dt = dct2(target)
            if w.dct_global:
                terms["dct_global"] = w.dct_global * F.l1_loss(dct2(out1)[..., 0, 0], dt[..., 0, 0])
            if w.dct_low:
                d2 = dct2(out2)
                b, c = d2.shape[:2]
                low = d2[..., :s, :s].reshape(b, c, -1)[..., 1:]
                low_t = dt[..., :s, :s].reshape(b, c, -1)[..., 1:]
                terms["dct_low"] = w.dct_low * F.l1_loss(low, low_t)
            if w.dct_high:
                d = dct2(out)
                blocks = ((slice(None, s), slice(s, None)), (slice(s, None), slice(None, s)), (slice(s, None), slice(s, None)))
                terms["dct_high"] = w.dct_high * sum(F.l1_loss(d[..., r, c], dt[..., r, c]) for r, c in blocks)
        total = sum(terms.values())
        return total, terms
