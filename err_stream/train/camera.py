"""A camera model of low-light capture: how a dark scene becomes a dark, noisy, compressed frame.

:class:`CameraLowLight` (in :mod:`.degradations`) runs these steps on a clean sRGB image:

1. sRGB to linear light;
2. a smooth illumination field (uneven lighting, vignetting) and, sometimes, clipped lamps;
3. the light source's colour (a white point such as tungsten or sodium vapour), of which the
   camera's white balance removes only part;
4. the exposure drop, partly made up for by the camera's ISO gain;
5. sensor noise on a Bayer mosaic (Poisson shot noise of the electrons collected, Gaussian
   read noise before and after the gain), then a bilinear demosaic and a chroma
   noise-reduction blur (what turns per-photosite noise into the blotchy colour noise of
   real night footage);
6. linear to sRGB, 8-bit quantisation, then JPEG or H.264 (intra frame) compression.

The helpers here are deterministic functions of their arguments; the random draws live in
:meth:`CameraLowLight.sample`.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "srgb_to_linear",
    "linear_to_srgb",
    "cct_to_xy",
    "white_point_gains",
    "LIGHT_SOURCES",
    "illumination_field",
    "lamp_field",
    "mosaic_noise",
    "bilinear_demosaic",
    "blur_chroma",
    "jpeg_roundtrip",
    "h264_roundtrip",
]


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)


def cct_to_xy(cct: float) -> tuple[float, float]:
    """CIE 1931 chromaticity of a black body at ``cct`` kelvin (Kim et al.'s cubic fit of the
    Planckian locus, valid for 1667-25000 K)."""
    t = float(np.clip(cct, 1667.0, 25000.0))
    if t <= 4000:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    return x, y


_XYZ_TO_LINEAR_SRGB = np.array(
    [[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560], [0.0556434, -0.2040259, 1.0572252]]
)
_D65_XY = (0.31271, 0.32902)


def white_point_gains(xy: tuple[float, float]) -> np.ndarray:
    """Linear-sRGB channel gains that turn a D65-white scene into one lit by a source of
    chromaticity ``xy`` (a von Kries scaling in RGB; mean gain 1)."""

    def rgb(c: tuple[float, float]) -> np.ndarray:
        x, y = c
        xyz = np.array([x / y, 1.0, (1 - x - y) / y])
        return _XYZ_TO_LINEAR_SRGB @ xyz

    g = np.clip(rgb(xy) / rgb(_D65_XY), 0.02, None)
    return g / g.mean()


# Light sources of night scenes: name -> (chromaticity x, y) or a CCT range (black body).
# Sodium and fluorescent points are typical published values (high-pressure sodium ~2100 K
# but well off the locus towards green-yellow; CIE F2 "cool white" fluorescent; a 4000 K
# phosphor LED sits slightly above the locus).
LIGHT_SOURCES: dict[str, tuple[float, float] | tuple[str, float, float]] = {
    "tungsten": ("cct", 2400.0, 3200.0),
    "high_pressure_sodium": (0.5300, 0.4130),
    "low_pressure_sodium": (0.5700, 0.4250),
    "warm_led": ("cct", 2700.0, 3500.0),
    "neutral_led": (0.3805, 0.3970),
    "cool_white_fluorescent": (0.3721, 0.3751),
    "daylight_led": ("cct", 5000.0, 6500.0),
    "moonlight_blue_hour": ("cct", 7500.0, 12000.0),
}


def _smooth_noise(h: int, w: int, cells: int, gen: torch.Generator) -> torch.Tensor:
    """A smooth random field in [-1, 1] (bicubic upsampling of a coarse grid), 1 x H x W."""
    gh, gw = max(2, round(cells * h / max(h, w))), max(2, round(cells * w / max(h, w)))
    grid = torch.rand((1, 1, gh + 2, gw + 2), generator=gen) * 2 - 1
    up = F.interpolate(grid, size=(h + 2 * (h // gh + 1), w + 2 * (w // gw + 1)), mode="bicubic", align_corners=True)
    oy, ox = h // gh + 1, w // gw + 1
    return up[0, :, oy : oy + h, ox : ox + w].clamp(-1, 1)


def illumination_field(h: int, w: int, stops: float, cells: int, vignette: float, gen: torch.Generator) -> torch.Tensor:
    """1 x H x W multiplicative light level: ``2**(stops * smooth noise)`` times a radial
    vignette that loses ``vignette`` stops in the corners."""
    field = _smooth_noise(h, w, cells, gen) * stops
    yy = torch.linspace(-1, 1, h)[:, None]
    xx = torch.linspace(-1, 1, w)[None, :]
    r2 = (yy**2 + xx**2) / 2  # 0 at the centre, 1 in the corners
    return torch.exp2(field - vignette * r2[None])


def lamp_field(h: int, w: int, lamps: list[dict], dtype=torch.float32) -> torch.Tensor:
    """3 x H x W added linear light of point lamps: Gaussian cores (bright enough to clip)
    with a wide, dim halo. Each lamp: ``{"y", "x"}`` in [0, 1), ``radius`` (fraction of the
    short side), ``peak`` (linear intensity at the centre), ``rgb`` (its colour)."""
    out = torch.zeros((3, h, w), dtype=dtype)
    yy = torch.arange(h, dtype=dtype)[:, None]
    xx = torch.arange(w, dtype=dtype)[None, :]
    side = min(h, w)
    for lamp in lamps:
        r = max(1.0, lamp["radius"] * side)
        d2 = (yy - lamp["y"] * h) ** 2 + (xx - lamp["x"] * w) ** 2
        shape = torch.exp(-d2 / (2 * r * r)) + 0.05 * torch.exp(-d2 / (2 * (6 * r) ** 2))
        out += lamp["peak"] * shape[None] * torch.tensor(lamp["rgb"], dtype=dtype)[:, None, None]
    return out


def mosaic_noise(
    linear: torch.Tensor, electrons_per_unit: float, read_electrons: float, post_gain_std: float, gen: torch.Generator
) -> torch.Tensor:
    """Sample an RGGB Bayer sensor: returns the 1 x H x W noisy mosaic (in output units).

    Each photosite sees one channel of ``linear`` (3 x H x W, already scaled by the exposure and
    the gain), collects ``Poisson(signal * electrons_per_unit)`` electrons plus Gaussian read
    noise of ``read_electrons``, and gets Gaussian noise of ``post_gain_std`` after the gain
    (the analogue chain and the ADC).
    """
    _, h, w = linear.shape
    idx = torch.ones((h, w), dtype=torch.long)  # G
    idx[0::2, 0::2] = 0  # R
    idx[1::2, 1::2] = 2  # B
    m = torch.gather(linear, 0, idx[None]).clamp(min=0)
    k = float(electrons_per_unit)
    e = torch.poisson(m.double() * k, generator=gen).float()
    e = e + read_electrons * torch.randn(m.shape, generator=gen)
    return e / k + post_gain_std * torch.randn(m.shape, generator=gen)


_DEMOSAIC_G = torch.tensor([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=torch.float32) / 4
_DEMOSAIC_RB = torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=torch.float32) / 4


def bilinear_demosaic(mosaic: torch.Tensor) -> torch.Tensor:
    """1 x H x W RGGB mosaic -> 3 x H x W by bilinear interpolation of each channel's sites."""
    _, h, w = mosaic.shape
    masks = torch.zeros((3, h, w), dtype=mosaic.dtype)
    masks[0, 0::2, 0::2] = 1
    masks[1, 0::2, 1::2] = 1
    masks[1, 1::2, 0::2] = 1
    masks[2, 1::2, 1::2] = 1
    sparse = (mosaic * masks)[None]
    kernels = torch.stack([_DEMOSAIC_RB, _DEMOSAIC_G, _DEMOSAIC_RB])[:, None].to(mosaic.dtype)
    padded = F.pad(sparse, (1, 1, 1, 1), mode="reflect")
    # Reflect padding moves the Bayer phase at the borders; normalise by the interpolated mask.
    weight = F.conv2d(F.pad(masks[None], (1, 1, 1, 1), mode="reflect"), kernels, groups=3)
    return (F.conv2d(padded, kernels, groups=3) / weight.clamp(min=1e-6))[0]


def blur_chroma(rgb: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian-blur the chroma (BT.601 Cb/Cr) of 3 x H x W and keep the luma: a camera's
    chroma noise reduction, which leaves low-frequency colour blotches."""
    if sigma <= 0:
        return rgb
    y = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    cb, cr = rgb[2] - y, rgb[0] - y
    r = max(1, int(math.ceil(3 * sigma)))
    g = torch.exp(-(torch.arange(-r, r + 1, dtype=rgb.dtype) ** 2) / (2 * sigma * sigma))
    g = g / g.sum()
    c = torch.stack([cb, cr])[:, None]  # 2 x 1 x H x W
    mode = "reflect" if min(rgb.shape[-2:]) > r else "replicate"
    c = F.conv2d(F.pad(c, (r, r, 0, 0), mode=mode), g.view(1, 1, 1, -1))
    c = F.conv2d(F.pad(c, (0, 0, r, r), mode=mode), g.view(1, 1, -1, 1))
    cb, cr = c[0, 0], c[1, 0]
    r_, b_ = y + cr, y + cb
    g_ = (y - 0.299 * r_ - 0.114 * b_) / 0.587
    return torch.stack([r_, g_, b_])


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return x.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()


def jpeg_roundtrip(x: torch.Tensor, quality: int) -> torch.Tensor:
    """3 x H x W in [0, 1] through Pillow's JPEG encoder (4:2:0) and back."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(_to_uint8(x)).save(buf, format="JPEG", quality=int(quality), subsampling=2)
    buf.seek(0)
    with Image.open(buf) as im:
        a = np.asarray(im.convert("RGB"))
    return torch.from_numpy(a.astype(np.float32) / 255).permute(2, 0, 1).to(x.dtype)


def h264_roundtrip(x: torch.Tensor, crf: int) -> torch.Tensor:
    """3 x H x W in [0, 1] (even sides) as one H.264 intra frame (libx264, yuv420p, one thread:
    deterministic) and back, through PyAV."""
    import av

    h, w = x.shape[-2:]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="h264") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": str(int(crf)), "preset": "veryfast", "threads": "1"}
        frame = av.VideoFrame.from_ndarray(_to_uint8(x), format="rgb24")
        for p in s.encode(frame):
            out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    buf.seek(0)
    with av.open(buf, mode="r", format="h264") as inp:
        a = next(inp.decode(video=0)).to_ndarray(format="rgb24")
    return torch.from_numpy(a.astype(np.float32) / 255).permute(2, 0, 1).to(x.dtype)
