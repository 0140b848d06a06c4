"""Group rational gradients follow kat_rational's CUDA backward (|t| differentiated as copysign(1, t))."""

from __future__ import annotations

import pytest
import torch

from err_stream.ops import GroupRational, group_rational
from err_stream.ops.rational import group_rational_reference, kat_abs

BACKENDS = ["torch", "reference"]


def _inputs(seed: int, shape=(3, 5, 8)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64) * 1.6 + 0.2  # |x| in [0.2, 1.8]: away from 0
    sign = torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0).double()
    return x * sign


def test_kat_abs_value_and_gradient():
    t = torch.tensor([-2.0, -0.0, 0.0, 3.0], requires_grad=True)
    y = kat_abs(t)
    assert torch.equal(y.detach(), t.detach().abs())
    y.sum().backward()
    assert t.grad.tolist() == [-1.0, -1.0, 1.0, 1.0]  # copysign(1, t): +1 at +0, not torch.abs's 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_match_finite_differences(backend):
    x = _inputs(0).requires_grad_()
    g = torch.Generator().manual_seed(1)
    num = (torch.randn(1, 6, generator=g, dtype=torch.float64) * 0.3).requires_grad_()
    den = (torch.randn(4, 4, generator=g, dtype=torch.float64) * 0.3).requires_grad_()  # away from 0
    assert torch.autograd.gradcheck(lambda a, b, c: group_rational(a, b, c, backend=backend), (x, num, den), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_denominator_gradient_at_zero_is_kat_rationals(backend):
    """dF/db_j at b = 0 is -P/Q^2 * |x|^(j+1) (copysign(1, +0) = 1), summed over the group's inputs."""
    x = _inputs(2, (1, 7, 4))
    num = torch.tensor([[0.1, 1.0, 0.2, -0.3, 0.05, 0.02]], dtype=torch.float64, requires_grad=True)
    den = torch.zeros(2, 4, dtype=torch.float64, requires_grad=True)  # 2 groups of 2 channels
    group_rational(x, num, den, backend=backend).sum().backward()
    p = sum(num.detach()[0, i] * x**i for i in range(6))  # Q = 1 at b = 0
    per_power = torch.stack([(-p * x.abs() ** (j + 1)) for j in range(4)], dim=-1)  # (1, 7, 4 channels, 4 powers)
    expected = per_power.reshape(7, 2, 2, 4).sum(dim=(0, 2))  # sum over tokens and the group's channels
    assert torch.allclose(den.grad, expected, rtol=1e-12, atol=1e-12)
    assert (den.grad != 0).all()


def test_identity_rational_denominator_moves_in_one_step():
    m = GroupRational(num_groups=4, mode="identity").double()
    assert torch.count_nonzero(m.weight_denominator) == 0
    opt = torch.optim.SGD(m.parameters(), lr=1e-3)
    x = _inputs(3, (2, 6, 16)) * 5  # inputs of a few units, like ERR's DC coefficients
    loss = (m(x) - torch.tanh(x)).pow(2).mean()  # a saturating target needs the denominator
    loss.backward()
    opt.step()
    assert (m.weight_denominator != 0).all(), m.weight_denominator


def test_reference_and_torch_gradients_agree():
    x = _inputs(4).requires_grad_()
    num = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    den = torch.zeros(4, 4, dtype=torch.float64, requires_grad=True)
    grads = []
    for fn in (group_rational_reference, lambda *a: group_rational(*a, backend="torch")):
        for t in (x, num, den):
            t.grad = None
        fn(x, num, den).pow(3).sum().backward()
        grads.append([t.grad.clone() for t in (x, num, den)])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
