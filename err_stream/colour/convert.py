"""YCbCr code values <-> non-linear R'G'B' in torch, and the packed-frame path every front end uses.

We convert ourselves, in float32 on the compute device, with the stream's own matrix, range
and chroma location; swscale would silently use BT.601 when a tag is missing and round
through 8 bits.

Chroma is resampled as zimg does (:mod:`err_stream.colour.chroma`: Catmull-Rom, sited where
the chroma location says), so a picture converted here equals VapourSynth's ``resize`` to
within one code value, both ways.

**Going back to subsampled chroma when the input was subsampled the same way**, the output
chroma is the input's plus the downsampled *change* the model made::

    C_out = C_in + down(C(rgb_out) - up(C_in))

rather than ``down(C(rgb_out))``. A bicubic ``down`` after ``up`` is not the identity: it
softens chroma at colour edges (up to 37 10-bit code values on a photograph), each time a
picture goes through. With the change instead, a picture the model leaves alone comes back
exactly (a run without a model, an identity model; pixels the output clamp moves excepted), a
uniform change (a gain) keeps the input's chroma detail, and where the model changed the
picture the change is what zimg's ``down`` gives. The cost is on input noise the model
removes: its finest chroma part (what ``down(up(.))`` does not pass) stays, at the input's
level. ``benchmarks/chroma_siting.py`` measures it on photographs (chroma PSNR against the
original, versus ``down(C(rgb_out))``): +1.0 dB untouched, +0.4 dB brightened, -0.3 to
-0.6 dB on noisy dark input that is only brightened, -0.4 to 0.0 dB on it blurred and
brightened, -0.5 to +0.2 dB on it restored perfectly. (A least-squares inverse of ``up`` does better on clean pictures, worse
on noisy ones, and needs a dense solve.)
"""

from __future__ import annotations

import torch

from . import chroma
from .codes import KR_KB, ChromaLocation, Matrix, Range
from .hdr import HdrPath, LightLevel
from .planes import PlaneFormat, code_values, split_planes
from .spec import ColourSpec


class YCbCrConverter:
    """YCbCr code values <-> non-linear R'G'B' in [0, 1] for one matrix, range and chroma
    location, in float32.

    ``planes_to_rgb`` takes the three planes (B x H x W and two B x h x w chroma planes of
    integer codes, any bit depth) and returns B x 3 x H x W float32; ``rgb_to_planes`` does
    the reverse for an output :class:`PlaneFormat` (rounded and clamped to the code range).
    Both run on whatever device the tensors are on.
    """

    def __init__(self, matrix: Matrix | int, full_range: bool, chroma_location: ChromaLocation = ChromaLocation.LEFT) -> None:
        matrix = Matrix.of(matrix)
        if matrix not in KR_KB:
            raise ValueError(f"unsupported matrix {matrix}")
        self.matrix = matrix
        self.full_range = full_range
        self.siting = ChromaLocation(chroma_location).siting()
        kr, kb = KR_KB[matrix]
        self.kr, self.kb, self.kg = kr, kb, 1.0 - kr - kb

    @classmethod
    def for_spec(cls, spec: ColourSpec) -> YCbCrConverter:
        """The converter for a resolved spec (see :func:`err_stream.colour.policy.resolve`)."""
        return cls(spec.matrix, spec.range == Range.FULL, spec.chroma_location)

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
    def _up(self, c: torch.Tensor, fmt: PlaneFormat, h: int, w: int) -> torch.Tensor:
        return chroma.upsample(c, fmt.log2_chroma_w, fmt.log2_chroma_h, h, w, self.siting)

    def _down(self, c: torch.Tensor, fmt: PlaneFormat) -> torch.Tensor:
        return chroma.downsample(c, fmt.log2_chroma_w, fmt.log2_chroma_h, self.siting)

    def planes_to_rgb(self, y: torch.Tensor, cb: torch.Tensor, cr: torch.Tensor, fmt: PlaneFormat) -> torch.Tensor:
        h, w = y.shape[-2:]
        c = self._up(torch.cat((code_values(cb), code_values(cr))), fmt, h, w)
        cb, cr = c.chunk(2)
        return self.codes_to_rgb(code_values(y), cb, cr, fmt.bits)

    def rgb_to_planes(
        self, rgb: torch.Tensor, fmt: PlaneFormat, source: tuple[torch.Tensor, torch.Tensor, PlaneFormat] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """R'G'B' -> rounded, clamped code planes of ``fmt`` (uint8, or int32 above 8 bits).

        ``source``: the chroma planes the picture came from (Cb, Cr and their format). When
        they are subsampled as ``fmt`` is, for a picture of this size, the output chroma is
        theirs plus the change the picture went through (see the module's docstring)."""
        h, w = rgb.shape[-2:]
        yc, cb, cr = self.rgb_to_codes(rgb, fmt.bits)
        c = torch.cat((cb, cr))
        if fmt.subsampled:
            if source is not None and _fits(source, fmt, h, w):
                c_in = self._chroma_in(torch.cat((code_values(source[0]), code_values(source[1]))), source[2].bits, fmt.bits)
                c = c_in + self._down(c - self._up(c_in, fmt, h, w), fmt)
            else:
                c = self._down(c, fmt)
        cb, cr = c.chunk(2)
        top = float(fmt.max_code)
        dt = torch.uint8 if fmt.bits == 8 else torch.int32
        return tuple(p.round_().clamp_(0.0, top).to(dt) for p in (yc, cb, cr))  # type: ignore[return-value]

    def _chroma_in(self, c: torch.Tensor, bits_in: int, bits_out: int) -> torch.Tensor:
        """Chroma codes of ``bits_in`` as (unrounded) codes of ``bits_out``."""
        if bits_in == bits_out:
            return c
        _, _, co_in, cs_in = self._scales(bits_in)
        _, _, co, cs = self._scales(bits_out)
        return (c - co_in) * (cs / cs_in) + co

    # ---- DALI's RGB
    def from_bt601_limited_rgb(self, rgb8: torch.Tensor) -> torch.Tensor:
        """Undo a decoder's fixed BT.601 limited-range conversion (NVIDIA DALI's), then convert
        with this stream's own matrix and range.

        ``rgb8``: B x H x W x 3 uint8 as DALI returns it. We recover the 8-bit YCbCr codes
        (to within its RGB rounding, < 0.5 code) and convert them properly."""
        x = rgb8.permute(0, 3, 1, 2).float() / 255.0
        y, cb, cr = _BT601_LIMITED.rgb_to_codes(x, 8)
        return self.codes_to_rgb(y, cb, cr, 8)


_BT601_LIMITED = YCbCrConverter(Matrix.SMPTE170M, full_range=False)


def _fits(source: tuple[torch.Tensor, torch.Tensor, PlaneFormat], fmt: PlaneFormat, h: int, w: int) -> bool:
    """Whether the source chroma is ``fmt``'s for an h x w picture (subsampled alike, same size)."""
    src = source[2]
    same = (src.log2_chroma_w, src.log2_chroma_h) == (fmt.log2_chroma_w, fmt.log2_chroma_h)
    return same and tuple(source[0].shape[-2:]) == fmt.plane_shapes(w, h)[1]


class PackedFrameColour:
    """The colour path every front end uses: one frame's code planes packed in one flat
    buffer (how frames travel to the device) <-> B x 3 x H x W R'G'B' float32 on the device.

    The transcoder and the VapourSynth filter both convert with this, so the same frames
    give the same pixels through either. ``to_rgb``: packed codes (B x N, ``in_fmt``) ->
    RGB; ``from_rgb``: RGB (clamped to [0, 1] when ``clamp``) -> packed codes (B x N',
    ``out_fmt``, in its transfer dtype), keeping the input's chroma where the picture did
    not change when given the packed input ``codes`` it came from.

    ``hdr``: for a PQ or HLG stream, the model sees the SDR-referred picture of
    :class:`~err_stream.colour.hdr.HdrPath` and ``from_rgb`` takes it back; nothing on that
    path is clamped (``clamp`` is ignored: the codes are kept within their range), so what
    the model leaves alone comes back exactly, out-of-range codes and colours outside the
    model's primaries included. ``light_level``: where the output's MaxCLL/MaxFALL accumulate.
    """

    def __init__(
        self,
        converter: YCbCrConverter,
        in_fmt: PlaneFormat,
        out_fmt: PlaneFormat,
        width: int,
        height: int,
        hdr: HdrPath | None = None,
        light_level: LightLevel | None = None,
    ) -> None:
        self.converter, self.in_fmt, self.out_fmt = converter, in_fmt, out_fmt
        self.in_shapes = in_fmt.plane_shapes(width, height)
        self.out_shapes = out_fmt.plane_shapes(width, height)
        self.hdr, self.light_level = hdr, light_level

    def to_rgb(self, codes: torch.Tensor) -> torch.Tensor:
        rgb = self._signal(codes)
        return rgb if self.hdr is None else self.hdr.to_sdr(rgb)

    def _signal(self, codes: torch.Tensor) -> torch.Tensor:
        y, cb, cr = split_planes(codes, self.in_shapes)
        return self.converter.planes_to_rgb(y, cb, cr, self.in_fmt)

    def from_rgb(self, rgb: torch.Tensor, codes: torch.Tensor | None = None, clamp: bool = True) -> torch.Tensor:
        if self.hdr is not None:
            source = self._signal(codes) if codes is not None else None
            if source is not None and source.shape != rgb.shape:
                source = None
            rgb = self.hdr.from_sdr(rgb, source, self.light_level)
        elif clamp:
            rgb = rgb.clamp(0.0, 1.0)
        source = None
        if codes is not None:
            if codes.shape[-1] != sum(h * w for h, w in self.in_shapes):
                # e.g. the codes of a picture of another size: its chroma cannot help here
                raise ValueError(f"the input codes ({codes.shape[-1]} per frame) are not of this conversion's "
                                 f"{self.in_fmt.name} frame ({sum(h * w for h, w in self.in_shapes)})")
            _, cb, cr = split_planes(codes, self.in_shapes)
            source = (cb, cr, self.in_fmt)
        planes = self.converter.rgb_to_planes(rgb, self.out_fmt, source)
        dtype = self.out_fmt.torch_dtype
        return torch.cat([p.reshape(rgb.shape[0], -1).to(dtype) for p in planes], dim=1)
