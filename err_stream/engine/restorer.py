"""The Restorer: one object that turns B x 3 x H x W frames of any size into restored frames.

It owns the device, the precision policy, padding, and the tile geometry and memory policy
of exact tiling. What to run comes from the model's :class:`~err_stream.model.schedule.TiledSchedule`:

* its *trunk* steps (everything at H/2 and below: global means, channel attention, scans,
  the frequency branch) run once on the whole frame;
* its full-resolution *shell* steps (stems, upsampling heads, ConvBlocks) run tile by tile,
  each tile computed with the schedule's halo (more than the shell's receptive field) and
  cropped back.

So a tiled result equals the whole-frame result up to float rounding (no blending, no
seams), while the memory for the full-resolution features is bounded by the tile size.
The CLI, the VapourSynth filter and batch jobs all go through this class.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass

import torch

from ..model import ERR
from ..model.schedule import ShellStep, TrunkStep, err_schedule
from .fast import FastForward, GraphLane
from .padding import pad_to_multiple
from .settings import MIN_TILE, RestoreSettings

log = logging.getLogger(__name__)

# The compute dtype of each precision policy (the names are settings.PRECISIONS).
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}



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
        device, precision, tiling, memory_budget, fast, compile: as in
            :class:`RestoreSettings` (``tiling`` is its ``tile``); ``device`` None means the
            model's device. Half policies run half weights with float32 islands (``fast``, the
            default; :class:`~err_stream.engine.fast.FastForward`) or autocast (``fast=False``,
            the reference path); the scan state, the normalisations and the attention's norms
            stay float32, the frequency branch runs in float64. Tile sizes are rounded down to
            a multiple of 16. ``compile`` (with ``fast``) torch.compiles whole frames and
            replays CUDA graphs (None: on CUDA only; compiling ERR on a CPU takes minutes).
        settings: all of these as one :class:`RestoreSettings` (then leave the others unset).
    """

    def __init__(
        self,
        model: ERR,
        device: torch.device | str | None = None,
        precision: str | None = None,
        tiling: str | tuple[int, int] = "auto",
        memory_budget: int | float | str | None = None,
        fast: bool | None = None,
        compile: bool | None = None,
        *,
        settings: RestoreSettings | None = None,
    ) -> None:
        if settings is None:
            settings = RestoreSettings(
                device=device, precision=precision, tile=tiling, memory_budget=memory_budget, fast=fast, compile=compile,
            )
        elif (device, precision, tiling, memory_budget, fast, compile) != (None, None, "auto", None, None, None):
            raise TypeError("Restorer: pass either settings or device/precision/tiling/memory_budget/fast/compile, not both")
        self.settings = settings
        self.device = settings.torch_device() if settings.device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.precision = settings.precision_for(self.device.type)
        self.compute_dtype = PRECISIONS[self.precision]
        # What the engine needs to know about the network, from the network.
        self.schedule = err_schedule(model)
        self.multiple = self.schedule.multiple
        align = self.schedule.align
        tile = settings.tile
        self.tiling: str | tuple[int, int] = tile if isinstance(tile, str) else (tile[0] // align * align, tile[1] // align * align)
        memory_budget = settings.memory_budget
        if memory_budget is not None and 0 < memory_budget <= 1 and self.device.type == "cuda":
            memory_budget = memory_budget * torch.cuda.mem_get_info(self.device)[0]
        elif memory_budget is None and self.device.type == "cuda":
            memory_budget = 0.8 * torch.cuda.mem_get_info(self.device)[0]
        self.memory_budget = None if memory_budget is None else int(memory_budget)
        # Tile sizes that hit an out-of-memory, per padded frame size: never tried again.
        self._tile_cap: dict[tuple[int, int], int] = {}
        self.fast: FastForward | None = None
        if settings.fast is None or settings.fast:
            self.fast = FastForward(self.model, self.device, self.compute_dtype, compile=settings.compile)

    # ------------------------------------------------------------------ the fast path's graphs
    @property
    def specialises_shapes(self) -> bool:
        """Whether the fast path compiles or captures CUDA graphs per input shape (then a
        caller keeps the frame size and batch fixed: the executor pads a short batch, a
        stream warms up at its own size)."""
        return self.fast is not None and self.fast.specialises_shapes

    def release_graphs(self, lane: GraphLane | None = None) -> None:
        """Drop the graphs captured in ``lane`` (an executor's, when it closes), or all of
        them; nothing without a fast path."""
        if self.fast is not None:
            self.fast.release(lane)

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
        shell_bpp, frame_bpp, align = self.schedule.shell_bytes_per_pixel, self.schedule.frame_bytes_per_pixel, self.schedule.align
        whole = batch * ph * pw * (shell_bpp + frame_bpp) * scale
        if whole <= budget and cap is None:
            return TilePlan(None)
        left = budget - batch * ph * pw * frame_bpp * scale
        side = int(math.sqrt(max(left, 0) / (batch * shell_bpp * scale))) - 2 * self.schedule.halo
        if cap is not None:
            side = min(side, cap)
        side = max(MIN_TILE, side // align * align)
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
                smaller = max(current) // 2 // self.schedule.align * self.schedule.align
                if smaller < MIN_TILE:
                    raise
                self._tile_cap[(ph, pw)] = smaller
                log.warning("out of GPU memory at %dx%d with %s; retrying with tiles of at most %d", pw, ph, plan.describe(), smaller)
        return y[..., :h, :w].to(x.device, x.dtype)

    def _autocast(self, half_safe: bool = True):
        half = self.compute_dtype != torch.float32 and half_safe
        return torch.autocast(self.device.type, dtype=self.compute_dtype, enabled=half)

    def _run(self, x: torch.Tensor, plan: TilePlan) -> torch.Tensor:
        if self.fast is not None:
            if plan.tile is None:
                return self.fast(x)
            xf = x.contiguous(memory_format=self.fast.memory_format)  # float32: the image path stays float32
            return self._run_tiled(self.fast.model, xf, plan.tile, autocast=False).float()
        if plan.tile is None:
            with self._autocast():
                return self.model.forward_stages(x)[0].float()
        return self._run_tiled(self.model, x, plan.tile).float()

    def _run_tiled(self, m: ERR, x: torch.Tensor, tile: tuple[int, int], autocast: bool = True) -> torch.Tensor:
        """The model's schedule: shell steps tile by tile with the halo, trunk steps whole.
        ``autocast``: the reference path's per-step policy (the fast copy holds its own dtypes)."""
        sched = self.schedule
        b, _, hp, wp = x.shape
        tiles = list(_tiles(hp, wp, tile))
        last_read = sched.last_reads()
        maps: dict[str, torch.Tensor] = {"x": x}
        for i, step in enumerate(sched.steps):
            if autocast and not step.half_safe and self.compute_dtype != torch.float32:
                # A float32 step after half ones: autocast is off inside it, so it must be
                # handed float32 maps (its layers hold float32 weights).
                names = step.reads if isinstance(step, TrunkStep) else [n for n, _ in step.reads]
                for name in names:
                    if maps[name].dtype in (torch.float16, torch.bfloat16):
                        maps[name] = maps[name].float()
            with self._autocast(step.half_safe) if autocast else contextlib.nullcontext():
                if isinstance(step, TrunkStep):
                    maps.update(step.run(m, maps))
                else:
                    maps.update(self._run_shell_step(m, step, maps, tiles, b, hp, wp))
            for name in [n for n, last in last_read.items() if last == i and n != "x"]:
                del maps[name]  # no later step reads it: free the memory now
        return maps[sched.output]

    def _run_shell_step(self, m: ERR, step: ShellStep, maps, tiles, b: int, hp: int, wp: int) -> dict[str, torch.Tensor]:
        made: dict[str, torch.Tensor] = {}
        sums: dict[str, torch.Tensor] = {}
        for (r, c), (rr, cc), core in _regions(tiles, hp, wp, self.schedule.halo):
            inputs = {
                name: maps[name] if scale is None else maps[name][..., _div(rr, scale), _div(cc, scale)]
                for name, scale in step.reads
            }
            out = step.run(m, inputs)
            for name, scale in step.keeps:
                part = out[name][..., _div(core[0], scale), _div(core[1], scale)]
                if name not in made:
                    made[name] = part.new_empty(b, part.shape[1], hp // scale, wp // scale)
                made[name][..., _div(r, scale), _div(c, scale)] = part
            for name, scale in step.sums:
                part = out[name][..., _div(core[0], scale), _div(core[1], scale)].sum(dim=(2, 3), dtype=torch.float32)
                key = name + "_sum"
                sums[key] = part if key not in sums else sums[key] + part
        return {**made, **sums}


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


def load_restorer(model: str | None, settings: RestoreSettings = RestoreSettings()) -> Restorer:
    """Load a model and wrap it in a Restorer: ``model`` is a checkpoint file, an authors'
    preset name or None (the embedded demo weights), as :func:`~err_stream.weights.load_model`
    takes it; the model is loaded straight onto ``settings``' device (checked first). What
    every front end that names its model by file or preset calls."""
    import dataclasses

    from ..weights import load_model

    device = settings.torch_device()
    return Restorer(load_model(model, device=device), settings=dataclasses.replace(settings, device=str(device)))
