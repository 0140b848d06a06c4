"""The numbers streams and VapourSynth use for colour, as enums, and the mapping between them.

Matrix, primaries and transfer are ITU-T H.273 code points: FFmpeg (``AVColorSpace``,
``AVColorPrimaries``, ``AVColorTransferCharacteristic``) and VapourSynth (``_Matrix``,
``_Primaries``, ``_Transfer``) use the same numbers, so one enum each serves both. Range and
chroma location are numbered differently:

* FFmpeg's ``AVColorRange``: 0 unspecified, 1 limited ("MPEG"), 2 full ("JPEG");
  VapourSynth's ``_Range`` (R81 and later): 0 limited, 1 full; its older ``_ColorRange``:
  0 full, 1 limited.
* FFmpeg's ``AVChromaLocation``: 0 unspecified, then left, center, top-left, top,
  bottom-left, bottom (1-6); VapourSynth's ``_ChromaLocation``: the same list from 0.

:class:`Range` and :class:`ChromaLocation` carry FFmpeg's numbers (they have "unspecified");
``from_vs``/``vs`` convert.
"""

from __future__ import annotations

from enum import IntEnum


class _Labelled(IntEnum):
    @property
    def label(self) -> str:
        """FFmpeg's name for the value (``bt709``, ``smpte2084``...)."""
        return _LABELS.get((type(self).__name__, self.name), self.name.lower())

    @classmethod
    def of(cls, value: int):
        """The member for ``value``, or None when the number is not one we know."""
        try:
            return cls(int(value))
        except ValueError:
            return None


def label(value) -> str:
    """FFmpeg's name of a code (``bt709``), or the number for one we do not know."""
    return value.label if isinstance(value, _Labelled) else str(value)


class Matrix(_Labelled):
    """YCbCr matrix coefficients (H.273 table 4; ``AVColorSpace``, ``_Matrix``)."""

    RGB = 0
    BT709 = 1
    UNSPECIFIED = 2
    RESERVED = 3
    FCC = 4
    BT470BG = 5
    SMPTE170M = 6  # BT.601 (525 and 625 lines use the same coefficients)
    SMPTE240M = 7
    YCGCO = 8
    BT2020NC = 9
    BT2020C = 10
    SMPTE2085 = 11
    CHROMA_DERIVED_NC = 12
    CHROMA_DERIVED_C = 13
    ICTCP = 14
    IPT_C2 = 15
    YCGCO_RE = 16
    YCGCO_RO = 17


# (Kr, Kb) of the YCbCr matrices we convert with (H.273 table 4): BT.709, BT.601, BT.2020
# non-constant luminance, and the legacy ones that cost nothing to support.
KR_KB = {
    Matrix.BT709: (0.2126, 0.0722),
    Matrix.FCC: (0.30, 0.11),
    Matrix.BT470BG: (0.299, 0.114),
    Matrix.SMPTE170M: (0.299, 0.114),
    Matrix.SMPTE240M: (0.212, 0.087),
    Matrix.BT2020NC: (0.2627, 0.0593),
}


class Primaries(_Labelled):
    """Colour primaries (H.273 table 2; ``AVColorPrimaries``, ``_Primaries``)."""

    RESERVED0 = 0
    BT709 = 1
    UNSPECIFIED = 2
    RESERVED = 3
    BT470M = 4
    BT470BG = 5  # BT.601 625 lines (PAL)
    SMPTE170M = 6  # BT.601 525 lines (NTSC)
    SMPTE240M = 7
    FILM = 8
    BT2020 = 9
    SMPTE428 = 10
    SMPTE431 = 11
    SMPTE432 = 12
    EBU3213 = 22


class Transfer(_Labelled):
    """Transfer characteristics (H.273 table 3; ``AVColorTransferCharacteristic``, ``_Transfer``)."""

    RESERVED0 = 0
    BT709 = 1
    UNSPECIFIED = 2
    RESERVED = 3
    GAMMA22 = 4
    GAMMA28 = 5
    SMPTE170M = 6
    SMPTE240M = 7
    LINEAR = 8
    LOG100 = 9
    LOG316 = 10
    IEC61966_2_4 = 11
    BT1361 = 12
    IEC61966_2_1 = 13  # sRGB
    BT2020_10 = 14
    BT2020_12 = 15
    SMPTE2084 = 16  # PQ
    SMPTE428 = 17
    ARIB_STD_B67 = 18  # HLG


# The transfers the HDR path (err_stream.colour.hdr) is for, and the ``hdr`` setting every front
# end takes: ``auto``, that path for them; ``passthrough``, their code values to the model as
# they are (what err-stream did before the path existed).
HDR_TRANSFERS = (Transfer.SMPTE2084, Transfer.ARIB_STD_B67)
HDR_MODES = ("auto", "passthrough")


class Range(_Labelled):
    """Quantisation range in FFmpeg's numbers (``AVColorRange``)."""

    UNSPECIFIED = 0
    LIMITED = 1
    FULL = 2

    @classmethod
    def from_vs(cls, props) -> Range:
        """The range VapourSynth frame properties state: ``_Range`` (R81 and later: 0
        limited, 1 full), else ``_ColorRange`` (older: 0 full, 1 limited), else unspecified."""
        if "_Range" in props:
            return cls.FULL if int(props["_Range"]) == VSRange.FULL else cls.LIMITED
        if "_ColorRange" in props:
            return cls.FULL if int(props["_ColorRange"]) == VSColorRange.FULL else cls.LIMITED
        return cls.UNSPECIFIED

    @property
    def vs(self) -> VSRange | None:
        """The ``_Range`` value, or None for unspecified (the property is then left out)."""
        return {Range.LIMITED: VSRange.LIMITED, Range.FULL: VSRange.FULL}.get(self)


class VSRange(IntEnum):
    """VapourSynth's ``_Range`` (R81 and later)."""

    LIMITED = 0
    FULL = 1


class VSColorRange(IntEnum):
    """VapourSynth's ``_ColorRange`` (before R81; the numbers are flipped)."""

    FULL = 0
    LIMITED = 1


class ChromaLocation(_Labelled):
    """Where chroma samples sit relative to luma, in FFmpeg's numbers (``AVChromaLocation``;
    H.273's chroma_sample_loc_type + 1)."""

    UNSPECIFIED = 0
    LEFT = 1  # MPEG-2/4, H.264 and HEVC default for 4:2:0; co-sited horizontally, centred vertically
    CENTER = 2  # MPEG-1, JPEG, H.263 4:2:0
    TOPLEFT = 3  # co-sited both ways: BT.2020/BT.2100 (HDR) masters, 4:2:2 (BT.601)
    TOP = 4
    BOTTOMLEFT = 5
    BOTTOM = 6

    @classmethod
    def from_vs(cls, value: int | None) -> ChromaLocation:
        """From a ``_ChromaLocation`` value (0 = left ... 5 = bottom); None: unspecified."""
        if value is None:
            return cls.UNSPECIFIED
        return cls(int(value) + 1) if 0 <= int(value) <= 5 else cls.UNSPECIFIED

    @property
    def vs(self) -> int | None:
        """The ``_ChromaLocation`` value, or None for unspecified."""
        return None if self == ChromaLocation.UNSPECIFIED else int(self) - 1

    def siting(self) -> tuple[str, str]:
        """(horizontal, vertical) placement: ``left``/``center`` and ``top``/``center``/``bottom``."""
        return _SITING[self]


_SITING = {
    ChromaLocation.LEFT: ("left", "center"),
    ChromaLocation.CENTER: ("center", "center"),
    ChromaLocation.TOPLEFT: ("left", "top"),
    ChromaLocation.TOP: ("center", "top"),
    ChromaLocation.BOTTOMLEFT: ("left", "bottom"),
    ChromaLocation.BOTTOM: ("center", "bottom"),
}

# FFmpeg's names where they are not the member's name in lower case.
_LABELS = {
    ("Transfer", "IEC61966_2_4"): "iec61966-2-4",
    ("Transfer", "IEC61966_2_1"): "iec61966-2-1",
    ("Transfer", "BT2020_10"): "bt2020-10",
    ("Transfer", "BT2020_12"): "bt2020-12",
    ("Transfer", "ARIB_STD_B67"): "arib-std-b67",
    ("Transfer", "BT1361"): "bt1361e",
    ("Matrix", "CHROMA_DERIVED_NC"): "chroma-derived-nc",
    ("Matrix", "CHROMA_DERIVED_C"): "chroma-derived-c",
    ("Matrix", "IPT_C2"): "ipt-c2",
    ("Matrix", "YCGCO_RE"): "ycgco-re",
    ("Matrix", "YCGCO_RO"): "ycgco-ro",
    ("ChromaLocation", "TOPLEFT"): "topleft",
    ("ChromaLocation", "BOTTOMLEFT"): "bottomleft",
}
