"""Padding to the model's multiple, as the reference inference does (reflect, right/bottom)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def padded_size(h: int, w: int, multiple: int = 128) -> tuple[int, int]:
    return -(-h // multiple) * multiple, -(-w // multiple) * multiple


def pad_to_multiple(x: torch.Tensor, multiple: int = 128) -> torch.Tensor:
    """Reflect-pad the bottom and right of B x C x H x W to multiples of ``multiple``.

    Reflect padding needs the pad to be smaller than the side. For tiny inputs (e.g. 5 x 5,
    or 129 x 1) we fall back, per axis, to repeated reflection (mirror the already padded
    image again until it is large enough: the symmetric periodic extension), and to edge
    replication for a side of 1 pixel, which has nothing to mirror.
    """
    h, w = x.shape[-2:]
    ph, pw = padded_size(h, w, multiple)
    x = _pad_axis(x, ph - h, dim=-2)
    return _pad_axis(x, pw - w, dim=-1)


def _pad_axis(x: torch.Tensor, pad: int, dim: int) -> torch.Tensor:
    if pad <= 0:
        return x
    spec = (0, 0, 0, 0)
    while pad > 0:
        size = x.shape[dim]
        if size == 1:
            step, mode = pad, "replicate"
        else:
            step, mode = min(pad, size - 1), "reflect"
        spec = (0, step, 0, 0) if dim == -1 else (0, 0, 0, step)
        x = F.pad(x, spec, mode=mode)
        pad -= step
    return x
