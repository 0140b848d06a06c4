"""The CPU training scan (ops/_numba_scan_grad.py): gradients against float64.

Every gradient element is a sum of products along the scan. The reference is the token-by-token
scan in float64 differentiated by torch.autograd, on the very float32 inputs the kernel gets;
the bound for an element is a multiple of float32's epsilon times the sum of the magnitudes of
the terms that make it up (computed exactly, in float64, by differentiating the same scan with
every factor replaced by its absolute value; see :func:`term_magnitudes`). Each float32 product,
sum, exp or softplus along a term's path adds a relative error of at most a few units of
epsilon/2, and the decays exp(dt A) < 1 damp what the long recurrences carry, so the error of
an element is a small multiple of eps * M: we allow 16 eps * M (seen: at most 3 eps * M, with
AVX-512 and with AVX2 code).
"""

from __future__ import annotations

import importlib.util
import warnings

import pytest
import torch
import torch.nn.functional as F

from err_stream.ops import forced_backend, selective_scan
from err_stream.ops.scan import selective_scan_reference

try:
    from test_ops import scan_inputs
except ImportError:  # tests/ imported as a package
    from tests.test_ops import scan_inputs

pytestmark = pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba missing")

EPS32 = float(torch.finfo(torch.float32).eps)
BOUND = 16  # in units of EPS32 * M (see the module's doc)
NAMES = ("u", "delta", "A", "B", "C", "D", "delta_bias")


def term_magnitudes(inputs, weight, softplus):
    """For the loss sum(weight * y): per input element, the sum of the absolute values of the
    terms its gradient adds up (float64). The scan is differentiated with |u|, |B|, |C|, |D|,
    |weight| and, for the decay a = exp(dt A), the derivatives |A| a (for dt) and dt a (for A):
    every factor of every term is then non-negative, so each gradient is its terms' magnitudes."""
    leaves = [None if t is None else t.detach().double() for t in inputs]
    for i in (0, 3, 4, 5):  # u, B, C, D
        if leaves[i] is not None:
            leaves[i] = leaves[i].abs()
    leaves = [None if t is None else t.requires_grad_() for t in leaves]
    u, delta, A, B, C, D, bias = leaves
    x = delta if bias is None else delta + bias[None, :, None]
    dt = F.softplus(x) if softplus else x
    b, d, length = u.shape
    per_group = d // B.shape[1]
    Bx, Cx = B.repeat_interleave(per_group, 1), C.repeat_interleave(per_group, 1)
    A0 = A.detach()
    h = u.new_zeros(b, d, A.shape[1])
    ys = []
    for t in range(length):
        s = dt[:, :, t, None]
        s0 = s.detach()
        # value exp(dt A); d/d(dt) = |A| exp(dt A), d/dA = dt exp(dt A)
        a = torch.exp(s0 * A0) * (1 + (s - s0) * A0.abs() + s0 * (A - A0))
        h = a * h + s * Bx[..., t] * u[:, :, t, None]
        ys.append((h * Cx[..., t]).sum(-1))
    y = torch.stack(ys, -1)
    if D is not None:
        y = y + u * D[None, :, None]
    (y * weight.double().abs()).sum().backward()
    return [None if t is None else t.grad for t in leaves]


def grads(inputs, weight, softplus, backend=None, dtype=None):
    leaves = [None if t is None else t.detach().to(dtype or t.dtype).requires_grad_() for t in inputs]
    scan = selective_scan_reference if dtype == torch.float64 else selective_scan
    kwargs = {} if dtype == torch.float64 else {"backend": backend}
    y = scan(*leaves, softplus, **kwargs)
    (y * weight.to(y.dtype)).sum().backward()
    return y, [None if t is None else t.grad for t in leaves]


def assert_within_bound(got, reference, magnitudes, names=NAMES):
    for name, g, ref, m in zip(names, got, reference, magnitudes):
        if ref is None:
            assert g is None, name
            continue
        assert g.dtype == torch.float32 and g.shape == ref.shape, name
        err = (g.double() - ref).abs()
        worst = (err / (EPS32 * m).clamp_min(1e-300)).max().item()
        assert worst <= BOUND, f"d{name}: error {worst:.2f} eps * M"


# (batch, channels, length, states, groups) and (with D, with delta_bias, softplus): ERR's
# layout; channels per group that are not multiples of the kernel's 16 lanes (padding); one
# group; lengths that are not multiples of the 16-token checkpoint interval, one that is, and
# a long one; batch 1 to 3.
GRAD_CASES = [
    ((2, 64, 37, 16, 4), (True, True, True)),
    ((3, 48, 50, 8, 4), (False, False, True)),
    ((2, 20, 33, 5, 1), (True, False, False)),
    ((2, 24, 40, 4, 4), (False, True, True)),
    ((2, 40, 16, 16, 1), (True, True, True)),
    ((1, 32, 170, 16, 4), (True, True, True)),
]


@pytest.mark.parametrize("shape,options", GRAD_CASES, ids=lambda c: "x".join(map(str, c)) if len(c) == 5 else "-".join("DBS"[i] if o else "_" for i, o in enumerate(c)))
def test_training_scan_gradients_match_float64(shape, options):
    has_d, has_bias, softplus = options
    u, delta, A, B, C, D, bias = scan_inputs(*shape, seed=sum(shape))
    if not softplus:
        delta = delta.abs() * 0.2  # raw dt must stay positive
    inputs = [u, delta, A, B, C, D if has_d else None, bias if has_bias else None]
    weight = torch.randn(shape[0], shape[1], shape[2], generator=torch.Generator().manual_seed(7))
    y, got = grads(inputs, weight, softplus)
    assert y.grad_fn.name() == "NumbaScanBackward"  # the default CPU backend trains through numba
    _, reference = grads(inputs, weight, softplus, dtype=torch.float64)
    assert_within_bound(got, reference, term_magnitudes(inputs, weight, softplus))


def test_training_scan_gradient_of_a_subset_of_inputs():
    """Only A and B want a gradient (u does not): numba's backward still runs and fills just those."""
    u, delta, A, B, C, D, bias = scan_inputs(2, 32, 45, n=8, g=2, seed=11)
    A, B = A.clone().requires_grad_(), B.clone().requires_grad_()
    weight = torch.randn(2, 32, 45, generator=torch.Generator().manual_seed(12))
    y = selective_scan(u, delta, A, B, C, D, bias, True)
    assert y.grad_fn.name() == "NumbaScanBackward"
    (y * weight).sum().backward()
    inputs = [u, delta, A.detach(), B.detach(), C, D, bias]
    _, reference = grads(inputs, weight, True, dtype=torch.float64)
    magnitudes = term_magnitudes(inputs, weight, True)
    assert_within_bound([A.grad, B.grad], reference[2:4], magnitudes[2:4], names=("A", "B"))


@pytest.mark.parametrize("fast_mode", [True, False], ids=["projected", "full-jacobian"])
def test_training_scan_passes_finite_difference_gradcheck(fast_mode):
    """torch.autograd.gradcheck on a tiny case (two chunks, padded channels). Central differences
    of a float32 function with step h carry a rounding error of about eps |y| / h (about 1e-4 here,
    |y| < 3) and a truncation error of order h^2 |y'''|: 1e-3 absolute and 1 % relative hold both."""
    inputs = scan_inputs(2, 4, 18, n=2, g=2, seed=4)
    leaves = [t.clone().requires_grad_() for t in inputs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # gradcheck's advice to use float64
        assert torch.autograd.gradcheck(
            lambda *x: selective_scan(*x, True, backend="numba"), leaves, eps=3e-3, atol=1e-3, rtol=1e-2,
            fast_mode=fast_mode,
        )


def test_registered_op_backward_is_the_training_scan_on_cpu():
    """torch.ops.err_stream.selective_scan (what torch.compile sees) differentiates through the
    same numba backward: identical gradients. Forced to the torch backend, it differentiates the
    torch scan instead (equal within float32 rounding)."""
    inputs = scan_inputs(2, 40, 70, g=4, seed=9)
    weight = torch.randn(2, 40, 70, generator=torch.Generator().manual_seed(10))

    def op_grads():
        leaves = [t.clone().requires_grad_() for t in inputs]
        (torch.ops.err_stream.selective_scan(*leaves, True, "") * weight).sum().backward()
        return [t.grad for t in leaves]

    _, direct = grads(inputs, weight, True)
    for name, a, b in zip(NAMES, op_grads(), direct):
        assert torch.equal(a, b), name
    with forced_backend("selective_scan", "torch"):
        y, via_torch = grads(inputs, weight, True)
        assert y.grad_fn.name() != "NumbaScanBackward"
        op = op_grads()
    for name, a, b in zip(NAMES, op, via_torch):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item()), name
    for name, a, b in zip(NAMES, via_torch, direct):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item()), name


def test_torch_backend_stays_selectable_for_training():
    inputs = [t.clone().requires_grad_() for t in scan_inputs(1, 16, 20, g=1)]
    assert selective_scan(*inputs, True, backend="torch").grad_fn.name() != "NumbaScanBackward"
    assert selective_scan(*inputs, True, backend="numba").grad_fn.name() == "NumbaScanBackward"


def test_training_scan_half_inputs_get_half_gradients():
    u, delta, A, B, C, D, bias = scan_inputs(1, 32, 40, g=2, seed=3)
    leaves = [u.half(), delta.half(), A, B.half(), C.half(), D, bias]
    leaves = [t.requires_grad_() for t in leaves]
    y = selective_scan(*leaves, True)
    y.sum().backward()
    assert [t.grad.dtype for t in leaves] == [t.dtype for t in leaves]
    assert all(torch.isfinite(t.grad).all() for t in leaves)
