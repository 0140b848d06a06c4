"""Half precision against float32, judged as users see it.

On trained weights (the embedded demo weights: the golden checkpoint's seeded random weights
amplify every rounding and say nothing about precision; they are only for fp32 exactness,
test_model.py), on a photograph, with the metric a user sees: the PSNR of the clamped output
against the float32 output.

Half-precision results depend on the kernels. GPU tensor cores and every CPU kernel take half
operands and accumulate in float32; they differ in how they block and order the sums. Two
kinds of test follow from that:

* with oneDNN switched off, ATen's own kernels run everywhere: half operands, float32
  accumulation, each layer's output rounded, as tensor cores do. That arithmetic is the same
  on every CPU up to float32 summation order, so these thresholds are tight and catch a
  policy regression (a layer in half that must not be);
* with the CPU's own kernels (oneDNN's AVX512-BF16 or AMX ones where the CPU has them), the
  result differs legitimately by machine: those tests bound it by the worst kernel measured.

``benchmarks/bench_precision.py`` prints the full table (per schedule step, which kernel ran);
``scripts/dev test`` runs these tests a second time with ``ONEDNN_MAX_CPU_ISA=AVX2`` on CPUs
with AVX-512, so both kernel families are checked on such machines.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from err_stream import Restorer, load_model
from err_stream.engine.isa import half_kernels
from err_stream.weights import DEMO_WEIGHTS

pytestmark = pytest.mark.precision


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


@contextmanager
def aten_kernels():
    """ATen's own CPU kernels instead of oneDNN's (see the module docstring)."""
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


@pytest.fixture(scope="module")
def demo_model():
    return load_model(DEMO_WEIGHTS, device="cpu")


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """scikit-image's astronaut (bundled with it), a 128 x 256 crop with face, cloth and sky."""
    data = pytest.importorskip("skimage.data")
    a = np.ascontiguousarray(data.astronaut()[40:168, 128:384])
    return torch.from_numpy(a).permute(2, 0, 1).float()[None] / 255


@pytest.fixture(scope="module")
def fp32_out(demo_model, photo) -> torch.Tensor:
    return Restorer(demo_model, precision="fp32", tiling="off", fast=False).restore(photo)


def _restore(model, x, precision: str, path: str, tiling="off") -> torch.Tensor:
    y = Restorer(model, precision=precision, tiling=tiling, fast=path == "fast").restore(x)
    assert y.dtype == torch.float32 and torch.isfinite(y).all()
    return y


# Thresholds, measured on this crop (2026-12-05, AMD EPYC with AVX512-BF16; ATen's kernels
# and oneDNN's avx512_core_bf16 ones agree to 0.1 dB). With the demo weights of that morning:
# * bf16 keeps 8 significant bits (unit roundoff 2^-9) and every feature layer's output is
#   rounded to it, while the input picture and the images each stage adds its correction to
#   stay float32 (ImageConv): 57.3 dB (fast), 57.7 dB (autocast). With the picture rounded to
#   bf16 as well it was 54.8 dB: 56 dB fails when the float32 image path is lost.
# * fp16 has 3 more bits (unit roundoff 2^-11): 75.4 / 75.7 dB, 72.8 dB with the picture in
#   fp16: 74 dB.
# The weights trained since (iteration 5,000 of the full run) give 59.5 / 59.7 dB in bf16 and
# 77.6 / 78.0 dB in fp16: the bounds are kept, as what the arithmetic guarantees.
# (bench_precision.py's four 256x256 photographs, earlier weights: bf16 58.6-60.5 dB, fp16 76.8-78.1 dB.)
TENSOR_CORE_LIKE = {"bf16": 56.0, "fp16": 74.0}
# The CPU's own bf16 kernels: 57.3 dB here with AVX512-BF16 (59.4 with the newer weights), as
# with ATen's. On a Xeon with AMX, issue 17 measured 30.3 dB (before the float32 picture path), far below what the
# arithmetic allows (the tensor-core-like figure above), and no AMX CPU was at hand since. So
# this is a sanity floor, not a precision claim: finite output, recognisably the same picture,
# on every machine; the tight bound is the one above, which scripts/dev test also runs with
# oneDNN limited to AVX2.
OWN_KERNELS_BF16 = 28.0


@pytest.mark.parametrize("path", ["fast", "autocast"])
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precision_as_tensor_cores_compute_it(demo_model, photo, fp32_out, precision, path):
    with aten_kernels():
        got = psnr(_restore(demo_model, photo, precision, path), fp32_out)
    assert got >= TENSOR_CORE_LIKE[precision], f"{precision} {path}: {got:.2f} dB"


def test_bf16_with_this_cpus_own_kernels(demo_model, photo, fp32_out):
    got = psnr(_restore(demo_model, photo, "bf16", "fast"), fp32_out)
    assert got >= OWN_KERNELS_BF16, f"{got:.2f} dB with {half_kernels().describe()}"


def test_tiled_half_precision_equals_whole_frame(demo_model, photo):
    """Tiles run the same kernels on the same pixels: the seams must not show in half either
    (measured: bit-identical; the bound allows a kernel that blocks sums by tile width)."""
    whole = _restore(demo_model, photo, "bf16", "fast")
    tiled = _restore(demo_model, photo, "bf16", "fast", tiling=(128, 128))
    assert psnr(tiled, whole) >= 60
