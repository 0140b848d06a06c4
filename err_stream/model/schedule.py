"""ERR's forward pass as an explicit list of steps, so that an engine can tile it exactly.

ERR splits into *shell* steps, which run at full resolution but are local (a receptive field
under 16 pixels), and *trunk* steps, which are global (means, channel attention, scans, the
frequency branch) but run at H/2 and below. :class:`TiledSchedule` lists them in order with
what each reads and writes; an engine runs a shell step tile by tile (each tile with a halo,
outputs cropped back to the tile) and a trunk step once on the whole (small) maps, and gets
the whole-frame result to float rounding: no blending, no seams.

Everything the engine needs to know about the network is here: the input size multiple, the
halo, the tile grid, the memory each step needs per pixel and which steps may run in half
precision. The engine (:class:`err_stream.engine.Restorer`) supplies only tile geometry and
the memory policy, so a change to the network is made here and in :mod:`.err`, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .err import ERR

Maps = dict[str, torch.Tensor]


@dataclass(frozen=True)
class ShellStep:
    """A local full-resolution step, run on each tile's region (the tile plus its halo).

    ``reads``: ``(name, scale)`` of the maps it takes, cropped to the region at 1/scale
    (``scale`` None: the whole tensor, e.g. a per-channel vector). ``run(model, inputs)``
    returns tensors covering the region; of each ``keeps`` output ``(name, scale)`` the
    engine stores the tile's part in a whole-frame map at 1/scale, of each ``sums`` output
    only the per-channel float32 sum over the tile (stored as ``name + "_sum"``).
    """

    name: str
    reads: tuple[tuple[str, int | None], ...]
    keeps: tuple[tuple[str, int], ...]
    run: Callable[[ERR, Maps], Maps]
    sums: tuple[tuple[str, int], ...] = ()
    # Peak working memory per full-resolution pixel of the region, float32 activations.
    bytes_per_pixel: int = 0
    half_safe: bool = True


@dataclass(frozen=True)
class TrunkStep:
    """A global step, run once on whole-frame maps (H/2 and below): ``run(model, maps)``
    returns new maps by name; ``reads`` names the maps it uses."""

    name: str
    reads: tuple[str, ...]
    run: Callable[[ERR, Maps], Maps]
    half_safe: bool = True


@dataclass(frozen=True)
class TiledSchedule:
    """The steps in order, from the input map ``"x"`` to the map named ``output``.

    ``multiple``: input sides must be multiples of it (pad first). ``halo``: pixels of
    context a shell step needs around a tile. ``align``: tile corners must lie on this grid
    (so every scale's crop is whole). ``frame_bytes_per_pixel``: memory per full-resolution
    pixel of what stays whole-frame while tiling (the input, the 3-channel full-resolution
    buffers and the H/2 and smaller maps), float32.
    """

    steps: tuple[ShellStep | TrunkStep, ...]
    output: str
    multiple: int
    halo: int
    align: int
    frame_bytes_per_pixel: int

    @property
    def shell_bytes_per_pixel(self) -> int:
        """The largest per-pixel need of a shell step: what a tile's region costs."""
        return max(s.bytes_per_pixel for s in self.steps if isinstance(s, ShellStep))

    def last_reads(self) -> dict[str, int]:
        """For each map, the index of the last step that reads it (it can be freed after)."""
        last: dict[str, int] = {}
        for i, step in enumerate(self.steps):
            names = step.reads if isinstance(step, TrunkStep) else tuple(n for n, _ in step.reads)
            for name in names:
                last[name] = i
        return last


# ----------------------------------------------------------------------------- ERR's steps
def _stem(m: ERR, t: Maps) -> Maps:
    e1 = m.stem(t["x"])
    return {"x1": m.downsample1(e1), "pooled": m.spp.pooled(e1), "e1": e1}


def _zfe(m: ERR, t: Maps) -> Maps:
    h, w = t["x"].shape[-2:]
    return {"s": m.trunk_zfe(t["x1"], t["pooled"], t["e1_sum"] / (h * w))}


def _zfe_head(m: ERR, t: Maps) -> Maps:
    out1, x2 = m.shell_zfe_out(t["s"], t["x"])
    return {"out1": out1, "x2": x2}


def _lfr(m: ERR, t: Maps) -> Maps:
    return {"mid": m.trunk_lfr(t["x2"])}


def _hfr_stem(m: ERR, t: Maps) -> Maps:
    # k1 (16 channels at full resolution) is not kept: the head recomputes it per tile,
    # which is what bounds the memory; deep1 is local, so it is tiled too.
    _, k1 = m.shell_lfr_out(t["mid"], t["x"], t["out1"])
    return {"dk": m.deep1(m.embed_in(k1))}


def _frequency(m: ERR, t: Maps) -> Maps:
    dk = t["dk"]
    return {"freq": m.hfr_frequency(t["dk_sum"], dk.shape[-2] * dk.shape[-1])}


def _hfr_head(m: ERR, t: Maps) -> Maps:
    out2, k1 = m.shell_lfr_out(t["mid"], t["x"], t["out1"])
    return {"out": m.shell_hfr_out(m.hfr_mix(t["dk"], t["freq"]), k1, out2)}


# Peak memory of the shell per full-resolution pixel, measured for the shell as a whole with
# benchmarks/bench_tiling.py (CPU, float32); not measured step by step, so every shell step
# is given the whole shell's figure.
_SHELL_BYTES_PER_PIXEL = 1100
_FRAME_BYTES_PER_PIXEL = 190


def err_schedule(model: ERR) -> TiledSchedule:
    """ERR's tiled forward: the same computation as :meth:`ERR.forward_stages`."""
    shell = _SHELL_BYTES_PER_PIXEL
    return TiledSchedule(
        steps=(
            ShellStep("stem", reads=(("x", 1),), keeps=(("x1", 8), ("pooled", 8)), sums=(("e1", 1),),
                      run=_stem, bytes_per_pixel=shell),
            TrunkStep("zfe", reads=("x", "x1", "pooled", "e1_sum"), run=_zfe),
            ShellStep("zfe_head", reads=(("s", 8), ("x", 1)), keeps=(("out1", 1), ("x2", 4)),
                      run=_zfe_head, bytes_per_pixel=shell),
            TrunkStep("lfr", reads=("x2",), run=_lfr),
            ShellStep("hfr_stem", reads=(("mid", 4), ("x", 1), ("out1", 1)), keeps=(("dk", 2),), sums=(("dk", 2),),
                      run=_hfr_stem, bytes_per_pixel=shell),
            # The frequency branch runs in float64 whatever the policy (see ERR.hfr_frequency).
            TrunkStep("frequency", reads=("dk", "dk_sum"), run=_frequency, half_safe=False),
            ShellStep("hfr_head", reads=(("mid", 4), ("x", 1), ("out1", 1), ("dk", 2), ("freq", None)),
                      keeps=(("out", 1),), run=_hfr_head, bytes_per_pixel=shell),
        ),
        output="out",
        multiple=model.config.multiple,
        halo=ERR.shell_halo,
        # The H/8 maps must crop whole, and tiles plus the 16-pixel halo stay on that grid.
        align=16,
        frame_bytes_per_pixel=_FRAME_BYTES_PER_PIXEL,
    )
