"""Training step time with the torch scan ("before") and numba's training scan ("after"), same run.

Each step is the real :meth:`err_stream.train.Trainer.train_step` (forward of the three stages,
the paper's losses, backward, gradient clipping, AdamW) of the full network (every layer
trainable: configs/demo-lowlight.yaml without its ``trainable`` list), fine-tuning the embedded
demo weights on camera_lowlight crops of scikit-image's training photographs (no download).
"before" forces the chunked torch scan (``forced_backend("selective_scan", "torch")``), "after"
runs the default CPU backend, numba's training scan. Each (size, scan) gets a fresh Trainer on
the same pre-drawn batches, so both see the same virtual frame sizes and the same data.

Then the scan alone, forward + backward at ERR's shapes (batch 4, 512 channels in 4 scan groups,
16 states): the sequence lengths of the LFR's first level at 128² (256 tokens) and 256² (1024).

    python benchmarks/bench_train_step.py                     # 2 threads, passive OpenMP waits
    python benchmarks/bench_train_step.py --active-wait       # a machine to itself
    python benchmarks/bench_train_step.py --sizes 128 --steps 5 --threads 1

Times are medians of wall-clock seconds; the load average before and after is printed: on a
shared machine compare only the ratio, measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="square crop sizes (multiples of 128)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=3, help="timed steps per (size, scan), after --warmup")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (allocations, numba's first call)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--active-wait", action="store_true", help="OpenMP threads spin while waiting (as err-stream train --active-wait)")
    p.add_argument("--scan-lengths", type=int, nargs="*", default=[256, 1024], help="sequence lengths for the scan alone")
    p.add_argument("--scan-repeat", type=int, default=3)
    p.add_argument("--config", default=str(ROOT / "configs" / "demo-lowlight.yaml"))
    p.add_argument("--data", default="skimage:train", help="training photographs (folder or skimage:NAMES)")
    return p.parse_args()


args = parse_args()
from err_stream import runtime  # noqa: E402

runtime.configure(args.threads, omp_wait_policy="active" if args.active_wait else "passive")

import torch  # noqa: E402

from err_stream.ops import describe_backends, forced_backend, selective_scan  # noqa: E402
from err_stream.train import Trainer, load_config  # noqa: E402

SCANS = (("before: torch scan", "torch"), ("after: numba scan", None))


def make_trainer(size: int, out: str) -> Trainer:
    cfg = load_config(args.config, {
        "init": "demo",
        "data.train.target": args.data,
        "data.train.crop": [size],
        "data.train.workers": 0,
        "data.train.cache": False,
        "data.val": {},
        "train.batch_size": args.batch,
        "train.trainable": [],  # the full network
        "log.tensorboard": False,
    })
    return Trainer(cfg, out, device="cpu", progress=None)


def time_steps(size: int, scan: str | None, batches) -> list[float]:
    with tempfile.TemporaryDirectory() as out:
        trainer = make_trainer(size, out)
        times = []
        with forced_backend("selective_scan", scan) if scan else contextlib.nullcontext():
            for i, (lq, gt) in enumerate(batches):
                t0 = time.perf_counter()
                row = trainer.train_step(lq, gt)
                if i >= args.warmup:
                    times.append(time.perf_counter() - t0)
                if not torch.isfinite(torch.tensor(row["loss"])):
                    raise SystemExit(f"{size}²/{scan or 'numba'}: non-finite loss at step {i}")
        return times


def time_scan(length: int, scan: str | None) -> float:
    gen = torch.Generator().manual_seed(0)
    b, d, n, g = 4, 512, 16, 4
    inputs = [
        torch.randn(b, d, length, generator=gen),
        torch.randn(b, d, length, generator=gen) * 0.5 - 1.0,
        -torch.exp(torch.randn(d, n, generator=gen) * 0.5 + 1.0),
        torch.randn(b, g, n, length, generator=gen),
        torch.randn(b, g, n, length, generator=gen),
        torch.randn(d, generator=gen),
        torch.randn(d, generator=gen) * 0.3,
    ]
    weight = torch.randn(b, d, length, generator=gen)
    times = []
    for i in range(args.scan_repeat + 1):
        leaves = [t.clone().requires_grad_() for t in inputs]
        t0 = time.perf_counter()
        y = selective_scan(*leaves, True, backend=scan)
        (y * weight).sum().backward()
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    load_before = os.getloadavg()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, "
          f"scan backend (CPU) {describe_backends('cpu')['selective_scan']}")
    print(f"# load average before: {' '.join(f'{v:.2f}' for v in load_before)}")
    rows = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as out:
            it = make_trainer(size, out).batches()
            batches = [next(it) for _ in range(args.warmup + args.steps)]
        medians = {}
        for label, scan in SCANS:
            medians[label] = statistics.median(time_steps(size, scan, batches))
        before, after = (medians[label] for label, _ in SCANS)
        rows.append((f"train step {size}² x {args.batch}", before, after))
    for length in args.scan_lengths:
        before, after = (time_scan(length, scan) for _, scan in SCANS)
        rows.append((f"scan fwd+bwd L={length} (4x512, N=16, G=4)", before, after))
    load_after = os.getloadavg()
    print()
    print(f"| {'what':<40} | {'before (torch scan)':>20} | {'after (numba scan)':>19} | {'speed-up':>8} |")
    print(f"|{'-' * 42}|{'-' * 22}:|{'-' * 21}:|{'-' * 9}:|")
    for what, before, after in rows:
        print(f"| {what:<40} | {before:>18.3f} s | {after:>17.3f} s | {before / after:>7.1f}x |")
    print()
    print(f"# load average after: {' '.join(f'{v:.2f}' for v in load_after)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
