"""How well does the demo low-light model restore, at every frame size? PSNR / SSIM on held-out photographs.

Held-out photographs (never trained on): matplotlib's sample photograph (grace_hopper) and
scikit-image's coffee, chelsea and rocket. Each is centre-cropped to the frame's aspect and
resized (Lanczos) to 512x512, 1024x1024 and 3840x2160: the larger sizes are upscaled
content, smoother than native 4K, but what matters there is whether the model stays
bounded when its frequency branch sees a 4K frame's DC. Each is darkened ``--draws`` times
(fixed seeds) by ``--degradation`` (default ``camera_lowlight``, dark draws only; the
issue's first table used ``lowlight``), then compared with the original, for:

* the degraded input itself;
* auto-levels + gamma: per-channel 0.5 / 99.5 percentile stretch, then a gamma that brings
  the mean luma to 0.45;
* CLAHE: scikit-image's ``equalize_adapthist`` (clip limit 0.01);
* the model (default: the embedded demo weights; ``--weights FILE`` for another), through the
  Restorer (tiling ``auto``), its raw float output clamped for the metrics.

"diverged" counts frames whose raw output is non-finite or has more than 0.1% of its pixels
outside [-0.05, 1.05]. "lit" rows run the model on the unmodified photograph: a restorer
should leave normally lit footage nearly alone (PSNR against the photograph itself).

Metrics are the paper's: PSNR / SSIM on the Y channel, crop border 4. Prints a Markdown table;
``--json FILE`` also writes the numbers.

    python benchmarks/eval_demo.py [--weights FILE] [--sizes 512x512 1024x1024 3840x2160] [--draws 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from err_stream.engine import Restorer  # noqa: E402
from err_stream.train.datasets import to_numpy, to_tensor  # noqa: E402
from err_stream.train.degradations import build_degradation  # noqa: E402
from err_stream.train.metrics import psnr, ssim  # noqa: E402
from err_stream.weights import load_model  # noqa: E402

HELD_OUT = ("matplotlib:grace_hopper", "skimage:coffee", "skimage:chelsea", "skimage:rocket")
DEFAULT_SIZES = ("512x512", "1024x1024", "3840x2160")
METHODS = ("input", "auto-levels + gamma", "CLAHE", "model")


def held_out_photo(name: str) -> np.ndarray:
    """H x W x 3 uint8 of a held-out photograph."""
    kind, _, item = name.partition(":")
    if kind == "matplotlib":
        try:
            from matplotlib import cbook
        except ImportError:
            raise SystemExit("eval_demo: matplotlib's sample photograph needs matplotlib: pip install 'err-stream[train]'") from None
        from PIL import Image

        with Image.open(cbook.get_sample_data(f"{item}.jpg")) as im:
            return np.asarray(im.convert("RGB"))
    from err_stream.train.datasets import _skimage_image

    return _skimage_image(item)


def fit(image: np.ndarray, w: int, h: int) -> np.ndarray:
    """Centre-crop to the aspect of w x h, then resize (Lanczos) to exactly w x h."""
    from PIL import Image

    ih, iw = image.shape[:2]
    if iw * h > ih * w:  # too wide
        cw, ch = round(ih * w / h), ih
    else:
        cw, ch = iw, round(iw * h / w)
    top, left = (ih - ch) // 2, (iw - cw) // 2
    crop = Image.fromarray(image[top : top + ch, left : left + cw])
    return np.asarray(crop.resize((w, h), Image.Resampling.LANCZOS))


def auto_levels_gamma(image: np.ndarray, target_mean: float = 0.45) -> np.ndarray:
    """The simple baseline: per-channel percentile stretch, then a global gamma to a target mean luma."""
    x = image.astype(np.float64) / 255.0
    lo = np.percentile(x, 0.5, axis=(0, 1))
    hi = np.percentile(x, 99.5, axis=(0, 1))
    x = np.clip((x - lo) / np.maximum(hi - lo, 1e-6), 0, 1)
    luma = float(np.mean(x @ np.array([0.299, 0.587, 0.114])))
    if 1e-4 < luma < 1:
        x = x ** (np.log(target_mean) / np.log(luma))
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


def clahe(image: np.ndarray) -> np.ndarray:
    from skimage.exposure import equalize_adapthist

    return np.clip(np.rint(equalize_adapthist(image, clip_limit=0.01) * 255), 0, 255).astype(np.uint8)


def out_of_range_share(y: torch.Tensor) -> float:
    """Share of values outside [-0.05, 1.05] (1.0 if anything is non-finite)."""
    if not torch.isfinite(y).all():
        return 1.0
    return float(((y < -0.05) | (y > 1.05)).float().mean())


def evaluate(
    weights: str | None = None,
    device: str = "cpu",
    draws: int = 2,
    sizes: tuple[str, ...] = DEFAULT_SIZES,
    degradation: str = "camera_lowlight",
    photos: tuple[str, ...] = HELD_OUT,
    draws_at_4k: int = 1,
    lit: bool = True,
) -> dict:
    """``{"sizes": {size: {method: {"psnr", "ssim"}, "diverged": [n, of], "lit": {...}}}, "images": [...]}``."""
    model = load_model(weights, device=device)
    restorer = Restorer(model, tiling="auto", compile=False)  # compiling would take minutes on a CPU
    deg = build_degradation({"kind": degradation} if degradation != "camera_lowlight" else {"kind": degradation, "lit_probability": 0.0})
    rows, summary = [], {}
    for size in sizes:
        w, h = (int(v) for v in size.split("x"))
        n_draws = draws_at_4k if w * h >= 3840 * 2160 else draws
        diverged = frames = 0
        lit_psnr, lit_ssim = [], []
        t0 = time.perf_counter()
        for i, name in enumerate(photos):
            clean = fit(held_out_photo(name), w, h)
            for j in range(n_draws + (1 if lit else 0)):
                as_is = j == n_draws  # the last pass: the photograph as it is
                if as_is:
                    dark = clean
                else:
                    lq, gt_t = deg.pair(to_tensor(clean), np.random.default_rng([20261127, i, j, w, h]))
                    dark, clean_j = to_numpy(lq), to_numpy(gt_t)
                with torch.inference_mode():
                    raw = restorer.restore(to_tensor(dark)[None].to(device))[0].float().cpu()
                frames += 1
                bad = out_of_range_share(raw) > 1e-3
                diverged += bad
                restored = to_numpy(torch.nan_to_num(raw, nan=0.0))
                if as_is:
                    lit_psnr.append(psnr(restored, clean))
                    lit_ssim.append(ssim(restored, clean))
                    continue
                outputs = {"input": dark, "auto-levels + gamma": auto_levels_gamma(dark), "CLAHE": clahe(dark), "model": restored}
                for method, img in outputs.items():
                    rows.append({"size": size, "image": f"{name}#{j}", "method": method,
                                 "psnr": psnr(img, clean_j), "ssim": ssim(img, clean_j), "diverged": bool(bad) if method == "model" else None})
        sel = [r for r in rows if r["size"] == size]
        summary[size] = {
            m: {"psnr": float(np.mean([r["psnr"] for r in sel if r["method"] == m])),
                "ssim": float(np.mean([r["ssim"] for r in sel if r["method"] == m]))}
            for m in METHODS
        }
        summary[size]["diverged"] = [diverged, frames]
        summary[size]["lit"] = {"psnr": float(np.mean(lit_psnr)), "ssim": float(np.mean(lit_ssim))} if lit_psnr else None
        summary[size]["seconds"] = round(time.perf_counter() - t0, 1)
        print(f"eval_demo: {size} done in {summary[size]['seconds']} s", file=sys.stderr)
    return {"photos": list(photos), "draws": draws, "draws_at_4k": draws_at_4k, "degradation": degradation,
            "weights": weights or "embedded demo", "sizes": summary, "images": rows}


def table(res: dict) -> str:
    lines = [
        "| size | input | auto-levels+γ | CLAHE | demo model | model diverged | lit photo through the model |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, s in res["sizes"].items():
        cells = [f"{s[m]['psnr']:.1f} / {s[m]['ssim']:.2f}" for m in METHODS]
        best = max(s[m]["psnr"] for m in METHODS[1:3])
        cells[3] += f" ({s['model']['psnr'] - best:+.1f} dB)"
        d, n = s["diverged"]
        lit = f"{s['lit']['psnr']:.1f} / {s['lit']['ssim']:.2f}" if s["lit"] else "not run"
        lines.append(f"| {size} | " + " | ".join(cells) + f" | {d}/{n} | {lit} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None, help="checkpoint (default: the embedded demo weights)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--draws", type=int, default=2, help="darkenings per photograph (below 4K)")
    p.add_argument("--draws-at-4k", type=int, default=1, help="darkenings per photograph at 3840x2160 and up")
    p.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES), help="frame sizes WxH")
    p.add_argument("--degradation", default="camera_lowlight", help="camera_lowlight (default) or lowlight")
    p.add_argument("--photos", nargs="+", default=list(HELD_OUT), help="held-out photographs (default: all)")
    p.add_argument("--no-lit", action="store_true", help="skip the unmodified-photograph pass (saves time at 4K on a CPU)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args()
    res = evaluate(args.weights, args.device, args.draws, tuple(args.sizes), args.degradation, tuple(args.photos),
                   draws_at_4k=args.draws_at_4k, lit=not args.no_lit)
    print(f"held out: {', '.join(res['photos'])}; {args.degradation}, {args.draws} draws ({args.draws_at_4k} at 4K); "
          "Y-PSNR dB / SSIM, crop border 4; (model - best baseline PSNR)")
    print(table(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
