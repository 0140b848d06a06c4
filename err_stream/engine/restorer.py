"""The Restorer: one object that turns B x 3 x H x W frames of any size into restored frames.

It owns the device, the precision policy, padding, and exact tiling:

* the *trunk* of ERR (everything at H/2 and below: global means, channel attention, scans,
  the frequency branch) always runs on the whole frame;
* the full-resolution *shell* (stems, upsampling heads, ConvBlocks) runs tile by tile, each
  tile computed with a halo of ``ERR.shell_halo`` pixels (more than the shell's receptive
  field) and cropped back.

So a tiled result equals the whole-frame result up to float rounding (no blending, no
seams), while the memory for the full-resolution features is bounded by the tile size.
The CLI, the VapourSynth filter and batch jobs all go through this class.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from ..model import ERR
from .fast import FastForward
from .padding import pad_to_multiple

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

# Bytes of peak memory per full-resolution pixel, per frame, measured with
# benchmarks/bench_tiling.py (fp32; halve for fp16/bf16 activations), used to pick tiles.
_SHELL_BYTES_PER_PIXEL = 1100  # whole-frame shell temporaries
_FRAME_BYTES_PER_PIXEL = 190  # what stays for the whole frame while tiling (x, out1/out2/out, H/2 maps)
_ALIGN = 16  # tile corners stay on a 16-pixel grid (the H/8 maps and the halo line up)


@dataclass(frozen=True)
class TilePlan:
    """Tile size in pixels ``(w, h)``, or None for whole-frame."""

    tile: tuple[int, int] | None

    def describe(self) -> str:
        return "whole frame" if self.tile is None else f"tiles {self.tile[0]}x{self.tile[1]}"


class Restorer:
    """Run ERR on frames of any size with a precision policy and exact tiling.

    Args:
        model: an :class:`ERR` (e.g. from :func:`err_stream.load_model`).
        device: where to compute (default: the model's device).
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``. Half policies run half weights (or,
            with ``fast=False``, autocast); the scan state, the frequency branch, the
            normalisations and the attention's norms stay float32.
        tiling: ``"auto"`` (whole frame if it fits ``memory_budget``, else the largest tiles
            that do), ``"off"``, or a tile size ``(w, h)`` (rounded down to a multiple of 16,
            at least 128).
        memory_budget: bytes for one frame's working memory; default on CUDA a fraction (0.8)
            of the free memory when the Restorer is made, on CPU unlimited.
        fast: run a prepared copy of the model (:class:`~err_stream.engine.fast.FastForward`):
            channels_last, and for half policies half weights with float32 islands instead of
            autocast. Default (None): on. ``False`` runs the model as given under autocast (the
            reference path).
        compile: with ``fast``, ``torch.compile`` whole frames and replay CUDA graphs (None: on
            CUDA only; compiling ERR on a CPU takes minutes). ``False`` is the ``--no-compile`` switch.
    """

    def __init__(
        self,
        model: ERR,
        device: torch.device | str | None = None,
        precision: str = "fp32",
        tiling: str | tuple[int, int] = "auto",
        memory_budget: int | float | None = None,
        fast: bool | None = None,
        compile: bool | None = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"Restorer: precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.precision = precision
        self.compute_dtype = PRECISIONS[precision]
        self.multiple = model.config.multiple
        if isinstance(tiling, str):
            if tiling not in ("auto", "off"):
                raise ValueError(f"Restorer: tiling must be 'auto', 'off' or (w, h), got {tiling!r}")
            self.tiling: str | tuple[int, int] = tiling
        else:
            tw, th = (int(v) for v in tiling)
            if min(tw, th) < 128:
                raise ValueError(f"Restorer: tiles must be at least 128x128, got {tw}x{th}")
            self.tiling = (tw // _ALIGN * _ALIGN, th // _ALIGN * _ALIGN)
        if memory_budget is not None and 0 < memory_budget <= 1 and self.device.type == "cuda":
            memory_budget = memory_budget * torch.cuda.mem_get_info(self.device)[0]
        elif memory_budget is None and self.device.type == "cuda":
            memory_budget = 0.8 * torch.cuda.mem_get_info(self.device)[0]
        self.memory_budget = None if memory_budget is None else int(memory_budget)
        # Tile sizes that hit an out-of-memory, per padded frame size: never tried again.
        self._tile_cap: dict[tuple[int, int], int] = {}
        self.fast: FastForward | None = None
        if fast is None or fast:
            self.fast = FastForward(self.model, self.device, self.compute_dtype, compile=compile)

    # ------------------------------------------------------------------ planning
    def plan(self, height: int, width: int, batch: int = 1) -> TilePlan:
        """The tiling that :meth:`restore` uses for a frame of this size."""
        ph, pw = -(-height // self.multiple) * self.multiple, -(-width // self.multiple) * self.multiple
        if self.tiling == "off":
            return TilePlan(None)
        if isinstance(self.tiling, tuple):
            return TilePlan(self.tiling)
        cap = self._tile_cap.get((ph, pw))
        if self.memory_budget is None and cap is None:
            return TilePlan(None)
        scale = 0.5 if self.compute_dtype != torch.float32 else 1.0
        budget = self.memory_budget if self.memory_budget is not None else float("inf")
        whole = batch * ph * pw * (_SHELL_BYTES_PER_PIXEL + _FRAME_BYTES_PER_PIXEL) * scale
        if whole <= budget and cap is None:
            return TilePlan(None)
        left = budget - batch * ph * pw * _FRAME_BYTES_PER_PIXEL * scale
        side = int(math.sqrt(max(left, 0) / (batch * _SHELL_BYTES_PER_PIXEL * scale))) - 2 * ERR.shell_halo
        if cap is not None:
            side = min(side, cap)
        side = max(128, side // _ALIGN * _ALIGN)
        return TilePlan((min(side, pw), min(side, ph)))

    # ------------------------------------------------------------------ running
    @torch.inference_mode()
    def restore(self, x: torch.Tensor) -> torch.Tensor:
        """Restore B x 3 x H x W (or 3 x H x W) float RGB in [0, 1]; any H, W.

        Returns the same shape, dtype and device as ``x`` (not clamped: ERR's output can leave
        [0, 1] slightly; callers that quantise clamp). Nothing here waits for the device: the
        output guard (:mod:`.output_check`) is the callers' (the executor, ``restore_image``)."""
        if x.dim() == 3:
            return self.restore(x[None])[0]
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"Restorer.restore: expected B x 3 x H x W, got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        xin = pad_to_multiple(x.to(self.device, torch.float32), self.multiple)
        while True:
            plan = self.plan(h, w, x.shape[0])
            try:
                y = self._run(xin, plan)
                break
            except torch.OutOfMemoryError:
                if self.device.type != "cuda":
                    raise
                torch.cuda.empty_cache()
                ph, pw = xin.shape[-2:]
                current = plan.tile or (pw, ph)
                smaller = max(current) // 2 // _ALIGN * _ALIGN
                if smaller < 128:
                    raise
                self._tile_cap[(ph, pw)] = smaller
                log.warning("out of GPU memory at %dx%d with %s; retrying with tiles of at most %d", pw, ph, plan.describe(), smaller)
        return y[..., :h, :w].to(x.device, x.dtype)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.compute_dtype, enabled=self.compute_dtype != torch.float32)

    def _run(self, x: torch.Tensor, plan: TilePlan) -> torch.Tensor:
        if self.fast is not None:
            if plan.tile is None:
                return self.fast(x)
            xf = x.to(self.fast.dtype).contiguous(memory_format=self.fast.memory_format)
            return self._run_tiled(self.fast.model, xf, plan.tile).float()
        with self._autocast():
            if plan.tile is None:
                return self.model.forward_stages(x)[0].float()
            return self._run_tiled(self.model, x, plan.tile).float()

    def _run_tiled(self, m: ERR, x: torch.Tensor, tile: tuple[int, int]) -> torch.Tensor:
        b, _, hp, wp = x.shape
        tiles = list(_tiles(hp, wp, tile))
        halo = ERR.shell_halo

        # Pass 1: stems -> H/8 inputs of the ZFE, and the stem's global sum.
        x1 = pooled = None
        e1_sum = torch.zeros(b, m.config.channels, device=x.device, dtype=torch.float32)
        for (r, c), (rr, cc), core in _regions(tiles, hp, wp, halo):
            x1_t, pooled_t, sum_t = m.shell_stem(x[..., rr, cc], core)
            if x1 is None:
                x1 = x1_t.new_empty(b, x1_t.shape[1], hp // 8, wp // 8)
                pooled = pooled_t.new_empty(b, pooled_t.shape[1], hp // 8, wp // 8)
            x1[..., _div(r, 8), _div(c, 8)] = x1_t
            pooled[..., _div(r, 8), _div(c, 8)] = pooled_t
            e1_sum += sum_t
        s = m.trunk_zfe(x1, pooled, e1_sum / (hp * wp))
        del x1, pooled

        # Pass 2: ZFE head (out1, full res, 3 channels) and LFR stem (x2 at H/4).
        out1 = x.new_empty(b, 3, hp, wp)
        x2 = None
        for (r, c), (rr, cc), core in _regions(tiles, hp, wp, halo):
            out1_t, x2_t = m.shell_zfe_out(s[..., _div(rr, 8), _div(cc, 8)], x[..., rr, cc])
            out1[..., r, c] = out1_t[..., core[0], core[1]]
            x2_core = x2_t[..., _div(core[0], 4), _div(core[1], 4)]
            if x2 is None:
                x2 = x2_core.new_empty(b, x2_core.shape[1], hp // 4, wp // 4)
            x2[..., _div(r, 4), _div(c, 4)] = x2_core
        del s
        mid = m.trunk_lfr(x2)
        del x2

        # Pass 3: HFR stem (k1, full res) -> its H/2 embedding -> deep1, kept at H/2 with its
        # global sum. k1 itself is not kept: pass 4 recomputes it per tile, which is what
        # bounds the memory (deep1 is local, so it is tiled too).
        dk = None
        dk_sum = torch.zeros(b, m.config.channels, device=x.device, dtype=torch.float32)
        for (r, c), (rr, cc), core in _regions(tiles, hp, wp, halo):
            _, k1_t = m.shell_lfr_out(mid[..., _div(rr, 4), _div(cc, 4)], x[..., rr, cc], out1[..., rr, cc])
            dk_t = m.deep1(m.embed_in(k1_t))[..., _div(core[0], 2), _div(core[1], 2)]
            if dk is None:
                dk = dk_t.new_empty(b, dk_t.shape[1], hp // 2, wp // 2)
            dk[..., _div(r, 2), _div(c, 2)] = dk_t
            dk_sum += dk_t.sum(dim=(2, 3), dtype=torch.float32)
        freq = m.hfr_frequency(dk_sum, (hp // 2) * (wp // 2))

        # Pass 4: HFR head.
        out = x.new_empty(b, 3, hp, wp)
        for (r, c), (rr, cc), core in _regions(tiles, hp, wp, halo):
            out2_t, k1_t = m.shell_lfr_out(mid[..., _div(rr, 4), _div(cc, 4)], x[..., rr, cc], out1[..., rr, cc])
            o_t = m.hfr_mix(dk[..., _div(rr, 2), _div(cc, 2)], freq)
            y = m.shell_hfr_out(o_t, k1_t, out2_t)
            out[..., r, c] = y[..., core[0], core[1]]
        return out


def _tiles(hp: int, wp: int, tile: tuple[int, int]):
    tw, th = tile
    for y0 in range(0, hp, th):
        for x0 in range(0, wp, tw):
            yield slice(y0, min(hp, y0 + th)), slice(x0, min(wp, x0 + tw))


def _regions(tiles, hp: int, wp: int, halo: int):
    """For each tile: the tile, the region computed (tile + halo, clipped to the frame), and
    the tile's position inside that region."""
    for r, c in tiles:
        rr = slice(max(0, r.start - halo), min(hp, r.stop + halo))
        cc = slice(max(0, c.start - halo), min(wp, c.stop + halo))
        core = (slice(r.start - rr.start, r.stop - rr.start), slice(c.start - cc.start, c.stop - cc.start))
        yield (r, c), (rr, cc), core


def _div(s: slice, f: int) -> slice:
    return slice(s.start // f, s.stop // f)
