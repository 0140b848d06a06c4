"""PSNR of the half-precision policies against fp32, on trained weights and photographs.

For each weights file (default: the embedded demo weights, which are trained; the golden
checkpoint's seeded random weights say nothing about precision), on real photographs
(scikit-image's samples, 512x512 crops) this prints the PSNR of the clamped output, the
metric users see, against the fp32 output for:

* ``fast``: the default path, half weights with float32 islands (:class:`FastForward`);
* ``autocast``: the reference path, autocast on the schedule's half-safe steps;
* ``only <step>``: the reference path with that one schedule step in half and every other
  step in float32, which shows where the error comes from: the schedule's ``half_safe``
  list (err_stream/model/schedule.py) follows from these rows.

Half-precision results depend on the kernels that run them, so the table says which ran
(oneDNN's ISA and the convolution kernel of each half dtype). On a CPU without AVX-512
ATen's fallback runs bf16; with AVX512-BF16 or AMX, oneDNN's kernels do. Run it on each
machine type (``ONEDNN_MAX_CPU_ISA=AVX2`` shows the fallback on an AVX-512 machine).

    python benchmarks/bench_precision.py [--device cuda] [--weights FILE ...] [--size 512]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import torch

from err_stream import Restorer, load_model, runtime
from err_stream.engine.isa import half_kernels
from err_stream.model.schedule import TrunkStep
from err_stream.weights import DEMO_WEIGHTS

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def photos(size: int) -> dict[str, torch.Tensor]:
    """scikit-image's sample photographs (bundled with it), top-left ``size`` crops."""
    from skimage import data

    out = {}
    for name in PHOTOS:
        a = getattr(data, name)()[:size, :size]
        out[name] = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float()[None] / 255
    return out


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).mean().item()
    return float("inf") if mse == 0 else 10 * math.log10(1 / mse)


def half_steps(model) -> list[str]:
    """The schedule's steps that may run in half precision (the frequency branch never does)."""
    return [s.name for s in Restorer(model, tiling="off", fast=False).schedule.steps if s.half_safe]


def restore_with_half_steps(model, x: torch.Tensor, precision: str, steps: set[str], device: str) -> torch.Tensor:
    """The reference (autocast) path with exactly ``steps`` in ``precision``, run through the
    Restorer's own tiled schedule with one tile covering the frame."""
    r = Restorer(model, device=device, precision=precision, tiling=(x.shape[-1], x.shape[-2]), fast=False)
    r.schedule = dataclasses.replace(
        r.schedule, steps=tuple(dataclasses.replace(s, half_safe=s.name in steps) for s in r.schedule.steps)
    )
    return r.restore(x)


def measure(weights: str, images: dict[str, torch.Tensor], precisions: list[str], device: str) -> list[tuple[str, dict]]:
    """Rows (label, {precision: [psnr per image]})."""
    model = load_model(weights, device=device)
    steps = half_steps(model)
    rows: dict[str, dict[str, list[float]]] = {}

    def add(label: str, q: str, value: float) -> None:
        rows.setdefault(label, {}).setdefault(q, []).append(value)

    fast = {q: Restorer(model, device=device, precision=q, tiling="off") for q in precisions}
    auto = {q: Restorer(model, device=device, precision=q, tiling="off", fast=False) for q in precisions}
    ref = Restorer(model, device=device, precision="fp32", tiling="off", fast=False)
    for x in images.values():
        x = x.to(device)
        y = ref.restore(x)
        for q in precisions:
            add("fast (half weights)", q, psnr(fast[q].restore(x), y))
            add("autocast, half-safe steps", q, psnr(auto[q].restore(x), y))
            for name in steps:
                add(f"only {name}", q, psnr(restore_with_half_steps(model, x, q, {name}, device), y))
    return list(rows.items())


def table(weights: str, rows, precisions: list[str], size: int, n: int) -> str:
    head = f"{'':30}" + "".join(f"{q + ' mean':>11}{q + ' min':>10}" for q in precisions)
    lines = [f"weights {Path(weights).name}: PSNR (dB) of the clamped output vs fp32, {n} photographs {size}x{size}", head]
    for label, cells in rows:
        line = f"{label:30}"
        for q in precisions:
            v = cells.get(q, [])
            line += f"{np.mean(v):11.2f}{min(v):10.2f}" if v else f"{'n/a':>11}{'':>10}"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--weights", nargs="+", default=[str(DEMO_WEIGHTS)])
    p.add_argument("--precisions", nargs="+", default=["fp16", "bf16"])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--threads", type=int)
    args = p.parse_args()
    runtime.configure(args.threads)
    images = photos(args.size)
    if args.device == "cpu":
        print(half_kernels().describe())
    else:
        print(torch.cuda.get_device_name(torch.device(args.device)))
    for w in args.weights:
        t0 = time.perf_counter()
        rows = measure(w, images, args.precisions, args.device)
        print(table(w, rows, args.precisions, args.size, len(images)))
        print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
