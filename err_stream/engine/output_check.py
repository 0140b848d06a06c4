"""The output guard: refuse restored frames that cannot be trusted.

A frame is refused when any value is non-finite, or when more than 0.1 % of its pixels have
a channel outside [-0.1, 1.1]. Weights that diverge (e.g. a frequency branch fed a DC
coefficient far larger than in training) give such frames; so do weights made for dark
footage run on footage that is already lit, which they over-expose. Writing either out as
white or clipped video with exit status 0 would hide the failure. Small excursions (ERR's
output can leave [0, 1] slightly) pass. The error says which of the two it saw: finite values
within [-0.5, 2] are a brightness mismatch, anything else divergence.

The check is split so that it never synchronises a GPU per frame: :func:`output_stats`
reduces each frame to four numbers where the frame is (queued on the GPU like any kernel),
the numbers travel to the host with the frame's own device-to-host copy, and :func:`judge`
decides on the host once that copy is complete. :func:`check_output` does both at once for
callers that hold a host tensor anyway.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import ProcessingError

LOW, HIGH = -0.1, 1.1
MAX_OUTSIDE_FRACTION = 1e-3  # 0.1 % of the pixels
STATS_PER_FRAME = 4  # non-finite values, pixels outside [LOW, HIGH], finite min, finite max
# A refused frame whose values are all finite and within these is over- (or under-) exposed
# rather than diverged: only the wording of the error depends on it, not the rule.
EXPOSURE_LOW, EXPOSURE_HIGH = -0.5, 2.0

# How a front end names the option that accepts such output; the CLI and the VapourSynth
# filter pass their own spelling to :meth:`OutputRangeError.for_option`.
API_OPTION = "accept_out_of_range=True"


class OutputRangeError(ProcessingError):
    """A restored frame is non-finite or out of range: the model diverged on it, or (finite
    values within [-0.5, 2], see :attr:`diverged`) over-exposed it.

    Attributes: ``frame`` (index of the frame in its stream or batch), ``nonfinite`` (count
    of NaN/inf values), ``outside_fraction`` (share of pixels with a channel outside
    [-0.1, 1.1]), ``minimum``/``maximum`` (over the finite values; NaN when there are none),
    and ``option`` (how the caller spells the option that accepts and clamps such output).
    """

    def __init__(
        self,
        frame: int | None,
        nonfinite: int,
        outside_fraction: float,
        minimum: float,
        maximum: float,
        option: str = API_OPTION,
        where: str | None = None,
    ) -> None:
        self.frame = frame
        self.nonfinite = nonfinite
        self.outside_fraction = outside_fraction
        self.minimum = minimum
        self.maximum = maximum
        self.option = option
        self.where = where
        super().__init__(self._message())

    def for_option(self, option: str, where: str | None = None, *, frame: int | None | str = "same") -> OutputRangeError:
        """The same error, worded for a front end whose accept option is spelled ``option``,
        optionally naming the input (``where``, e.g. an image file) and with ``frame=None``
        when a frame number means nothing there (a single image)."""
        return OutputRangeError(
            self.frame if frame == "same" else frame,  # type: ignore[arg-type]
            self.nonfinite, self.outside_fraction, self.minimum, self.maximum, option, where or self.where,
        )

    @property
    def diverged(self) -> bool:
        """Whether the output is non-finite or far out of range (beyond [-0.5, 2]), rather than
        merely too bright or too dark."""
        finite = math.isfinite(self.minimum) and math.isfinite(self.maximum)
        return bool(self.nonfinite) or not finite or self.minimum < EXPOSURE_LOW or self.maximum > EXPOSURE_HIGH

    def _message(self) -> str:
        what = []
        if self.nonfinite:
            what.append(f"{self.nonfinite} non-finite values")
        what.append(f"{100 * self.outside_fraction:.3g}% of pixels outside [{LOW:g}, {HIGH:g}]")
        if math.isfinite(self.minimum):
            what.append(f"values from {self.minimum:.4g} to {self.maximum:.4g}")
        place = "".join(f"{p}: " for p in (self.where, None if self.frame is None else f"frame {self.frame}") if p)
        accept = f"pass {self.option} to clamp such output to [0, 1] and go on"
        if self.diverged:
            return (
                f"{place}the model's output cannot be trusted ({'; '.join(what)}): these weights "
                f"diverge on this input (often at frame sizes or brightness far from their training). Use other "
                f"weights (e.g. an authors' preset) or smaller frames, or {accept}."
            )
        if self.maximum > HIGH:
            return (
                f"{place}the model's output is over-exposed ({'; '.join(what)}): these weights brighten this "
                f"input past white, as weights made for dark footage do with footage that is already lit. "
                f"Use weights made for this kind of footage (or leave well-exposed footage as it is), or {accept}."
            )
        return (
            f"{place}the model's output is too dark ({'; '.join(what)}): these weights push parts of this "
            f"input below black. Use weights made for this kind of footage, or {accept}."
        )


def output_stats(y: torch.Tensor) -> torch.Tensor:
    """Per frame of ``y`` (B x C x H x W), on ``y``'s device and without waiting for it:
    ``[non-finite values, pixels outside [LOW, HIGH], finite min, finite max]`` as a B x 4
    float64 tensor (float64 so that counts of 8K frames stay exact)."""
    b = y.shape[0]
    finite = torch.isfinite(y)
    nonfinite = (~finite).flatten(1).sum(1)
    outside = ((y < LOW) | (y > HIGH)).any(dim=1).flatten(1).sum(1)
    flat = y.flatten(1)
    lo = torch.where(finite.flatten(1), flat, torch.full_like(flat, math.inf)).amin(1) if flat.shape[1] else y.new_zeros(b)
    hi = torch.where(finite.flatten(1), flat, torch.full_like(flat, -math.inf)).amax(1) if flat.shape[1] else y.new_zeros(b)
    return torch.stack([nonfinite.double(), outside.double(), lo.double(), hi.double()], dim=1)


def failing(stats: torch.Tensor | np.ndarray, pixels: int) -> list[int]:
    """Positions of the frames whose host-side ``stats`` (from :func:`output_stats`) fail the
    rule; ``pixels`` = height x width of one frame."""
    s = (stats.numpy() if isinstance(stats, torch.Tensor) else np.asarray(stats)).reshape(-1, STATS_PER_FRAME)
    bad = (s[:, 0] > 0) | (s[:, 1] > MAX_OUTSIDE_FRACTION * pixels)
    return [int(i) for i in np.flatnonzero(bad)]


def judge(stats: torch.Tensor | np.ndarray, pixels: int, first_frame: int = 0) -> None:
    """Raise :class:`OutputRangeError` for the first frame whose host-side ``stats`` (from
    :func:`output_stats`) fail the rule; ``pixels`` = height x width of one frame."""
    bad = failing(stats, pixels)
    if not bad:
        return
    s = (stats.numpy() if isinstance(stats, torch.Tensor) else np.asarray(stats)).reshape(-1, STATS_PER_FRAME)
    nonfinite, outside, lo, hi = (float(v) for v in s[bad[0]])
    lo, hi = (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else (math.nan, math.nan)
    raise OutputRangeError(first_frame + bad[0], int(nonfinite), outside / max(pixels, 1), lo, hi)


def check_output(y: torch.Tensor, first_frame: int = 0) -> None:
    """:func:`output_stats` then :func:`judge` (synchronises ``y``'s device: for host callers)."""
    judge(output_stats(y).cpu(), y.shape[-2] * y.shape[-1], first_frame)


def clamp_output(y: torch.Tensor) -> torch.Tensor:
    """What accepting out-of-range output means: NaN -> 0, +inf -> 1, -inf -> 0, then clamp to
    [0, 1], in place."""
    return y.nan_to_num_(nan=0.0, posinf=1.0, neginf=0.0).clamp_(0.0, 1.0)
