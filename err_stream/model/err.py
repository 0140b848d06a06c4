"""The ERR network ("From Zero to Detail", CVPR 2025).

The forward pass is written as alternating *shell* and *trunk* steps:

* shell steps run at full resolution and are local convolutions (small receptive field);
* trunk steps run at H/2 and below and are global (means, channel attention, scans, DCT).

:meth:`ERR.forward_stages` chains them on the whole frame. The exact-tiling engine
(:mod:`err_stream.engine`) calls the same shell steps tile by tile with halos and the trunk
steps on the whole (small) maps, so both paths share one implementation.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import ERRConfig
from .hfr import RationalKAN
from .layers import ConvMlpBlock, ConvPixelShuffleUp, ImageConv, StridedConvDown, memory_format_of
from .lfr import ScanUNet
from .zfe import GlobalPrior, PriorResidualGroup


def _conv3x3(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1))


def _image_conv(cin: int) -> nn.Sequential:
    return nn.Sequential(ImageConv(cin, 3, 3, 1, 1))


def _features(conv: nn.Sequential, *maps: torch.Tensor) -> torch.Tensor:
    """``conv`` on the channel concatenation of ``maps``, given in the conv's own dtype: the
    images (float32 even in half models, see :class:`ImageConv`) enter the features here."""
    x = maps[0] if len(maps) == 1 else torch.cat(maps, dim=1)
    return conv(x.to(conv[0].weight.dtype))


class ERR(nn.Module):
    """ERR restoration network. Input B x 3 x H x W RGB in [0, 1], H and W multiples of 128."""

    # Full-resolution pixels a tile needs around it for every shell step to be exact
    # (the largest receptive field of a shell step is under 16 pixels; 16 keeps tiles aligned).
    shell_halo = 16

    def __init__(self, config: ERRConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or ERRConfig()
        c, heads, units, ffn = cfg.channels, cfg.num_heads, cfg.unit_num, cfg.ffn_expansion_factor

        def group() -> PriorResidualGroup:
            return PriorResidualGroup(c, heads, units, ffn)

        # Stage 1: zero-frequency enhancer.
        self.enter1 = _conv3x3(3, c)
        self.spp = GlobalPrior(c)
        self.downsample1 = StridedConvDown(c, 8)
        self.block = nn.ModuleList(group() for _ in range(cfg.number_block))
        self.down = StridedConvDown(c, 2)
        self.downavg = StridedConvDown(3 * c, 2)
        # Upstream builds 2 * number_block groups here but runs only the first number_block.
        self.block1 = nn.ModuleList(group() for _ in range(2 * cfg.number_block))
        self.up = ConvPixelShuffleUp(c, 2)
        self.block2 = nn.ModuleList(group() for _ in range(cfg.number_block))
        self.upsample1 = ConvPixelShuffleUp(c, 8)  # in the checkpoints, never used upstream
        self.upsample = ConvPixelShuffleUp(c, 8)
        self.outer1 = _image_conv(c)
        # Stage 2: low-frequency restorer.
        self.enter2 = _conv3x3(c + 3, c)
        self.downsample2 = StridedConvDown(c, 4)
        self.middle = ScanUNet(c, cfg.scan_width, cfg.scan_depth)
        self.upsample2 = ConvPixelShuffleUp(c, 4)
        self.outer2 = _image_conv(c)
        # Stage 3: high-frequency refiner.
        self.enter3 = _conv3x3(c + 6, c)
        self.deep = ConvMlpBlock(c)
        self.embed_in = StridedConvDown(c, 2)
        self.deep1 = ConvMlpBlock(c)
        self.FW_KAN1 = RationalKAN(c, cfg.kan_groups)  # noqa: N815 - checkpoint key
        self.FW_KAN2 = RationalKAN(c, cfg.kan_groups)  # noqa: N815
        self.FW_KAN3 = RationalKAN(c, cfg.kan_groups)  # noqa: N815
        self.convf = nn.Conv2d(2 * c, c, 1)
        self.beta = nn.Parameter(torch.ones(c, 1, 1))
        self.embed_out = ConvPixelShuffleUp(c, 2)
        self.out = nn.Sequential(ConvMlpBlock(c), ConvMlpBlock(c), ImageConv(c, 3, 3, 1, 1))

    # ------------------------------------------------------------------ shell (full resolution)
    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """The ZFE's first features, ``enter1(x)``, in the model's feature dtype."""
        return _features(self.enter1, x)

    def shell_stem(
        self, x: torch.Tensor, core: tuple[slice, slice] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x -> (x1 at H/8, the prior's pooled views at H/8, per-channel float32 sum of the stem).

        ``core``: the (rows, cols) of ``x`` whose results are wanted (a tile without its halo,
        aligned to 8); the stem is computed on all of ``x`` so the core's borders are exact.
        """
        e1 = self.stem(x)
        if core is not None:
            e1 = e1[..., core[0], core[1]]
        return self.downsample1(e1), self.spp.pooled(e1), e1.sum(dim=(2, 3), dtype=torch.float32)

    def shell_zfe_out(self, s: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ZFE head and LFR stem: (s at H/8, x) -> (out1, x2 at H/4)."""
        u1 = self.upsample(s)
        out1 = self.outer1(u1) + x
        x2 = self.downsample2(_features(self.enter2, x, u1))
        return out1, x2

    def shell_lfr_out(self, m: torch.Tensor, x: torch.Tensor, out1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """LFR head and HFR stem: (m at H/4, x, out1) -> (out2, k1 the HFR's full-res features)."""
        u2 = self.upsample2(m)
        out2 = self.outer2(u2) + out1
        k1 = self.deep(_features(self.enter3, x, out1, u2))
        return out2, k1

    def shell_hfr_out(self, o: torch.Tensor, k1: torch.Tensor, out2: torch.Tensor) -> torch.Tensor:
        """HFR head: (o at H/2, k1, out2) -> out."""
        return self.out(self.embed_out(o) + k1) + out2

    # ------------------------------------------------------------------ trunk (H/2 and below)
    def trunk_zfe(self, x1: torch.Tensor, pooled: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        prior = self.spp.combine(pooled, mean.to(pooled.dtype))
        n = self.config.number_block
        # Upstream feeds x1 to every group of `block` (only the last one counts) ...
        for blk in self.block:
            s = blk(x1, prior)
        skip = s
        s = self.down(s)
        prior_half = self.downavg(prior)
        # ... runs only the first number_block groups of block1 ...
        for blk in self.block1[:n]:
            s = blk(s, prior_half)
        s = self.up(s)
        # ... and adds the skip before every group of block2.
        for blk in self.block2:
            s = blk(s + skip, prior)
        return s

    def trunk_lfr(self, x2: torch.Tensor) -> torch.Tensor:
        return self.middle(x2)

    def trunk_hfr(self, h: torch.Tensor) -> torch.Tensor:
        """h (embed_in output, H/2) -> o (H/2)."""
        dk = self.deep1(h)
        return self.hfr_mix(dk, self.hfr_frequency(dk.sum(dim=(2, 3), dtype=torch.float32), dk.shape[-2] * dk.shape[-1]))

    def hfr_frequency(self, dk_sum: torch.Tensor, n_pixels: int) -> torch.Tensor:
        """The FW-KAN branch, from the per-channel sum of ``dk``: B x C -> B x C (float32).

        Upstream computes DCT -> KAN per coefficient -> "IDCT". Its IDCT (dct_util's
        IDCT2x_torch) builds its twiddles with the DCT's sign, which makes it keep only the
        [0, 0] coefficient: the output is the constant map ``W[0, 0] / sqrt(h * w)``. The
        checkpoints were trained with that, so we keep it; and since the KAN works per
        coefficient, only the DC coefficient ``sum(dk) / sqrt(h * w)`` needs to go through it.
        This runs in float64 whatever the policy (it is B x C numbers, so it costs nothing):
        the DC term is the mean times sqrt(h * w) (about 1,400x at 4K), the rational's x^5
        overflows half precision, and while training even float32 overflowed (NaN losses).
        """
        scale = math.sqrt(n_pixels)
        with torch.autocast(device_type=dk_sum.device.type, enabled=False):
            t = (dk_sum.double() / scale)[:, None, :]  # B x 1 x C: one "token", the DC coefficient
            t = self.FW_KAN1(t)
            t = self.FW_KAN2(t) + t
            t = self.FW_KAN3(t) + t
        return (t[:, 0] / scale).float()

    def hfr_mix(self, dk: torch.Tensor, freq: torch.Tensor) -> torch.Tensor:
        """``(1 - beta) * convf([freq, dk]) + beta * dk`` with the constant frequency map ``freq`` (B x C)."""
        f = freq.to(dk.dtype)[:, :, None, None].expand_as(dk)
        fdk = torch.cat([f, dk], dim=1).contiguous(memory_format=memory_format_of(dk))  # keep dk's layout
        return (1 - self.beta) * self.convf(fdk) + self.beta * dk

    # ------------------------------------------------------------------ whole frame
    def forward_stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns ``(out, out1, out2)``: the final image and the ZFE and LFR outputs."""
        m = self.config.multiple
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(
                f"ERR: expected B x 3 x H x W with H and W multiples of {m}, got {tuple(x.shape)}; "
                "use err_stream.restore_image or Restorer for other sizes (they pad and crop)"
            )
        h, w = x.shape[-2:]
        x1, pooled, e1_sum = self.shell_stem(x)
        s = self.trunk_zfe(x1, pooled, e1_sum / (h * w))
        out1, x2 = self.shell_zfe_out(s, x)
        out2, k1 = self.shell_lfr_out(self.trunk_lfr(x2), x, out1)
        o = self.trunk_hfr(self.embed_in(k1))
        return self.shell_hfr_out(o, k1, out2), out1, out2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(x)[0]
