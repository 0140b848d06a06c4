"""Colour: what streams say about it, what untagged input means, and YCbCr <-> R'G'B'.

* :mod:`~err_stream.colour.codes`: FFmpeg's and VapourSynth's colour codes as enums.
* :mod:`~err_stream.colour.spec`: :class:`ColourSpec` (matrix, range, primaries, transfer,
  chroma location), read from and written to PyAV and VapourSynth.
* :mod:`~err_stream.colour.policy`: :func:`resolve`, the one rule for untagged input.
* :mod:`~err_stream.colour.planes`: :class:`PlaneFormat`, the planar YUV layouts.
* :mod:`~err_stream.colour.chroma`: siting-aware chroma resampling, as zimg's.
* :mod:`~err_stream.colour.convert`: :class:`YCbCrConverter` and :class:`PackedFrameColour`.
* :mod:`~err_stream.colour.transfer`: PQ, HLG (with the BT.2100 OOTF), sRGB and BT.1886 curves.
* :mod:`~err_stream.colour.gamut`: primaries and the 3 x 3 between them in linear light.
* :mod:`~err_stream.colour.hdr`: :class:`HdrPath` (PQ/HLG <-> the SDR-referred picture the
  model sees), :class:`LightLevel` (MaxCLL/MaxFALL) and :class:`HdrMetadata` (HDR10 static
  metadata).

Names load on first use: importing the package does not import torch.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "ChromaLocation": ".codes",
    "Matrix": ".codes",
    "Primaries": ".codes",
    "Range": ".codes",
    "Transfer": ".codes",
    "ColourSpec": ".spec",
    "ResolvedColour": ".policy",
    "resolve": ".policy",
    "PlaneFormat": ".planes",
    "YCbCrConverter": ".convert",
    "PackedFrameColour": ".convert",
    "HdrMetadata": ".hdr",
    "HdrPath": ".hdr",
    "LightLevel": ".hdr",
}
__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
