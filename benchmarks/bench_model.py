"""Whole-frame forward time of ERR with our ops against a naive baseline measured in the same run.

"ours" is the model with the default backends (numba scan on CPU; triton/mamba_ssm on CUDA),
run as given (NCHW, autocast for half precisions); "fast" the same model through the fast path
(err_stream.engine.fast.FastForward: channels_last, half weights with float32 islands, and with
``--compile`` torch.compile; CUDA graphs too on CUDA), the path the Restorer uses by default;
"baseline" the same model and weights with
  * the scan of ``--baseline-scan`` (default: the token-by-token reference), and
  * with ``--baseline-hfr naive`` (default) the frequency branch computed the upstream way: a full
    DCT of the H/2 map, the three KANs looped over 64 x 64 windows of the spectrum, then upstream's
    IDCT, which keeps only the DC coefficient (a constant map W[0, 0] / sqrt(h w), see
    ERR.hfr_frequency). Both compute the same function; the table shows their max difference.

    python benchmarks/bench_model.py                                 # CPU, 256/512/1024
    python benchmarks/bench_model.py --sizes 512 --repeat 3
    python benchmarks/bench_model.py --threads 1 --clock cpu         # on a busy machine
    python benchmarks/bench_model.py --sizes 1024 --baseline-scan none --compile   # + compiled column
    python benchmarks/bench_model.py --device cuda --precision fp16 --sizes 3840x2160 \\
        --scan-backend triton --baseline-scan torch --baseline-hfr fast

Sizes are ``N`` (N x N) or ``WxH``; frames that are not multiples of 128 are reflect-padded
(as the Restorer does) and the padding is part of the timed work.

On CPU, much of the non-scan time is page faults on fresh full-resolution tensors: compare with
``GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python benchmarks/bench_model.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from err_stream import runtime  # noqa: E402

# As before err_stream stopped setting it on import: OpenMP threads wait passively (spinning
# distorts timings on a busy machine). Must come before torch loads.
runtime.configure(flush_denormal=False)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from err_stream import ERR  # noqa: E402
from err_stream.engine.fast import FastForward  # noqa: E402
from err_stream.ops import describe_backends, forced_backend  # noqa: E402
from err_stream.ops.dct import dct2  # noqa: E402

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def parse_size(text: str) -> tuple[int, int]:
    """``"512"`` -> (512, 512); ``"3840x2160"`` -> (3840, 2160) as (width, height)."""
    if "x" in text:
        w, h = text.lower().split("x")
        return int(w), int(h)
    return int(text), int(text)


def naive_trunk_hfr(model: ERR, h: torch.Tensor, window: int = 64) -> torch.Tensor:
    """Upstream's HFR trunk: DCT of the whole map, KANs per 64x64 window of the spectrum, then
    its IDCT (a constant map of the DC coefficient)."""
    dk = model.deep1(h)
    b, c, hh, ww = dk.shape
    freq = dct2(dk.float())
    ph, pw = (-hh) % window, (-ww) % window
    if ph or pw:
        freq = F.pad(freq, (0, pw, 0, ph), mode="reflect")
    processed = torch.zeros_like(freq)
    with torch.autocast(device_type=dk.device.type, enabled=False):
        for i in range(0, freq.shape[-2], window):
            for j in range(0, freq.shape[-1], window):
                t = freq[:, :, i : i + window, j : j + window].reshape(b, c, -1).transpose(1, 2)
                t = model.FW_KAN1(t)
                t = model.FW_KAN2(t) + t
                t = model.FW_KAN3(t) + t
                processed[:, :, i : i + window, j : j + window] = t.transpose(1, 2).reshape(b, c, window, window)
    dc = processed[:, :, 0, 0] / math.sqrt(hh * ww)
    return model.hfr_mix(dk, dc)


@contextlib.contextmanager
def naive_hfr(model: ERR) -> Iterator[None]:
    model.trunk_hfr = lambda h: naive_trunk_hfr(model, h)  # instance attribute shadows the method
    try:
        yield
    finally:
        del model.trunk_hfr


@contextlib.contextmanager
def backends(scan: str | None, rational: str | None) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        if scan:
            stack.enter_context(forced_backend("selective_scan", scan))
        if rational:
            stack.enter_context(forced_backend("group_rational", rational))
        yield


def make_forward(
    model: ERR, device: torch.device, precision: str, channels_last: bool = False
) -> Callable[[torch.Tensor], torch.Tensor]:
    m = model.config.multiple
    dtype = PRECISIONS[precision]

    def forward(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % m, (-w) % m
        xp = F.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x
        if channels_last:
            xp = xp.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            return model(xp)[..., :h, :w]

    return forward


def make_fast_forward(fast: FastForward, multiple: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def forward(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % multiple, (-w) % multiple
        xp = F.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x
        return fast(xp)[..., :h, :w]

    return forward


def time_forward(
    forward: Callable, x: torch.Tensor, repeat: int, warmup: bool = True, clock: Callable[[], float] = time.perf_counter
) -> tuple[float, torch.Tensor]:
    """Median seconds of ``repeat`` calls (after one warm-up call: compilation, autotuning)."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    if warmup:
        forward(x)
        sync()
    times = []
    for _ in range(repeat):
        t = clock()
        y = forward(x)
        sync()
        times.append(clock() - t)
    return statistics.median(times), y


def load(weights: str | None, device: torch.device) -> ERR:
    if weights:
        from err_stream import load_model

        return load_model(weights, device=device).eval()
    torch.manual_seed(0)
    return ERR().eval().to(device)


def run(args: argparse.Namespace) -> list[dict]:
    device = torch.device(args.device)
    model = load(args.weights, device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    forward = make_forward(model, device, args.precision, args.channels_last)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    rows = []
    print(
        f"# ERR forward, {device.type} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or platform.machine()}), "
        f"{torch.get_num_threads()} threads, {args.precision}, weights: {args.weights or 'seeded random'}, "
        f"{'process CPU' if args.clock == 'cpu' else 'wall-clock'} seconds"
        f"{', channels_last' if args.channels_last else ''}"
    )
    with backends(args.scan_backend, args.rational_backend):
        ours_backends = describe_backends(device)
    base_desc = f"scan={args.baseline_scan}, hfr={args.baseline_hfr}"
    print(f"# ours: {ours_backends}; baseline: {base_desc}")
    fast = FastForward(model, device, PRECISIONS[args.precision], compile=False)
    fast_forward = make_fast_forward(fast, model.config.multiple)
    compiled = None
    if args.compile:
        compiled = make_fast_forward(FastForward(model, device, PRECISIONS[args.precision], compile=True), model.config.multiple)
    print(f"# fast: {fast.describe()}{'; compiled: ' + ('CUDA graphs, ' if device.type == 'cuda' else '') + 'inductor' if compiled else ''}")
    header = (
        f"{'size':>11} | {'ours s':>8} | {'fast s':>8} | {'ours/fast':>9} | {'fast |diff|':>11} | "
        f"{'compiled s':>10} | {'ours/comp':>9} | {'baseline s':>10} | {'base/ours':>9} | {'max |diff|':>10}"
    )
    print(header)
    print("-" * len(header))
    for text in args.sizes:
        w, h = parse_size(text)
        gen = torch.Generator().manual_seed(1)
        x = torch.rand(1, 3, h, w, generator=gen).to(device)
        with backends(args.scan_backend, args.rational_backend):
            ours, y = time_forward(forward, x, args.repeat, clock=clock)
        row = {"size": f"{w}x{h}", "ours_s": ours}
        with backends(args.scan_backend, args.rational_backend):
            fast_s, yf = time_forward(fast_forward, x, args.repeat, clock=clock)
        row.update(fast_s=fast_s, fast_speedup=ours / fast_s, fast_max_diff=(yf.float() - y.float()).abs().max().item())
        del yf
        cols = f"{row['size']:>11} | {ours:8.3f} | {fast_s:8.3f} | {ours / fast_s:8.2f}x | {row['fast_max_diff']:11.2e} | "
        if compiled is not None:
            with backends(args.scan_backend, args.rational_backend):
                # The warm-up call compiles (or loads the compiled graph from the cache).
                t0 = time.perf_counter()
                compiled(x)
                row["compile_s"] = time.perf_counter() - t0
                comp_s, yc = time_forward(compiled, x, args.repeat, warmup=False, clock=clock)
            row.update(compiled_s=comp_s, compiled_speedup=ours / comp_s,
                       compiled_max_diff=(yc.float() - y.float()).abs().max().item())
            del yc
            cols += f"{comp_s:10.3f} | {ours / comp_s:8.2f}x | "
        else:
            cols += f"{'-':>10} | {'-':>9} | "
        if args.baseline_scan != "none":
            hfr = naive_hfr(model) if args.baseline_hfr == "naive" else contextlib.nullcontext()
            with hfr, backends(args.baseline_scan, args.baseline_rational):
                # The reference scan needs no compilation: no warm-up run (it takes long).
                base, yb = time_forward(
                    forward, x, args.baseline_repeat, warmup=args.baseline_scan != "reference", clock=clock
                )
            row.update(baseline_s=base, speedup=base / ours, max_diff=(y.float() - yb.float()).abs().max().item())
            print(cols + f"{base:10.3f} | {base / ours:8.1f}x | {row['max_diff']:10.2e}")
        else:
            print(cols + f"{'-':>10} | {'-':>9} | {'-':>10}")
        sys.stdout.flush()
        rows.append(row)
        del x, y
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["256", "512", "1024"], help="N or WxH (default: 256 512 1024)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs of ours (median reported)")
    p.add_argument("--baseline-repeat", type=int, default=1, help="timed runs of the baseline")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=list(PRECISIONS), default="fp32", help="autocast policy")
    p.add_argument("--weights", help="checkpoint (default: seeded random weights)")
    p.add_argument("--scan-backend", help="force our scan backend (default: the best available)")
    p.add_argument("--rational-backend", help="force our rational backend (default: the best available)")
    p.add_argument("--baseline-scan", default="reference", help="baseline scan backend, or 'none' (default: reference)")
    p.add_argument("--baseline-rational", default="torch", help="baseline rational backend (default: torch)")
    p.add_argument("--baseline-hfr", choices=["naive", "fast"], default="naive", help="baseline frequency branch")
    p.add_argument("--threads", type=int, help="torch (and numba) CPU threads")
    p.add_argument(
        "--channels-last", action="store_true",
        help="model and input in channels_last memory format (both columns; 2-3x faster convolutions on CPU)",
    )
    p.add_argument(
        "--compile", action="store_true",
        help="add a column for the compiled fast path (on CPU the first compile of ERR takes minutes; "
        "later runs load it from the cache)",
    )
    p.add_argument(
        "--clock", choices=["wall", "cpu"], default="wall",
        help="'cpu': process CPU time instead of wall time; with --threads 1 it is robust to other "
        "processes sharing the machine (wall time with several threads is not)",
    )
    return p


def main(argv: list[str] | None = None) -> list[dict]:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        try:
            import numba

            numba.set_num_threads(args.threads)
        except ImportError:
            pass
    return run(args)


if __name__ == "__main__":
    main()
