"""How much does the demo low-light model restore? PSNR / SSIM on held-out photographs.

The held-out photographs (scikit-image's coffee, chelsea and rocket: never used in
training) are darkened the way the training pairs were (err_stream.train.LowLight with
parameters drawn from its ranges, ``--draws`` per photograph, fixed seeds), then compared
with the original, for:

* the degraded input itself;
* a simple baseline: per-channel auto-levels (0.5 / 99.5 percentiles stretched to 0 / 1)
  then a gamma that brings the mean luma to 0.45;
* the model (default: the embedded demo weights; ``--weights FILE`` for another).

Metrics are the paper's: PSNR / SSIM on the Y channel, crop border 4. Prints a table;
``--json FILE`` also writes the numbers.

    python benchmarks/eval_demo.py [--weights FILE] [--device cpu] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from err_stream.image import restore_image  # noqa: E402
from err_stream.train.datasets import SKIMAGE_SETS, load_source, to_numpy, to_tensor  # noqa: E402
from err_stream.train.degradations import LowLight  # noqa: E402
from err_stream.train.metrics import psnr, ssim  # noqa: E402
from err_stream.weights import load_model  # noqa: E402


def auto_levels_gamma(image: np.ndarray, target_mean: float = 0.45) -> np.ndarray:
    """The baseline: per-channel percentile stretch, then a global gamma to a target mean luma."""
    x = image.astype(np.float64) / 255.0
    lo = np.percentile(x, 0.5, axis=(0, 1))
    hi = np.percentile(x, 99.5, axis=(0, 1))
    x = np.clip((x - lo) / np.maximum(hi - lo, 1e-6), 0, 1)
    luma = float(np.mean(x @ np.array([0.299, 0.587, 0.114])))
    if 1e-4 < luma < 1:
        x = x ** (np.log(target_mean) / np.log(luma))
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


def degraded_pairs(draws: int, seed: int = 20251126) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, dark uint8, clean uint8) for every held-out photograph and draw."""
    source = load_source("skimage:heldout", "held-out photographs")
    deg = LowLight()
    pairs = []
    for i, name in enumerate(source.names):
        clean = source.get(i)
        for j in range(draws):
            dark = deg(to_tensor(clean), np.random.default_rng([seed, i, j]))
            pairs.append((f"{name}#{j}", to_numpy(dark), clean))
    return pairs


def evaluate(weights: str | None = None, device: str = "cpu", draws: int = 3) -> dict:
    """``{"methods": {method: {"psnr", "ssim"}}, "images": [...]}`` on the held-out set."""
    model = load_model(weights, device=device)
    rows = []
    for name, dark, clean in degraded_pairs(draws):
        outputs = {"degraded input": dark, "auto-levels + gamma": auto_levels_gamma(dark)}
        with torch.inference_mode():
            # scored as the user would see it: quantised, with diverged values clamped
            outputs["demo model"] = restore_image(model, dark, accept_out_of_range=True)
        for method, img in outputs.items():
            rows.append({"image": name, "method": method, "psnr": psnr(img, clean), "ssim": ssim(img, clean)})
    methods = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        sel = [r for r in rows if r["method"] == method]
        methods[method] = {"psnr": float(np.mean([r["psnr"] for r in sel])), "ssim": float(np.mean([r["ssim"] for r in sel]))}
    return {"held_out": list(SKIMAGE_SETS["heldout"]), "draws": draws, "methods": methods, "images": rows}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None, help="checkpoint (default: the embedded demo weights)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--draws", type=int, default=3, help="darkenings per held-out photograph")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args()
    res = evaluate(args.weights, args.device, args.draws)
    base = res["methods"]["degraded input"]["psnr"]
    print(f"held-out photographs: {', '.join(res['held_out'])} x {res['draws']} darkenings; Y channel, crop border 4")
    print(f"{'method':<22} {'PSNR (dB)':>10} {'SSIM':>7} {'vs input':>9}")
    for method, m in res["methods"].items():
        print(f"{method:<22} {m['psnr']:>10.2f} {m['ssim']:>7.4f} {m['psnr'] - base:>+8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
