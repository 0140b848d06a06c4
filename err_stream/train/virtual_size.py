""""Virtual frame size": train ERR's frequency branch on the inputs of frames far larger than the crop.

The FW-KAN branch sees only the DC coefficient of its H/2 map, ``mean * sqrt(h/2 * w/2)``,
which grows with the frame side (x15 from 256 px to 4K, x30 to 8K). A model trained on
small crops never sees those values, and its rationals (odd polynomials over even ones)
can blow up there. Running the branch as if the frame had ``pixels`` pixels, with the same
mean, is exact for that branch (nothing else in ERR depends on the frame size) and costs
nothing: the rest of the network still works on the crop.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

__all__ = ["virtual_frame_size", "draw_virtual_pixels", "UHD_8K_PIXELS"]

UHD_8K_PIXELS = 7680 * 4320


@contextmanager
def virtual_frame_size(model: nn.Module, pixels: float | None) -> Iterator[None]:
    """Within the block, ``model``'s frequency branch (``hfr_frequency``) computes as for a
    frame of ``pixels`` pixels (H x W) with the same mean features; None: no change."""
    if pixels is None:
        yield
        return
    original = model.hfr_frequency

    def hfr_frequency(dk_sum: torch.Tensor, n_pixels: int) -> torch.Tensor:
        factor = (pixels / 4) / n_pixels  # the branch works at H/2 x W/2
        return original(dk_sum * factor, n_pixels * factor)

    model.hfr_frequency = hfr_frequency  # instance attribute: shadows the method
    try:
        yield
    finally:
        del model.hfr_frequency


def draw_virtual_pixels(
    rng: np.random.Generator, crop_pixels: int, max_pixels: int, probability: float, ramp: float = 1.0
) -> float | None:
    """None (the crop's own size) with ``1 - probability``, else a frame size drawn
    log-uniformly in side length between the crop and the largest size so far.

    ``ramp`` in [0, 1] widens the range geometrically from the crop (0) to ``max_pixels`` (1):
    weights trained without this augmentation (or with kat_rational's denominators stuck at
    0) can overflow at 8K, and a curriculum lets their denominators grow first.
    """
    if probability <= 0 or rng.uniform() >= probability or max_pixels <= crop_pixels:
        return None
    lo = math.log(math.sqrt(crop_pixels))
    hi = lo + min(1.0, max(0.0, ramp)) * (math.log(math.sqrt(max_pixels)) - lo)
    side = math.exp(rng.uniform(lo, hi))
    return side * side
