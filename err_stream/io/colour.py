"""Colour: the tags a video stream carries, its planar YUV layout, and YUV <-> R'G'B' in torch.

We convert ourselves, in float32 on the compute device, with the stream's own matrix and
range; swscale would silently use BT.601 when a tag is missing and round through 8 bits.

Chroma is upsampled by repetition and downsampled by a box average over the same 2x2 (or
2x1) cells. That pair is exactly invertible, so a passthrough round trip gives back every
sample (the only error is float rounding, far below half a code value), which is what the
``--passthrough`` check relies on. The trade-off is that chroma siting (left vs centre) is
treated as centre; the shift is half a chroma sample, invisible after restoration.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError

log = logging.getLogger(__name__)

# FFmpeg's enum values (AVColorSpace, AVColorRange, AVColorPrimaries, AVColorTransferCharacteristic).
MATRIX_NAMES = {0: "rgb", 1: "bt709", 2: "unspecified", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
                8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 14: "ictcp"}
RANGE_NAMES = {0: "unspecified", 1: "limited", 2: "full"}
PRIMARIES_NAMES = {1: "bt709", 2: "unspecified", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
                   8: "film", 9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213"}
TRANSFER_NAMES = {1: "bt709", 2: "unspecified", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m",
                  8: "linear", 13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084",
                  17: "smpte428", 18: "arib-std-b67"}

MATRIX_BT709, MATRIX_UNSPECIFIED, MATRIX_BT601, MATRIX_BT2020_NCL = 1, 2, 6, 9
RANGE_UNSPECIFIED, RANGE_LIMITED, RANGE_FULL = 0, 1, 2
PRIMARIES_BT2020 = 9

# (Kr, Kb) of each supported YCbCr matrix (ITU-R BT.709, BT.601, BT.2020 non-constant, and
# the two legacy ones that cost nothing to support).
_KR_KB = {
    1: (0.2126, 0.0722),
    4: (0.30, 0.11),
    5: (0.299, 0.114),
    6: (0.299, 0.114),
    7: (0.212, 0.087),
    9: (0.2627, 0.0593),
}


@dataclass(frozen=True)
class ColourTags:
    """The four colour tags of a stream, as FFmpeg numbers them."""

    matrix: int = MATRIX_UNSPECIFIED
    range: int = RANGE_UNSPECIFIED
    primaries: int = 2
    transfer: int = 2

    @classmethod
    def of(cls, obj) -> ColourTags:
        """Read the tags of a PyAV VideoFrame or VideoCodecContext."""
        return cls(int(obj.colorspace), int(obj.color_range), int(obj.color_primaries), int(obj.color_trc))

    def describe(self) -> dict[str, str]:
        return {
            "matrix": MATRIX_NAMES.get(self.matrix, str(self.matrix)),
            "range": RANGE_NAMES.get(self.range, str(self.range)),
            "primaries": PRIMARIES_NAMES.get(self.primaries, str(self.primaries)),
            "transfer": TRANSFER_NAMES.get(self.transfer, str(self.transfer)),
        }

    def apply_to(self, obj) -> None:
        """Write the tags onto a PyAV VideoFrame or VideoCodecContext."""
        obj.colorspace = self.matrix
        obj.color_range = self.range
        obj.color_primaries = self.primaries
        obj.color_trc = self.transfer


@dataclass(frozen=True)
class PlaneFormat:
    """A YUV pixel format we read and write: planar (or NV12-style semi-planar on output),
    8 to 16 bits, little-endian, no alpha."""

    name: str
    bits: int
    log2_chroma_w: int
    log2_chroma_h: int
    semi_planar: bool = False

    @classmethod
    def parse(cls, name: str) -> PlaneFormat:
        import av

        try:
            fmt = av.VideoFormat(name)
        except (ValueError, av.error.FFmpegError):
            raise UserError(f"unknown pixel format {name!r}") from None
        comps = fmt.components
        if fmt.is_rgb or fmt.has_palette or fmt.is_bayer or len(comps) != 3 or any(c.is_alpha for c in comps):
            raise UserError(f"pixel format {name} is not supported (only YUV without alpha: yuv420p, yuv422p10le, ...)")
        if fmt.is_big_endian and comps[0].bits > 8:
            raise UserError(f"pixel format {name} is big-endian; only little-endian formats are supported")
        bits = comps[0].bits
        if bits < 8 or bits > 16 or any(c.bits != bits for c in comps):
            raise UserError(f"pixel format {name}: {bits}-bit samples are not supported (8 to 16 bits)")
        planes = {c.plane for c in comps}
        if planes == {0, 1, 2}:
            semi = False
        elif planes == {0, 1} and name in _SEMI_PLANAR:
            semi = True
        else:
            raise UserError(f"pixel format {name} is not supported (planar YUV, or nv12/p010 on output)")
        shifts = {1024: 0, 512: 1, 256: 2}
        sx, sy = shifts.get(fmt.chroma_width(1024)), shifts.get(fmt.chroma_height(1024))
        if sx is None or sy is None:
            raise UserError(f"pixel format {name}: unsupported chroma subsampling")
        return cls(name, bits, sx, sy, semi)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8) if self.bits == 8 else np.dtype("<u2")

    @property
    def torch_dtype(self) -> torch.dtype:
        """How code values are stored in torch for transfers: uint8, or int16 holding the
        16-bit pattern (torch's uint16 lacks most CUDA kernels); see :func:`code_values`."""
        return torch.uint8 if self.bits == 8 else torch.int16

    @property
    def max_code(self) -> int:
        return (1 << self.bits) - 1

    def chroma_size(self, width: int, height: int) -> tuple[int, int]:
        """(w, h) of a chroma plane for a frame of this size."""
        return _ceil_shift(width, self.log2_chroma_w), _ceil_shift(height, self.log2_chroma_h)

    def plane_shapes(self, width: int, height: int) -> list[tuple[int, int]]:
        """(h, w) of the Y, Cb and Cr planes."""
        cw, ch = self.chroma_size(width, height)
        return [(height, width), (ch, cw), (ch, cw)]

    def frame_elements(self, width: int, height: int) -> int:
        """Samples in one frame (all three planes)."""
        return sum(h * w for h, w in self.plane_shapes(width, height))

    def subsampling(self) -> str:
        return {(1, 1): "4:2:0", (1, 0): "4:2:2", (0, 0): "4:4:4", (2, 0): "4:1:1", (0, 1): "4:4:0"}.get(
            (self.log2_chroma_w, self.log2_chroma_h), f"{self.log2_chroma_w}/{self.log2_chroma_h}")


_SEMI_PLANAR = {"nv12", "nv21", "p010le", "p012le", "p016le", "nv16", "p210le", "p216le"}


def _ceil_shift(n: int, s: int) -> int:
    return -((-n) >> s)


def resolve_matrix(tags: ColourTags, width: int, height: int) -> int:
    """The YCbCr matrix to convert with. Unspecified: BT.2020 if the primaries say so,
    BT.709 from 720 lines (or 1280 columns) up, else BT.601 (what players assume)."""
    m = tags.matrix
    if m in _KR_KB:
        return m
    if m in (MATRIX_UNSPECIFIED, 3):
        if tags.primaries == PRIMARIES_BT2020:
            guess = MATRIX_BT2020_NCL
        elif height >= 720 or width >= 1280:
            guess = MATRIX_BT709
        else:
            guess = MATRIX_BT601
        log.info("colour matrix not tagged: assuming %s for %dx%d", MATRIX_NAMES[guess], width, height)
        return guess
    raise UserError(
        f"colour matrix {MATRIX_NAMES.get(m, m)} is not supported (BT.601, BT.709 and BT.2020 non-constant are)"
    )


def resolve_full_range(tags: ColourTags, pix_fmt: str) -> bool:
    """Full range if tagged so (or a yuvj format); unspecified means limited, as in FFmpeg."""
    if tags.range == RANGE_FULL:
        return True
    if tags.range == RANGE_UNSPECIFIED and pix_fmt.startswith("yuvj"):
        return True
    return False


class YCbCrConverter:
    """YCbCr code values <-> non-linear R'G'B' in [0, 1] for one matrix and range, in float32.

    ``planes_to_rgb`` takes the three planes (B x H x W and two B x h x w chroma planes of
    integer codes, any bit depth) and returns B x 3 x H x W float32; ``rgb_to_planes`` does
    the reverse for an output :class:`PlaneFormat` (rounded and clamped to the code range).
    Both run on whatever device the tensors are on.
    """

    def __init__(self, matrix: int, full_range: bool) -> None:
        if matrix not in _KR_KB:
            raise ValueError(f"unsupported matrix {matrix}")
        self.matrix = matrix
        self.full_range = full_range
        kr, kb = _KR_KB[matrix]
        self.kr, self.kb, self.kg = kr, kb, 1.0 - kr - kb

    # ---- code value scaling
    def _scales(self, bits: int) -> tuple[float, float, float, float]:
        """(y_offset, y_scale, c_offset, c_scale): code = offset + scale * value."""
        if self.full_range:
            top = float((1 << bits) - 1)
            return 0.0, top, float(1 << (bits - 1)), top
        s = float(1 << (bits - 8))
        return 16.0 * s, 219.0 * s, 128.0 * s, 224.0 * s

    def codes_to_rgb(self, y: torch.Tensor, cb: torch.Tensor, cr: torch.Tensor, bits: int) -> torch.Tensor:
        """Full-resolution code planes (any dtype, B x H x W) -> B x 3 x H x W float32."""
        yo, ys, co, cs = self._scales(bits)
        yv = (y.float() - yo) / ys
        u = (cb.float() - co) / cs
        v = (cr.float() - co) / cs
        r = yv + (2.0 - 2.0 * self.kr) * v
        b = yv + (2.0 - 2.0 * self.kb) * u
        g = (yv - self.kr * r - self.kb * b) / self.kg
        return torch.stack((r, g, b), dim=1)

    def rgb_to_codes(self, rgb: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """B x 3 x H x W float -> full-resolution float code planes (not rounded)."""
        yo, ys, co, cs = self._scales(bits)
        r, g, b = rgb.float().unbind(1)
        yv = self.kr * r + self.kg * g + self.kb * b
        u = (b - yv) / (2.0 - 2.0 * self.kb)
        v = (r - yv) / (2.0 - 2.0 * self.kr)
        return yv * ys + yo, u * cs + co, v * cs + co

    # ---- planes (with chroma subsampling)
    def planes_to_rgb(self, y: torch.Tensor, cb: torch.Tensor, cr: torch.Tensor, fmt: PlaneFormat) -> torch.Tensor:
        h, w = y.shape[-2:]
        cb = _upsample(code_values(cb), fmt.log2_chroma_w, fmt.log2_chroma_h, h, w)
        cr = _upsample(code_values(cr), fmt.log2_chroma_w, fmt.log2_chroma_h, h, w)
        return self.codes_to_rgb(code_values(y), cb, cr, fmt.bits)

    def rgb_to_planes(self, rgb: torch.Tensor, fmt: PlaneFormat) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        yc, cb, cr = self.rgb_to_codes(rgb, fmt.bits)
        cb = _box_downsample(cb, fmt.log2_chroma_w, fmt.log2_chroma_h)
        cr = _box_downsample(cr, fmt.log2_chroma_w, fmt.log2_chroma_h)
        top = float(fmt.max_code)
        dt = torch.uint8 if fmt.bits == 8 else torch.int32
        return tuple(p.round_().clamp_(0.0, top).to(dt) for p in (yc, cb, cr))  # type: ignore[return-value]

    # ---- DALI's RGB
    def from_bt601_limited_rgb(self, rgb8: torch.Tensor) -> torch.Tensor:
        """Undo a decoder's fixed BT.601 limited-range conversion (NVIDIA DALI's), then convert
        with this stream's own matrix and range.

        ``rgb8``: B x H x W x 3 uint8 as DALI returns it. We recover the 8-bit YCbCr codes
        (to within its RGB rounding, < 0.5 code) and convert them properly."""
        x = rgb8.permute(0, 3, 1, 2).float() / 255.0
        y, cb, cr = _BT601_LIMITED.rgb_to_codes(x, 8)
        return self.codes_to_rgb(y, cb, cr, 8)


_BT601_LIMITED = YCbCrConverter(MATRIX_BT601, full_range=False)


class PackedFrameColour:
    """The colour path every front end uses: one frame's code planes packed in one flat
    buffer (how frames travel to the device) <-> B x 3 x H x W R'G'B' float32 on the device.

    The transcoder and the VapourSynth filter both convert with this, so the same frames
    give the same pixels through either. ``to_rgb``: packed codes (B x N, ``in_fmt``) ->
    RGB; ``from_rgb``: RGB (clamped to [0, 1] when ``clamp``) -> packed codes (B x N',
    ``out_fmt``, in its transfer dtype).
    """

    def __init__(self, converter: YCbCrConverter, in_fmt: PlaneFormat, out_fmt: PlaneFormat, width: int, height: int) -> None:
        self.converter, self.in_fmt, self.out_fmt = converter, in_fmt, out_fmt
        self.in_shapes = in_fmt.plane_shapes(width, height)
        self.out_shapes = out_fmt.plane_shapes(width, height)

    def to_rgb(self, codes: torch.Tensor) -> torch.Tensor:
        y, cb, cr = split_planes(codes, self.in_shapes)
        return self.converter.planes_to_rgb(y, cb, cr, self.in_fmt)

    def from_rgb(self, rgb: torch.Tensor, clamp: bool = True) -> torch.Tensor:
        if clamp:
            rgb = rgb.clamp(0.0, 1.0)
        planes = self.converter.rgb_to_planes(rgb, self.out_fmt)
        dtype = self.out_fmt.torch_dtype
        return torch.cat([p.reshape(rgb.shape[0], -1).to(dtype) for p in planes], dim=1)


def split_planes(codes: torch.Tensor, shapes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """B x N packed codes -> the planes (B x h x w views) of the given shapes."""
    out, at = [], 0
    for h, w in shapes:
        out.append(codes[:, at : at + h * w].view(-1, h, w))
        at += h * w
    return out


def code_values(p: torch.Tensor) -> torch.Tensor:
    """Integer code planes (uint8, uint16, or int16 holding 16-bit patterns) as float32."""
    if p.dtype == torch.int16:
        return (p.to(torch.int32) & 0xFFFF).float()
    return p.float()


def _upsample(c: torch.Tensor, sx: int, sy: int, h: int, w: int) -> torch.Tensor:
    if sx:
        c = c.repeat_interleave(1 << sx, dim=-1)
    if sy:
        c = c.repeat_interleave(1 << sy, dim=-2)
    return c[..., :h, :w]


def _box_downsample(c: torch.Tensor, sx: int, sy: int) -> torch.Tensor:
    if not (sx or sy):
        return c
    fx, fy = 1 << sx, 1 << sy
    h, w = c.shape[-2:]
    x = c.unsqueeze(1)
    ph, pw = (-h) % fy, (-w) % fx
    if ph or pw:
        # Odd sizes: the last chroma sample covers the edge pixels only (replicated).
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return F.avg_pool2d(x, kernel_size=(fy, fx), stride=(fy, fx)).squeeze(1)


# ----------------------------------------------------------------------------- HDR10 metadata
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
