"""HDR10 static metadata: what a stream says about its mastering display and light level."""

from __future__ import annotations

import struct
from dataclasses import dataclass


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
