"""Small building blocks shared by ERR's three stages.

Attribute names mirror the published checkpoints' state-dict keys (``body.0``, ``dwconv``...),
so the modules load them with strict key checking.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """``torch.channels_last`` for a B x C x H x W map stored channels-last, else contiguous:
    the layout that results derived from ``x`` keep (no silent NCHW/NHWC flips)."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


class LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` whose statistics and affine step run in float32 whatever the input's
    dtype (a float32 island in a half-weight model); returns the input's dtype. For float32
    input it is ``nn.LayerNorm`` exactly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps)
        return y.to(x.dtype)


class ChannelLayerNorm(nn.Module):
    """Per-pixel LayerNorm over the channels of a B x C x H x W map (biased variance, eps 1e-5),
    in float32 whatever the input's dtype; the output keeps the input's dtype and layout.

    Checkpoint layout: ``body.weight``, ``body.bias``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = _LayerNormParams(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.layer_norm over a channels-last view computes exactly the upstream formula
        # (x - mean) / sqrt(var + eps) * w + b, in one fused kernel.
        w, b = self.body.weight.float(), self.body.bias.float()
        y = F.layer_norm(x.permute(0, 2, 3, 1).float(), (x.shape[1],), w, b, 1e-5).to(x.dtype)
        return y.permute(0, 3, 1, 2).contiguous(memory_format=memory_format_of(x))


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


class PixelShuffle(nn.PixelShuffle):
    """``nn.PixelShuffle`` that keeps a channels-last input channels-last (on CUDA the
    built-in returns NCHW for NHWC input, which makes every following conv convert)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if memory_format_of(x) is not torch.channels_last:
            return super().forward(x)
        r = self.upscale_factor
        b, c, h, w = x.shape
        # NHWC: channel c*r*r + i*r + j of pixel (h, w) goes to pixel (h*r + i, w*r + j).
        t = x.permute(0, 2, 3, 1).reshape(b, h, w, c // (r * r), r, r)
        t = t.permute(0, 1, 4, 2, 5, 3).reshape(b, h * r, w * r, c // (r * r))
        return t.permute(0, 3, 1, 2)


class ConvPixelShuffleUp(nn.Module):
    """Upsample by ``factor``: 3x3 conv to ``out * factor^2`` channels, no bias, then PixelShuffle."""

    def __init__(self, channels: int, factor: int, out_channels: int | None = None) -> None:
        super().__init__()
        out = out_channels or channels
        self.body = nn.Sequential(nn.Conv2d(channels, out * factor * factor, 3, 1, 1, bias=False), PixelShuffle(factor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ImageConv(nn.Conv2d):
    """The 3x3 conv that turns features into a stage's RGB image, computed in float32 whatever
    the features' dtype (a float32 island in half models, and outside autocast).

    bfloat16 keeps 8 significant bits: a bf16 image could not hold 8-bit video's code values
    above one half (its steps there are 1/256 wide), let alone 10-bit ones. The images and
    their residual sums (``out1 = outer1(u1) + x`` ...) therefore stay float32; the cost is a
    few C -> 3 convolutions."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            return super().forward(x.to(self.weight.dtype))


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
