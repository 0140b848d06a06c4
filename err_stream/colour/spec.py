"""One object for what a stream says about its colour: :class:`ColourSpec`.

Read from PyAV (a decoded frame or a codec context) or from VapourSynth frame properties,
written back to either. It holds what the source *states*; fields it does not state are
``UNSPECIFIED``, and :func:`err_stream.colour.policy.resolve` decides what they mean.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from .codes import ChromaLocation, Matrix, Primaries, Range, Transfer, label

# The VapourSynth frame property of each field (the range has two: see Range.from_vs).
_VS_PROPS = {"matrix": "_Matrix", "primaries": "_Primaries", "transfer": "_Transfer"}


def _coerce(enum, value):
    """The enum member for ``value``; a number the enum does not know stays an int, so a
    newer code point is still carried from input to output."""
    if isinstance(value, enum):
        return value
    member = enum.of(value)
    return member if member is not None else int(value)


@dataclass(frozen=True)
class ColourSpec:
    """Matrix, range, primaries, transfer and chroma location of a picture, in the numbers
    of :mod:`err_stream.colour.codes` (FFmpeg's)."""

    matrix: Matrix = Matrix.UNSPECIFIED
    range: Range = Range.UNSPECIFIED
    primaries: Primaries = Primaries.UNSPECIFIED
    transfer: Transfer = Transfer.UNSPECIFIED
    chroma_location: ChromaLocation = ChromaLocation.UNSPECIFIED

    def __post_init__(self) -> None:
        for f, enum in _ENUMS.items():
            object.__setattr__(self, f, _coerce(enum, getattr(self, f)))

    # ------------------------------------------------------------------ PyAV
    @classmethod
    def from_av(cls, obj) -> ColourSpec:
        """What a PyAV ``VideoFrame`` or video ``CodecContext`` states."""
        loc = obj.chroma_sample_location if hasattr(obj, "chroma_sample_location") else obj.chroma_location
        return cls(obj.colorspace, obj.color_range, obj.color_primaries, obj.color_trc, loc)

    def apply_to(self, obj) -> None:
        """State this spec on a PyAV ``VideoFrame`` or video ``CodecContext`` (what encoders
        and muxers write into the stream)."""
        obj.colorspace = int(self.matrix)
        obj.color_range = int(self.range)
        obj.color_primaries = int(self.primaries)
        obj.color_trc = int(self.transfer)
        if hasattr(obj, "chroma_sample_location"):
            obj.chroma_sample_location = int(self.chroma_location)
        else:
            obj.chroma_location = int(self.chroma_location)

    def filled_from(self, other: ColourSpec) -> ColourSpec:
        """This spec, with the fields it leaves unspecified taken from ``other`` (a decoder
        may leave a frame's tags unspecified when the container states them)."""
        return replace(self, **{f.name: getattr(other, f.name) for f in fields(self) if not self.states(f.name)})

    def states(self, field: str) -> bool:
        """Whether the field is stated (not unspecified or reserved)."""
        return getattr(self, field) not in _UNSTATED[field]

    # ------------------------------------------------------------------ VapourSynth
    @classmethod
    def from_vs_props(cls, props) -> ColourSpec:
        """What VapourSynth frame properties state: ``_Matrix``, ``_Range`` (or the older
        ``_ColorRange``), ``_Primaries``, ``_Transfer``, ``_ChromaLocation``."""
        kw: dict[str, Any] = {f: props[p] for f, p in _VS_PROPS.items() if p in props}
        kw["range"] = Range.from_vs(props)
        kw["chroma_location"] = ChromaLocation.from_vs(props.get("_ChromaLocation"))
        return cls(**kw)

    def vs_props(self) -> dict[str, int]:
        """The frame properties for what this spec states (unstated fields are left out)."""
        out = {p: int(getattr(self, f)) for f, p in _VS_PROPS.items() if self.states(f)}
        if self.range.vs is not None:
            out["_Range"] = int(self.range.vs)
        if self.chroma_location.vs is not None:
            out["_ChromaLocation"] = self.chroma_location.vs
        return out

    def write_vs_props(self, props) -> None:
        """Write :meth:`vs_props` into a frame's (writable) property map; the older
        ``_ColorRange`` is dropped where ``_Range`` is written, so the two never disagree."""
        new = self.vs_props()
        if "_Range" in new and "_ColorRange" in props:
            del props["_ColorRange"]
        props.update(new)

    # ------------------------------------------------------------------ words
    def describe(self) -> dict[str, str]:
        """FFmpeg's name of each field (``bt709``, ``limited``, ``smpte2084``, ``topleft``...)."""
        return {f.name: label(getattr(self, f.name)) for f in fields(self)}


_ENUMS = {"matrix": Matrix, "range": Range, "primaries": Primaries, "transfer": Transfer, "chroma_location": ChromaLocation}
_UNSTATED = {
    "matrix": (Matrix.UNSPECIFIED, Matrix.RESERVED),
    "range": (Range.UNSPECIFIED,),
    "primaries": (Primaries.UNSPECIFIED, Primaries.RESERVED, Primaries.RESERVED0),
    "transfer": (Transfer.UNSPECIFIED, Transfer.RESERVED, Transfer.RESERVED0),
    "chroma_location": (ChromaLocation.UNSPECIFIED,),
}
