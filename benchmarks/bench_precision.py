"""PSNR of the half-precision policies against fp32 (issue 5).

Runs the Restorer with fp32, fp16 and bf16 on the golden input and on real photographs
(scikit-image's samples, cropped to 512x512 -- the test extra installs scikit-image) and
prints the PSNR of each half policy against fp32 (outputs clamped to [0, 1]).

    python benchmarks/bench_precision.py [--device cuda] [--weights FILE ...]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from err_stream import Restorer, load_model

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data"  # the golden fixtures (tests/data/README.md)


def _photos() -> dict[str, torch.Tensor]:
    out = {}
    from safetensors.torch import load_file

    out["golden input"] = load_file(GOLDEN / "err_seed0_io.safetensors")["input"]
    try:
        from skimage import data
    except ImportError:
        return out
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        a = getattr(data, name)()[:512, :512]
        out[name] = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float()[None] / 255
    return out


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).mean().item()
    return float("inf") if mse == 0 else 10 * math.log10(1 / mse)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--weights", nargs="+", default=[str(GOLDEN / "err_seed0_official_format.pth")])
    p.add_argument("--precisions", nargs="+", default=["fp16", "bf16"])
    args = p.parse_args()
    photos = _photos()
    print(f"PSNR (dB) of half-precision policies vs fp32, device {args.device}")
    print(f"{'weights':>28} {'image':>14} " + " ".join(f"{q:>8}" for q in args.precisions))
    for w in args.weights:
        model = load_model(w, device=args.device)
        ref = Restorer(model, precision="fp32", tiling="off")
        halves = {q: Restorer(model, precision=q, tiling="off") for q in args.precisions}
        for name, x in photos.items():
            x = x.to(args.device)
            y = ref.restore(x)
            cells = []
            for q in args.precisions:
                try:
                    cells.append(f"{psnr(halves[q].restore(x), y):8.2f}")
                except Exception as e:  # e.g. an op without a half kernel on this device
                    cells.append(f"{'n/a':>8}")
                    print(f"    {q}: {type(e).__name__}: {e}")
            print(f"{Path(w).name[:28]:>28} {name:>14} " + " ".join(cells))


if __name__ == "__main__":
    main()
