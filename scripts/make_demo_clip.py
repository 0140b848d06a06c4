"""Make examples/media/dark_harbour.mp4, the clip the README's demo restores.

A real photograph shipped with scikit-image (``skimage.data.coffee()``), filmed by a
virtual camera that pans and zooms slowly, then made to look like a low-light shot: exposure
cut in linear light, shot and read noise, a slight cold cast, back to sRGB. Encoded as
H.264 yuv420p, BT.709 limited range (converted by our own colour code and tagged as such),
480x270 at 12 fps for 2.5 s, with a quiet AAC stereo track (filtered noise, like water), so
that the demo shows the audio being carried over. Deterministic (seeded).

    python scripts/make_demo_clip.py [OUT]      # needs scikit-image (pip install scikit-image)
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from err_stream.colour import ColourSpec, Matrix, PlaneFormat, Primaries, Range, Transfer, YCbCrConverter  # noqa: E402

WIDTH, HEIGHT, FPS, SECONDS = 480, 270, 12, 2.5
AUDIO_RATE = 48000


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def camera_frames(photo: np.ndarray, n: int):
    """Crops of ``photo`` along a slow pan and zoom, resized to the clip size."""
    from PIL import Image

    h, w = photo.shape[:2]
    img = Image.fromarray(photo)
    for i in range(n):
        t = i / max(1, n - 1)
        zoom = 1.0 + 0.25 * t  # slowly closer
        cw = min(w, h * WIDTH / HEIGHT) * 0.9 / zoom
        ch = cw * HEIGHT / WIDTH
        cx = np.clip(w * (0.40 + 0.15 * t), cw / 2, w - cw / 2)  # pan right
        cy = np.clip(h * (0.55 - 0.05 * t), ch / 2, h - ch / 2)
        box = (cx - cw / 2, cy - ch / 2, cx + cw / 2, cy + ch / 2)
        yield np.asarray(img.resize((WIDTH, HEIGHT), Image.BICUBIC, box=box), dtype=np.float64) / 255.0


def darken(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A low-light look: ~4.5 stops under, photon and read noise, a cool cast."""
    lin = srgb_to_linear(rgb) * 0.045 * np.array([0.92, 1.0, 1.12])
    photons = 700.0  # full-well scale for the shot noise
    lin = rng.poisson(lin * photons) / photons + rng.normal(0.0, 0.0025, lin.shape)
    return linear_to_srgb(lin)


def water_sound(seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * AUDIO_RATE)
    noise = rng.normal(0, 1, (2, n))
    kernel = np.hanning(401)
    kernel /= kernel.sum()
    low = np.stack([np.convolve(c, kernel, mode="same") for c in noise])
    t = np.arange(n) / AUDIO_RATE
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * 0.35 * t)
    out = low * swell / np.abs(low).max() * 0.25
    fade = np.minimum(1.0, np.minimum(t, seconds - t) / 0.3)
    return (out * fade).astype(np.float32)


def main(out: Path) -> None:
    import av
    from skimage import data

    rng = np.random.default_rng(2025)
    photo = data.coffee()
    n = round(FPS * SECONDS)
    fmt = PlaneFormat.parse("yuv420p")
    tags = ColourSpec(Matrix.BT709, Range.LIMITED, Primaries.BT709, Transfer.BT709)
    bt709 = YCbCrConverter(Matrix.BT709, full_range=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out), "w", options={"movflags": "+faststart"}) as c:
        v = c.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        v.time_base = Fraction(1, FPS)
        cc = v.codec_context
        tags.apply_to(cc)
        cc.options = {"crf": "24", "preset": "veryslow", "tune": "grain"}
        a = c.add_stream("aac", rate=AUDIO_RATE)
        a.layout = "stereo"
        a.codec_context.bit_rate = 64000
        for i, rgb in enumerate(camera_frames(photo, n)):
            dark = torch.from_numpy(darken(rgb, rng).transpose(2, 0, 1)[None].astype(np.float32))
            y, cb, cr = bt709.rgb_to_planes(dark, fmt)
            frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
            for plane, arr in zip(frame.planes, (y[0].numpy(), cb[0].numpy(), cr[0].numpy())):
                view = np.frombuffer(plane, np.uint8, count=arr.shape[0] * plane.line_size).reshape(arr.shape[0], -1)
                view[:, : arr.shape[1]] = arr
            frame.pts = i
            tags.apply_to(frame)
            for p in v.encode(frame):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        sound = water_sound(n / FPS, rng)
        for start in range(0, sound.shape[1], 1024):
            chunk = np.ascontiguousarray(sound[:, start : start + 1024])
            f = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            f.sample_rate, f.pts = AUDIO_RATE, start
            for p in a.encode(f):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, {n} frames {WIDTH}x{HEIGHT} @ {FPS} fps)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "examples" / "media" / "dark_harbour.mp4")
