"""Transfer functions in torch, float32 on the compute device: PQ, HLG with the BT.2100 OOTF,
sRGB and BT.1886.

* PQ (SMPTE ST 2084, BT.2100): :func:`pq_eotf` maps a non-linear signal E' in [0, 1] to
  display light in cd/m2 (0 to 10000); :func:`pq_inverse_eotf` is its inverse.
* HLG (ARIB STD-B67, BT.2100): :func:`hlg_oetf` maps scene light E in [0, 1] to E';
  :func:`hlg_inverse_oetf` is its inverse; :func:`hlg_ootf` maps scene light to display light
  for a display of nominal peak ``L_W`` (black level 0) with the system gamma of
  :func:`hlg_system_gamma`, and :func:`hlg_inverse_ootf` goes back.
* sRGB (IEC 61966-2-1) and BT.1886 (with a zero black level: a pure 2.4 power), as
  ``*_encode`` (linear -> signal) and ``*_decode``.

Every curve is extended to all real numbers as an odd function (``f(-x) = -f(x)``), and the
PQ and HLG formulas are evaluated past 1 as written: out-of-range code values (limited
range's sub-blacks and super-whites, chroma upsampling's overshoot at colour edges) and
colours outside a smaller gamut (negative after a 3 x 3 conversion) survive a round trip
instead of being clipped. Nothing here clamps. (PQ's formula has a pole near E' = 1.99: past
E' = 1.25 its EOTF continues along its tangent.)
"""

from __future__ import annotations

import math

import torch

# SMPTE ST 2084 constants.
PQ_M1 = 2610 / 16384
PQ_M2 = 2523 / 4096 * 128
PQ_C1 = 3424 / 4096
PQ_C2 = 2413 / 4096 * 32
PQ_C3 = 2392 / 4096 * 32
PQ_PEAK = 10000.0  # cd/m2 at E' = 1

# ARIB STD-B67 / BT.2100 HLG constants.
HLG_A = 0.17883277
HLG_B = 1.0 - 4.0 * HLG_A
HLG_C = 0.5 - HLG_A * math.log(4.0 * HLG_A)

# BT.2100 luminance of linear BT.2020 RGB (the HLG OOTF's Y).
BT2020_Y = (0.2627, 0.6780, 0.0593)

# Below this scene luminance the HLG OOTF's gain Y^(gamma - 1) is held (it tends to 0 at
# black, which would make the OOTF lose the colour of near-black pixels).
_HLG_Y_FLOOR = 1e-6


def _odd(f, x: torch.Tensor) -> torch.Tensor:
    """``f`` on |x|, with x's sign: the curve extended to negative values as an odd function."""
    return torch.copysign(f(x.abs()), x)


# ----------------------------------------------------------------------------- PQ
# PQ's constants satisfy c2 - c3 = 1 - c1 (E' = 1 is 10000 cd/m2 exactly). The formulas below
# are the standard's, rearranged around that so that float32 keeps its precision: written as
# printed, E'^(1/m2) sits near 1 and its rounding is multiplied by ~450 on the way to the
# light (5e-5 relative error at 200 cd/m2, 0.5 cd/m2 at 1000); through expm1/log1p of the
# distance from 1 the error stays a few float32 ulps.
_PQ_D = PQ_C2 - PQ_C3  # = 1 - c1 = 0.1640625


def _pq_eotf_formula(v):
    q = -torch.expm1(torch.log(v) / PQ_M2)  # 1 - E'^(1/m2), exactly 1 at E' = 0
    num = (_PQ_D - q).clamp_min(0.0)  # E'^(1/m2) - c1
    return PQ_PEAK * (num / (_PQ_D + PQ_C3 * q)).pow(1.0 / PQ_M1)


def _pq_inverse_formula(v):
    y = (v / PQ_PEAK).pow(PQ_M1)
    # (c1 + c2 y) / (1 + c3 y) = 1 + (1 - c1)(y - 1) / (1 + c3 y)
    return torch.exp(PQ_M2 * torch.log1p(_PQ_D * (y - 1.0) / (1.0 + PQ_C3 * y)))


# Past E' = 1.25 (128,700 cd/m2, reached only by out-of-range code combinations) the EOTF
# goes on along its tangent: the formula has a pole near E' = 1.99, and a chroma code at the
# end of its range on top of a super-white luma gets there.
_PQ_E_TAIL = 1.25


def _pq_tail() -> tuple[float, float]:
    """(light at E' = 1.25, slope there), in float64."""
    def formula(e: float) -> float:
        p = e ** (1.0 / PQ_M2)
        return PQ_PEAK * ((p - PQ_C1) / (PQ_C2 - PQ_C3 * p)) ** (1.0 / PQ_M1)

    h = 1e-6
    return formula(_PQ_E_TAIL), (formula(_PQ_E_TAIL + h) - formula(_PQ_E_TAIL - h)) / (2 * h)


_PQ_L_TAIL, _PQ_SLOPE_TAIL = _pq_tail()


def pq_eotf(e: torch.Tensor) -> torch.Tensor:
    """PQ signal E' -> display light in cd/m2."""

    def f(v):
        tail = _PQ_L_TAIL + _PQ_SLOPE_TAIL * (v - _PQ_E_TAIL)
        return torch.where(v <= _PQ_E_TAIL, _pq_eotf_formula(v.clamp_max(_PQ_E_TAIL)), tail)

    return _odd(f, e.float())


def pq_inverse_eotf(nits: torch.Tensor) -> torch.Tensor:
    """Display light in cd/m2 -> PQ signal E'."""

    def f(v):
        tail = _PQ_E_TAIL + (v - _PQ_L_TAIL) / _PQ_SLOPE_TAIL
        return torch.where(v <= _PQ_L_TAIL, _pq_inverse_formula(v.clamp_max(_PQ_L_TAIL)), tail)

    return _odd(f, nits.float())


# ----------------------------------------------------------------------------- HLG
def hlg_oetf(e: torch.Tensor) -> torch.Tensor:
    """HLG: scene light E (1 = the camera's nominal peak) -> signal E'."""

    def f(v):
        log = HLG_A * torch.log((12.0 * v - HLG_B).clamp_min(1e-30)) + HLG_C
        return torch.where(v <= 1.0 / 12.0, (3.0 * v).sqrt(), log)

    return _odd(f, e.float())


def hlg_inverse_oetf(e: torch.Tensor) -> torch.Tensor:
    """HLG: signal E' -> scene light E."""

    def f(v):
        exp = (torch.exp((v - HLG_C) / HLG_A) + HLG_B) / 12.0
        return torch.where(v <= 0.5, v * v / 3.0, exp)

    return _odd(f, e.float())


def hlg_system_gamma(peak: float) -> float:
    """BT.2100's system gamma for a display of nominal peak ``peak`` cd/m2: 1.2 at 1000,
    ``1.2 + 0.42 log10(peak / 1000)`` (BT.2100 table 5, note 5f; the Recommendation states it
    for 400 to 2000 cd/m2, and BT.2390 uses the same formula outside that range)."""
    if peak <= 0:
        raise ValueError(f"HLG nominal peak must be positive, got {peak}")
    return 1.2 + 0.42 * math.log10(peak / 1000.0)


def _luminance(rgb: torch.Tensor) -> torch.Tensor:
    r, g, b = rgb.unbind(1)
    return BT2020_Y[0] * r + BT2020_Y[1] * g + BT2020_Y[2] * b


def hlg_ootf(scene: torch.Tensor, peak: float = 1000.0, gamma: float | None = None) -> torch.Tensor:
    """HLG OOTF: linear scene RGB (B x 3 x H x W, BT.2020, 1 = nominal peak) -> display light
    in cd/m2: ``F_D = peak * Y_S^(gamma - 1) * E`` (black level 0)."""
    gamma = hlg_system_gamma(peak) if gamma is None else gamma
    y = _luminance(scene.float())
    gain = peak * y.abs().clamp_min(_HLG_Y_FLOOR).pow(gamma - 1.0)
    return scene.float() * gain.unsqueeze(1)


def hlg_inverse_ootf(display: torch.Tensor, peak: float = 1000.0, gamma: float | None = None) -> torch.Tensor:
    """The inverse of :func:`hlg_ootf`: display light in cd/m2 -> linear scene RGB.

    ``Y_D = peak * Y_S^gamma`` (the gain is a function of Y_S alone), so ``Y_S`` comes back
    from ``Y_D`` and the gain with it; below the floor the gain is constant, as forward."""
    gamma = hlg_system_gamma(peak) if gamma is None else gamma
    yd = _luminance(display.float()).abs()
    floor_d = peak * _HLG_Y_FLOOR**gamma
    ys = torch.where(yd >= floor_d, (yd / peak).pow(1.0 / gamma), yd / (peak * _HLG_Y_FLOOR ** (gamma - 1.0)))
    gain = peak * ys.clamp_min(_HLG_Y_FLOOR).pow(gamma - 1.0)
    return display.float() / gain.unsqueeze(1)


# ----------------------------------------------------------------------------- SDR
def srgb_encode(linear: torch.Tensor) -> torch.Tensor:
    """Linear light (1 = white) -> sRGB signal (IEC 61966-2-1's piecewise curve)."""

    def f(v):
        return torch.where(v <= 0.0031308, 12.92 * v, 1.055 * v.clamp_min(0.0031308).pow(1.0 / 2.4) - 0.055)

    return _odd(f, linear.float())


def srgb_decode(signal: torch.Tensor) -> torch.Tensor:
    """sRGB signal -> linear light."""

    def f(v):
        return torch.where(v <= 0.04045, v / 12.92, ((v.clamp_min(0.04045) + 0.055) / 1.055).pow(2.4))

    return _odd(f, signal.float())


def bt1886_encode(linear: torch.Tensor) -> torch.Tensor:
    """Linear display light (1 = white) -> signal by BT.1886's inverse EOTF with a zero black
    level: ``V = L^(1/2.4)``."""
    return _odd(lambda v: v.pow(1.0 / 2.4), linear.float())


def bt1886_decode(signal: torch.Tensor) -> torch.Tensor:
    """BT.1886's EOTF with a zero black level: ``L = V^2.4``."""
    return _odd(lambda v: v.pow(2.4), signal.float())
