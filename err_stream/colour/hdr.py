"""HDR: the path that shows the model an SDR-referred picture, and HDR10 static metadata.

**The path** (:class:`HdrPath`), for PQ and HLG streams, float32 on the compute device,
each step exactly invertible and nothing clipped on the way in; on the way back the model's
output is held within the peak, and the change it made is added to the input, so what it
leaves alone comes back code for code (see :meth:`HdrPath.from_sdr`)::

    R'G'B' (the stream's transfer and primaries, from the YCbCr converter)
      -> display light, cd/m2        PQ: EOTF; HLG: inverse OETF, then the BT.2100 OOTF for
                                     the nominal peak (system gamma 1.2 at 1000 cd/m2)
      -> the model's primaries       the stream's (BT.2020): measured better than BT.709, whose
                                     wide colours go negative (BT.709 on request: a 3 x 3 in
                                     linear light, colours outside it kept)
      -> SDR-referred linear light   / 203 cd/m2 (BT.2408's HDR reference white = SDR 100%),
                                     with a highlight shoulder above the knee (below)
      -> SDR signal                  the sRGB curve, which the model's training pictures use
      -> the model -> every step backwards -> R'G'B' -> codes

**The highlight shoulder** (:class:`HighlightRollOff`), per channel on x = light / 203:
``y = x`` up to the knee ``k``, then ``y = k + c ln(1 + (x - k) / c)``, with ``c`` chosen so
that the mastering peak lands on y = 1 (k = 0.75: 152 cd/m2; the reference white lands on
0.93 after the sRGB curve). It meets the straight part with slope 1 (no visible crease),
rises without bound (light past the peak, super-white codes, still has an SDR value of its
own), and its inverse is closed-form: ``x = k + c (e^((y-k)/c) - 1)``.
Per channel, as a camera's tone curve shapes the photographs the model was trained on; odd
(the same shoulder below -k), so a colour far outside BT.709 is not shown to the model as a
large negative value either.
Highlights are compressed under 1.0 rather than given headroom above it: the model was
trained on [0, 1] pictures and the output check refuses frames with over 0.1 % of pixels
above 1.1 (``benchmarks/eval_hdr.py`` measures both).

**Light level** (:class:`LightLevel`): MaxCLL/MaxFALL of the restored frames, accumulated on
the device as they pass, read once at the end.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import torch

from ..errors import SettingError
from . import gamut
from .codes import HDR_MODES, HDR_TRANSFERS, Primaries, Transfer, label
from .spec import ColourSpec
from .transfer import (
    bt1886_decode,
    bt1886_encode,
    hlg_inverse_ootf,
    hlg_inverse_oetf,
    hlg_oetf,
    hlg_ootf,
    hlg_system_gamma,
    pq_eotf,
    pq_inverse_eotf,
    srgb_decode,
    srgb_encode,
)

REFERENCE_WHITE = 203.0  # cd/m2: BT.2408's HDR reference white (a 100 % diffuse white)
DEFAULT_PEAK = 1000.0  # cd/m2: HLG's reference display; PQ masters that state no mastering peak
DEFAULT_KNEE = 0.75  # of the reference white: where the highlight shoulder begins
SDR_CURVES = {"srgb": (srgb_encode, srgb_decode), "bt1886": (bt1886_encode, bt1886_decode)}

# (y - k) / c beyond this is not exponentiated: e^40 * c is already far past PQ's 10000
# cd/m2 (whose codes clamp), and float32's exp overflows at 88.
_MAX_EXPONENT = 40.0


@dataclass(frozen=True)
class HighlightRollOff:
    """The invertible highlight shoulder on x = linear light / reference white (see the
    module's docstring). ``peak``: the x that lands on ``top`` (mastering peak / 203); at or
    below ``top`` there is nothing to compress and the mapping is the identity. ``top``: 1
    (under the model's [0, 1], the default) or more (headroom above it, for comparison)."""

    peak: float
    knee: float = DEFAULT_KNEE
    top: float = 1.0
    scale: float = field(init=False)  # c

    def __post_init__(self) -> None:
        if not 0.0 < self.knee < self.top:
            raise ValueError(f"highlight knee must be in (0, {self.top}), got {self.knee}")
        compress = self.peak > self.top
        object.__setattr__(self, "scale", _shoulder_scale(self.peak, self.knee, self.top) if compress else math.inf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if math.isinf(self.scale):
            return x
        k, c = self.knee, self.scale
        a = x.abs()
        return torch.where(a > k, torch.copysign(k + c * torch.log1p((a - k).clamp_min(0.0) / c), x), x)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        if math.isinf(self.scale):
            return y
        k, c = self.knee, self.scale
        a = y.abs()
        return torch.where(a > k, torch.copysign(k + c * torch.expm1(((a - k) / c).clamp(0.0, _MAX_EXPONENT)), y), y)


def _shoulder_scale(peak: float, knee: float, top: float) -> float:
    """The c with ``c ln(1 + (peak - knee) / c) = top - knee`` (the peak lands on top). The
    left side rises from 0 (c -> 0) to ``peak - knee`` (c -> inf), so for peak > top one c
    solves it: bisection on a log scale, in float64."""
    span, room = peak - knee, top - knee
    lo, hi = 1e-12, 1.0
    while hi * math.log1p(span / hi) < room:
        hi *= 2.0
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if mid * math.log1p(span / mid) < room:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


@dataclass(frozen=True)
class HdrPath:
    """PQ or HLG R'G'B' <-> the SDR-referred R'G'B' the model is shown (module docstring).

    Args:
        transfer: PQ (``SMPTE2084``) or HLG (``ARIB_STD_B67``).
        primaries: the stream's (BT.2020 for BT.2100 masters).
        peak: cd/m2. HLG: the nominal display peak of the OOTF; both: the light that lands on
            SDR 1.0 (the mastering display's peak for PQ).
        model_primaries: the primaries the model sees: None (default), the stream's (BT.2020
            for BT.2100 masters: no conversion); or BT.709, those of its training photographs (measured: equal on darkened
            BT.709 content, 0.9 dB worse on wide-gamut content, whose negative values the model
            never saw; ``benchmarks/eval_hdr.py``).
        knee: where the highlight shoulder begins, in units of the reference white.
        sdr_curve: ``srgb`` (the model's training pictures) or ``bt1886`` (a 2.4 power).
        reference_white: cd/m2 that SDR 1.0 stands for below the knee.
        top: the SDR linear light the peak lands on (1; more gives highlights headroom above
            the model's [0, 1], which ``benchmarks/eval_hdr.py`` compares).
    """

    transfer: Transfer
    primaries: Primaries = Primaries.BT2020
    peak: float = DEFAULT_PEAK
    model_primaries: Primaries | None = None
    knee: float = DEFAULT_KNEE
    sdr_curve: str = "srgb"
    reference_white: float = REFERENCE_WHITE
    top: float = 1.0
    rolloff: HighlightRollOff = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.transfer not in HDR_TRANSFERS:
            raise ValueError(f"the HDR path is for PQ and HLG, not {self.transfer}")
        if self.sdr_curve not in SDR_CURVES:
            raise ValueError(f"sdr_curve must be one of {sorted(SDR_CURVES)}, got {self.sdr_curve!r}")
        if not self.peak > 0:
            raise ValueError(f"HDR peak must be positive (cd/m2), got {self.peak}")
        if self.model_primaries is None:
            object.__setattr__(self, "model_primaries", self.primaries)
        for p in (self.primaries, self.model_primaries):
            gamut.rgb_to_xyz_matrix(p)  # raises for primaries we have no chromaticities for
        object.__setattr__(self, "rolloff", HighlightRollOff(self.peak / self.reference_white, self.knee, self.top))

    @classmethod
    def for_spec(
        cls, spec: ColourSpec, mode: str = "auto", metadata: HdrMetadata | None = None, peak: float | None = None, **kw
    ) -> HdrPath | None:
        """The path for a stream of this (resolved) colour, as the ``hdr`` setting asks:
        ``auto`` gives it for PQ and HLG transfers (None for SDR), ``passthrough`` never (the
        model sees the code values as they are). ``peak`` (the ``hdr_peak`` setting, cd/m2):
        stated by the user; else a PQ master's mastering display peak from its metadata;
        else 1000 cd/m2 (HLG's reference display). Raises :class:`SettingError`."""
        if mode not in HDR_MODES:
            raise SettingError("hdr", mode, f"must be one of {', '.join(HDR_MODES)}")
        if peak is not None and not (isinstance(peak, (int, float)) and math.isfinite(peak) and peak > 0):
            raise SettingError("hdr_peak", peak, "must be a positive light level in cd/m2 (e.g. 1000)")
        if mode == "passthrough" or spec.transfer not in HDR_TRANSFERS:
            return None
        if spec.primaries not in gamut.CHROMATICITIES:
            raise SettingError("hdr", mode, f"{spec.transfer.label} video with {label(spec.primaries)} primaries is not supported "
                               "(BT.2020, P3, BT.709 and BT.601 are)", instead=[("hdr", "passthrough")])
        if peak is None:
            stated = metadata.max_luminance if metadata is not None else None
            peak = stated if spec.transfer == Transfer.SMPTE2084 and stated and stated > 0 else DEFAULT_PEAK
        return cls(spec.transfer, spec.primaries, float(peak), **kw)

    # ---- signal <-> display light (the stream's primaries)
    def display_light(self, signal: torch.Tensor) -> torch.Tensor:
        """B x 3 x H x W R'G'B' of the stream -> display light in cd/m2."""
        if self.transfer == Transfer.SMPTE2084:
            return pq_eotf(signal)
        return hlg_ootf(hlg_inverse_oetf(signal), self.peak, hlg_system_gamma(self.peak))

    def signal(self, nits: torch.Tensor) -> torch.Tensor:
        """Display light in cd/m2 -> R'G'B' of the stream (the inverse of :meth:`display_light`)."""
        if self.transfer == Transfer.SMPTE2084:
            return pq_inverse_eotf(nits)
        return hlg_oetf(hlg_inverse_ootf(nits, self.peak, hlg_system_gamma(self.peak)))

    # ---- the whole path
    def to_sdr(self, signal: torch.Tensor) -> torch.Tensor:
        """The stream's R'G'B' -> the SDR-referred R'G'B' the model is shown."""
        light = gamut.convert(self.display_light(signal), self.primaries, self.model_primaries)
        return SDR_CURVES[self.sdr_curve][0](self.rolloff.forward(light / self.reference_white))

    def from_sdr(self, sdr: torch.Tensor, source: torch.Tensor | None = None, light_level: LightLevel | None = None) -> torch.Tensor:
        """The way back from the model's output to the stream's R'G'B'. ``light_level``
        accumulates the result's MaxCLL/MaxFALL on the way.

        Each channel's SDR linear light is held within +-``top`` (the mastering peak), as the
        SDR path holds the model's output within [0, 1]: the shoulder's inverse is steep just
        under 1, and a model's overshoot (the demo model puts 6 % of a normally lit picture
        above 1.1) would otherwise become light far past the peak, cut by the codes' range with
        its hue pulled by the 3 x 3 back to BT.2020. Within that, it is the exact inverse of
        :meth:`to_sdr`.

        ``source``: the R'G'B' the picture came from (what :meth:`to_sdr` was given). The result
        is then ``source`` plus the change the model made, ``back(sdr) - back(to_sdr(source))``,
        so what the model leaves alone comes back exactly: beyond the peak too (a saturated
        BT.2020 highlight is above 1 in BT.709; super-white codes), and where float32 cannot
        carry a dim channel of a bright saturated pixel through the 3 x 3 to BT.709 and back
        (its error is a fraction of the bright channel's, and PQ is steepest near black: up to
        3 10-bit codes). A changed picture is no worse."""
        nits = self._light(sdr)
        if light_level is not None:
            light_level.add(nits)
        out = self.signal(nits)
        if source is not None:
            out = source + (out - self.signal(self._light(self.to_sdr(source))))
        return out

    def _light(self, sdr: torch.Tensor) -> torch.Tensor:
        """SDR signal -> display light in the stream's primaries, held within the peak."""
        linear = SDR_CURVES[self.sdr_curve][1](sdr.nan_to_num(nan=0.0)).clamp(-self.top, self.top)
        light = self.rolloff.inverse(linear) * self.reference_white
        return gamut.convert(light, self.model_primaries, self.primaries)


class LightLevel:
    """MaxCLL and MaxFALL (CTA-861.3) of the frames passed to :meth:`add`: the largest
    max(R, G, B) of any pixel, and the largest frame average of max(R, G, B), in cd/m2 (each
    pixel's value clamped to [0, 10000]).

    Kept as two device tensors updated with queued kernels, so adding a frame never waits for
    the device; :meth:`result` reads them once (after the last frame)."""

    def __init__(self) -> None:
        self._cll: torch.Tensor | None = None
        self._fall: torch.Tensor | None = None
        self.frames = 0

    def add(self, nits: torch.Tensor) -> None:
        """``nits``: B x 3 x H x W linear display light of the output's primaries."""
        m = nits.detach().amax(dim=1).clamp(0.0, 10000.0).flatten(1)
        cll, fall = m.amax(), m.mean(dim=1, dtype=torch.float64).amax()
        self._cll = cll if self._cll is None else torch.maximum(self._cll, cll)
        self._fall = fall if self._fall is None else torch.maximum(self._fall, fall)
        self.frames += nits.shape[0]

    def result(self) -> tuple[int, int] | None:
        """(MaxCLL, MaxFALL) in whole cd/m2 (as the SEI and the containers count), or None
        before any frame."""
        if self._cll is None or self._fall is None:
            return None
        return round(float(self._cll)), round(float(self._fall))


@dataclass(frozen=True)
class HdrMetadata:
    """HDR10 static metadata: mastering display colour volume (SMPTE ST 2086) and content
    light level. Chromaticities as CIE 1931 (x, y) floats in R, G, B order; luminance in cd/m2."""

    primaries: tuple[tuple[float, float], tuple[float, float], tuple[float, float]] | None = None
    white_point: tuple[float, float] | None = None
    max_luminance: float | None = None
    min_luminance: float | None = None
    max_cll: int | None = None
    max_fall: int | None = None

    @classmethod
    def from_side_data(cls, mastering: bytes | None, light: bytes | None) -> HdrMetadata | None:
        """Parse FFmpeg's AVMasteringDisplayMetadata / AVContentLightMetadata structs."""
        kw: dict = {}
        if mastering is not None and len(mastering) >= 88:
            vals = struct.unpack_from("<20i2i", mastering)
            rat = [vals[2 * i] / vals[2 * i + 1] if vals[2 * i + 1] else 0.0 for i in range(10)]
            has_primaries, has_luminance = vals[20], vals[21]
            if has_primaries:
                kw["primaries"] = ((rat[0], rat[1]), (rat[2], rat[3]), (rat[4], rat[5]))
                kw["white_point"] = (rat[6], rat[7])
            if has_luminance:
                kw["min_luminance"], kw["max_luminance"] = rat[8], rat[9]
        if light is not None and len(light) >= 8:
            kw["max_cll"], kw["max_fall"] = struct.unpack_from("<2I", light)
        return cls(**kw) if kw else None

    def x265_params(self) -> list[str]:
        """The same metadata in x265's words (SEI in the bitstream)."""
        out = []
        if self.primaries and self.white_point and self.max_luminance is not None:
            (rx, ry), (gx, gy), (bx, by) = self.primaries
            c = lambda v: round(v * 50000)  # noqa: E731 - x265 counts chromaticity in 0.00002
            out.append(
                f"master-display=G({c(gx)},{c(gy)})B({c(bx)},{c(by)})R({c(rx)},{c(ry)})"
                f"WP({c(self.white_point[0])},{c(self.white_point[1])})"
                f"L({round(self.max_luminance * 10000)},{round((self.min_luminance or 0) * 10000)})"
            )
        if self.max_cll is not None:
            out.append(f"max-cll={self.max_cll},{self.max_fall or 0}")
        return out
