"""Colour primaries as chromaticities, and the 3 x 3 conversion of linear RGB between them.

A conversion between two sets of primaries is a 3 x 3 matrix on *linear* light (through
CIE XYZ, same white point: every set here is D65). It is exactly invertible: a colour the
destination cannot show comes out with a negative (or above-white) component, which is kept,
so converting back restores it. Nothing here clips.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .codes import Primaries

D65 = (0.3127, 0.3290)

# CIE 1931 (x, y) of R, G, B (H.273 table 2).
CHROMATICITIES: dict[Primaries, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    Primaries.BT709: ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060)),
    Primaries.BT470BG: ((0.640, 0.330), (0.290, 0.600), (0.150, 0.060)),
    Primaries.SMPTE170M: ((0.630, 0.340), (0.310, 0.595), (0.155, 0.070)),
    Primaries.SMPTE240M: ((0.630, 0.340), (0.310, 0.595), (0.155, 0.070)),
    Primaries.BT2020: ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)),
    Primaries.SMPTE432: ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)),  # Display P3 (D65)
}


def rgb_to_xyz_matrix(primaries: Primaries) -> np.ndarray:
    """The normalised primary matrix (linear RGB -> XYZ, Y of white = 1), float64."""
    if primaries not in CHROMATICITIES:
        raise ValueError(f"no chromaticities for primaries {primaries}")
    xy = np.array(CHROMATICITIES[primaries], dtype=np.float64)
    m = np.stack([xy[:, 0] / xy[:, 1], np.ones(3), (1.0 - xy[:, 0] - xy[:, 1]) / xy[:, 1]])
    wx, wy = D65
    white = np.array([wx / wy, 1.0, (1.0 - wx - wy) / wy])
    return m * np.linalg.solve(m, white)


@lru_cache(maxsize=32)
def conversion_matrix(src: Primaries, dst: Primaries) -> tuple[tuple[float, ...], ...]:
    """The 3 x 3 matrix taking linear RGB in ``src`` primaries to linear RGB in ``dst``
    (computed in float64), as nested tuples."""
    m = np.linalg.solve(rgb_to_xyz_matrix(dst), rgb_to_xyz_matrix(src))
    return tuple(tuple(float(v) for v in row) for row in m)


def convert(rgb: torch.Tensor, src: Primaries, dst: Primaries) -> torch.Tensor:
    """Linear B x 3 x H x W RGB from ``src`` to ``dst`` primaries.

    Written as nine float32 multiply-adds rather than a matmul, which CUDA may run in TF32
    (10 mantissa bits: visible after the PQ curve)."""
    if src == dst:
        return rgb
    m = conversion_matrix(src, dst)
    ch = rgb.float().unbind(1)
    return torch.stack([ch[0] * row[0] + ch[1] * row[1] + ch[2] * row[2] for row in m], dim=1)
