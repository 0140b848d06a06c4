"""4K at 60 fps on one GPU: every figure of issue 12 in one run, printed and written as JSON.

    python benchmarks/gpu_4k60.py                       # on the GPU machine (< 7 min on an H100)
    python benchmarks/gpu_4k60.py --json out.json
    python benchmarks/gpu_4k60.py --smoke               # all of it on the CPU at small sizes

Sections (each one is independent: an error is recorded in the JSON and the run goes on):

* ``model``: model-only ms / fps / peak memory / PSNR (against eager fp32) at 3840x2160, for
  eager fp32 (the baseline), today's fp16 path (autocast, NCHW), then each step of the fast
  path cumulatively: channels_last, cudnn.benchmark, half weights with float32 islands,
  torch.compile, CUDA graphs, the chunk-parallel Triton scan. Speed-ups are against the baseline measured in the same run.
* ``profile``: kernels per frame, and layout-conversion / copy kernels, from torch.profiler,
  for the baseline, today's fp16 path and the final fast path.
* ``decode``: decode fps of a 4K H.264 clip, CPU (PyAV) against NVDEC (PyAV's HWAccel), if
  the build has it.
* ``encode``: encode fps at 4K for libx264 / libx265 / libsvtav1 presets (the H100 has no NVENC).
* ``pipeline``: end-to-end transcoder fps and efficiency (benchmarks/bench_pipeline.py).
* ``vs``: the VapourSynth filter against model-only at 1080p and 4K (benchmarks/bench_vs.py).
* ``memory``: 4K fp16 whole-frame peak, 8K tiled peak, the OOM retry under
  ``torch.cuda.set_per_process_memory_fraction``, and the per-pixel memory constants measured
  against the Restorer's.

The transcoder and VapourSynth parts run the existing benchmark scripts as subprocesses (their
public entry points), so this script does not depend on their internals.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from err_stream import ERR, Restorer  # noqa: E402
from err_stream.engine import restorer as restorer_module  # noqa: E402
from err_stream.engine.fast import FastForward  # noqa: E402
from err_stream.ops import forced_backend  # noqa: E402

ENCODERS = {
    "libx264": ["ultrafast", "superfast", "veryfast", "faster", "medium"],
    "libx265": ["ultrafast", "superfast", "veryfast", "fast"],
    "libsvtav1": ["12", "10", "8"],
}


# ---------------------------------------------------------------- helpers


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> int:
    if device.type != "cuda":
        return 0
    sync(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.memory_allocated(device)


def peak_since(device: torch.device, base: int) -> int | None:
    if device.type != "cuda":
        return None
    sync(device)
    return torch.cuda.max_memory_allocated(device) - base


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.float().clamp(0, 1) - b.float().clamp(0, 1)) ** 2).mean().item()
    return 10 * math.log10(1 / max(mse, 1e-20))


def timed(fn: Callable[[], torch.Tensor], device: torch.device, repeat: int) -> tuple[float, torch.Tensor]:
    """Median seconds of ``repeat`` calls after one warm-up call."""
    y = fn()
    sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        y = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), y


def section(results: dict, name: str, fn: Callable[[], object]) -> None:
    t0 = time.perf_counter()
    print(f"\n## {name}", flush=True)
    try:
        results[name] = fn()
    except Exception as exc:  # one broken part must not lose the others' figures
        results[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]}
        print(f"   error: {type(exc).__name__}: {exc}", flush=True)
    results.setdefault("section_seconds", {})[name] = round(time.perf_counter() - t0, 1)


def make_model(device: torch.device) -> ERR:
    torch.manual_seed(0)  # speed does not depend on the weights
    return ERR().eval().to(device)


def frame(width: int, height: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    base = torch.stack([0.1 + 0.3 * xx, 0.15 + 0.2 * yy, 0.1 + 0.1 * torch.sin(20 * xx * yy)])
    return (base + 0.02 * torch.randn(3, height, width, generator=gen)).clamp(0, 1)[None].to(device)


# ---------------------------------------------------------------- model-only steps


def model_steps(args, device: torch.device) -> dict:
    w, h = args.model_size
    x = frame(w, h, device)
    model = make_model(device)
    half = torch.float16 if device.type == "cuda" else torch.bfloat16  # CPUs have no fast fp16 conv
    half_name = str(half).removeprefix("torch.")
    rows: list[dict] = []
    ref = None
    cudnn_before = torch.backends.cudnn.benchmark

    def eager(m: ERR, dtype: torch.dtype, channels_last: bool) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            xin = x.contiguous(memory_format=torch.channels_last) if channels_last else x
            with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                return m(xin).float()

        return run

    def fast(dtype: torch.dtype, compile: bool, graphs: bool) -> Callable[[], torch.Tensor]:
        ff = FastForward(model, device, dtype, compile=compile, cuda_graphs=graphs,
                         compile_backend=args.compile_backend)
        return lambda: ff(x)

    model_cl = None

    def steps():
        nonlocal model_cl
        torch.backends.cudnn.benchmark = False
        yield "eager fp32 (baseline)", eager(model, torch.float32, False)
        yield f"today's {half_name} (autocast, NCHW)", eager(model, half, False)
        import copy

        model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
        yield "+ channels_last", eager(model_cl, half, True)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            yield "+ cudnn.benchmark", eager(model_cl, half, True)
        torch.backends.cudnn.benchmark = device.type == "cuda"
        yield "+ half weights, float32 islands", fast(half, False, False)
        # One compiled FastForward for the remaining steps (and the profile section): each new
        # one would trace the model again.
        ff = args.shared_fast = FastForward(model, device, half, compile=True, cuda_graphs=False,
                                            compile_backend=args.compile_backend)
        yield f"+ torch.compile ({args.compile_backend})", lambda: ff(x)
        if device.type == "cuda":
            ff.cuda_graphs = True
            yield "+ CUDA graphs", lambda: ff(x)
            # The chunk-parallel Triton scan (one program per row and chunk) instead of the
            # row-serial one: a new capture, the same compiled graph (the backend is chosen
            # inside the registered op).
            ff.release()

            def chunked() -> torch.Tensor:
                with forced_backend("selective_scan", "triton_chunked"):
                    return ff(x)

            yield "+ chunk-parallel Triton scan", chunked
            ff.release()
            ff.cuda_graphs = False
        else:
            yield "+ chunk-parallel Triton scan", None

    print(f"   {w}x{h}, {device_name(device)}")
    print(f"   {'step':<40}{'ms':>9}{'fps':>8}{'x base':>8}{'peak MiB':>10}{'PSNR dB':>9}{'first s':>9}")
    try:
        for name, fn in steps():
            if fn is None:
                rows.append({"step": name, "status": "skipped: CUDA only"})
                print(f"   {name:<40}{'CUDA only':>9}")
                continue
            base = reset_peak(device)
            t0 = time.perf_counter()
            fn()  # first call: compilation, autotuning, cuDNN benchmarking, graph capture
            sync(device)
            first = time.perf_counter() - t0
            seconds, y = timed(fn, device, args.repeat)
            peak = peak_since(device, base)
            if ref is None:
                ref = y.float().clone()
            row = {
                "step": name, "ms": seconds * 1000, "fps": 1 / seconds, "first_call_s": first,
                "peak_bytes": peak, "psnr_vs_fp32": psnr(y, ref) if rows else float("inf"),
                "max_abs_vs_fp32": (y.float() - ref).abs().max().item(),
            }
            row["speedup_vs_baseline"] = rows[0]["ms"] / row["ms"] if rows else 1.0
            rows.append(row)
            print(f"   {name:<40}{row['ms']:>9.2f}{row['fps']:>8.2f}{row['speedup_vs_baseline']:>7.2f}x"
                  f"{(peak or 0) / 2**20:>10.0f}{row['psnr_vs_fp32']:>9.1f}{first:>9.1f}", flush=True)
            del y
    finally:
        torch.backends.cudnn.benchmark = cudnn_before
    return {"size": [w, h], "half_dtype": half_name, "rows": rows,
            "target": "H100 3840x2160: >= 60 fps and >= 10x eager fp32"}


# ---------------------------------------------------------------- profiler


LAYOUT_NAMES = ("nchwtonhwc", "nhwctonchw", "nchw2nhwc", "nhwc2nchw", "transpose", "permute")


def kernel_counts(fn: Callable[[], torch.Tensor], device: torch.device) -> dict:
    from torch.profiler import ProfilerActivity, profile

    fn()
    sync(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        fn()
        sync(device)
    events = prof.events()
    if device.type == "cuda":
        kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
        kind = "CUDA kernels"
    else:  # CPU: count the outermost aten ops that ran (no kernel launches to count); in
        # compiled code they sit under the compiled region's event, not at the top.
        def outermost(e) -> bool:
            return e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")

        kernels = [e for e in events if e.name.startswith("aten::") and outermost(e)]
        kind = "outermost aten ops"
    names = [e.name.lower() for e in kernels]
    return {
        "counted": kind,
        "per_frame": len(kernels),
        "layout_conversions": sum(any(k in n for k in LAYOUT_NAMES) for n in names),
        "copies": sum("copy" in n for n in names),
    }


def profile_steps(args, device: torch.device) -> dict:
    w, h = args.profile_size
    x = frame(w, h, device)
    model = make_model(device)
    half = torch.float16 if device.type == "cuda" else torch.bfloat16
    out = {}

    def eager(dtype):
        def run():
            with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                return model(x)

        return run

    # The model section's compiled FastForward when it ran (no second trace); the smoke run
    # otherwise profiles the eager fast path.
    ff = getattr(args, "shared_fast", None) or FastForward(
        model, device, half, compile=not args.smoke, cuda_graphs=False, compile_backend=args.compile_backend)
    for name, fn in (("eager fp32", eager(torch.float32)), ("today's half (autocast)", eager(half)),
                     ("fast path" + (" (compiled)" if ff.compile else ""), lambda: ff(x))):
        out[name] = kernel_counts(fn, device)
        print(f"   {name:<28} {out[name]}", flush=True)
    if device.type == "cuda":
        # With CUDA graphs the whole frame is one graph launch; its kernels are those of the compiled path.
        out["fast path (CUDA graphs)"] = {"graph_launches_per_frame": 1}
    return {"size": [w, h], **out}


# ---------------------------------------------------------------- decode / encode


def make_clip(path: Path, width: int, height: int, frames: int) -> Path:
    """A moving pattern, H.264 yuv420p, BT.709 limited range."""
    import av

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(xx / 23.0) * np.cos(yy / 17.0)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.time_base = Fraction(1, 30)
        s.codec_context.options = {"preset": "ultrafast", "crf": "20"}
        for i in range(frames):
            y = np.clip(16 + 219 * np.roll(base, 7 * i, axis=1), 16, 235).astype(np.uint8)
            f = av.VideoFrame.from_ndarray(y, format="gray").reformat(format="yuv420p")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def decode_fps(clip: Path, hwaccel: bool) -> float:
    import av

    kwargs = {}
    if hwaccel:
        from av.codec.hwaccel import HWAccel

        kwargs["hwaccel"] = HWAccel(device_type="cuda", allow_software_fallback=False)
    with av.open(str(clip), **kwargs) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        t0 = time.perf_counter()
        n = sum(1 for _ in c.decode(stream))
        return n / (time.perf_counter() - t0)


def decode_section(args, clip: Path) -> dict:
    out = {"size": list(args.codec_size), "cpu_fps": decode_fps(clip, False)}
    print(f"   CPU decode: {out['cpu_fps']:.1f} fps", flush=True)
    if args.device.type == "cuda":
        try:
            out["nvdec_fps"] = decode_fps(clip, True)
            print(f"   NVDEC decode: {out['nvdec_fps']:.1f} fps", flush=True)
        except Exception as exc:
            out["nvdec"] = f"unavailable: {type(exc).__name__}: {exc}"
            print(f"   NVDEC: {out['nvdec']}", flush=True)
    else:
        out["nvdec"] = "skipped: no CUDA device"
    return out


def encode_section(args) -> dict:
    import av

    w, h = args.codec_size
    frames = [av.VideoFrame.from_ndarray(
        np.ascontiguousarray(np.roll(np.tile(np.arange(w, dtype=np.uint8), (h, 1)), 5 * i, axis=1)), format="gray"
    ).reformat(format="yuv420p") for i in range(args.encode_frames)]
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="gpu_4k60_enc_"))
    for codec, presets in ENCODERS.items():
        for preset in presets[: args.presets_per_encoder]:
            try:
                with av.open(str(tmp / f"{codec}.mkv"), "w") as c:
                    s = c.add_stream(codec, rate=60)
                    s.width, s.height, s.pix_fmt = w, h, "yuv420p"
                    s.codec_context.options = {"preset": preset}
                    t0 = time.perf_counter()
                    for i, f in enumerate(frames):
                        f.pts = i
                        for p in s.encode(f):
                            c.mux(p)
                    for p in s.encode(None):
                        c.mux(p)
                    fps = len(frames) / (time.perf_counter() - t0)
                rows.append({"encoder": codec, "preset": preset, "fps": fps, "realtime_60": fps >= 60})
                print(f"   {codec:<10} {preset:<10} {fps:8.1f} fps", flush=True)
            except Exception as exc:
                rows.append({"encoder": codec, "preset": preset, "error": f"{type(exc).__name__}: {exc}"})
                print(f"   {codec:<10} {preset:<10} error: {exc}", flush=True)
    return {"size": [w, h], "frames": len(frames), "cpu_threads": os.cpu_count(), "rows": rows}


# ---------------------------------------------------------------- subprocess benchmarks


def run_script(argv: list[str], timeout: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    tail = (proc.stdout + proc.stderr)[-3000:]
    print("   " + "\n   ".join(proc.stdout.strip().splitlines()[-8:]), flush=True)
    return {"argv": argv, "returncode": proc.returncode, "seconds": time.perf_counter() - t0, "output_tail": tail}


def pipeline_section(args) -> dict:
    out = {}
    for w, h in args.pipeline_sizes:
        js = Path(tempfile.mkdtemp(prefix="gpu_4k60_pipe_")) / "pipeline.json"
        argv = ["benchmarks/bench_pipeline.py", "--size", f"{w}x{h}", "--frames", str(args.pipeline_frames),
                "--device", args.device.type, "--json", str(js)]
        r = run_script(argv, args.sub_timeout)
        if js.exists():
            r["result"] = json.loads(js.read_text())
        out[f"{w}x{h}"] = r
    return out


def vs_section(args) -> dict:
    out = {}
    for w, h in args.vs_sizes:
        argv = ["benchmarks/bench_vs.py", "--device", args.device.type, "--size", f"{w}x{h}", "--frames", str(args.vs_frames)]
        out[f"{w}x{h}"] = run_script(argv, args.sub_timeout)
    return out


# ---------------------------------------------------------------- memory


def memory_section(args, device: torch.device) -> dict:
    if device.type != "cuda":
        # Exercise the tiled path at a small size so the code runs; the figures are CUDA's.
        model = make_model(device)
        r = Restorer(model, device=device, precision="fp32", tiling=(128, 128))
        y = r.restore(frame(384, 256, device))
        return {"skipped": "memory figures need CUDA", "tiled_smoke_finite": bool(torch.isfinite(y).all())}
    model = make_model(device)
    out: dict = {"restorer_constants": {
        "shell_bytes_per_pixel": restorer_module._SHELL_BYTES_PER_PIXEL,
        "frame_bytes_per_pixel": restorer_module._FRAME_BYTES_PER_PIXEL,
    }}
    big = 1 << 40  # a budget that never asks for tiles

    def peak(r: Restorer, x: torch.Tensor) -> int:
        r.restore(x)  # first call: cuDNN benchmarking, allocator warm-up
        base = reset_peak(device)
        r.restore(x)
        return peak_since(device, base)

    x4k = frame(3840, 2160, device)
    out["4k_fp16_whole_peak_bytes"] = peak(Restorer(model, device=device, precision="fp16", tiling="off", compile=False), x4k)
    out["4k_fp16_whole_peak_bytes_today"] = peak(Restorer(model, device=device, precision="fp16", tiling="off", fast=False), x4k)
    x8k = frame(7680, 4320, device)
    r8 = Restorer(model, device=device, precision="fp16", tiling="auto", memory_budget=3 * 2**30, compile=False)
    out["8k_tiled_plan"] = r8.plan(4320, 7680).describe()
    out["8k_tiled_peak_bytes"] = peak(r8, x8k)
    del x8k
    print(f"   4K fp16 whole frame: {out['4k_fp16_whole_peak_bytes'] / 2**30:.2f} GiB (fast), "
          f"{out['4k_fp16_whole_peak_bytes_today'] / 2**30:.2f} GiB (today); 8K {out['8k_tiled_plan']}: "
          f"{out['8k_tiled_peak_bytes'] / 2**30:.2f} GiB", flush=True)

    # Calibration: whole-frame bytes per pixel at two sizes, and the tiled shell's per tile pixel.
    cal = {}
    for prec in ("fp32", "fp16"):
        for w, h in ((1920, 1080), (3840, 2160)):
            r = Restorer(model, device=device, precision=prec, tiling="off", compile=False)
            ph, pw = -(-h // 128) * 128, -(-w // 128) * 128
            cal[f"whole_{prec}_{w}x{h}_bytes_per_pixel"] = peak(r, frame(w, h, device)) / (ph * pw)
        scale = 0.5 if prec != "fp32" else 1.0
        cal[f"whole_{prec}_restorer_assumes"] = (restorer_module._SHELL_BYTES_PER_PIXEL + restorer_module._FRAME_BYTES_PER_PIXEL) * scale
        # Tiled 4K at two tile sizes: peak = frame_bpp * P + shell_bpp * (tile + 2 halo)^2.
        pts = []
        for tile in (512, 1024):
            r = Restorer(model, device=device, precision=prec, tiling=(tile, tile), compile=False)
            pts.append(((tile + 2 * ERR.shell_halo) ** 2, peak(r, x4k)))
        (a1, p1), (a2, p2) = pts
        shell = (p2 - p1) / (a2 - a1)
        framebpp = (p1 - shell * a1) / (2176 * 3840)
        cal[f"tiled_{prec}_shell_bytes_per_tile_pixel"] = shell
        cal[f"tiled_{prec}_frame_bytes_per_pixel"] = framebpp
        cal[f"tiled_{prec}_restorer_assumes"] = {"shell": restorer_module._SHELL_BYTES_PER_PIXEL * scale,
                                                  "frame": restorer_module._FRAME_BYTES_PER_PIXEL * scale}
    out["calibration"] = cal
    for k, v in cal.items():
        print(f"   {k}: {v if isinstance(v, dict) else round(v, 1)}", flush=True)

    # OOM retry: a memory cap below the 4K whole-frame peak and a budget that asks for the whole frame.
    total = torch.cuda.get_device_properties(device).total_memory
    cap = 2.5 * 2**30
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(min(1.0, (torch.cuda.memory_allocated(device) + cap) / total), device)
    try:
        r = Restorer(model, device=device, precision="fp16", tiling="auto", memory_budget=big, compile=False)
        whole_plan = r.plan(2160, 3840).describe()
        y = r.restore(x4k)
        out["oom_retry"] = {"cap_bytes": cap, "first_plan": whole_plan, "plan_after": r.plan(2160, 3840).describe(),
                            "finite": bool(torch.isfinite(y).all())}
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
    print(f"   OOM retry: {out['oom_retry']}", flush=True)
    return out


# ---------------------------------------------------------------- main


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def parse_size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="everything on the CPU at small sizes (the test suite runs this)")
    p.add_argument("--device", default=None, help="default: cuda if available (cpu with --smoke)")
    p.add_argument("--json", default="gpu_4k60.json", help="where to write the results (default: gpu_4k60.json)")
    p.add_argument("--only", nargs="+", choices=["model", "profile", "decode", "encode", "pipeline", "vs", "memory"],
                   help="run only these sections")
    p.add_argument("--repeat", type=int, default=None, help="timed calls per model step (median)")
    return p


def configure(args: argparse.Namespace) -> None:
    smoke = args.smoke
    args.device = torch.device(args.device or ("cpu" if smoke or not torch.cuda.is_available() else "cuda"))
    args.repeat = args.repeat or (1 if smoke else 5)
    args.model_size = (128, 128) if smoke else (3840, 2160)
    args.profile_size = (128, 128) if smoke else (3840, 2160)
    args.codec_size = (256, 144) if smoke else (3840, 2160)
    args.encode_frames = 3 if smoke else 16
    args.presets_per_encoder = 1 if smoke else 99
    args.decode_frames = 6 if smoke else 60
    args.pipeline_sizes = [(160, 96)] if smoke else [(3840, 2160)]
    args.pipeline_frames = 3 if smoke else 48
    args.vs_sizes = [(128, 96)] if smoke else [(1920, 1080), (3840, 2160)]
    args.vs_frames = 2 if smoke else 24
    args.sub_timeout = 300
    # A CPU compile of ERR with inductor takes minutes: the smoke run traces the graph through
    # AOT autograd (the same capture, no code generation) instead.
    args.compile_backend = "aot_eager" if smoke else "inductor"


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    configure(args)
    device = args.device
    wanted = set(args.only or ["model", "profile", "decode", "encode", "pipeline", "vs", "memory"])
    results: dict = {
        "device": device_name(device), "torch": torch.__version__, "smoke": args.smoke,
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "cpu_count": os.cpu_count(),
    }
    print(f"# gpu_4k60: {results['device']}, torch {torch.__version__}{', SMOKE (CPU, small sizes)' if args.smoke else ''}")
    t_start = time.perf_counter()
    if "model" in wanted:
        section(results, "model", lambda: model_steps(args, device))
    if "profile" in wanted:
        section(results, "profile", lambda: profile_steps(args, device))
    clip = None
    if wanted & {"decode"}:
        tmp = Path(tempfile.mkdtemp(prefix="gpu_4k60_"))
        clip = make_clip(tmp / "clip.mp4", *args.codec_size, args.decode_frames)
        section(results, "decode", lambda: decode_section(args, clip))
    if "encode" in wanted:
        section(results, "encode", lambda: encode_section(args))
    if "pipeline" in wanted:
        section(results, "pipeline", lambda: pipeline_section(args))
    if "vs" in wanted:
        section(results, "vs", lambda: vs_section(args))
    if "memory" in wanted:
        section(results, "memory", lambda: memory_section(args, device))
    results["total_seconds"] = round(time.perf_counter() - t_start, 1)
    Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    print(f"\n# {results['total_seconds']} s in all; results in {args.json}")
    return results


if __name__ == "__main__":
    main()
