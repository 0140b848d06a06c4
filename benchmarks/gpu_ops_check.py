"""One-shot check of the CUDA kernels on a GPU machine (about 2 minutes, no network needed).

1. the Triton selective scan and group rational against the references on CUDA (max errors);
2. op timings at ERR's 4K shapes: Triton scan vs the torch chunked scan;
3. the bench_model table at 3840x2160 in fp32 and fp16: the forward with the Triton backends
   against the same model with the torch chunked scan as baseline.

Each section is independent: a failure prints its traceback and the script goes on. Exits 1 if
any accuracy check fails or a section crashes, 0 otherwise.

    python benchmarks/gpu_ops_check.py [--skip-model] [--sizes 3840x2160]
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from err_stream.ops import group_rational, selective_scan  # noqa: E402
from err_stream.ops.rational import group_rational_reference  # noqa: E402
from err_stream.ops.scan import selective_scan_reference  # noqa: E402

FAILURES: list[str] = []
# --smoke (CPU, TRITON_INTERPRET=1) runs the script's logic on tiny shapes to catch mistakes
# before spending GPU time.
DEVICE = "cuda"
SMOKE = False


def section(title: str):
    def wrap(fn):
        def run(*a, **k):
            print(f"\n=== {title}", flush=True)
            t = time.perf_counter()
            try:
                fn(*a, **k)
            except Exception:  # keep going: report everything in one run
                traceback.print_exc()
                FAILURES.append(f"{title}: crashed")
            print(f"--- {title}: {time.perf_counter() - t:.1f} s", flush=True)

        return run

    return wrap


def scan_inputs(b, d, length, n=16, g=4, seed=0, device=None):
    device = device or DEVICE
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(b, d, length, generator=gen)
    delta = torch.randn(b, d, length, generator=gen) * 0.5 - 1.0
    A = -torch.exp(torch.randn(d, n, generator=gen) * 0.5 + 1.0)
    B = torch.randn(b, g, n, length, generator=gen)
    C = torch.randn(b, g, n, length, generator=gen)
    D = torch.randn(d, generator=gen)
    bias = torch.randn(d, generator=gen) * 0.3
    return [t.to(device) for t in (u, delta, A, B, C, D, bias)]


def check(name: str, err: float, tol: float) -> None:
    ok = err < tol
    print(f"  {'ok  ' if ok else 'FAIL'} {name}: max rel error {err:.2e} (tol {tol:.0e})", flush=True)
    if not ok:
        FAILURES.append(name)


def rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    return ((y.double() - ref.double()).abs().max() / ref.double().abs().max()).item()


@section("environment")
def environment() -> None:
    import triton

    print(f"  torch {torch.__version__}, triton {triton.__version__}, CUDA {torch.version.cuda}")
    print(f"  device: {torch.cuda.get_device_name(0) if DEVICE == 'cuda' else DEVICE}")


@section("selective scan: triton and torch vs reference (CUDA)")
def scan_accuracy() -> None:
    shapes = [(2, 64, 1000, 16, 4), (1, 12, 129, 5, 3), (1, 40, 77, 16, 1), (1, 256, 4096, 16, 4), (1, 4, 1, 16, 2)]
    if SMOKE:
        shapes = [(1, 4, 40, 16, 2), (1, 6, 9, 5, 3)]
    for shape in shapes:
        u, delta, A, B, C, D, bias = scan_inputs(*shape)
        for has_d, has_bias, softplus in ((True, True, True), (False, False, True), (True, False, False)):
            d_ = delta if softplus else delta.abs() * 0.2
            args = (u, d_, A, B, C, D if has_d else None, bias if has_bias else None, softplus)
            ref = selective_scan_reference(*args)
            tag = f"{'x'.join(map(str, shape))} D={has_d} bias={has_bias} softplus={softplus}"
            for backend in ("triton", "torch"):
                y = selective_scan(*args, backend=backend)
                assert y.dtype == torch.float32 and y.shape == u.shape
                check(f"scan {backend} {tag}", rel_err(y, ref), 1e-5)
        half = (u.half(), delta.half(), A, B.half(), C.half(), D, bias, True)
        check(f"scan triton fp16 inputs {'x'.join(map(str, shape))}",
              rel_err(selective_scan(*half, backend="triton"), selective_scan_reference(*half)), 1e-5)


@section("group rational: triton vs float64 reference (CUDA)")
def rational_accuracy() -> None:
    gen = torch.Generator().manual_seed(0)
    num = torch.randn(1, 6, generator=gen, dtype=torch.float64)
    den = torch.randn(8, 4, generator=gen, dtype=torch.float64)
    grid = torch.linspace(-300, 300, 64 * 32, dtype=torch.float64).reshape(-1, 32)
    x = torch.cat([grid, torch.randn(1000, 32, generator=gen, dtype=torch.float64) * 3]).reshape(2, -1, 32)
    if SMOKE:
        x = x[:, ::50]
    for dtype, tol in ((torch.float32, 2e-6), (torch.float16, 2e-3), (torch.bfloat16, 2e-2)):
        xin = x.to(dtype)
        ref = group_rational_reference(xin.double(), num, den)
        y = group_rational(xin.to(DEVICE), num.float().to(DEVICE), den.float().to(DEVICE), backend="triton")
        assert y.dtype == dtype and y.shape == x.shape
        y64 = y.double().cpu()
        # fp16/bf16 outputs: rounding of the result itself dominates
        check(f"rational triton {dtype}", ((y64 - ref).abs() / ref.abs().clamp(min=1.0)).max().item(), tol)
    y_torch = group_rational(x.float().to(DEVICE), num.float().to(DEVICE), den.float().to(DEVICE), backend="torch").double().cpu()
    ref = group_rational_reference(x, num, den)
    check("rational torch float32", ((y_torch - ref).abs() / ref.abs().clamp(min=1.0)).max().item(), 2e-6)


def cuda_time(fn, repeat: int = 5) -> float:
    sync = torch.cuda.synchronize if DEVICE == "cuda" else (lambda: None)
    fn()
    sync()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    sync()
    return (time.perf_counter() - t) / repeat


@section("op timings at ERR's 3840x2160 shapes")
def op_timings() -> None:
    from err_stream.ops._triton_kernels import selective_scan_triton

    # down/up_group1's scans at 4K: 512 channels (4 orders x 128), 270 x 480 tokens.
    u, delta, A, B, C, D, bias = scan_inputs(*((1, 8, 70) if SMOKE else (1, 512, 270 * 480)))
    args = (u, delta, A, B, C, D, bias, True)
    ref = selective_scan(*args, backend="torch")
    t_torch = cuda_time(lambda: selective_scan(*args, backend="torch"), repeat=2)
    print(f"  scan torch (chunked)        L=129600 D=512: {t_torch * 1e3:8.2f} ms")
    for chunk in (64,) if SMOKE else (64, 128, 256):
        for warps in (4,) if SMOKE else (2, 4, 8):
            t = cuda_time(lambda: selective_scan_triton(*args, chunk=chunk, num_warps=warps))
            err = rel_err(selective_scan_triton(*args, chunk=chunk, num_warps=warps), ref)
            print(f"  scan triton chunk={chunk:3d} warps={warps}: {t * 1e3:8.2f} ms  ({t_torch / t:6.1f}x, rel diff {err:.1e})")
    half = [v.half() if v.dim() == 3 or v.dim() == 4 else v for v in args[:7]] + [True]
    t = cuda_time(lambda: selective_scan(*half, backend="triton"))
    print(f"  scan triton default, fp16 inputs:  {t * 1e3:8.2f} ms")
    x = torch.randn(4, 16 if SMOKE else 1080 * 1920 // 64, 16, device=DEVICE)
    num, den = torch.randn(1, 6, device=DEVICE), torch.randn(8, 4, device=DEVICE)
    for backend in ("torch", "triton"):
        t = cuda_time(lambda: group_rational(x, num, den, backend=backend))
        print(f"  rational {backend:6s} {tuple(x.shape)}: {t * 1e3:8.3f} ms")


@section("bench_model on CUDA")
def model_table(sizes: list[str], precision: str) -> None:
    import bench_model

    rows = bench_model.main(
        ["--device", DEVICE, "--precision", precision, "--sizes", *sizes, "--repeat", "3", "--baseline-repeat", "1",
         "--scan-backend", "torch" if SMOKE else "triton", "--rational-backend", "triton", "--baseline-scan", "torch",
         "--baseline-hfr", "fast"]
    )
    for row in rows:
        tol = 1e-3 if precision == "fp32" else 5e-2
        if row.get("max_diff", 0.0) > tol:
            FAILURES.append(f"bench_model {precision} {row['size']}: triton and torch-scan outputs differ by {row['max_diff']:.2e}")
            print(f"  FAIL outputs differ by {row['max_diff']:.2e} (tol {tol})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["3840x2160"])
    p.add_argument("--skip-model", action="store_true")
    p.add_argument("--skip-timings", action="store_true")
    p.add_argument("--smoke", action="store_true", help="tiny shapes on CPU under TRITON_INTERPRET=1 (tests the script)")
    args = p.parse_args()
    global DEVICE, SMOKE
    if args.smoke:
        DEVICE, SMOKE = "cpu", True
        if args.sizes == ["3840x2160"]:
            args.sizes = ["128"]
    elif not torch.cuda.is_available():
        print("gpu_ops_check: no CUDA device visible; nothing to check")
        return 1
    t0 = time.perf_counter()
    environment()
    scan_accuracy()
    rational_accuracy()
    if not args.skip_timings:
        op_timings()
    if not args.skip_model:
        model_table(args.sizes, "fp32")
        model_table(args.sizes, "fp16")
    print(f"\n{len(FAILURES)} failure(s) in {time.perf_counter() - t0:.0f} s")
    for f in FAILURES:
        print(f"  - {f}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
