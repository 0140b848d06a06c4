"""What an untagged picture means: one rule, used by every front end.

A stream that leaves a colour field unspecified gets, field by field:

* **matrix**: BT.2020 non-constant luminance when the primaries say BT.2020 or the transfer is
  PQ, HLG or BT.2020's; BT.709 or BT.601 when the primaries name one of them; otherwise by
  size, as mpv and libplacebo guess: BT.709 from 1280 columns or more than 576 lines up,
  BT.601 below. This is the one guess that changes colours visibly when wrong, so it comes
  with a warning naming it. Bit depth is not used: 10-bit BT.709 (camera and mezzanine
  files) is as common as 10-bit BT.2020, so depth tells nothing.
* **range**: limited (FFmpeg's and zimg's reading; FFmpeg's ``yuvj*`` formats state full).
* **primaries**: those of the matrix (BT.2020, BT.709; for BT.601, PAL's at 576 lines, NTSC's
  at 480 or 486, else BT.709, as mpv).
* **transfer**: SDR, BT.709's curve (BT.601 and BT.2020 SDR use the same one); RGB pictures
  (image files): sRGB, and their primaries BT.709 (BT.2020 for a stated PQ or HLG transfer).
* **chroma location**: left, the MPEG-2/H.264/HEVC default for 4:2:0 and zimg's.

A matrix we have no conversion for (RGB-in-YUV, YCgCo, BT.2020 constant luminance, ICtCp)
is an error, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import UserError
from .codes import KR_KB, ChromaLocation, Matrix, Primaries, Range, Transfer, label
from .spec import ColourSpec

_HDR_OR_UHD = (Transfer.SMPTE2084, Transfer.ARIB_STD_B67, Transfer.BT2020_10, Transfer.BT2020_12)


@dataclass(frozen=True)
class Guess:
    """One field the stream did not state, what we took it to be, and why."""

    field: str
    value: object
    reason: str
    warn: bool = False  # a guess users should hear about (the matrix)

    @property
    def message(self) -> str:
        words = {"chroma_location": "chroma location"}.get(self.field, self.field)
        return f"colour {words} not tagged: assuming {self.value.label} ({self.reason})"  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ResolvedColour:
    """The spec to convert with (every field stated) and the guesses that made it."""

    spec: ColourSpec
    guesses: tuple[Guess, ...] = ()

    @property
    def warnings(self) -> list[str]:
        return [g.message for g in self.guesses if g.warn]


def resolve(stated: ColourSpec, width: int, height: int, *, rgb: bool = False) -> ResolvedColour:
    """The colour of a ``width`` x ``height`` picture whose source states ``stated``: YUV
    (a video stream, a VapourSynth YUV clip) or, with ``rgb``, an RGB picture (an image
    file). Raises :class:`UserError` for a matrix we cannot convert."""
    if rgb:
        spec = replace(stated, matrix=Matrix.RGB, range=stated.range if stated.states("range") else Range.FULL)
        guesses: list[Guess] = []
        if spec.transfer in _HDR_OR_UHD:  # a PQ/HLG picture stated without its primaries: BT.2100's
            spec = _fill(spec, guesses, "primaries", Primaries.BT2020, f"{spec.transfer.label} transfer tagged")
        spec = _fill(spec, guesses, "primaries", Primaries.BT709, "sRGB")
        spec = _fill(spec, guesses, "transfer", Transfer.IEC61966_2_1, "sRGB")
        return ResolvedColour(spec, tuple(guesses))
    guesses = []
    spec = stated
    if not spec.states("matrix"):
        matrix, reason = _guess_matrix(spec, width, height)
        spec = _fill(spec, guesses, "matrix", matrix, reason, warn=True)
    elif spec.matrix not in KR_KB:
        raise UserError(
            f"colour matrix {label(spec.matrix)} is not supported (BT.601, BT.709 and BT.2020 non-constant luminance are)"
        )
    spec = _fill(spec, guesses, "range", Range.LIMITED, "as FFmpeg and zimg read untagged YUV")
    spec = _fill(spec, guesses, "primaries", _primaries_of(spec.matrix, height), f"those of the {spec.matrix.label} matrix")
    spec = _fill(spec, guesses, "transfer", Transfer.BT709, "SDR")
    spec = _fill(spec, guesses, "chroma_location", ChromaLocation.LEFT, "the MPEG-2/H.264/HEVC default")
    return ResolvedColour(spec, tuple(guesses))


def _fill(spec: ColourSpec, guesses: list[Guess], field: str, value, reason: str, warn: bool = False) -> ColourSpec:
    """``spec`` with ``field`` set to ``value`` (noted in ``guesses``) if it does not state it."""
    if spec.states(field):
        return spec
    guesses.append(Guess(field, value, reason, warn))
    return replace(spec, **{field: value})


def _guess_matrix(spec: ColourSpec, width: int, height: int) -> tuple[Matrix, str]:
    if spec.primaries == Primaries.BT2020 or spec.transfer in _HDR_OR_UHD:
        tagged = "BT.2020 primaries" if spec.primaries == Primaries.BT2020 else f"{spec.transfer.label} transfer"
        return Matrix.BT2020NC, f"{tagged} tagged"
    if spec.primaries == Primaries.BT709:
        return Matrix.BT709, "BT.709 primaries tagged"
    if spec.primaries in (Primaries.BT470BG, Primaries.SMPTE170M):
        return Matrix.SMPTE170M, "BT.601 primaries tagged"
    if width >= 1280 or height > 576:
        return Matrix.BT709, f"HD size {width}x{height}"
    return Matrix.SMPTE170M, f"SD size {width}x{height}"


def _primaries_of(matrix: Matrix, height: int) -> Primaries:
    if matrix == Matrix.BT2020NC:
        return Primaries.BT2020
    if matrix == Matrix.SMPTE240M:
        return Primaries.SMPTE240M
    if matrix == Matrix.FCC:
        return Primaries.BT470M
    if matrix in (Matrix.SMPTE170M, Matrix.BT470BG):
        return {576: Primaries.BT470BG, 480: Primaries.SMPTE170M, 486: Primaries.SMPTE170M}.get(height, Primaries.BT709)
    return Primaries.BT709
