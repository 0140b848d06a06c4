"""Siting-aware chroma resampling (4:2:0/4:2:2/... <-> 4:4:4), as zimg does it, in torch.

zimg (VapourSynth's ``resize``; FFmpeg's ``zscale``) resamples chroma with the same filter as
luma, by default bicubic with b = 0, c = 0.5 (Catmull-Rom), placing each chroma sample where
the stream's chroma location says it is:

* with subsampling factor ``f`` (2 for 4:2:0/4:2:2, 4 for 4:1:1), chroma sample ``i`` sits at
  luma index ``f * i`` when sited left (or top), ``f * i + (f - 1) / 2`` when centred, and
  ``f * i + f - 1`` at the bottom;
* upsampling evaluates the 4-tap kernel at each luma sample's position on the chroma grid (a
  left-sited sample is copied, the one between two is -1/16, 9/16, 9/16, -1/16);
* downsampling widens the kernel by ``f`` (it is a low-pass filter at the chroma rate) and
  centres it on each chroma sample's position; weights are normalised to sum to one;
* samples beyond an edge mirror back into the picture (index -1 reads 0, -2 reads 1).

Each direction is one separable pass per subsampled axis: a convolution (a polyphase bank
of ``f`` kernels when upsampling, a strided kernel when downsampling) written as weighted
sums of strided slices after mirror padding by index, vectorised over the whole plane, in
float32 on whatever device the planes are on.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

# Catmull-Rom: zimg's bicubic defaults (b = 0, c = 0.5), which VapourSynth's resize.Bicubic
# uses for chroma too unless told otherwise.
B, C = 0.0, 0.5


def bicubic(x: float, b: float = B, c: float = C) -> float:
    """Mitchell-Netravali's cubic with parameters (b, c), as zimg's BicubicFilter."""
    x = abs(x)
    if x < 1.0:
        return ((12 - 9 * b - 6 * c) * x**3 + (-18 + 12 * b + 6 * c) * x**2 + (6 - 2 * b)) / 6
    if x < 2.0:
        return ((-b - 6 * c) * x**3 + (6 * b + 30 * c) * x**2 + (-12 * b - 48 * c) * x + (8 * b + 24 * c)) / 6
    return 0.0


def site_offset(placement: str, factor: int) -> float:
    """Luma index (sample centres at integers) of chroma sample 0 along one axis."""
    return {"left": 0.0, "top": 0.0, "center": (factor - 1) / 2, "bottom": factor - 1.0}[placement]


@lru_cache(maxsize=64)
def _up_taps(factor: int, offset: float) -> tuple[int, tuple[tuple[float, ...], ...]]:
    """(first tap's index relative to chroma sample m, weights per phase): luma sample
    ``factor * m + r`` is ``sum_t weights[r][t] * chroma[m + first + t]``."""
    phases = []
    for r in range(factor):
        u = (r - offset) / factor  # position on the chroma grid, relative to m
        base = math.floor(u) - 1
        phases.append((base, [bicubic(u - (base + t)) for t in range(4)]))
    first = min(b for b, _ in phases)
    size = max(b for b, _ in phases) + 4 - first
    rows = []
    for base, w in phases:
        row = [0.0] * size
        total = sum(w)
        for t in range(4):
            row[base - first + t] = w[t] / total
        rows.append(tuple(row))
    return first, tuple(rows)


@lru_cache(maxsize=64)
def _down_taps(factor: int, offset: float) -> tuple[int, tuple[float, ...]]:
    """(first tap's index relative to luma sample factor * i, weights): chroma sample i is
    ``sum_t weights[t] * luma[factor * i + first + t]``."""
    lo = math.floor(offset - 2 * factor) + 1
    hi = math.ceil(offset + 2 * factor) - 1
    w = [bicubic((t - offset) / factor) for t in range(lo, hi + 1)]
    total = sum(w)
    return lo, tuple(v / total for v in w)


# The index tensors are made once per size and device: a host-to-device copy per frame
# would wait for the model's work queued on the stream before it.
@lru_cache(maxsize=256)
def _mirror_index(first: int, count: int, size: int, device: torch.device) -> torch.Tensor:
    """Indices first..first+count-1 into an axis of ``size`` samples, mirrored at the edges
    as zimg does (half-sample symmetric, then clamped)."""
    k = torch.arange(first, first + count, dtype=torch.float64) + 0.5
    k = torch.where(k < 0, -k, torch.where(k >= size, 2.0 * size - k, k))
    return k.clamp(0, size - 0.5).floor().long().to(device)


def _filter_axis(x: torch.Tensor, rows, first: int, out_count: int, stride: int, dim: int) -> torch.Tensor:
    """Apply the taps ``rows`` (one row of K weights per phase) along ``dim`` (-1 or -2) of
    N x H x W ``x``: output j of phase p = sum_t rows[p][t] * x[j * stride + first + t],
    mirrored at the edges. Returns N x P x H' x W'.

    A sum of strided slices, not ``conv2d``: cuDNN may compute a float32 convolution in TF32
    (allowed by default on Ampere and later), which keeps 10 mantissa bits: a quarter of a
    code value at 10 bits, 16 at 16 bits. These are a few multiply-adds per sample, in
    float32 on every device."""
    size = x.shape[dim]
    span = (out_count - 1) * stride + 1
    x = x.index_select(dim, _mirror_index(first, span + len(rows[0]) - 1, size, x.device))
    phases = []
    for row in rows:
        acc = None
        for t, w in enumerate(row):
            if w == 0.0:
                continue
            part = x[..., t : t + span : stride] if dim == -1 else x[..., t : t + span : stride, :]
            acc = part * w if acc is None else acc.add_(part, alpha=w)
        phases.append(acc)
    return torch.stack(phases, dim=1)


def upsample(c: torch.Tensor, sx: int, sy: int, height: int, width: int, placement: tuple[str, str]) -> torch.Tensor:
    """Chroma planes (N x h x w float) -> N x height x width, sited as ``placement``
    (horizontal, vertical); ``sx``/``sy`` are log2 of the subsampling factors."""
    for dim, s, size, where in ((-1, sx, width, placement[0]), (-2, sy, height, placement[1])):
        if not s:
            continue
        f = 1 << s
        first, rows = _up_taps(f, site_offset(where, f))
        n = c.shape[dim]
        out = _filter_axis(c, rows, first, n, 1, dim)  # N x f x h x w: phase r of sample m
        if dim == -1:
            c = out.permute(0, 2, 3, 1).reshape(c.shape[0], c.shape[1], n * f)[..., :size]
        else:
            c = out.permute(0, 2, 1, 3).reshape(c.shape[0], n * f, c.shape[2])[:, :size]
    return c


def downsample(c: torch.Tensor, sx: int, sy: int, placement: tuple[str, str]) -> torch.Tensor:
    """Full-resolution chroma (N x H x W float) -> N x ceil(H / 2^sy) x ceil(W / 2^sx)."""
    for dim, s, where in ((-1, sx, placement[0]), (-2, sy, placement[1])):
        if not s:
            continue
        f = 1 << s
        first, taps = _down_taps(f, site_offset(where, f))
        count = -(-c.shape[dim] // f)
        c = _filter_axis(c, (taps,), first, count, f, dim)[:, 0]
    return c
