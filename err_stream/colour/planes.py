"""The planar YUV layouts we read and write: bit depth, chroma subsampling, plane shapes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UserError

# (log2 chroma width divisor, log2 chroma height divisor) -> the J:a:b name without colons,
# as FFmpeg's format names and VapourSynth's (yuv420p, YUV420P8) spell it.
SUBSAMPLING = {(1, 1): "420", (1, 0): "422", (0, 0): "444", (2, 0): "411", (0, 1): "440"}

# NV12-style formats: Y, then Cb and Cr interleaved in one plane (accepted on output).
_SEMI_PLANAR = {"nv12", "nv21", "p010le", "p012le", "p016le", "nv16", "p210le", "p216le"}


def yuv_format_name(log2_chroma_w: int, log2_chroma_h: int, bits: int) -> str | None:
    """FFmpeg's planar YUV format for a subsampling and depth (``yuv420p10le``), or None
    when FFmpeg has no name for that subsampling."""
    name = SUBSAMPLING.get((log2_chroma_w, log2_chroma_h))
    if name is None:
        return None
    return f"yuv{name}p" + ("" if bits == 8 else f"{bits}le")


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
        if sx is None or sy is None or (sx, sy) not in SUBSAMPLING:
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

    @property
    def subsampled(self) -> bool:
        return bool(self.log2_chroma_w or self.log2_chroma_h)

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
        """``4:2:0``, ``4:2:2``..."""
        return ":".join(SUBSAMPLING[(self.log2_chroma_w, self.log2_chroma_h)])


def _ceil_shift(n: int, s: int) -> int:
    return -((-n) >> s)


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
