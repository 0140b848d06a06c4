"""The ops' backends against their references: selective scan, group rational, DCT."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from err_stream.ops import (
    GroupRational,
    dct2,
    describe_backends,
    forced_backend,
    group_rational,
    idct2,
    selective_scan,
)
from err_stream.ops.rational import group_rational_reference
from err_stream.ops.scan import selective_scan_reference

ROOT = Path(__file__).resolve().parents[1]
HAS_NUMBA = importlib.util.find_spec("numba") is not None
HAS_TRITON = importlib.util.find_spec("triton") is not None
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def scan_inputs(b, d, length, n=16, g=4, seed=0, device="cpu"):
    """Random scan inputs in the ranges ERR sees: A < 0 (S4D-like), dt around softplus(-1)."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(b, d, length, generator=gen)
    delta = torch.randn(b, d, length, generator=gen) * 0.5 - 1.0
    A = -torch.exp(torch.randn(d, n, generator=gen) * 0.5 + 1.0)
    B = torch.randn(b, g, n, length, generator=gen)
    C = torch.randn(b, g, n, length, generator=gen)
    D = torch.randn(d, generator=gen)
    bias = torch.randn(d, generator=gen) * 0.3
    return [t.to(device) for t in (u, delta, A, B, C, D, bias)]


def rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    return ((y.double() - ref.double()).abs().max() / ref.double().abs().max()).item()


# (batch, channels, length, states, groups): ERR's layout (4 groups, N=16, channels per group a
# multiple of 16), odd ones (channels per group not a multiple of the numba kernel's 16 lanes,
# N != 16, one group), and a long sequence.
SCAN_SHAPES = [
    (2, 64, 300, 16, 4),
    (1, 12, 129, 5, 3),
    (1, 40, 77, 16, 1),
    (1, 8, 4096, 16, 2),
]
SCAN_OPTIONS = [  # (with D, with delta_bias, softplus)
    (True, True, True),
    (False, False, True),
    (True, False, False),
]
CPU_BACKENDS = ["torch"] + (["numba"] if HAS_NUMBA else [])


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("shape", SCAN_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("options", SCAN_OPTIONS, ids=["D-bias-softplus", "plain-softplus", "D-no-softplus"])
def test_scan_backend_matches_reference(backend, shape, options):
    has_d, has_bias, softplus = options
    u, delta, A, B, C, D, bias = scan_inputs(*shape)
    if not softplus:
        delta = delta.abs() * 0.2  # raw dt must stay positive to be a sensible step
    args = (u, delta, A, B, C, D if has_d else None, bias if has_bias else None, softplus)
    ref = selective_scan_reference(*args)
    y = selective_scan(*args, backend=backend)
    assert y.dtype == torch.float32 and y.shape == u.shape
    assert rel_err(y, ref) < 1e-5


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_scan_half_inputs(backend):
    u, delta, A, B, C, D, bias = scan_inputs(1, 32, 200, g=2, seed=3)
    args = (u.half(), delta.half(), A, B.half(), C.half(), D, bias, True)
    ref = selective_scan_reference(*args)  # float32 state from the half inputs
    y = selective_scan(*args, backend=backend)
    assert y.dtype == torch.float32
    assert rel_err(y, ref) < 1e-5


def test_scan_state_carries_across_chunks():
    """A decaying impulse crossing the torch backend's chunk boundaries: y_t = exp(a t) exactly."""
    length = 300
    u = torch.zeros(1, 1, length)
    u[0, 0, 0] = 1.0
    delta = torch.ones(1, 1, length)
    A = torch.full((1, 1), -0.01)
    ones = torch.ones(1, 1, 1, length)
    y = selective_scan(u, delta, A, ones, ones, None, None, False, backend="torch")
    expected = torch.exp(-0.01 * torch.arange(length, dtype=torch.float64))
    assert (y[0, 0].double() - expected).abs().max() < 1e-5


def test_torch_scan_gradients_match_reference():
    u, delta, A, B, C, D, bias = scan_inputs(2, 8, 150, n=4, g=2, seed=1)
    weight = torch.randn(2, 8, 150, generator=torch.Generator().manual_seed(2))
    grads = {}
    for backend in ("reference", "torch"):
        leaves = [t.clone().requires_grad_(True) for t in (u, delta, A, B, C, D, bias)]
        y = selective_scan(*leaves, True, backend=backend)
        (y * weight).sum().backward()
        grads[backend] = [t.grad for t in leaves]
    for name, g_ref, g in zip("u delta A B C D bias".split(), grads["reference"], grads["torch"]):
        assert rel_err(g, g_ref) < 1e-4, name


@pytest.mark.skipif(not HAS_NUMBA, reason="numba missing")
def test_default_cpu_backend_trains():
    """With gradients recorded the default CPU backend (numba) runs its training scan (its
    gradients are checked in test_scan_grad.py)."""
    u, delta, A, B, C, D, bias = scan_inputs(1, 16, 40, g=1)
    assert describe_backends("cpu")["selective_scan"] in ("numba", os.environ.get("ERR_STREAM_SELECTIVE_SCAN_BACKEND"))
    u.requires_grad_(True)
    y = selective_scan(u, delta, A, B, C, D, bias, True)
    if describe_backends("cpu")["selective_scan"] == "numba":
        assert y.grad_fn.name() == "NumbaScanBackward"
    y.sum().backward()
    assert u.grad is not None and torch.isfinite(u.grad).all()


def test_forced_backend_and_unknown_names():
    u, delta, A, B, C, D, bias = scan_inputs(1, 8, 20, g=2)
    with forced_backend("selective_scan", "reference"):
        assert describe_backends("cpu")["selective_scan"] == "reference"
        with forced_backend("group_rational", "reference"):
            assert describe_backends("cpu")["group_rational"] == "reference"
        y = selective_scan(u, delta, A, B, C, D, bias)
    assert describe_backends("cpu")["selective_scan"] != "reference"
    assert torch.equal(y, selective_scan_reference(u, delta, A, B, C, D, bias))
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        selective_scan(u, delta, A, B, C, D, bias, backend="nope")
    with pytest.raises(ValueError, match="do not split into 3 groups"):
        selective_scan(u, delta, A, torch.zeros(1, 3, 16, 20), torch.zeros(1, 3, 16, 20))


@pytest.mark.skipif(not HAS_NUMBA, reason="numba missing")
def test_numba_exp_is_within_one_ulp():
    from err_stream.ops._numba_scan import exp_f32_array

    x = np.concatenate([
        np.linspace(-87.3, 88.3, 1_000_001, dtype=np.float32),
        np.random.default_rng(0).uniform(-30, 0, 200_000).astype(np.float32),
        np.array([0.0, -0.0, 1e-30, -1e-30, -87.33, 88.0], np.float32),
    ])
    out = np.empty_like(x)
    exp_f32_array(x, out)
    exact = np.exp(x.astype(np.float64))
    ulps = np.abs(out - exact) / np.spacing(exact.astype(np.float32)).astype(np.float64)
    assert ulps.max() <= 1.05  # libm's expf is within 1 ulp (0.5 after rounding) too
    tiny = np.array([-88.0, -100.0, -1e30], np.float32)  # below the normal range: flushed to 0
    exp_f32_array(tiny, out[:3])
    assert (out[:3] == 0).all()


def _ulps(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|got - exact| in units of the float32 spacing at the exact value."""
    return np.abs(got.astype(np.float64) - exact) / np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)


# The bounds below come from how the functions are built, not from one machine's run: the
# kernels are compiled for the CPU they run on, and whether LLVM fuses a multiply and an add
# (FMA) changes the last bits. Measured worst cases are in the comments (AVX-512 with FMA /
# numba's generic target without it).
LOG1P_ULPS = 4.0  # Cephes logf on [sqrt(1/2), sqrt(2)]: peak relative error 7.6e-8, i.e. up to
#   1.3 ulp of the result; its reconstruction x + r + e*ln2 (three roundings, <= 1.5 ulp) and
#   Goldberg's factor y/d (a division and a product, <= 1 ulp): 3.8. Measured 2.33 / 3.41.
SOFTPLUS_ULPS = 0.5 + 1.0 + LOG1P_ULPS  # max(x, 0) + log1p(exp(-|x|)): the exp's 1 ulp passes
#   through log1p with gain e/((1+e) log1p(e)) <= 1, log1p adds its own, and for x > 0 the sum
#   with x rounds once more (0.5 ulp; its result is larger than log1p's). Measured 2.62 / 3.23.


@pytest.mark.skipif(not HAS_NUMBA, reason="numba missing")
def test_numba_log1p_within_its_error_bound():
    import numba

    from err_stream.ops import _numba_scan as kernels

    @numba.njit(fastmath=kernels._FASTMATH)
    def log1p_array(x, out):
        for i in range(x.size):
            out[i] = kernels._log1p_f32(x[i])

    x = np.concatenate([
        np.linspace(0.0, 1.0, 1_000_001, dtype=np.float32),
        np.random.default_rng(0).random(200_000).astype(np.float32),
        np.array([1e-30, 1e-8, np.float32(np.sqrt(2)) - 1, 1.0], np.float32),
    ])
    out = np.empty_like(x)
    log1p_array(x, out)
    exact = np.log1p(x.astype(np.float64))
    ok = exact > 0
    assert _ulps(out[ok], exact[ok]).max() <= LOG1P_ULPS
    assert (out[~ok] == 0).all()


@pytest.mark.skipif(not HAS_NUMBA, reason="numba missing")
def test_numba_softplus_matches_torch_formula():
    from err_stream.ops._numba_scan import softplus_f32_array

    x = np.concatenate([
        np.linspace(-87.0, 30.0, 1_000_001, dtype=np.float32),
        np.random.default_rng(1).normal(0.0, 3.0, 200_000).astype(np.float32),
        np.array([0.0, -0.0, 1e-30, -1e-7, 20.0, np.nextafter(np.float32(20), np.float32(30))], np.float32),
    ])
    out = np.empty_like(x)
    softplus_f32_array(x, out)
    x64 = x.astype(np.float64)
    exact = np.where(x64 > 20, x64, np.log1p(np.exp(x64)))  # torch: linear above 20
    assert _ulps(out, exact).max() <= SOFTPLUS_ULPS


@pytest.mark.skipif(not HAS_NUMBA, reason="numba missing")
def test_numba_backend_keeps_torch_thread_count():
    """numba's OpenMP pool is torch's: launching it must not change torch's thread setting."""
    args = scan_inputs(1, 16, 30, g=1)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        selective_scan(*args, True, backend="numba")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------- group rational

def rational_coefficients(groups: int = 4, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    num = torch.randn(1, 6, generator=gen, dtype=torch.float64)
    den = torch.randn(groups, 4, generator=gen, dtype=torch.float64)  # signs matter: |b| is used
    return num, den


def rational_inputs(channels: int = 16, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    grid = torch.linspace(-300.0, 300.0, 48 * channels, dtype=torch.float64).reshape(-1, channels)
    normal = torch.randn(3, 40, channels, generator=gen, dtype=torch.float64) * 3
    return torch.cat([grid.reshape(3, -1, channels), normal], dim=1)  # negatives, |x| up to 300


def test_rational_torch_matches_reference():
    num, den = rational_coefficients()
    x = rational_inputs()
    ref = group_rational_reference(x, num, den)
    y = group_rational(x, num, den, backend="torch")  # float32 arithmetic
    assert y.dtype == x.dtype
    assert ((y - ref).abs() / ref.abs().clamp(min=1.0)).max() < 2e-6


def test_rational_formula_uses_abs_x_in_denominator():
    """Q(x) = 1 + sum |b_j| |x|^(j+1): for x < 0 this differs from kat_rational's CPU fallback
    (1 + sum |b_j| x^(j+1)), and the two agree for x > 0."""
    num, den = rational_coefficients(groups=2, seed=5)
    x = torch.linspace(-4, 4, 64, dtype=torch.float64).reshape(-1, 1).repeat(1, 8)
    y = group_rational(x, num, den, backend="torch").double()
    per_channel = den.abs().repeat_interleave(4, dim=0)  # (8, 4)
    p = sum(num[0, i] * x**i for i in range(6))
    q_abs = 1 + sum(per_channel[:, j] * x.abs() ** (j + 1) for j in range(4))
    q_plain = 1 + sum(per_channel[:, j] * x ** (j + 1) for j in range(4))
    assert torch.allclose(y, p / q_abs, rtol=1e-5, atol=1e-6)
    neg, pos = x < -0.5, x > 0
    assert ((p / q_plain - y).abs()[neg] > 1e-3).all()
    assert torch.allclose((p / q_plain)[pos], y[pos], rtol=1e-5, atol=1e-6)


def test_rational_groups_split_channels_in_order():
    """Channel c uses the denominator row c // (C / groups), checked on one hand-computed value."""
    num = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0, 0.0]])  # P(x) = x
    den = torch.zeros(4, 4)
    den[2, 0] = -1.0  # group 2 (channels 4, 5 of 8): Q(x) = 1 + |x|
    x = torch.full((1, 8), -3.0)
    y = group_rational(x, num, den, backend="torch")
    assert torch.equal(y, torch.tensor([[-3.0, -3.0, -3.0, -3.0, -0.75, -0.75, -3.0, -3.0]]))


def test_group_rational_module_layout_matches_kat_group():
    m = GroupRational(num_groups=8, mode="gelu")
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == {
        "weight_numerator": (1, 6),
        "weight_denominator": (8, 4),
    }
    x = torch.randn(2, 5, 16)
    assert torch.allclose(m(x), group_rational_reference(x, m.weight_numerator, m.weight_denominator), atol=1e-6)
    assert torch.equal(GroupRational(8, "identity")(x), x)
    with pytest.raises(ValueError, match="do not split into 8 groups"):
        m(torch.randn(2, 12))


def test_rational_half_input_keeps_dtype():
    num, den = rational_coefficients()
    x = torch.randn(4, 16, dtype=torch.float64)
    y = group_rational(x.half(), num.float(), den.float(), backend="torch")
    assert y.dtype == torch.float16
    ref = group_rational_reference(x.half().double(), num, den)
    assert ((y.double() - ref).abs() / ref.abs().clamp(min=1)).max() < 1e-3


# ---------------------------------------------------------------- DCT


@pytest.mark.parametrize("shape", [(2, 3, 12, 20), (1, 1, 64, 48), (5, 7)])
def test_dct2_matches_scipy(shape):
    import scipy.fft as scipy_fft  # in the 'test' extra

    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    want = scipy_fft.dctn(x.numpy(), axes=(-2, -1), norm="ortho")
    assert np.abs(dct2(x).numpy() - want).max() < 1e-12
    want_inv = scipy_fft.idctn(x.numpy(), axes=(-2, -1), norm="ortho")
    assert np.abs(idct2(x).numpy() - want_inv).max() < 1e-12


def test_dct2_round_trip_float32():
    x = torch.rand(2, 4, 96, 160, generator=torch.Generator().manual_seed(1))
    y = dct2(x)
    assert y.dtype == torch.float32
    assert (y[..., 0, 0] - x.sum(dim=(-2, -1)) / (96 * 160) ** 0.5).abs().max() < 1e-3  # DC = sum / sqrt(hw)
    assert (idct2(y) - x).abs().max() < 1e-5
    assert torch.allclose(dct2(x.half()), dct2(x.half().float()))  # half input computed in float32


# ---------------------------------------------------------------- Triton


@pytest.mark.gpu
@needs_cuda
@pytest.mark.skipif(not HAS_TRITON, reason="triton missing")
@pytest.mark.parametrize("shape", [(2, 64, 1000, 16, 4), (1, 12, 129, 5, 3), (1, 256, 4096, 16, 4)])
def test_triton_scan_on_cuda(shape):
    u, delta, A, B, C, D, bias = scan_inputs(*shape, device="cuda")
    for has_d, has_bias, softplus in SCAN_OPTIONS:
        d_ = delta if softplus else delta.abs() * 0.2
        args = (u, d_, A, B, C, D if has_d else None, bias if has_bias else None, softplus)
        ref = selective_scan_reference(*args)
        assert rel_err(selective_scan(*args, backend="triton"), ref) < 1e-5
    half = (u.half(), delta.half(), A, B.half(), C.half(), D, bias, True)
    assert rel_err(selective_scan(*half, backend="triton"), selective_scan_reference(*half)) < 1e-5


@pytest.mark.gpu
@needs_cuda
@pytest.mark.skipif(not HAS_TRITON, reason="triton missing")
def test_triton_rational_on_cuda():
    num, den = rational_coefficients()
    x = rational_inputs()
    for dtype, tol in ((torch.float32, 2e-6), (torch.float16, 2e-3)):
        xin = x.to(dtype)
        y = group_rational(xin.cuda(), num.float().cuda(), den.float().cuda(), backend="triton")
        assert y.dtype == dtype and y.shape == x.shape
        ref = group_rational_reference(xin.double(), num, den)  # the (rounded) input, float64
        assert ((y.double().cpu() - ref).abs() / ref.abs().clamp(min=1.0)).max() < tol


INTERPRETER_CHECK = r"""
import json, torch
from err_stream.ops._triton_kernels import group_rational_triton, selective_scan_triton
from err_stream.ops.rational import group_rational_reference
from err_stream.ops.scan import selective_scan_reference
from tests.test_ops import rational_coefficients, rational_inputs, scan_inputs
errs = {}
for shape, opts in [((1, 8, 150, 16, 2), (True, True, True)), ((1, 6, 37, 5, 3), (False, False, False))]:
    u, delta, A, B, C, D, bias = scan_inputs(*shape)
    if not opts[2]:
        delta = delta.abs() * 0.2
    args = (u, delta, A, B, C, D if opts[0] else None, bias if opts[1] else None, opts[2])
    ref = selective_scan_reference(*args)
    y = selective_scan_triton(*args, chunk=64)  # several chunks and a ragged tail
    errs[str(shape)] = ((y - ref).abs().max() / ref.abs().max()).item()
num, den = rational_coefficients()
x = rational_inputs()[:, :20]
ref = group_rational_reference(x, num, den)
y = group_rational_triton(x.float(), num, den).double()
errs["rational"] = ((y - ref).abs() / ref.abs().clamp(min=1.0)).max().item()
print(json.dumps(errs))
"""


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TRITON, reason="triton missing")
def test_triton_kernels_in_interpreter():
    """The Triton kernels, run by Triton's CPU interpreter, against the references."""
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", INTERPRETER_CHECK], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    errs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert errs["rational"] < 2e-6, errs
    assert max(v for k, v in errs.items() if k != "rational") < 1e-5, errs
