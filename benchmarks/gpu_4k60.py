"""4K at 60 fps on one GPU: every figure of issue 12 in one run, printed and written as JSON.

    python benchmarks/gpu_4k60.py --json $OUT/gpu_4k60.json --only model profile memory --budget 420
    python benchmarks/gpu_4k60.py --rehearse --json /tmp/x.json      # the whole script on the CPU

benchmarks/README.md has the prepared device commands (what fits in a 15-minute lease) and
what each returns.

Sections, in this order (each in its own guard: an error is recorded in the JSON and the run
goes on; each model step is guarded too, and the JSON is rewritten after every step):

* ``model``: model-only ms / fps / peak memory / PSNR (against eager fp32) at 3840x2160
  (padded to the model's multiple, 3840x2176), for eager fp32 (the baseline), today's fp16
  path (autocast, NCHW), then each step of the fast path cumulatively: channels_last,
  cudnn.benchmark, half weights with float32 islands, torch.compile, CUDA graphs, the
  chunk-parallel Triton scan. Speed-ups are against the baseline measured in the same run.
* ``profile``: kernels per frame, and layout-conversion / copy kernels, from torch.profiler,
  for the baseline, today's fp16 path and the compiled fast path; graph launches per frame
  with CUDA graphs, measured (the FastForward's replay count, and cudaGraphLaunch calls).
* ``memory``: 4K fp16 whole-frame peak, 8K tiled peak, the per-pixel memory constants of
  ``model/schedule.py`` measured, and the OOM retry under ``set_per_process_memory_fraction``.
* ``decode``: decode fps of a 4K H.264 clip made here, CPU (PyAV) against NVDEC (PyAV's HWAccel).
* ``encode``: encode fps at 4K for libx264 / libx265 / libsvtav1 presets (the H100 has no NVENC).
* ``pipeline``: end-to-end transcoder fps and efficiency (benchmarks/bench_pipeline.py).
* ``vs``: the VapourSynth filter against model-only (benchmarks/bench_vs.py).

``--rehearse`` runs all of it on the CPU through the same code at sizes that are not
multiples of the model's (200x136 stands for 3840x2160, 400x272 for 7680x4320); what only
CUDA has (cuDNN's benchmark, the Triton scan, peak memory, the OOM retry) is left out and
recorded as such, and CUDA graphs are rehearsed by FastForward's static replay.

The device's Python has torch, Triton, numba and CuPy but no PyAV, platformdirs or
VapourSynth: nothing on the measured path of model/profile/memory needs them; ``--wheels DIR``
installs carried wheels (PyAV) first, for decode, encode and pipeline.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

# Before torch loads libgomp: OpenMP threads that spin while waiting starve the rest of a busy
# CPU (the rehearsal shares the machine with the encoder's and decoder's threads).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from err_stream import ERR, Restorer  # noqa: E402
from err_stream.runtime import configure  # noqa: E402
from err_stream.engine.fast import FastForward  # noqa: E402
from err_stream.engine.padding import pad_to_multiple, padded_size  # noqa: E402
from err_stream.model.schedule import err_schedule  # noqa: E402
from err_stream.ops import forced_backend  # noqa: E402

SECTIONS = ("model", "profile", "memory", "decode", "encode", "pipeline", "vs")
ENCODERS = {
    "libx264": ["ultrafast", "superfast", "veryfast", "faster", "medium"],
    "libx265": ["ultrafast", "superfast", "veryfast", "fast"],
    "libsvtav1": ["12", "10", "8"],
}
CUDA_ONLY = "skipped: CUDA only"


# ---------------------------------------------------------------- the report and its guards


class BudgetSpent(Exception):
    """The run's time budget (--budget) ran out in the middle of something."""


class Report:
    """The results, rewritten to ``path`` (atomically) after every step, so that a run cut
    short (an error, the budget, the device's time limit) still returns what it measured."""

    def __init__(self, path: Path, meta: dict) -> None:
        self.path = path
        self.data = dict(meta)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.save()

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        os.replace(tmp, self.path)


def error_entry(exc: BaseException) -> dict:
    return {"error": f"{type(exc).__name__}: {exc}"[:2000], "traceback": traceback.format_exc()[-3000:]}


@contextlib.contextmanager
def deadline(at: float | None) -> Iterator[None]:
    """Raise BudgetSpent in the main thread at time ``at`` (perf_counter), wherever it is."""
    if at is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    left = at - time.perf_counter()
    if left <= 0:
        raise BudgetSpent("the time budget was spent before this started")

    def ring(signum, frame):
        raise BudgetSpent("the time budget (--budget or --cap) ran out here")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, left)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_section(report: Report, name: str, fn: Callable[[dict], None], args) -> dict:
    """Run one section in its guard: ``fn`` fills the section's dict as it goes (rows are
    kept whatever happens after them); errors and the budget are recorded, never raised."""
    sec: dict = {"status": "running"}
    report.data[name] = sec
    report.save()
    print(f"\n## {name}", flush=True)
    t0 = time.perf_counter()
    ends = [t for t in (args.deadline, t0 + args.caps[name] if name in args.caps else None) if t is not None]
    args.section_deadline = min(ends) if ends else None
    try:
        if args.section_deadline is not None and t0 >= args.section_deadline:
            raise BudgetSpent("the time budget was spent before this section")
        with deadline(args.section_deadline):
            fn(sec)
        if sec["status"] == "running":  # a section may say it was skipped
            sec["status"] = "ok"
        failed = [r["step"] for r in sec.get("rows", []) if r.get("status") == "error"]
        if failed:
            sec["failed_steps"] = failed
    except BudgetSpent as exc:
        sec["status"] = f"stopped: {exc}"
        print(f"   stopped: {exc}", flush=True)
    except Exception as exc:  # one broken part must not lose the others' figures
        sec["status"] = "error"
        sec.update(error_entry(exc))
        print(f"   error: {type(exc).__name__}: {exc}", flush=True)
    sec["seconds"] = round(time.perf_counter() - t0, 1)
    report.save()
    return sec


def run_step(rows: list[dict], report: Report, name: str, body: Callable[[], dict | None]) -> dict:
    """One row of a section, in its own guard: ``body`` returns the row's figures (None: the
    step does not apply here). A failing step leaves a row saying why and the next one runs;
    only the time budget ends the section (it is re-raised)."""
    row: dict = {"step": name, "status": "running"}  # what a run killed from outside was doing
    rows.append(row)
    report.save()
    try:
        figures = body()
        row["status"] = "ok" if figures is not None else CUDA_ONLY
        row.update(figures or {})
    except BudgetSpent:
        row["status"] = "stopped: the time budget ran out"
        report.save()
        raise
    except Exception as exc:
        row["status"] = "error"
        row.update(error_entry(exc))
        print(f"   {name}: error: {type(exc).__name__}: {exc}", flush=True)
    report.save()
    return row


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
    """Median seconds of ``repeat`` calls (the caller has made the first call)."""
    times, y = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        y = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), y


def make_model(device: torch.device) -> ERR:
    torch.manual_seed(0)  # speed does not depend on the weights
    return ERR().eval().to(device)


def frame(width: int, height: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    base = torch.stack([0.1 + 0.3 * xx, 0.15 + 0.2 * yy, 0.1 + 0.1 * torch.sin(20 * xx * yy)])
    return (base + 0.02 * torch.randn(3, height, width, generator=gen)).clamp(0, 1)[None].to(device)


def padded_frame(width: int, height: int, device: torch.device, multiple: int) -> torch.Tensor:
    """A frame of the stream's size, padded as the Restorer pads it (the model-only paths
    take multiples of ``multiple`` only). Made in inference mode as the Restorer's are: a
    compiled graph guards on it, and a normal tensor in one step and an inference tensor in
    the next (the graph capture's static input) would compile the model twice."""
    with torch.inference_mode():
        return pad_to_multiple(frame(width, height, device), multiple)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# ---------------------------------------------------------------- model-only steps


@dataclass
class ModelRun:
    """What the model steps share (one model, one input, the fp32 reference)."""

    args: argparse.Namespace
    device: torch.device
    x: torch.Tensor
    model: ERR
    half: torch.dtype
    size: tuple[int, int]
    ref: torch.Tensor | None = None
    base_ms: float | None = None

    def measure(self, fn: Callable[[], torch.Tensor]) -> dict:
        base = reset_peak(self.device)
        t0 = time.perf_counter()
        fn()  # first call: compilation, autotuning, cuDNN benchmarking, graph capture
        sync(self.device)
        first = time.perf_counter() - t0
        seconds, y = timed(fn, self.device, self.args.repeat)
        peak = peak_since(self.device, base)
        w, h = self.size
        y = y[..., :h, :w].float()  # the stream's pixels (the padding is cropped off)
        if self.ref is None:
            self.ref, self.base_ms = y.clone(), seconds * 1000
        row = {
            "ms": seconds * 1000, "fps": 1 / seconds, "first_call_s": first, "peak_bytes": peak,
            "psnr_vs_fp32": psnr(y, self.ref), "max_abs_vs_fp32": (y - self.ref).abs().max().item(),
            "speedup_vs_baseline": self.base_ms / (seconds * 1000),
        }
        return row


def model_section(args, sec: dict, report: Report) -> None:
    device = args.device
    w, h = args.model_size
    model = make_model(device)
    multiple = err_schedule(model).multiple
    x = padded_frame(w, h, device, multiple)
    half = torch.float16 if device.type == "cuda" else torch.bfloat16  # CPUs have no fast fp16 conv
    half_name = str(half).removeprefix("torch.")
    run = ModelRun(args, device, x, model, half, (w, h))
    sec.update({"size": [w, h], "padded": [x.shape[-1], x.shape[-2]], "half_dtype": half_name, "device": device_name(device),
                "target": "H100 3840x2160: >= 60 fps and >= 10x eager fp32", "rows": []})
    rows = sec["rows"]
    cuda = device.type == "cuda"
    cudnn_before = torch.backends.cudnn.benchmark
    shared: dict = {}

    def eager(m: ERR, dtype: torch.dtype, channels_last: bool) -> Callable[[], torch.Tensor]:
        def call() -> torch.Tensor:
            xin = x.contiguous(memory_format=torch.channels_last) if channels_last else x
            with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                return m(xin).float()

        return call

    def channels_last_model() -> ERR:
        if "model_cl" not in shared:
            import copy

            shared["model_cl"] = copy.deepcopy(model).to(memory_format=torch.channels_last)
        return shared["model_cl"]

    def compiled() -> FastForward:
        # One compiled FastForward for the remaining steps and the profile section: each new
        # one would trace the model again.
        if "ff" not in shared:
            shared["ff"] = args.shared_fast = FastForward(
                model, device, half, compile=True, cuda_graphs=False, compile_backend=args.compile_backend,
                rehearse_graphs=not cuda)  # on the CPU the graph step is rehearsed
        return shared["ff"]

    def step_baseline():
        torch.backends.cudnn.benchmark = False
        return run.measure(eager(model, torch.float32, False))

    def step_autocast():
        torch.backends.cudnn.benchmark = False
        return run.measure(eager(model, half, False))

    def step_channels_last():
        torch.backends.cudnn.benchmark = False
        return run.measure(eager(channels_last_model(), half, True))

    def step_cudnn_benchmark():
        if not cuda:
            return None
        torch.backends.cudnn.benchmark = True
        return run.measure(eager(channels_last_model(), half, True))

    def step_half_weights():
        torch.backends.cudnn.benchmark = cuda
        ff = FastForward(model, device, half, compile=False, cuda_graphs=False)
        return run.measure(lambda: ff(x))

    def step_compile():
        torch.backends.cudnn.benchmark = cuda
        ff = compiled()
        ff.cuda_graphs = False
        return run.measure(lambda: ff(x))

    def step_graphs():
        # On the CPU the graph path is rehearsed (static buffers, replays counted).
        ff = compiled()
        ff.cuda_graphs = True
        try:
            before = ff.graph_replays
            row = run.measure(lambda: ff(x))
            calls = 1 + args.repeat
            row["graph_replays_per_frame"] = (ff.graph_replays - before) / (calls * x.shape[0])
            if not cuda:
                row["status"] = "rehearsed: static replay in place of a CUDA graph"
            return row
        finally:
            ff.release()
            ff.cuda_graphs = False

    def step_triton_chunked():
        if not cuda:
            return None
        # The chunk-parallel Triton scan (one program per row and chunk) instead of the
        # row-serial one: a new capture, the same compiled graph (the backend is chosen
        # inside the registered op).
        ff = compiled()
        ff.cuda_graphs = True

        def call() -> torch.Tensor:
            with forced_backend("selective_scan", "triton_chunked"):
                return ff(x)

        try:
            return run.measure(call)
        finally:
            ff.release()
            ff.cuda_graphs = False

    steps = [
        ("eager fp32 (baseline)", step_baseline),
        (f"today's {half_name} (autocast, NCHW)", step_autocast),
        ("+ channels_last", step_channels_last),
        ("+ cudnn.benchmark", step_cudnn_benchmark),
        ("+ half weights, float32 islands", step_half_weights),
        (f"+ torch.compile ({args.compile_backend})", step_compile),
        ("+ CUDA graphs", step_graphs),
        ("+ chunk-parallel Triton scan", step_triton_chunked),
    ]
    print(f"   {w}x{h} (padded {x.shape[-1]}x{x.shape[-2]}), {device_name(device)}")
    print(f"   {'step':<40}{'ms':>9}{'fps':>8}{'x base':>8}{'peak MiB':>10}{'PSNR dB':>9}{'first s':>9}")
    try:
        for name, body in steps:
            row = run_step(rows, report, name, body)
            if "ms" in row:
                print(f"   {name:<40}{row['ms']:>9.2f}{row['fps']:>8.2f}{row['speedup_vs_baseline']:>7.2f}x"
                      f"{(row['peak_bytes'] or 0) / 2**20:>10.0f}{row['psnr_vs_fp32']:>9.1f}{row['first_call_s']:>9.1f}",
                      flush=True)
            else:
                print(f"   {name:<40}{row['status']}", flush=True)
    finally:
        torch.backends.cudnn.benchmark = cudnn_before


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
        "graph_launch_calls": sum("cudagraphlaunch" in e.name.lower() for e in events),
    }


def profile_section(args, sec: dict, report: Report) -> None:
    device = args.device
    w, h = args.profile_size
    model = make_model(device)
    x = padded_frame(w, h, device, err_schedule(model).multiple)
    half = torch.float16 if device.type == "cuda" else torch.bfloat16
    sec.update({"size": [w, h], "padded": [x.shape[-1], x.shape[-2]], "rows": []})
    rows = sec["rows"]

    def eager(dtype):
        def call():
            with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                return model(x)

        return call

    def fast() -> FastForward:
        # The model section's compiled FastForward when it ran (no second trace); else a new
        # one (eager in the rehearsal: a CPU trace of ERR takes a minute).
        ff = getattr(args, "shared_fast", None)
        if ff is None:
            ff = args.shared_fast = FastForward(model, device, half, compile=not args.rehearse, cuda_graphs=False,
                                                compile_backend=args.compile_backend,
                                                rehearse_graphs=device.type != "cuda")
        return ff

    def counted(fn):
        def body():
            out = kernel_counts(fn, device)
            print(f"   {out}", flush=True)
            return out

        return body

    def graph_launches():
        ff = fast()
        ff.cuda_graphs = True
        try:
            ff(x)  # capture
            sync(device)
            frames = 3
            before = ff.graph_replays
            for _ in range(frames):
                ff(x)
            sync(device)
            out = {"graph_launches_per_frame": (ff.graph_replays - before) / (frames * x.shape[0]),
                   "measured_by": "FastForward.graph_replays"}
            if device.type == "cuda":  # and the launches CUDA saw
                prof = kernel_counts(lambda: ff(x), device)
                out["cuda_graph_launch_calls_per_frame"] = prof["graph_launch_calls"] / x.shape[0]
                out["cuda_events_seen_by_profiler_per_frame"] = prof["per_frame"]
            else:
                out["status"] = "rehearsed: static replay in place of a CUDA graph"
            print(f"   {out}", flush=True)
            return out
        finally:
            ff.release()
            ff.cuda_graphs = False

    for name, body in (("eager fp32", counted(eager(torch.float32))), ("today's half (autocast)", counted(eager(half))),
                       ("fast path", lambda: {**counted(lambda: fast()(x))(), "fast": fast().describe()}),
                       ("fast path, graphs", graph_launches)):
        run_step(rows, report, name, body)


# ---------------------------------------------------------------- memory


def memory_section(args, sec: dict, report: Report) -> None:
    """Peaks on CUDA; in the rehearsal the same restores run (the code paths) and the peak
    figures are left out (the CPU has no peak counter)."""
    device = args.device
    cuda = device.type == "cuda"
    model = make_model(device)
    sched = err_schedule(model)
    half = "fp16" if cuda else "bf16"
    scale = 0.5  # the Restorer's half-precision scale of the per-pixel constants
    sec.update({"schedule_constants": {"shell_bytes_per_pixel": sched.shell_bytes_per_pixel,
                                       "frame_bytes_per_pixel": sched.frame_bytes_per_pixel,
                                       "halo": sched.halo, "multiple": sched.multiple}, "rows": []})
    rows = sec["rows"]
    (w4, h4), (w8, h8) = args.memory_4k, args.memory_8k

    def peak(r: Restorer, x: torch.Tensor) -> int | None:
        r.restore(x)  # first call: cuDNN benchmarking, allocator warm-up
        if not cuda:
            return None
        base = reset_peak(device)
        r.restore(x)
        return peak_since(device, base)

    x4k = frame(w4, h4, device)
    p4h, p4w = padded_size(h4, w4, sched.multiple)

    def whole(fast: bool):
        def body():
            r = Restorer(model, device=device, precision=half, tiling="off", compile=False, fast=fast)
            return {"size": [w4, h4], "precision": half, "peak_bytes": peak(r, x4k)}

        return body

    def tiled_8k():
        x8k = frame(w8, h8, device)
        r = Restorer(model, device=device, precision=half, tiling="auto", memory_budget=args.tiled_budget, compile=False)
        plan = r.plan(h8, w8).describe()
        y = r.restore(x8k)
        return {"size": [w8, h8], "budget_bytes": args.tiled_budget, "plan": plan, "peak_bytes": peak(r, x8k),
                "finite": bool(torch.isfinite(y).all())}

    def calibration(prec: str):
        """Whole-frame bytes per padded pixel at two sizes, and the tiled shell's bytes per
        tile pixel from two tile sizes (peak = frame * P + shell * (tile + 2 halo)^2),
        against what schedule.py assumes."""
        def body():
            s = scale if prec != "fp32" else 1.0
            out: dict = {"precision": prec, "assumed_whole_bytes_per_pixel": (sched.shell_bytes_per_pixel + sched.frame_bytes_per_pixel) * s,
                         "assumed_shell": sched.shell_bytes_per_pixel * s, "assumed_frame": sched.frame_bytes_per_pixel * s}
            for cw, ch in args.calibration_sizes:
                r = Restorer(model, device=device, precision=prec, tiling="off", compile=False)
                ph, pw = padded_size(ch, cw, sched.multiple)
                p = peak(r, frame(cw, ch, device))
                out[f"whole_{cw}x{ch}_bytes_per_pixel"] = None if p is None else p / (ph * pw)
            pts = []
            for tile in args.calibration_tiles:
                r = Restorer(model, device=device, precision=prec, tiling=(tile, tile), compile=False)
                pts.append(((tile + 2 * sched.halo) ** 2, peak(r, x4k)))
            (a1, p1), (a2, p2) = pts
            if p1 is not None and p2 is not None:
                shell = (p2 - p1) / (a2 - a1)
                out["tiled_shell_bytes_per_tile_pixel"] = shell
                out["tiled_frame_bytes_per_pixel"] = (p1 - shell * a1) / (p4h * p4w)
            return out

        return body

    def oom_retry():
        if not cuda:
            return None
        total = torch.cuda.get_device_properties(device).total_memory
        cap = args.oom_cap
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(min(1.0, (torch.cuda.memory_allocated(device) + cap) / total), device)
        try:
            r = Restorer(model, device=device, precision=half, tiling="auto", memory_budget=1 << 40, compile=False)
            first_plan = r.plan(h4, w4).describe()
            y = r.restore(x4k)
            return {"cap_bytes": cap, "first_plan": first_plan, "plan_after": r.plan(h4, w4).describe(),
                    "finite": bool(torch.isfinite(y).all())}
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0, device)

    steps = [
        (f"{w4}x{h4} {half} whole frame (fast path)", whole(True)),
        (f"{w4}x{h4} {half} whole frame (today: autocast)", whole(False)),
        (f"{w8}x{h8} {half} tiled", tiled_8k),
        ("calibration fp32", calibration("fp32")),
        (f"calibration {half}", calibration(half)),
        ("OOM retry", oom_retry),
    ]
    for name, body in steps:
        row = run_step(rows, report, name, body)
        print(f"   {name}: {({k: v for k, v in row.items() if k not in ('traceback',)})}", flush=True)


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


def needs_pyav(sec: dict) -> bool:
    if have("av"):
        return True
    sec["status"] = "skipped: PyAV is not installed (carry its wheel: benchmarks/README.md, --wheels)"
    print(f"   {sec['status']}", flush=True)
    return False


def decode_section(args, sec: dict, report: Report) -> None:
    if not needs_pyav(sec):
        return
    w, h = args.codec_size
    sec.update({"size": [w, h], "rows": []})
    clip_dir = Path(tempfile.mkdtemp(prefix="gpu_4k60_"))
    made: dict = {}

    def clip():
        t0 = time.perf_counter()
        made["clip"] = make_clip(clip_dir / "clip.mp4", w, h, args.decode_frames)
        return {"frames": args.decode_frames, "seconds": time.perf_counter() - t0}

    def cpu():
        return {"fps": decode_fps(made["clip"], False)}

    def nvdec():
        if args.device.type != "cuda":
            return None
        return {"fps": decode_fps(made["clip"], True)}

    for name, body in (("make the clip (libx264 ultrafast)", clip), ("CPU decode (PyAV)", cpu), ("NVDEC (PyAV HWAccel)", nvdec)):
        row = run_step(sec["rows"], report, name, body)
        print(f"   {name}: {row.get('fps', row.get('status'))}", flush=True)


def encode_section(args, sec: dict, report: Report) -> None:
    if not needs_pyav(sec):
        return
    import av

    w, h = args.codec_size
    sec.update({"size": [w, h], "frames": args.encode_frames, "cpu_threads": os.cpu_count(), "rows": []})
    frames = [av.VideoFrame.from_ndarray(
        np.ascontiguousarray(np.roll(np.tile(np.arange(w, dtype=np.uint8), (h, 1)), 5 * i, axis=1)), format="gray"
    ).reformat(format="yuv420p") for i in range(args.encode_frames)]
    tmp = Path(tempfile.mkdtemp(prefix="gpu_4k60_enc_"))

    def encode(codec: str, preset: str):
        def body():
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
            return {"encoder": codec, "preset": preset, "fps": fps, "realtime_60": fps >= 60}

        return body

    for codec, presets in ENCODERS.items():
        for preset in presets[: args.presets_per_encoder]:
            row = run_step(sec["rows"], report, f"{codec} {preset}", encode(codec, preset))
            print(f"   {codec:<10} {preset:<10} {row.get('fps', row.get('status'))}", flush=True)


# ---------------------------------------------------------------- subprocess benchmarks


def run_script(argv: list[str], timeout: float, args) -> dict:
    paths = [str(REPO), *args.extra_paths, os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    if args.section_deadline is not None:
        timeout = max(1.0, min(timeout, args.section_deadline - time.perf_counter()))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    tail = (proc.stdout + proc.stderr)[-3000:]
    print("   " + "\n   ".join(proc.stdout.strip().splitlines()[-8:]), flush=True)
    out = {"argv": argv, "returncode": proc.returncode, "seconds": time.perf_counter() - t0, "output_tail": tail}
    if proc.returncode != 0:
        out["status"] = "error"
    return out


def pipeline_section(args, sec: dict, report: Report) -> None:
    if not needs_pyav(sec):
        return
    sec["rows"] = []
    for w, h in args.pipeline_sizes:
        def body(w=w, h=h):
            js = Path(tempfile.mkdtemp(prefix="gpu_4k60_pipe_")) / "pipeline.json"
            argv = ["benchmarks/bench_pipeline.py", "--size", f"{w}x{h}", "--frames", str(args.pipeline_frames),
                    "--device", args.device.type, "--json", str(js)]
            r = run_script(argv, args.sub_timeout, args)
            if js.exists():
                r["result"] = json.loads(js.read_text())
            return r

        run_step(sec["rows"], report, f"{w}x{h}", body)


def vs_section(args, sec: dict, report: Report) -> None:
    if not have("vapoursynth"):
        sec["status"] = "skipped: VapourSynth is not installed"
        print(f"   {sec['status']}", flush=True)
        return
    sec["rows"] = []
    for w, h in args.vs_sizes:
        argv = ["benchmarks/bench_vs.py", "--device", args.device.type, "--size", f"{w}x{h}", "--frames", str(args.vs_frames)]
        run_step(sec["rows"], report, f"{w}x{h}", lambda argv=argv: run_script(argv, args.sub_timeout, args))


# ---------------------------------------------------------------- carried wheels


def install_wheels(args) -> dict:
    """Install the wheels carried in ``args.wheels`` (PyAV; platformdirs) into a folder of
    their own, from that folder only (no index: the device reaches no network), and put it
    on this process's path and on its subprocesses'. Guarded: a failure is recorded and the
    sections that need PyAV say it is missing."""
    folder = Path(args.wheels)
    wheels = sorted(p.name for p in folder.glob("*.whl")) if folder.is_dir() else []
    out: dict = {"folder": str(folder), "wheels": wheels}
    if not wheels:
        out["status"] = f"error: no wheels in {folder}"
        return out
    target = Path(args.site)
    names = sorted({w.split("-")[0] for w in wheels})
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir",
           "--upgrade", "--find-links", str(folder), "--target", str(target), *names]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    out.update({"command": " ".join(cmd), "returncode": proc.returncode, "output_tail": (proc.stdout + proc.stderr)[-2000:]})
    if proc.returncode != 0:
        out["status"] = "error"
        return out
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    args.extra_paths.append(str(target))
    out["installed"] = {n: have(n) for n in names}
    out["status"] = "ok"
    return out


# ---------------------------------------------------------------- main


def default_json() -> str:
    # On the device machine only what is written under $OUT comes back.
    out = os.environ.get("OUT")
    return str(Path(out) / "gpu_4k60.json") if out else "gpu_4k60.json"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rehearse", action="store_true",
                   help="the whole script on the CPU at small sizes that are not multiples of the model's (the tests run this)")
    p.add_argument("--device", default=None, help="default: cuda if available (cpu with --rehearse)")
    p.add_argument("--json", default=default_json(), help="where to write the results, rewritten after every step "
                   "(default: $OUT/gpu_4k60.json where $OUT is set, else gpu_4k60.json)")
    p.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections (in the script's order)")
    p.add_argument("--repeat", type=int, default=None, help="timed calls per model step (median)")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds for the whole run: what is still running then is stopped and recorded, the rest skipped")
    p.add_argument("--cap", action="append", default=[], metavar="SECTION=SECONDS",
                   help="at most this long for one section (repeatable), e.g. --cap model=270: a slow compile "
                        "then cannot take the time of the sections after it")
    p.add_argument("--wheels", default=None, help="a folder of carried wheels (PyAV) to install first, without network")
    p.add_argument("--pipeline-frames", type=int, default=None)
    return p


def configure_sizes(args: argparse.Namespace) -> None:
    r = args.rehearse
    args.device = torch.device(args.device or ("cpu" if r or not torch.cuda.is_available() else "cuda"))
    args.repeat = args.repeat or (1 if r else 5)
    # Sizes that are not multiples of 128, as the real ones: 3840x2160 pads to 3840x2176.
    args.model_size = (200, 136) if r else (3840, 2160)
    args.profile_size = args.model_size
    args.memory_4k = args.model_size
    args.memory_8k = (400, 272) if r else (7680, 4320)
    args.calibration_sizes = [(136, 72), (200, 136)] if r else [(1920, 1080), (3840, 2160)]
    args.calibration_tiles = (128, 192) if r else (512, 1024)
    args.tiled_budget = 32 * 2**20 if r else 3 * 2**30  # forces tiles at the 8K size
    args.oom_cap = 2.5 * 2**30
    args.codec_size = (256, 144) if r else (3840, 2160)
    args.encode_frames = 3 if r else 16
    args.presets_per_encoder = 1 if r else 99
    args.decode_frames = 6 if r else 60
    args.pipeline_sizes = [(200, 136)] if r else [(3840, 2160)]
    args.pipeline_frames = args.pipeline_frames or (3 if r else 48)
    args.vs_sizes = [(128, 96)] if r else [(1920, 1080), (3840, 2160)]
    args.vs_frames = 2 if r else 24
    args.sub_timeout = 300 if r else 480
    # A CPU compile of ERR with inductor takes minutes: the rehearsal traces the graph through
    # AOT autograd (the same capture, no code generation) instead.
    args.compile_backend = "aot_eager" if r else "inductor"
    args.extra_paths = []
    args.site = Path(tempfile.gettempdir()) / "gpu_4k60_site"  # where --wheels installs
    args.shared_fast = None
    args.section_deadline = None
    args.caps = {}
    for item in args.cap:
        name, _, seconds = item.partition("=")
        if name not in SECTIONS or not seconds:
            raise SystemExit(f"--cap {item}: expected SECTION=SECONDS with a section among {', '.join(SECTIONS)}")
        args.caps[name] = float(seconds)


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    configure_sizes(args)
    configure()  # denormal flushing: the scan's decays underflow (10-20x slower on a CPU)
    t_start = time.perf_counter()
    args.deadline = None if args.budget is None else t_start + args.budget
    device = args.device
    wanted = set(args.only or SECTIONS)
    report = Report(Path(args.json), {
        "device": device_name(device), "torch": torch.__version__, "rehearse": args.rehearse,
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "argv": sys.argv[1:] if argv is None else argv,
        "sections_wanted": [s for s in SECTIONS if s in wanted],
    })
    print(f"# gpu_4k60: {report.data['device']}, torch {torch.__version__}"
          f"{', REHEARSAL (CPU, small sizes)' if args.rehearse else ''}; results in {args.json}", flush=True)
    if args.wheels:
        try:
            report.data["wheels"] = install_wheels(args)
        except Exception as exc:
            report.data["wheels"] = {"status": "error", **error_entry(exc)}
        print(f"   wheels: {report.data['wheels'].get('status')}", flush=True)
        report.save()
    sections = {
        "model": lambda sec: model_section(args, sec, report),
        "profile": lambda sec: profile_section(args, sec, report),
        "memory": lambda sec: memory_section(args, sec, report),
        "decode": lambda sec: decode_section(args, sec, report),
        "encode": lambda sec: encode_section(args, sec, report),
        "pipeline": lambda sec: pipeline_section(args, sec, report),
        "vs": lambda sec: vs_section(args, sec, report),
    }
    for name in SECTIONS:
        if name in wanted:
            run_section(report, name, sections[name], args)
    report.data["total_seconds"] = round(time.perf_counter() - t_start, 1)
    report.data["section_seconds"] = {n: report.data[n].get("seconds") for n in SECTIONS if n in report.data}
    report.save()
    print(f"\n# {report.data['total_seconds']} s in all; results in {args.json}", flush=True)
    return report.data


if __name__ == "__main__":
    main()
