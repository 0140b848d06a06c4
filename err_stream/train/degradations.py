"""Synthetic degradations: make (degraded, clean) training pairs from clean photographs.

Each degradation draws its parameters from ranges (``sample(rng)``) and applies them
(``apply(x, params, noise)``); calling it does both. Images are float 3 x H x W tensors in
[0, 1]; the result is clamped to [0, 1] (and quantised to 8 bits where a camera would).
Everything random comes from the ``numpy.random.Generator`` passed in, so a pair is a pure
function of its seed (what makes training runs reproducible and resumable).

* :class:`LowLight`: exposure drop and gamma, a colour cast, signal-dependent noise
  (a Gaussian approximation of shot + read noise), 8-bit quantisation. Simple and fast, but
  per-channel levels nearly invert it.
* :class:`ExposureNoise`: the plainest darkening, :class:`LowLight` without its gamma and
  colour cast (exposure, noise, 8 bits): the second degradation of the demo model's
  evaluation, one it is never trained on.
* :class:`CameraLowLight`: a camera model of night capture (linear light, 2-8 EV drops,
  Poisson-Gaussian noise on a Bayer mosaic tied to the ISO gain, demosaic and chroma
  smoothing, light-source colour casts, uneven light, clipped lamps, 8-bit, JPEG/H.264);
  see :mod:`.camera`. The demo model trains on it.
* :class:`Rain`: streaks from sparse drops smeared along a random direction, screen-blended.
* :class:`Haze`: the atmospheric scattering model ``I = J t + A (1 - t)``, ``t = exp(-beta d)``,
  with a depth proxy ``d`` (farther towards the top and in bright smooth regions).
* :class:`Blur`: linear motion blur or Gaussian defocus, plus light noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["Degradation", "LowLight", "ExposureNoise", "CameraLowLight", "Rain", "Haze", "Blur", "DEGRADATIONS", "build_degradation"]

Range = tuple[float, float]


def _uniform(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def _log_uniform(rng: np.random.Generator, r: Range) -> float:
    return float(math.exp(rng.uniform(math.log(r[0]), math.log(r[1])))) if r[1] > r[0] else float(r[0])


def _noise_generator(rng: np.random.Generator) -> torch.Generator:
    return torch.Generator().manual_seed(int(rng.integers(0, 2**62)))


def _quantise(x: torch.Tensor, levels: int) -> torch.Tensor:
    return torch.round(x * levels) / levels if levels else x


@dataclass(frozen=True)
class Degradation:
    """Base: ``sample`` parameters, ``apply`` them; ``__call__`` does both."""

    kind: ClassVar[str] = ""

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        raise NotImplementedError

    def apply(self, x: torch.Tensor, params: dict[str, Any], noise: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        params = self.sample(rng)
        return self.apply(x, params, _noise_generator(rng))

    def pair(self, x: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(degraded, target)``: the target is ``x`` unless the degradation adds scene content
        that belongs in both (e.g. :class:`CameraLowLight`'s lamps)."""
        return self(x, rng), x

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        d.update({f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)})
        return d


@dataclass(frozen=True)
class LowLight(Degradation):
    kind: ClassVar[str] = "lowlight"
    exposure: Range = (0.12, 0.4)  # brightness multiplier (log-uniform)
    gamma: Range = (1.0, 1.5)  # extra gamma: > 1 darkens the mid-tones more than the highlights
    cast: float = 0.12  # largest relative per-channel gain change (white-balance error)
    shot_noise: Range = (2e-4, 4e-3)  # noise variance per unit of signal (log-uniform)
    read_noise: Range = (2e-3, 1.2e-2)  # signal-independent noise std (log-uniform)
    bits: int = 8  # quantise the dark image to this many bits (0: no quantisation)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        gains = 1 + rng.uniform(-self.cast, self.cast, size=3)
        return {
            "exposure": _log_uniform(rng, self.exposure),
            "gamma": _uniform(rng, self.gamma),
            "gains": [float(g) for g in gains / gains.mean()],
            "shot": _log_uniform(rng, self.shot_noise),
            "read": _log_uniform(rng, self.read_noise),
        }

    def apply(self, x: torch.Tensor, params: dict[str, Any], noise: torch.Generator | None = None) -> torch.Tensor:
        gains = torch.tensor(params["gains"], dtype=x.dtype, device=x.device)[:, None, None]
        y = (x.clamp(0, 1) * params["exposure"]) ** params["gamma"] * gains
        std = torch.sqrt(params["shot"] * y.clamp(min=0) + params["read"] ** 2)
        y = y + std * torch.randn(y.shape, generator=noise, dtype=y.dtype).to(y.device)
        return _quantise(y.clamp(0, 1), 2**self.bits - 1 if self.bits else 0)


@dataclass(frozen=True)
class ExposureNoise(LowLight):
    """A plain darkening: exposure drop, shot + read noise, 8 bits (:class:`LowLight` with no
    gamma and no colour cast). Not a camera model: the demo model's second evaluation
    degradation, which it never trains on."""

    kind: ClassVar[str] = "exposure_noise"
    gamma: Range = (1.0, 1.0)
    cast: float = 0.0


def line_kernel(length: float, angle_deg: float) -> torch.Tensor:
    """A normalised k x k kernel of a line of ``length`` pixels at ``angle_deg`` (bilinear splat)."""
    k = int(math.ceil(length)) | 1
    ker = np.zeros((k, k), np.float64)
    c = (k - 1) / 2
    t = math.radians(angle_deg)
    for s in np.linspace(-(length - 1) / 2, (length - 1) / 2, max(2, int(length * 4))):
        px, py = c + s * math.cos(t), c + s * math.sin(t)
        x0, y0 = int(math.floor(px)), int(math.floor(py))
        fx, fy = px - x0, py - y0
        for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            if 0 <= x0 + dx < k and 0 <= y0 + dy < k:
                ker[y0 + dy, x0 + dx] += w
    return torch.from_numpy(ker / ker.sum()).float()


def _filter(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve each channel of C x H x W with a 2-D kernel (reflect padding, same size)."""
    k = kernel.shape[-1]
    p = k // 2
    c = x.shape[0]
    xp = F.pad(x[None], (p, p, p, p), mode="reflect" if min(x.shape[-2:]) > p else "replicate")
    w = kernel.to(x)[None, None].expand(c, 1, k, k)
    return F.conv2d(xp, w, groups=c)[0]


def gaussian_kernel(sigma: float) -> torch.Tensor:
    r = max(1, int(math.ceil(3 * sigma)))
    g = torch.exp(-(torch.arange(-r, r + 1, dtype=torch.float64) ** 2) / (2 * sigma**2))
    k = torch.outer(g, g)
    return (k / k.sum()).float()


@dataclass(frozen=True)
class Rain(Degradation):
    kind: ClassVar[str] = "rain"
    density: Range = (0.002, 0.015)  # fraction of pixels that start a streak
    length: Range = (10.0, 35.0)  # streak length in pixels
    angle: Range = (-25.0, 25.0)  # degrees from vertical
    strength: Range = (0.35, 0.85)  # streak opacity
    width: Range = (0.5, 1.2)  # Gaussian sigma across the streak

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {
            "density": _uniform(rng, self.density),
            "length": _uniform(rng, self.length),
            "angle": _uniform(rng, self.angle),
            "strength": _uniform(rng, self.strength),
            "width": _uniform(rng, self.width),
        }

    def apply(self, x: torch.Tensor, params: dict[str, Any], noise: torch.Generator | None = None) -> torch.Tensor:
        h, w = x.shape[-2:]
        u = torch.rand((1, h, w), generator=noise)
        drops = (u < params["density"]).float() * (0.6 + 0.4 * torch.rand((1, h, w), generator=noise))
        # Angle from vertical: the line kernel's angle is measured from the x axis.
        streak = _filter(drops, line_kernel(params["length"], 90.0 + params["angle"]))
        streak = _filter(streak, gaussian_kernel(params["width"]))
        streak = (streak / streak.max().clamp(min=1e-6)).clamp(0, 1) * params["strength"]
        streak = streak.to(x)
        return (1 - (1 - x) * (1 - streak)).clamp(0, 1)


@dataclass(frozen=True)
class Haze(Degradation):
    kind: ClassVar[str] = "haze"
    beta: Range = (0.6, 2.5)  # scattering coefficient (depth is in [0, 1])
    airlight: Range = (0.7, 1.0)  # brightness of the atmospheric light
    tint: float = 0.04  # largest per-channel deviation of the airlight colour
    vertical: Range = (0.4, 0.8)  # share of the depth proxy given by the row position

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        a = _uniform(rng, self.airlight)
        return {
            "beta": _uniform(rng, self.beta),
            "airlight": [float(min(1.0, a + t)) for t in rng.uniform(-self.tint, self.tint, size=3)],
            "vertical": _uniform(rng, self.vertical),
        }

    @staticmethod
    def depth_proxy(x: torch.Tensor, vertical: float) -> torch.Tensor:
        """1 x H x W in [0, 1]: far (1) towards the top and in bright, smooth regions (sky)."""
        h, w = x.shape[-2:]
        rows = torch.linspace(1.0, 0.0, h, dtype=x.dtype, device=x.device)[:, None].expand(h, w)
        lum = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None, None]
        f = max(1, min(h, w) // 16)
        smooth = F.interpolate(F.avg_pool2d(lum, f, ceil_mode=True), size=(h, w), mode="bilinear", align_corners=False)[0, 0]
        smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min()).clamp(min=1e-6)
        return (vertical * rows + (1 - vertical) * smooth)[None]

    def apply(self, x: torch.Tensor, params: dict[str, Any], noise: torch.Generator | None = None) -> torch.Tensor:
        t = torch.exp(-params["beta"] * self.depth_proxy(x, params["vertical"]))
        a = torch.tensor(params["airlight"], dtype=x.dtype, device=x.device)[:, None, None]
        return (x * t + a * (1 - t)).clamp(0, 1)


@dataclass(frozen=True)
class Blur(Degradation):
    kind: ClassVar[str] = "blur"
    motion_probability: float = 0.6  # else Gaussian (defocus-like) blur
    motion_length: Range = (5.0, 21.0)
    sigma: Range = (0.8, 3.0)
    noise: Range = (0.0, 0.01)  # Gaussian noise std added after blurring

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        motion = bool(rng.uniform() < self.motion_probability)
        return {
            "motion": motion,
            "length": _uniform(rng, self.motion_length),
            "angle": float(rng.uniform(0, 180)),
            "sigma": _uniform(rng, self.sigma),
            "noise": _uniform(rng, self.noise),
        }

    def apply(self, x: torch.Tensor, params: dict[str, Any], noise: torch.Generator | None = None) -> torch.Tensor:
        k = line_kernel(params["length"], params["angle"]) if params["motion"] else gaussian_kernel(params["sigma"])
        y = _filter(x, k)
        y = y + params["noise"] * torch.randn(y.shape, generator=noise, dtype=y.dtype).to(y.device)
        return _quantise(y.clamp(0, 1), 255)


@dataclass(frozen=True)
class CameraLowLight(Degradation):
    """A dark scene through a camera (the steps are in :mod:`err_stream.train.camera`).

    Parameter ranges (uniform unless noted); each pair draws its own values:

    * ``ev`` (2-8): stops of light missing from the scene;
    * ``lit_probability`` of the pairs are instead normally lit: the photograph through the
      same camera at base ISO (``lit_ev``, default 0: no exposure drop, no gain), with no
      uneven light, vignette, colour cast or lamps, and milder compression (JPEG
      ``lit_jpeg_quality`` 70-95, H.264 ``lit_h264_crf`` 16-28); the target is the photograph
      itself, so the model learns to leave good footage alone (only sensor noise and codec
      artefacts to remove), and since nothing is brightened nothing clips that was not clipped;
    * ``gain_share`` (0-0.5): the share of the drop the camera makes up with ISO gain
      (the frame ends ``ev * (1 - share)`` stops dark: 1-8 EV);
    * ``full_well`` (2,000-20,000 e-, log-uniform): electrons per photosite at full scale at
      base ISO; at gain ``2**g`` full scale is ``full_well / 2**g`` electrons, so the Poisson
      shot noise grows with the ISO; ``read_noise`` (1-6 e-, log-uniform) before the gain and
      ``post_gain_noise`` (0.0005-0.003 of full scale) after it;
    * ``chroma_sigma`` (0-2.5 px): the camera's chroma noise-reduction blur after a bilinear
      demosaic of the RGGB mosaic;
    * light source: one of :data:`~err_stream.train.camera.LIGHT_SOURCES` (tungsten 2400-3200 K,
      high/low-pressure sodium, warm/neutral/daylight LEDs, cool-white fluorescent, moonlight and
      blue hour 7500-12000 K), of which the white balance leaves ``cast_residual`` (0.2-1; x0.3 when
      lit) as a colour cast;
    * uneven light: a smooth field of +-``illumination_stops`` (0-1.5) stops over
      ``illumination_cells`` (2-6) cells, and a vignette of ``vignette`` (0-1) stops in the corners;
    * ``lamp_probability`` (0.35) of the dark pairs get 1-``max_lamps`` (3) lamps of radius
      ``lamp_radius`` (0.5-3% of the short side) and peak ``lamp_peak`` (1.5-8x full scale:
      they clip); lamps are scene content, so they appear (as captured) in the target too;
    * 8-bit quantisation, then JPEG (``jpeg_probability`` 0.45, quality ``jpeg_quality`` 35-90,
      4:2:0) or H.264 (``h264_probability`` 0.35, ``h264_crf`` 20-38, one intra frame, 4:2:0),
      else none.
    """

    kind: ClassVar[str] = "camera_lowlight"
    ev: Range = (2.0, 8.0)
    lit_probability: float = 0.0
    lit_ev: Range = (0.0, 0.0)
    lit_jpeg_quality: tuple[int, int] = (70, 95)
    lit_h264_crf: tuple[int, int] = (16, 28)
    gain_share: Range = (0.0, 0.5)
    full_well: Range = (2000.0, 20000.0)
    read_noise: Range = (1.0, 6.0)
    post_gain_noise: Range = (0.0005, 0.003)
    chroma_sigma: Range = (0.0, 2.5)
    cast_residual: Range = (0.2, 1.0)
    illumination_stops: Range = (0.0, 1.5)
    illumination_cells: tuple[int, int] = (2, 6)
    vignette: Range = (0.0, 1.0)
    lamp_probability: float = 0.35
    max_lamps: int = 3
    lamp_radius: Range = (0.005, 0.03)
    lamp_peak: Range = (1.5, 8.0)
    jpeg_probability: float = 0.45
    jpeg_quality: tuple[int, int] = (35, 90)
    h264_probability: float = 0.35
    h264_crf: tuple[int, int] = (20, 38)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        from .camera import LIGHT_SOURCES, cct_to_xy, white_point_gains

        lit = bool(rng.uniform() < self.lit_probability)
        ev = _uniform(rng, self.lit_ev if lit else self.ev)
        gain_ev = ev * _uniform(rng, self.gain_share)  # lit: ev 0, so base ISO
        names = sorted(LIGHT_SOURCES)
        source = names[int(rng.integers(len(names)))]
        spec = LIGHT_SOURCES[source]
        xy = cct_to_xy(_uniform(rng, (spec[1], spec[2]))) if spec[0] == "cct" else spec
        light = white_point_gains(xy)  # type: ignore[arg-type]
        residual = _uniform(rng, self.cast_residual) * (0.0 if lit else 1.0)  # lit: white-balanced
        lamps = []
        if not lit and rng.uniform() < self.lamp_probability:
            for _ in range(int(rng.integers(1, self.max_lamps + 1))):
                lamps.append({
                    "y": float(rng.uniform()), "x": float(rng.uniform()),
                    "radius": _uniform(rng, self.lamp_radius), "peak": _uniform(rng, self.lamp_peak),
                    "rgb": [float(v) for v in light / light.max()],
                })
        u = rng.uniform()
        jpeg, crf = (self.lit_jpeg_quality, self.lit_h264_crf) if lit else (self.jpeg_quality, self.h264_crf)
        codec = "jpeg" if u < self.jpeg_probability else "h264" if u < self.jpeg_probability + self.h264_probability else "none"
        return {
            "lit": lit,
            "ev": ev,
            "gain_ev": gain_ev,
            "light_source": source,
            "cast": [float(v) for v in light**residual / (light**residual).mean()],
            "electrons_per_unit": _log_uniform(rng, self.full_well) * 2.0**-gain_ev,
            "read_electrons": _log_uniform(rng, self.read_noise),
            "post_gain_std": _uniform(rng, self.post_gain_noise),
            "chroma_sigma": _uniform(rng, self.chroma_sigma),
            # Lit pairs keep the scene's light as photographed: the target is the photograph.
            "illumination_stops": _uniform(rng, self.illumination_stops) * (0.0 if lit else 1.0),
            "illumination_cells": int(rng.integers(self.illumination_cells[0], self.illumination_cells[1] + 1)),
            "vignette": _uniform(rng, self.vignette) * (0.0 if lit else 1.0),
            "lamps": lamps,
            "codec": codec,
            "jpeg_quality": int(rng.integers(jpeg[0], jpeg[1] + 1)),
            "h264_crf": int(rng.integers(crf[0], crf[1] + 1)),
        }

    def _lamps(self, x: torch.Tensor, params: dict[str, Any]) -> torch.Tensor | None:
        from .camera import lamp_field

        if not params["lamps"]:
            return None
        return lamp_field(x.shape[-2], x.shape[-1], params["lamps"], dtype=torch.float32)

    def apply(self, x: torch.Tensor, params: dict[str, Any], noise: torch.Generator | None = None) -> torch.Tensor:
        from . import camera

        noise = noise if noise is not None else torch.Generator().manual_seed(0)
        dtype = x.dtype
        h, w = x.shape[-2:]
        lin = camera.srgb_to_linear(x.detach().cpu().float())
        light = camera.illumination_field(h, w, params["illumination_stops"], params["illumination_cells"], params["vignette"], noise)
        cast = torch.tensor(params["cast"], dtype=torch.float32)[:, None, None]
        lin = lin * light * cast * 2.0 ** (params["gain_ev"] - params["ev"])
        lamps = self._lamps(x, params)
        if lamps is not None:
            lin = lin + lamps
        mosaic = camera.mosaic_noise(lin, params["electrons_per_unit"], params["read_electrons"], params["post_gain_std"], noise)
        rgb = camera.blur_chroma(camera.bilinear_demosaic(mosaic), params["chroma_sigma"])
        y = _quantise(camera.linear_to_srgb(rgb), 255)
        if params["codec"] == "jpeg":
            y = camera.jpeg_roundtrip(y, params["jpeg_quality"])
        elif params["codec"] == "h264" and h % 2 == 0 and w % 2 == 0:
            y = camera.h264_roundtrip(y, params["h264_crf"])
        return y.to(device=x.device, dtype=dtype)

    def target(self, x: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
        """The clean image with the scene's lamps as the camera captured them (clipped cores, dim halos)."""
        from . import camera

        lamps = self._lamps(x, params)
        if lamps is None:
            return x
        lin = camera.srgb_to_linear(x.detach().cpu().float()) + lamps
        return camera.linear_to_srgb(lin).to(device=x.device, dtype=x.dtype)

    def pair(self, x: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        params = self.sample(rng)
        return self.apply(x, params, _noise_generator(rng)), self.target(x, params)


DEGRADATIONS: dict[str, type[Degradation]] = {c.kind: c for c in (LowLight, ExposureNoise, CameraLowLight, Rain, Haze, Blur)}


def build_degradation(spec: str | dict[str, Any]) -> Degradation:
    """``"lowlight"`` or ``{"kind": "lowlight", "exposure": [0.1, 0.3], ...}`` -> a degradation."""
    if isinstance(spec, str):
        spec = {"kind": spec}
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {kind!r}; choose one of: {', '.join(DEGRADATIONS)}")
    cls = DEGRADATIONS[kind]
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(spec) - names)
    if unknown:
        raise ValueError(f"degradation {kind}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    args = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items()}
    return cls(**args)
