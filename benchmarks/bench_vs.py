"""Frames per second of ``err()`` through ``vspipe`` against the model called directly.

Both sides restore the same frames with the same Restorer settings in the same run:

* ``model only``: ``Restorer.restore`` on frames already on the device, one after the other
  (the GPU's pure compute rate: no copies, no VapourSynth);
* ``model + copies``: the same with each frame copied host->device->host and a synchronise
  per frame (what a filter without streams would do), for reference;
* ``vspipe, num_streams=N``: a ``.vpy`` script (a source of the same frames, then ``err()``)
  run by the ``vspipe`` program of the VapourSynth wheel, frames written to /dev/null;
  the time is vspipe's own ("Output N frames in T seconds"), after a warm-up inside the
  script (first frames, kernel compilation, the streams' first allocations).

Targets: on the CPU at 640x360, vspipe within 10% of the model; on a GPU at 1920x1080 fp16,
vspipe >= 0.9x the model with the best num_streams.

    python benchmarks/bench_vs.py                      # GPU if there is one, else CPU defaults
    python benchmarks/bench_vs.py --device cpu --size 640x360 --frames 6
    python benchmarks/bench_vs.py --device cuda --size 1920x1080 --format RGBH --streams 1 2 3
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np

# Before torch loads libgomp: OpenMP threads that spin while waiting starve everything else on
# a busy CPU (the model alone ran 14 s instead of 0.4 s a frame on the main thread of a loaded
# 2-core machine), which made the model-only baseline, not the pipeline, the slow side.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from err_stream import ERR, Restorer, load_model  # noqa: E402
from err_stream.weights import save_checkpoint  # noqa: E402

GOLDEN = REPO / "tests" / "data" / "err_seed0_official_format.pth"  # tests/data/README.md
DISTINCT = 4  # distinct source frames, cycled


def source_frames(width: int, height: int, seed: int = 0) -> np.ndarray:
    """DISTINCT x 3 x H x W float32 frames in [0, 1]: smooth patterns plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    out = np.empty((DISTINCT, 3, height, width), np.float32)
    for n in range(DISTINCT):
        for p in range(3):
            a = 0.3 + 0.2 * np.sin(9 * xx * (p + 1) + 5 * yy + n) + 0.05 * rng.standard_normal((height, width))
            out[n, p] = np.clip(a, 0, 1)
    return out


SCRIPT = textwrap.dedent(
    """
    import numpy as np, vapoursynth as vs
    from vs_plugin import err
    core = vs.core
    frames = np.load(frames_file)
    fmt = getattr(vs, format_name)
    total = int(warm) + int(count)
    blank = core.std.BlankClip(width=frames.shape[3], height=frames.shape[2], format=fmt, length=total, keep=True)
    dtype = np.float16 if format_name == "RGBH" else np.float32

    def source(n, f):
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), frames[n % len(frames), p].astype(dtype, copy=False))
        return out

    src = core.std.ModifyFrame(blank, blank, source)
    # the benchmark's weights (golden or seeded random) leave [0, 1]: clamp (the check still runs)
    out = err(src, weights=weights, device_index=int(device_index), num_streams=int(num_streams), accept_out_of_range=True)
    # warm-up outside vspipe's timing: kernel compilation and every stream's first frame
    for f in [out.get_frame_async(n) for n in range(int(warm))]:
        f.result()
    out.set_output()
    """
)


def time_model_in_thread(*args) -> float:
    """:func:`time_model` on a second thread, as the filter's worker runs the model. On a
    loaded CPU, torch's OpenMP team behaves differently there than on the main thread (seen
    2-3x either way on a shared 2-core machine), so the CPU baseline is the faster of both."""
    result: list[float] = []
    t = threading.Thread(target=lambda: result.append(time_model(*args)))
    t.start()
    t.join()
    return result[0]


def time_model(restorer: Restorer, frames: np.ndarray, count: int, copies: bool, dtype: torch.dtype) -> float:
    dev = restorer.device
    host = [torch.from_numpy(f).to(dtype) for f in frames]
    if dev.type == "cuda":
        host = [h.pin_memory() for h in host]
    on_device = [h.to(dev)[None] for h in host]

    def one(i: int) -> None:
        if copies:
            y = restorer.restore(host[i % len(host)].to(dev, non_blocking=True)[None])
            y.cpu()
        else:
            restorer.restore(on_device[i % len(on_device)])

    for i in range(2):
        one(i)
    _sync(dev)
    t = time.perf_counter()
    for i in range(count):
        one(i)
    _sync(dev)
    return count / (time.perf_counter() - t)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


# Fallback where vspipe cannot start (it needs `vapoursynth config` to find a shared
# libpython): the same script evaluated by Python, output with VideoNode.output (the same
# frame-serving loop vspipe runs, with as many requests in flight as VapourSynth threads).
PY_RUNNER = textwrap.dedent(
    """
    import json, os, runpy, sys, time
    import vapoursynth as vs
    script, args, warm, count = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    runpy.run_path(script, init_globals=args, run_name="__vapoursynth__")
    clip = vs.get_output(0).clip[warm : warm + count]
    with open(os.devnull, "wb") as sink:
        t = time.perf_counter()
        clip.output(sink)
        print(count / (time.perf_counter() - t))
    """
)


def time_vspipe(script: Path, args: dict[str, str], env: dict[str, str], warm: int, count: int) -> float:
    import vapoursynth as vs

    vspipe = Path(vs.__file__).with_name("vspipe")
    if os.environ.get("BENCH_VS_RUNNER") == "python":
        import json

        run = subprocess.run([sys.executable, "-c", PY_RUNNER, str(script), json.dumps(args), str(warm), str(count)], env=env, capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(f"python runner failed:\n{run.stderr[-3000:]}")
        return float(run.stdout.strip().splitlines()[-1])
    cmd = [str(vspipe), "-s", str(warm), "-e", str(warm + count - 1)]
    for k, v in args.items():
        cmd += ["-a", f"{k}={v}"]
    run = subprocess.run([*cmd, str(script), "-"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if run.returncode != 0:
        raise SystemExit(f"vspipe failed:\n{run.stderr[-3000:]}")
    m = re.search(r"Output (\d+) frames in ([\d.]+) seconds", run.stderr)
    if not m or int(m.group(1)) != count:
        raise SystemExit(f"vspipe: unexpected report:\n{run.stderr[-2000:]}")
    return count / float(m.group(2))


def main() -> int:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if cuda else "cpu")
    p.add_argument("--size", default=None, help="WxH (default 1920x1080 on a GPU, 640x360 on the CPU)")
    p.add_argument("--format", choices=["RGBS", "RGBH"], default=None, help="clip format (default RGBH on a GPU: fp16)")
    p.add_argument("--frames", type=int, default=None, help="timed frames per run (default 60 GPU, 6 CPU)")
    p.add_argument("--streams", type=int, nargs="+", default=None, help="num_streams values (default 1 2 3 on a GPU, 1 on the CPU)")
    p.add_argument("--weights", default=None, help="checkpoint (default: the golden test checkpoint, else seeded random weights)")
    a = p.parse_args()
    gpu = a.device == "cuda"
    w, h = (int(v) for v in (a.size or ("1920x1080" if gpu else "640x360")).split("x"))
    fmt = a.format or ("RGBH" if gpu else "RGBS")
    count = a.frames or (60 if gpu else 6)
    streams = a.streams or ([1, 2, 3] if gpu else [1])
    fp16 = gpu and fmt == "RGBH"

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = a.weights or (str(GOLDEN) if GOLDEN.exists() else None)
        if weights is None:
            torch.manual_seed(0)
            weights = str(save_checkpoint(ERR().eval(), tmp / "seeded.pth"))
        frames = source_frames(w, h)
        if fmt == "RGBH":
            frames = frames.astype(np.float16).astype(np.float32)
        # stored in the clip's sample type, so the script's source only copies
        np.save(tmp / "frames.npy", frames.astype(np.float16 if fmt == "RGBH" else np.float32))
        script = tmp / "bench.vpy"
        script.write_text(SCRIPT)

        device = torch.device("cuda", 0) if gpu else torch.device("cpu")
        model = load_model(weights, device=device)
        restorer = Restorer(model, device=device, precision="fp16" if fp16 else "fp32")
        dtype = torch.float16 if fmt == "RGBH" else torch.float32
        rows: list[tuple[str, float]] = []
        base = time_model(restorer, frames, count, copies=False, dtype=dtype)
        rows.append(("model only (frames on the device)", base))
        if not gpu:
            in_thread = time_model_in_thread(restorer, frames, count, False, dtype)
            rows.append(("model only, on a second thread", in_thread))
            base = max(base, in_thread)
        if gpu:
            with_copies = time_model(restorer, frames, count, copies=True, dtype=dtype)
            rows.append(("model + copies, sync per frame", with_copies))
            base = max(base, with_copies)  # it can't be faster than the model alone: any gap is noise
        del model, restorer
        if gpu:
            torch.cuda.empty_cache()

        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), XDG_CONFIG_HOME=str(tmp / "config"))
        subprocess.run([sys.executable, "-m", "vapoursynth", "config"], env=env, check=True, capture_output=True)
        probe = subprocess.run([str(Path(__import__("vapoursynth").__file__).with_name("vspipe")), "--version"], env=env, capture_output=True, text=True)
        runner = "vspipe"
        if probe.returncode != 0 or os.environ.get("BENCH_VS_RUNNER") == "python":
            print(f"vspipe cannot start here ({(probe.stderr or probe.stdout).strip()[:200]}); timing VideoNode.output in Python instead", file=sys.stderr)
            os.environ["BENCH_VS_RUNNER"] = runner = "python"
        for n in streams:
            args = {
                "frames_file": str(tmp / "frames.npy"),
                "format_name": fmt,
                "weights": weights,
                "device_index": "0" if gpu else "-1",
                "num_streams": str(n),
                "warm": str(n + 1),
                "count": str(count),
            }
            rows.append((f"{runner}, num_streams={n}", time_vspipe(script, args, env, n + 1, count)))

    name = torch.cuda.get_device_name(0) if gpu else f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    print(f"\nerr() through vspipe vs the model: {w}x{h} {fmt} ({'fp16' if fp16 else 'fp32'}), {count} timed frames, {name}")
    print(f"{'path':<38}{'fps':>9}{'x model':>10}")
    for label, fps in rows:
        print(f"{label:<38}{fps:>9.2f}{fps / base:>10.3f}")
    best = max(fps for label, fps in rows if "num_streams" in label)
    target = 0.9  # GPU: >= 0.9x with the best num_streams; CPU: overhead <= 10%
    print(f"best vspipe / model = {best / base:.3f} (target >= {target}; 'x model' is against the faster model row)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
