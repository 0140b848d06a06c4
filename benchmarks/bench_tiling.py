"""Peak memory and time of whole-frame vs exact tiling (issue 5).

Each configuration runs in its own subprocess so its peak memory is its own: on CPU the
child's peak RSS (minus the RSS after loading the model), on CUDA torch.cuda.max_memory_allocated.

    python benchmarks/bench_tiling.py                       # CPU: 1920x1080, 3840x2160
    python benchmarks/bench_tiling.py --device cuda --precision fp16 --sizes 3840x2160 7680x4320
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child(args: argparse.Namespace) -> None:
    import resource

    from err_stream import runtime

    runtime.configure(flush_denormal=False)  # passive OpenMP waits, as the other front ends
    import torch

    from err_stream import ERR, Restorer

    torch.manual_seed(0)
    device = torch.device(args.device)
    model = ERR().eval().to(device)
    w, h = (int(v) for v in args.size.split("x"))
    tiling = "off" if args.tile == "off" else tuple(int(v) for v in args.tile.split("x"))
    restorer = Restorer(model, device=device, precision=args.precision, tiling=tiling)
    x = torch.rand(1, 3, h, w, device=device)
    if device.type == "cuda":
        restorer.restore(x[..., :256, :256])  # warm-up: kernels, autotuning
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        restorer.restore(x[..., :128, :128])
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        y = restorer.restore(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    assert y.shape == x.shape
    print(json.dumps({"seconds": min(times), "peak_bytes": peak}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    p.add_argument("--sizes", nargs="+", default=["1920x1080", "3840x2160"])
    p.add_argument("--tile", default="512x512")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--skip-whole-above", type=int, default=0, help="skip whole-frame runs above this many pixels (0: never)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--size", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _child(args)
        return
    rows = []
    for size in args.sizes:
        w, h = (int(v) for v in size.split("x"))
        result = {}
        for tile in ("off", args.tile):
            if tile == "off" and args.skip_whole_above and w * h > args.skip_whole_above:
                result[tile] = None
                continue
            cmd = [sys.executable, __file__, "--child", "--size", size, "--tile", tile, "--device", args.device,
                   "--precision", args.precision, "--repeat", str(args.repeat)]
            r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
            if r.returncode != 0:
                tail = (r.stderr.strip().splitlines() or ["?"])[-1]
                result[tile] = {"error": tail}
            else:
                result[tile] = json.loads(r.stdout.strip().splitlines()[-1])
        rows.append((size, result))
    print(f"\nERR whole-frame vs exact tiling ({args.tile}), device {args.device}, {args.precision}")
    print(f"{'size':>10} | {'whole s':>8} {'whole GiB':>9} | {'tiled s':>8} {'tiled GiB':>9} | {'time x':>6} {'mem x':>6}")
    for size, res in rows:
        wh, tl = res.get("off"), res.get(args.tile)

        def cell(r, key, scale=1.0):
            if r is None:
                return "skipped"
            if "error" in r:
                return "error"
            return f"{r[key] / scale:.2f}"

        ok = wh and tl and "error" not in wh and "error" not in tl
        ratio_t = f"{tl['seconds'] / wh['seconds']:.2f}" if ok else "-"
        ratio_m = f"{tl['peak_bytes'] / max(wh['peak_bytes'], 1):.2f}" if ok else "-"
        print(f"{size:>10} | {cell(wh, 'seconds'):>8} {cell(wh, 'peak_bytes', 2**30):>9} | "
              f"{cell(tl, 'seconds'):>8} {cell(tl, 'peak_bytes', 2**30):>9} | {ratio_t:>6} {ratio_m:>6}")
        for name, r in (("whole", wh), ("tiled", tl)):
            if r and "error" in r:
                print(f"    {size} {name}: {r['error']}")


if __name__ == "__main__":
    main()
