"""Going back to 4:2:0 after the model: which chroma? (the choice in err_stream.colour.convert)

A photograph (scikit-image's; treated as BT.709 R'G'B') is made into a 10-bit 4:2:0 master
(BT.709 limited, chroma sited left, downsampled as zimg does), sometimes darkened and noisy
first. A stand-in for the model changes the picture; the result goes back to 4:2:0 by:

* ``plain``: ``down(C(rgb_out))``, zimg's bicubic downsampling of the new picture;
* ``input + down(change)``: ``C_in + down(C(rgb_out) - up(C_in))``, what err-stream does;
* ``least squares``: ``C_in + P(C(rgb_out) - up(C_in))`` with ``P`` the pseudo-inverse of the
  upsampler (the chroma that, upsampled, best matches the new picture; exact for the
  identity too, but a dense solve, so only measured here).

Each is scored by what a viewer gets: the output chroma upsampled again (zimg's way) against
the true picture's full-resolution Cb and Cr (PSNR over the chroma range, dB; higher is
better; luma is the same in all three). ``max |Δ| vs plain``: the largest chroma difference
between the chosen way and plain (10-bit code values).

    python benchmarks/chroma_siting.py          # needs scikit-image (the train/test extras)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from err_stream.colour import ChromaLocation, Matrix, PlaneFormat, YCbCrConverter  # noqa: E402
from err_stream.colour import chroma  # noqa: E402

FMT = PlaneFormat.parse("yuv420p10le")
CONV = YCbCrConverter(Matrix.BT709, full_range=False, chroma_location=ChromaLocation.LEFT)
SITING = ChromaLocation.LEFT.siting()
GAIN = 2.5  # the dark masters are the photograph / GAIN; the models brighten by GAIN


def up(c: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return chroma.upsample(c, 1, 1, h, w, SITING)


def down(c: torch.Tensor) -> torch.Tensor:
    return chroma.downsample(c, 1, 1, SITING)


def least_squares_down(c: torch.Tensor) -> torch.Tensor:
    """Apply the pseudo-inverse of the (separable) upsampler, from dense per-axis matrices."""
    h, w = c.shape[-2:]
    eye_w, eye_h = torch.eye(-(-w // 2)), torch.eye(-(-h // 2))
    up_w = chroma.upsample(eye_w[None], 1, 0, eye_w.shape[0], w, SITING)[0].T.double()  # w x cw
    up_h = chroma.upsample(eye_h[None].transpose(1, 2), 0, 1, h, eye_h.shape[0], SITING)[0].double()  # h x ch
    pw, ph = torch.linalg.pinv(up_w).float(), torch.linalg.pinv(up_h).float()
    return ph @ c @ pw.T


def master(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """1 x 3 x H x W R'G'B' -> (Y codes 1 x H x W, Cb/Cr codes 2 x h x w), rounded."""
    y, cb, cr = CONV.rgb_to_codes(rgb, FMT.bits)
    return y.round(), down(torch.cat((cb, cr))).round()


def chroma_psnr(c: torch.Tensor, truth: torch.Tensor) -> float:
    """Subsampled chroma codes, upsampled, against the truth's full-resolution chroma codes."""
    _, cb, cr = CONV.rgb_to_codes(truth, FMT.bits)
    err = up(c, *truth.shape[-2:]) - torch.cat((cb, cr))
    return float(10 * torch.log10(896.0**2 / (err**2).mean()))


def decoded(y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    h, w = y.shape[-2:]
    cb, cr = up(c, h, w).chunk(2)
    return CONV.codes_to_rgb(y, cb, cr, FMT.bits)


def blur(rgb: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
    k2 = (k[:, None] * k[None])[None, None].repeat(3, 1, 1, 1)
    return F.conv2d(F.pad(rgb, (2, 2, 2, 2), mode="replicate"), k2, groups=3)


def cases(photo: torch.Tensor):
    """(name, master input R'G'B', model, truth)."""
    g = torch.Generator().manual_seed(1)
    dark = photo / GAIN
    noisy = dark + 0.02 * torch.randn(dark.shape, generator=g) + 0.01 * torch.randn(dark.shape[-2:], generator=g)
    yield "identity", photo, lambda x: x, photo
    yield "brightened x2.5", dark, lambda x: x * GAIN, photo
    yield "noisy dark, brightened only", noisy, lambda x: x * GAIN, photo
    yield "noisy dark, denoised + brightened", noisy, lambda x: blur(x) * GAIN, photo
    yield "noisy dark, restored perfectly", noisy, lambda x: photo, photo


def main() -> int:
    from skimage import data

    print("| photo | case | plain | input + down(change) | least squares | max |Δ| vs plain |")
    print("|---|---|---|---|---|---|")
    for name in ("astronaut", "coffee", "chelsea"):
        img = torch.from_numpy(getattr(data, name)()).permute(2, 0, 1).float()[None] / 255
        photo = img[..., : img.shape[-2] // 2 * 2, : img.shape[-1] // 2 * 2]
        h, w = photo.shape[-2:]
        for case, given, model, truth in cases(photo):
            y_in, c_in = master(given)
            rgb_out = model(decoded(y_in, c_in)).clamp(0, 1)
            _, cb, cr = CONV.rgb_to_codes(rgb_out, FMT.bits)
            c_new = torch.cat((cb, cr))
            change = c_new - up(c_in, h, w)
            ways = {
                "plain": down(c_new),
                "chosen": c_in + down(change),
                "least squares": c_in + least_squares_down(change),
            }
            scores = {k: chroma_psnr(v.round(), truth) for k, v in ways.items()}
            gap = (ways["chosen"].round() - ways["plain"].round()).abs().max()
            print(f"| {name} | {case} | {scores['plain']:.2f} | {scores['chosen']:.2f} | {scores['least squares']:.2f} | {gap:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
