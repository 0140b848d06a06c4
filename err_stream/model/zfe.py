"""Stage 1, the zero-frequency enhancer (ZFE): prior-guided channel attention at H/8 and H/16."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ChannelLayerNorm, StridedConvDown, memory_format_of


class GlobalPrior(nn.Module):
    """The ZFE's global prior ("spp"): three pooled views of the stem features at H/8, each
    modulated by the global mean ``g`` as ``pool * g + g``.

    Split in two so exact tiling can compute the local part tile by tile:
    :meth:`pooled` gives the per-8x8-block views, :meth:`combine` applies the global mean.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.downsample1 = StridedConvDown(channels, 4)
        self.downsample2 = StridedConvDown(channels, 2)

    def pooled(self, e1: torch.Tensor) -> torch.Tensor:
        """The three H/8 pooled views (3C channels), before the global modulation.
        H and W of ``e1`` must be multiples of 8 (adaptive pooling is then an exact mean)."""
        h8, w8 = e1.shape[-2] // 8, e1.shape[-1] // 8
        return torch.cat(
            [
                F.adaptive_avg_pool2d(self.downsample1(e1), (h8, w8)),
                F.adaptive_avg_pool2d(self.downsample2(e1), (h8, w8)),
                F.adaptive_avg_pool2d(e1, (h8, w8)),
            ],
            dim=1,
        )

    @staticmethod
    def combine(pooled: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        g = mean.repeat(1, 3)[:, :, None, None]
        return pooled * g + g

    def forward(self, e1: torch.Tensor) -> torch.Tensor:
        return self.combine(self.pooled(e1), e1.mean(dim=(2, 3)))


class BiBranchGate(nn.Module):
    """Bi-branch gated modulation unit (BGMU): mixes features ``x`` with the prior ``p``.
    ``fuse2`` is unused upstream but kept: the checkpoints contain it."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fuse1 = nn.Sequential(nn.Conv2d(channels, channels, 1))
        self.fuse2 = nn.Sequential(nn.Conv2d(channels, channels, 1))
        self.gate = nn.Sequential(nn.Conv2d(channels, 2 * channels, 3, 1, 1), nn.GELU())
        self.conv = nn.Sequential(nn.Conv2d(2 * channels, channels, 1))

    def forward(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        g1, g2 = self.gate(self.fuse1(x) * self.fuse1(p)).chunk(2, dim=1)
        x = x * g1 + p
        p = p * g2 + x
        return self.conv(torch.cat([x, p], dim=1))


class PriorMatching(nn.Module):
    """Upstream's ``matching_transformation``: project the prior, gate, then a gated
    depthwise MLP with a residual."""

    def __init__(self, channels: int, expansion: float = 2.0) -> None:
        super().__init__()
        hidden = int(channels * expansion)
        self.matching = BiBranchGate(channels)
        self.perception = nn.Conv2d(3 * channels, channels, 1)
        self.dwconv = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden),
            nn.GELU(),
            nn.Conv2d(hidden, channels, 1),
        )
        self.conv12 = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        f = self.matching(x, self.perception(prior))
        return self.conv12(self.dwconv(f) * f) + x


class PriorChannelAttention(nn.Module):
    """Transposed (channel x channel) attention over all H*W pixels, q/k/v each passed through
    the same :class:`PriorMatching` (upstream quirk the weights depend on)."""

    def __init__(self, channels: int, num_heads: int, expansion: float = 2.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.qkv_dwconv = nn.Conv2d(3 * channels, 3 * channels, 3, 1, 1, groups=3 * channels)
        self.project_out = nn.Conv2d(channels, channels, 1)
        self.matching_transformation = PriorMatching(channels, expansion)

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        # q, k and v share one batched pass through the matching transformation.
        # (cat, not repeat: repeat returns NCHW whatever the input's layout)
        qkv = self.matching_transformation(torch.cat([q, k, v], dim=0), torch.cat([prior] * 3, dim=0))
        q, k, v = qkv.reshape(3, b, self.num_heads, c // self.num_heads, h * w).unbind(0)
        # Norms over all h*w pixels and the softmax in float32 (a float32 island in half models).
        q = F.normalize(q.float(), dim=-1)
        k = F.normalize(k.float(), dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature.float()).softmax(dim=-1)
        y = (attn.to(v.dtype) @ v).reshape(b, c, h, w)
        return self.project_out(y.contiguous(memory_format=memory_format_of(x)))


class PriorFeedForward(nn.Module):
    """Feed-forward with its own prior matching between the grouped input/output convs."""

    def __init__(self, channels: int, expansion: float = 2.0) -> None:
        super().__init__()
        hidden = int(channels * expansion)
        self.project_in = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.Conv2d(hidden, channels, 3, 1, 1, groups=channels)
        )
        self.matching_transformation = PriorMatching(channels, expansion)
        self.project_out = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, 1, 1, groups=channels), nn.Conv2d(hidden, channels, 1)
        )

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        return self.project_out(self.matching_transformation(self.project_in(x), prior))


class PriorTransformerBlock(nn.Module):
    """Pre-norm attention + feed-forward, both conditioned on the normalised prior."""

    def __init__(self, channels: int, num_heads: int, expansion: float = 2.0) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(channels)
        self.attn = PriorChannelAttention(channels, num_heads, expansion)
        self.norm2 = ChannelLayerNorm(channels)
        self.ffn = PriorFeedForward(channels, expansion)
        self.LayerNorm = ChannelLayerNorm(3 * channels)  # noqa: N815 - checkpoint key

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        prior = self.LayerNorm(prior)
        x = x + self.attn(self.norm1(x), prior)
        return x + self.ffn(self.norm2(x), prior)


class PriorResidualGroup(nn.Module):
    """``unit_num`` transformer blocks with a scaled residual: ``0.2 * blocks(x) + x``."""

    def __init__(self, channels: int, num_heads: int, units: int = 3, expansion: float = 2.0) -> None:
        super().__init__()
        self.TransformerBlock = nn.ModuleList(  # noqa: N815 - checkpoint key
            PriorTransformerBlock(channels, num_heads, expansion) for _ in range(units)
        )

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        y = x
        for blk in self.TransformerBlock:
            y = blk(y, prior)
        return 0.2 * y + x
