"""The HDR path against the SDR path: does a dark HDR master restore as well as the same
picture in SDR? And what the path's choices (primaries, SDR curve, shoulder) change.

Held-out photographs (scikit-image's coffee, chelsea, rocket; matplotlib's grace_hopper when
installed), centre-cropped and resized to ``--size``, each made into a master:

* **the photograph as an HDR master**: its sRGB values decoded to linear light, taken as the
  SDR rendition of a 1000 cd/m2 master (the path's shoulder undone: below 0.75 x 203 cd/m2
  light is the photograph's x 203; its brightest parts reach the peak), in BT.2020, as 10-bit
  4:2:0 limited-range PQ (and HLG) code values, chroma sited top-left;
* **darkened in linear light**: the master's light x 1/16 (4 EV), with shot noise (4000 e- at
  the reference white before the drop) and 3 e- read noise, seeded;
* **the SDR path's input**: the same light as the SDR picture (the path's forward mapping:
  light / 203 cd/m2 below the shoulder, which darkened light never reaches; sRGB curve,
  BT.709), as 10-bit 4:2:0 limited BT.709 code values: what an SDR video of the same scene
  would hand the model.

Each is restored by the embedded demo model through :class:`PackedFrameColour` (codes ->
picture -> model -> codes, as the transcoder does), converted back to SDR-referred light
(the HDR outputs by the path's forward mapping) and scored against the photograph: Y-PSNR
(BT.601 luma, crop border 4), the paper's metric. Rows:

* SDR path; HDR path (PQ, and HLG on a 1000 cd/m2 reference display), as built: BT.2020
  primaries, sRGB curve, shoulder under 1.0 from 0.75 x 203 cd/m2;
* the same with the model in BT.709 primaries, and with BT.1886's 2.4 power for the curve;
* today's code-value path: the PQ R'G'B' handed to the model as it is (``--hdr passthrough``).

A second table runs the undarkened masters (a restorer should leave a normally lit picture
nearly alone): PSNR against the photograph and the share of model output pixels outside the
output check's [-0.1, 1.1], for the shoulder under 1.0 (knee 0.75 and 0.5), the model in
BT.709, HLG, and headroom above 1.0 (203 cd/m2 on 1.0, the peak on 1.1 after the sRGB curve);
also the PSNR of the output's own signal (PQ or HLG, close to perceptually uniform) against
the master's. A third puts colour outside BT.709 in: the
photograph's linear values taken as Display P3, darkened, restored with the model in BT.709
(the wide colours negative) and in BT.2020, scored in BT.2020 SDR-referred light.

    python benchmarks/eval_hdr.py [--size 256x256] [--photos skimage:coffee ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_demo import HELD_OUT, fit, held_out_photo  # noqa: E402

from err_stream.colour import ChromaLocation, HdrPath, Matrix, PackedFrameColour, PlaneFormat, Primaries, Transfer, YCbCrConverter  # noqa: E402
from err_stream.colour import gamut  # noqa: E402
from err_stream.colour.hdr import REFERENCE_WHITE  # noqa: E402
from err_stream.colour.transfer import srgb_decode, srgb_encode  # noqa: E402
from err_stream.engine import Restorer  # noqa: E402
from err_stream.train.metrics import psnr  # noqa: E402
from err_stream.weights import load_model  # noqa: E402

PQ, HLG = Transfer.SMPTE2084, Transfer.ARIB_STD_B67
FMT = PlaneFormat.parse("yuv420p10le")
EV_DROP = 4
FULL_WELL, READ_NOISE = 4000.0, 3.0
GUARD = (-0.1, 1.1)
HEADROOM_TOP = float(srgb_decode(torch.tensor(1.1)))  # linear light of 1.1 after the sRGB curve

# How HDR outputs are scored (and the SDR path's input made): the path's mapping to
# SDR-referred light, in BT.709 primaries as the photographs are.
SCORE709 = HdrPath(PQ, model_primaries=Primaries.BT709)


def darken(light: torch.Tensor, seed: int) -> torch.Tensor:
    """Light (any unit proportional to cd/m2; 1 = reference white) x 2^-EV with shot and read noise."""
    g = torch.Generator().manual_seed(seed)
    electrons = (light.clamp_min(0) * FULL_WELL * 2.0**-EV_DROP).double()
    noisy = torch.poisson(electrons, generator=g) + READ_NOISE * torch.randn(electrons.shape, generator=g, dtype=torch.float64)
    return (noisy / FULL_WELL).clamp_min(0).float()


class Runner:
    def __init__(self, device: str, w: int, h: int) -> None:
        self.restorer = Restorer(load_model(None, device=device), tiling="auto", compile=False)
        self.device, self.w, self.h = device, w, h
        self.conv2020 = YCbCrConverter(Matrix.BT2020NC, False, ChromaLocation.TOPLEFT)
        self.conv709 = YCbCrConverter(Matrix.BT709, False, ChromaLocation.LEFT)

    def colour(self, conv, hdr=None) -> PackedFrameColour:
        return PackedFrameColour(conv, FMT, FMT, self.w, self.h, hdr=hdr)

    def codes(self, conv, signal: torch.Tensor) -> torch.Tensor:
        planes = conv.rgb_to_planes(signal.clamp(0, 1), FMT)
        return torch.cat([p.reshape(1, -1).to(FMT.torch_dtype) for p in planes], dim=1)

    def restore(self, colour: PackedFrameColour, codes: torch.Tensor) -> tuple[torch.Tensor, float, float]:
        """(output codes, share of model output pixels outside the guard, of input pixels)."""
        with torch.inference_mode():
            x = colour.to_rgb(codes.to(self.device))
            y = self.restorer.restore(x)
        outside = lambda t: float(((t < GUARD[0]) | (t > GUARD[1])).any(dim=1).float().mean())  # noqa: E731
        return colour.from_rgb(y, codes.to(self.device), clamp=True).cpu(), outside(y), outside(x)


def signal_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB, peak 1) of the BT.2020 luma of two R'G'B' signals (the PQ picture itself:
    PQ is close to perceptually uniform), crop border 4."""
    luma = lambda x: (0.2627 * x[:, 0] + 0.6780 * x[:, 1] + 0.0593 * x[:, 2])[:, 4:-4, 4:-4].clamp(0, 1)  # noqa: E731
    mse = float((luma(a) - luma(b)).pow(2).mean())
    return float("inf") if mse == 0 else -10.0 * float(np.log10(mse))


def sdr_image(signal: torch.Tensor) -> np.ndarray:
    """1 x 3 x H x W SDR signal -> H x W x 3 float in [0, 1] for the metrics."""
    return signal[0].clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float64)


def evaluate(photos: tuple[str, ...], size: str, device: str) -> dict:
    w, h = (int(v) for v in size.split("x"))
    run = Runner(device, w, h)
    sdr709 = run.colour(run.conv709)
    variants = {
        "SDR path (sRGB BT.709 codes)": None,
        "HDR path, PQ, as built (BT.2020, sRGB curve, shoulder under 1)": HdrPath(PQ),
        "HDR path, HLG 1000 cd/m2, as built": HdrPath(HLG),
        "HDR path, PQ, model in BT.709 primaries": HdrPath(PQ, model_primaries=Primaries.BT709),
        "HDR path, PQ, BT.1886 curve (2.4 power)": HdrPath(PQ, sdr_curve="bt1886"),
        "code values as they are (--hdr passthrough)": "codes",
    }
    rows: dict[str, list[float]] = {k: [] for k in ["darkened input (SDR-referred)", *variants]}
    lit_variants = {
        "SDR path": None,
        "HDR path, PQ, as built (shoulder under 1, knee 0.75)": HdrPath(PQ),
        "HDR path, PQ, knee 0.5": HdrPath(PQ, knee=0.5),
        "HDR path, PQ, model in BT.709 primaries": HdrPath(PQ, model_primaries=Primaries.BT709),
        "HDR path, HLG 1000 cd/m2, as built": HdrPath(HLG),
        "HDR path, headroom: 203 cd/m2 on 1, peak on 1.1": HdrPath(PQ, knee=0.999, top=HEADROOM_TOP),
        "code values as they are": "codes",
    }
    lit: dict[str, list[tuple[float, float, float, float]]] = {k: [] for k in lit_variants}
    wide_variants = {"model in BT.709 (wide colours negative)": HdrPath(PQ, model_primaries=Primaries.BT709), "model in BT.2020 (as built)": HdrPath(PQ)}
    wide: dict[str, list[tuple[float, float, float]]] = {k: [] for k in wide_variants}
    wide_lit: dict[str, list[tuple[float, float, float]]] = {k: [] for k in wide_variants}
    score2020 = HdrPath(PQ, model_primaries=Primaries.BT2020)
    t0 = time.perf_counter()
    for i, name in enumerate(photos):
        photo = torch.from_numpy(np.array(fit(held_out_photo(name), w, h))).permute(2, 0, 1)[None].float() / 255.0
        reference = sdr_image(photo)
        light709 = SCORE709.rolloff.inverse(srgb_decode(photo))  # SDR-referred linear, shoulder undone
        master = gamut.convert(light709, Primaries.BT709, Primaries.BT2020) * REFERENCE_WHITE  # cd/m2
        dark_master = darken(master / REFERENCE_WHITE, seed=i) * REFERENCE_WHITE
        dark_sdr = srgb_encode(gamut.convert(dark_master, Primaries.BT2020, Primaries.BT709) / REFERENCE_WHITE)
        rows["darkened input (SDR-referred)"].append(psnr(sdr_image(dark_sdr), reference))

        def through(variant, light_2020, scorer=SCORE709):
            """(SDR-referred image, model output share outside the guard, input share, Y'-PSNR
            of the output's PQ signal against the master's; None for the SDR path)."""
            if variant is None:  # the SDR rendition of the same light, as the HDR path shows it
                sdr = SCORE709.to_sdr(SCORE709.signal(light_2020))
                out, o_out, o_in = run.restore(sdr709, run.codes(run.conv709, sdr))
                return sdr_image(sdr709._signal(out)), o_out, o_in, None
            path = SCORE709 if variant == "codes" else variant
            signal = path.signal(light_2020).clamp(0, 1)
            colour = run.colour(run.conv2020, None if variant == "codes" else variant)
            out, o_out, o_in = run.restore(colour, run.codes(run.conv2020, signal))
            out_signal = run.colour(run.conv2020)._signal(out)
            scorer = dataclasses.replace(scorer, transfer=path.transfer)  # the same mapping, for this stream's curve
            return sdr_image(scorer.to_sdr(out_signal)), o_out, o_in, signal_psnr(out_signal, signal)

        for label, variant in variants.items():
            rows[label].append(psnr(through(variant, dark_master)[0], reference))
        for label, variant in lit_variants.items():
            img, o_out, o_in, pq = through(variant, master)
            lit[label].append((psnr(img, reference), o_out, o_in, float("nan") if pq is None else pq))
        # Colour outside BT.709: the photograph's linear values taken as Display P3.
        p3_master = gamut.convert(light709, Primaries.SMPTE432, Primaries.BT2020) * REFERENCE_WHITE
        p3_reference = sdr_image(score2020.to_sdr(score2020.signal(p3_master)))
        p3_dark = darken(p3_master / REFERENCE_WHITE, seed=100 + i) * REFERENCE_WHITE
        for label, variant in wide_variants.items():
            img, o_out, o_in, _ = through(variant, p3_dark, scorer=score2020)
            wide[label].append((psnr(img, p3_reference), o_out, o_in))
            img, o_out, o_in, _ = through(variant, p3_master, scorer=score2020)
            wide_lit[label].append((psnr(img, p3_reference), o_out, o_in))
        print(f"eval_hdr: {name} done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    mean = lambda v: [float(np.mean(c)) for c in zip(*v)] if v and isinstance(v[0], tuple) else float(np.mean(v))  # noqa: E731
    return {"photos": list(photos), "size": size, "ev_drop": EV_DROP, "seconds": round(time.perf_counter() - t0, 1),
            "dark": {k: mean(v) for k, v in rows.items()}, "lit": {k: mean(v) for k, v in lit.items()},
            "wide": {k: mean(v) for k, v in wide.items()}, "wide_lit": {k: mean(v) for k, v in wide_lit.items()}}


def tables(res: dict) -> str:
    sdr = res["dark"]["SDR path (sRGB BT.709 codes)"]
    out = [f"Darkened {res['ev_drop']} EV in linear light with noise; Y-PSNR (dB) against the photograph in SDR-referred light, "
           f"mean of {len(res['photos'])} photographs at {res['size']}:", "",
           "| path | Y-PSNR | vs SDR path |", "|---|---|---|"]
    out += [f"| {k} | {v:.2f} | {v - sdr:+.2f} |" for k, v in res["dark"].items()]
    out += ["", "Undarkened masters (highlights up to 1000 cd/m2) through the model:", "",
            "| path | Y-PSNR (SDR-referred) | Y'-PSNR of the output signal (PQ or HLG) vs the master's | model output outside [-0.1, 1.1] | model input outside |",
            "|---|---|---|---|---|"]
    out += [f"| {k} | {p:.2f} | {q:.2f} | {100 * o:.2f}% | {100 * i:.2f}% |" for k, (p, o, i, q) in res["lit"].items()]
    out += ["", "Photographs taken as Display P3 (outside BT.709), darkened; scored in BT.2020 SDR-referred light:", "",
            "| model primaries | Y-PSNR | model output outside [-0.1, 1.1] | model input outside |", "|---|---|---|---|"]
    out += [f"| {k}, darkened | {p:.2f} | {100 * o:.2f}% | {100 * i:.2f}% |" for k, (p, o, i) in res["wide"].items()]
    out += [f"| {k}, undarkened | {p:.2f} | {100 * o:.2f}% | {100 * i:.2f}% |" for k, (p, o, i) in res["wide_lit"].items()]
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="256x256", help="frame size WxH (default 256x256)")
    p.add_argument("--photos", nargs="+", default=None, help="held-out photographs (default: all that are installed)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args()
    photos = args.photos
    if photos is None:
        try:
            import matplotlib  # noqa: F401

            photos = list(HELD_OUT)
        except ImportError:
            photos = [n for n in HELD_OUT if not n.startswith("matplotlib:")]
    res = evaluate(tuple(photos), args.size, args.device)
    print(tables(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
