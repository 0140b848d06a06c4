"""Batch throughput: the plain transcoder vs `err-stream batch` on Ray with 1 and 2 workers.

On the same synthetic inputs, in one run on one machine:

  plain      each input through `err_stream.video.transcode` in this process, one after another
  ray x1     the batch on Ray, 1 worker  (pieces at keyframes, joined by stream copy)
  ray x2     the batch on Ray, 2 workers

and prints frames/s, the overhead of one worker against the plain transcoder (target ≤ 5%),
and the scaling efficiency of two workers, fps(x2) / (2 * fps(x1)) (target ≥ 0.9 where the
model is what limits). Ray itself is started once before the timed runs (its start-up time
is printed apart); each timed batch run includes starting its workers and loading the model.

    python benchmarks/bench_batch.py                                  # CPU: 1 CPU per worker
    python benchmarks/bench_batch.py --device cuda --gpus-per-worker 0.5 --size 1920x1080

On CPU each worker (and the plain run) gets --cpus-per-worker threads; give the machine at
least 2x that many free cores or the x2 figure measures contention, not scaling.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))



def make_clip(path: Path, width: int, height: int, frames: int, fps: int = 24, gop: int = 12) -> Path:
    """A moving textured pattern, H.264 yuv420p BT.709, a closed GOP every ``gop`` frames."""
    from fractions import Fraction

    import av
    import numpy as np

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.time_base = Fraction(1, fps)
        s.codec_context.options = {"preset": "veryfast", "crf": "18", "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
        for i in range(frames):
            luma = 0.5 + 0.3 * np.sin((xx + 3 * i) / 23.0) * np.cos(yy / 17.0)
            f = av.VideoFrame.from_ndarray(np.clip(16 + 219 * luma, 16, 235).astype(np.uint8), format="gray")
            f = f.reformat(format="yuv420p")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="256x144")
    ap.add_argument("--frames", type=int, default=48, help="frames per input")
    ap.add_argument("--inputs", type=int, default=2)
    ap.add_argument("--segment-seconds", type=float, default=0.5, help="piece length (the clips are 24 fps, a keyframe every 12)")
    ap.add_argument("--weights", default=None, help="checkpoint (default: seeded random weights; speed does not depend on them)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default=None)
    ap.add_argument("--cpus-per-worker", type=float, default=1)
    ap.add_argument("--gpus-per-worker", type=float, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))

    torch.set_flush_denormal(True)
    import ray

    from err_stream.engine.restorer import load_restorer
    from err_stream.engine.settings import RestoreSettings
    from err_stream.video import transcode
    from pipelines.job import load_job
    from pipelines.runner import run_batch

    precision = args.precision or ("fp16" if args.device.startswith("cuda") else "fp32")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        inputs = [make_clip(tmp / f"in{i}.mp4", w, h, args.frames) for i in range(args.inputs)]
        if args.weights is None:
            from err_stream.model import ERR
            from err_stream.weights import save_checkpoint

            torch.manual_seed(0)
            args.weights = str(save_checkpoint(ERR().eval(), tmp / "seeded.safetensors"))
        total = args.frames * args.inputs

        # plain transcoder, same threads as one worker
        torch.set_num_threads(max(1, int(args.cpus_per_worker)))
        t0 = time.perf_counter()
        restorer = load_restorer(args.weights, RestoreSettings(device=args.device, precision=precision))
        for i, src in enumerate(inputs):
            # Random weights leave [0, 1]: clamp (speed does not depend on the values).
            transcode(src, tmp / f"plain{i}.mp4", restorer, accept_out_of_range=True)
        plain = time.perf_counter() - t0
        rows.append(("plain transcoder", 1, plain, total / plain))

        os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        t0 = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), num_gpus=torch.cuda.device_count(), include_dashboard=False,
                 log_to_driver=False, logging_level="ERROR")
        ray_start = time.perf_counter() - t0
        try:
            for workers in (1, 2):
                out = tmp / f"ray{workers}"
                job = tmp / f"job{workers}.yaml"
                gpus = "" if args.gpus_per_worker is None else f"gpus_per_worker: {args.gpus_per_worker}\n"
                job.write_text(textwrap.dedent(f"""\
                    inputs: [{", ".join(str(p) for p in inputs)}]
                    output_dir: {out}
                    weights: {args.weights}
                    accept_out_of_range: true
                    device: {args.device}
                    precision: {precision}
                    segment_seconds: {args.segment_seconds}
                    workers: {workers}
                    cpus_per_worker: {args.cpus_per_worker}
                """) + gpus)
                t0 = time.perf_counter()
                report = run_batch(load_job(job), progress=False)
                wall = time.perf_counter() - t0
                assert report.failed == 0, report.table()
                rows.append((f"ray x{workers}", workers, wall, total / wall))
        finally:
            ray.shutdown()

    fps = {r[1]: r[3] for r in rows if r[0].startswith("ray")}
    overhead = (total / fps[1]) / plain - 1 if 1 in fps else None
    efficiency = fps[2] / (2 * fps[1]) if 2 in fps and 1 in fps else None
    print(f"{args.inputs} inputs x {args.frames} frames at {w}x{h}, {args.device} {precision}, "
          f"{args.cpus_per_worker:g} CPU per worker; {os.cpu_count()} CPUs here; Ray start {ray_start:.1f} s (not counted)")
    print(f"{'run':<18}{'workers':>8}{'seconds':>10}{'frames/s':>10}{'vs plain':>10}")
    for name, workers, wall, f in rows:
        print(f"{name:<18}{workers:>8}{wall:>10.2f}{f:>10.2f}{f / rows[0][3]:>10.2f}")
    print(f"one worker vs plain: {overhead * 100 if overhead is not None else float('nan'):+.1f}% time "
          f"(target: no more than +5%)")
    if efficiency is not None:
        print(f"scaling efficiency of 2 workers: {efficiency:.2f} (target ≥ 0.9)")
    if args.json:
        print(json.dumps({"rows": rows, "overhead": overhead, "efficiency": efficiency, "ray_start": ray_start}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
