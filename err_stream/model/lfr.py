"""Stage 2, the low-frequency restorer (LFR): a small U-Net of Mamba (SS2D) blocks at H/8, H/16."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import selective_scan
from .layers import ConvPixelShuffleUp, LayerNorm, PixelShuffle, StridedConvDown, memory_format_of


class SS2D(nn.Module):
    """2-D selective scan: four scan orders over the h x w grid (row-major, column-major and
    both reversed), each with its own projections, summed back in row-major order.
    Parameters are stacked per order (``x_proj_weight`` (4, R+2N, D) ...) as in the checkpoints."""

    def __init__(self, d_model: int, d_state: int = 16, expand: float = 2.0, d_conv: int = 3) -> None:
        super().__init__()
        self.d_inner = d_inner = int(expand * d_model)
        self.d_state = d_state
        self.dt_rank = dt_rank = math.ceil(d_model / 16)
        k = 4
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        self.conv2d = nn.Conv2d(d_inner, d_inner, d_conv, padding=(d_conv - 1) // 2, groups=d_inner)
        self.x_proj_weight = nn.Parameter(torch.empty(k, dt_rank + 2 * d_state, d_inner))
        self.dt_projs_weight = nn.Parameter(torch.empty(k, d_inner, dt_rank))
        self.dt_projs_bias = nn.Parameter(torch.empty(k, d_inner))
        self.A_logs = nn.Parameter(torch.empty(k * d_inner, d_state))  # noqa: N815 - checkpoint key
        self.Ds = nn.Parameter(torch.ones(k * d_inner))  # noqa: N815 - checkpoint key
        self.out_norm = LayerNorm(d_inner)
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, dt_min: float = 1e-3, dt_max: float = 0.1, dt_floor: float = 1e-4) -> None:
        """Mamba's initialisation (S4D-real A, dt bias = inverse softplus of a log-uniform dt)."""
        k, d, r = self.dt_projs_weight.shape
        bound = (d + 0.0) ** -0.5
        nn.init.uniform_(self.x_proj_weight, -bound, bound)
        nn.init.uniform_(self.dt_projs_weight, -(r**-0.5), r**-0.5)
        dt = torch.exp(torch.rand(k, d) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp(min=dt_floor)
        self.dt_projs_bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.A_logs.copy_(torch.log(torch.arange(1, self.d_state + 1, dtype=torch.float32)).repeat(k * d, 1))
        self.Ds.fill_(1.0)

    def _scan(self, x: torch.Tensor) -> torch.Tensor:
        """x: B x D x h x w (after the depthwise conv). Returns B x D x (h*w) in row-major order, float32."""
        b, d, h, w = x.shape
        length = h * w
        row = x.reshape(b, d, length)
        col = x.transpose(2, 3).reshape(b, d, length)
        xs = torch.stack([row, col, row.flip(-1), col.flip(-1)], dim=1)  # (b, 4, d, L)
        x_dbl = torch.einsum("bkdl,kcd->bkcl", xs, self.x_proj_weight)
        dts, Bs, Cs = x_dbl.split([self.dt_rank, self.d_state, self.d_state], dim=2)
        dts = torch.einsum("bkrl,kdr->bkdl", dts, self.dt_projs_weight)
        y = selective_scan(
            xs.reshape(b, 4 * d, length),
            dts.reshape(b, 4 * d, length),
            -torch.exp(self.A_logs.float()),
            Bs.float().contiguous(),
            Cs.float().contiguous(),
            self.Ds.float(),
            delta_bias=self.dt_projs_bias.float().reshape(-1),
            delta_softplus=True,
        ).reshape(b, 4, d, length)
        # Map each order back to row-major and sum (upstream's order of additions).
        y_row = y[:, 0]
        y_row_rev = y[:, 2].flip(-1)
        y_col = y[:, 1].reshape(b, d, w, h).transpose(2, 3).reshape(b, d, length)
        y_col_rev = y[:, 3].flip(-1).reshape(b, d, w, h).transpose(2, 3).reshape(b, d, length)
        return y_row + y_row_rev + y_col + y_col_rev

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """t: B x h x w x C tokens."""
        b, h, w, _ = t.shape
        x, z = self.in_proj(t).chunk(2, dim=-1)
        x = F.silu(self.conv2d(x.permute(0, 3, 1, 2).contiguous()))
        y = self._scan(x).transpose(1, 2).reshape(b, h, w, -1)
        # The scan's float32 output is normalised in float32 (a float32 island), then back to
        # the model's dtype for the projection.
        y = self.out_norm(y) * F.silu(z)
        return self.out_proj(y.to(z.dtype))


class GatedDepthwiseFFN(nn.Module):
    """1x1 expand, depthwise 3x3, ``GELU(a) * b`` gate, 1x1 project."""

    def __init__(self, channels: int, expansion: int = 2) -> None:
        super().__init__()
        hidden = channels * expansion
        self.conv1 = nn.Conv2d(channels, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.conv3 = nn.Conv2d(hidden // 2, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.conv2(self.conv1(x)).chunk(2, dim=1)
        return self.conv3(F.gelu(a) * b)


class ScanBlock(nn.Module):
    """LFSSBlock: ``x = t * skip_scale + SS2D(LN(t))``; ``x = x * skip_scale2 + FFN(LN(x))``."""

    def __init__(self, channels: int, d_state: int = 16, expand: float = 2.0) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(channels, eps=1e-6)
        self.self_attention = SS2D(channels, d_state=d_state, expand=expand)
        self.skip_scale = nn.Parameter(torch.ones(channels))
        self.conv_blk = GatedDepthwiseFFN(channels)
        self.ln_2 = LayerNorm(channels)
        self.skip_scale2 = nn.Parameter(torch.ones(channels))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """t: B x h x w x C."""
        x = t * self.skip_scale + self.self_attention(self.ln_1(t))
        y = self.conv_blk(self.ln_2(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x * self.skip_scale2 + y


class _Embedding(nn.Module):
    def __init__(self, conv: nn.Module, shuffle: int | None = None) -> None:
        super().__init__()
        self.embedding = nn.Sequential(conv) if shuffle is None else nn.Sequential(conv, PixelShuffle(shuffle))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(x)


class ScanGroup(nn.Module):
    """Upstream ``mambablock``: 2x2 patch embedding (wf -> 2wf at half size), ScanBlocks on the
    tokens, 3x3 conv + PixelShuffle back to wf channels at the input size."""

    def __init__(self, channels: int, depth: int = 2, expand: float = 2.0) -> None:
        super().__init__()
        self.embedding_out = _Embedding(nn.Conv2d(2 * channels, 4 * channels, 3, 1, 1, bias=False), shuffle=2)
        self.embedding_in = _Embedding(nn.Conv2d(channels, 2 * channels, 2, 2, bias=False))
        self.l_blk = nn.Sequential(*[ScanBlock(2 * channels, expand=expand) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embedding_in(x).permute(0, 2, 3, 1)
        for blk in self.l_blk:
            t = blk(t)
        return self.embedding_out(t.permute(0, 3, 1, 2).contiguous(memory_format=memory_format_of(x)))


class ScanUNet(nn.Module):
    """Upstream ``MambaNet`` (wf = 32): two scan groups down, two up, one skip, global residual."""

    def __init__(self, channels: int, width: int = 32, depth: int = 2) -> None:
        super().__init__()
        self.conv_01 = nn.Conv2d(channels, width, 3, 1, 1)
        self.down_group1 = ScanGroup(width, depth)
        self.downsample1 = StridedConvDown(width, 2)
        self.down_group2 = ScanGroup(width, depth)
        self.up_group1 = ScanGroup(width, depth)
        self.upsample1 = ConvPixelShuffleUp(width, 2)
        self.up_group2 = ScanGroup(width, depth)
        self.last = nn.Conv2d(width, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.down_group1(self.conv_01(x))
        skip = y
        y = self.up_group1(self.down_group2(self.downsample1(y)))
        y = self.up_group2(skip + self.upsample1(y))
        return self.last(y) + x
