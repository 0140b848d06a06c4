"""Small building blocks shared by ERR's three stages.

Attribute names mirror the published checkpoints' state-dict keys (``body.0``, ``dwconv``...),
so the modules load them with strict key checking.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelLayerNorm(nn.Module):
    """Per-pixel LayerNorm over the channels of a B x C x H x W map (biased variance, eps 1e-5).

    Checkpoint layout: ``body.weight``, ``body.bias``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = _LayerNormParams(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.layer_norm over a channels-last view computes exactly the upstream formula
        # (x - mean) / sqrt(var + eps) * w + b, in one fused kernel.
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.body.weight, self.body.bias, 1e-5)
        return y.permute(0, 3, 1, 2)


class _LayerNormParams(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))


class StridedConvDown(nn.Module):
    """Downsample by ``factor`` with a ``factor`` x ``factor`` stride-``factor`` conv, no bias."""

    def __init__(self, channels: int, factor: int, out_channels: int | None = None) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, out_channels or channels, factor, factor, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ConvPixelShuffleUp(nn.Module):
    """Upsample by ``factor``: 3x3 conv to ``out * factor^2`` channels, no bias, then PixelShuffle."""

    def __init__(self, channels: int, factor: int, out_channels: int | None = None) -> None:
        super().__init__()
        out = out_channels or channels
        self.body = nn.Sequential(nn.Conv2d(channels, out * factor * factor, 3, 1, 1, bias=False), nn.PixelShuffle(factor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ConvMlpBlock(nn.Module):
    """ERR's "ConvBlock": a full 3x3 conv (upstream calls it dwconv but it is not depthwise),
    a per-pixel MLP (Linear, GELU, Linear) scaled by ``gamma``, plus the block input."""

    def __init__(self, channels: int, layer_scale_init: float = 1e-6) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(channels, channels, 3, padding=1)
        self.pwconv1 = nn.Linear(channels, channels)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(channels, channels)
        self.gamma = nn.Parameter(layer_scale_init * torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(y))) * self.gamma
        return x + y.permute(0, 3, 1, 2)
