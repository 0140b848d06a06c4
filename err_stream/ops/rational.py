"""Group rational activation (the KAT_Group of kat_rational) used by ERR's FW-KAN.

``y = P(x) / Q(x)`` with ``P(x) = a0 + a1 x + ... + a5 x^5`` (one numerator shared by all
groups) and ``Q(x) = 1 + |b0||x| + |b1||x|^2 + |b2||x|^3 + |b3||x|^4`` (one denominator per
group; channel ``c`` belongs to group ``c // (C / groups)``).

This is the formula of kat_rational's CUDA kernel, which trained the published checkpoints.
kat_rational's own pure-torch fallback writes ``|b_j| x^j`` (no ``|x|``) and differs for
negative inputs; we deliberately do not follow it.

Gradients also follow that CUDA kernel's backward, which differentiates ``|t|`` as
``copysign(1, t)``: ``dF/db_j = -P/Q^2 * copysign(1, b_j) * |x|^(j+1)`` and
``dF/dx = R/Q - P/Q^2 * copysign(1, x) * (|b_0| + 2|b_1||x| + ...)`` (``R = P'``), with
``dF/da_i = x^i / Q``. torch's ``abs`` has gradient 0 at 0 instead, so a denominator that
starts at exactly 0 (the "identity" preset) would never move: the rational would stay a
polynomial, whose x^5 term explodes on the large inputs of ERR's frequency branch.
"""

from __future__ import annotations

import torch
from torch import nn

from ._backend import pick_backend

__all__ = ["kat_abs", "group_rational", "group_rational_reference", "GroupRational", "RATIONAL_INIT"]

# Initial coefficients (numerator a0..a5, denominator b0..b3) of kat_rational's presets.
RATIONAL_INIT: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "identity": ((0.0, 1.0, 0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)),
    "gelu": (
        (-0.00153969, 0.51692871, 0.44075827, 0.0972553, -0.00884418, -0.00378675),
        (-0.14171056, -0.06481231, -0.0444695, 0.01283776),
    ),
}


def kat_abs(t: torch.Tensor) -> torch.Tensor:
    """``|t|`` whose gradient is ``copysign(1, t)``, as in kat_rational's CUDA backward (+1 at
    +0, where torch's ``abs`` gives 0). Same value as ``t.abs()``."""
    return t * torch.copysign(torch.ones_like(t), t).detach()


def group_rational_reference(x: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """Plain float64-capable reference: explicit powers, no Horner, for tests."""
    groups = denominator.shape[0]
    c = x.shape[-1]
    if c % groups:
        raise ValueError(f"group_rational: {c} channels do not split into {groups} groups")
    a = numerator.reshape(-1).to(x.dtype)
    b = kat_abs(denominator.to(x.dtype)).repeat_interleave(c // groups, dim=0)  # (C, 4)
    p = sum(a[i] * x**i for i in range(a.numel()))
    ax = kat_abs(x)
    q = 1 + sum(b[:, j] * ax ** (j + 1) for j in range(b.shape[1]))
    return p / q


def _group_rational_torch(x: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    # Horner form in float32 whatever the input dtype (kat_rational casts its inputs to float32
    # too), or float64 for float64 input (ERR's frequency branch, where x^5 can pass 3.4e38).
    groups = denominator.shape[0]
    c = x.shape[-1]
    dt = torch.float64 if x.dtype == torch.float64 else torch.float32
    xf = x.to(dt)
    a = numerator.reshape(-1).to(dt)
    b = kat_abs(denominator.to(dt)).repeat_interleave(c // groups, dim=0)  # (C, 4)
    p = a[-1]
    for i in range(a.numel() - 2, -1, -1):
        p = p * xf + a[i]
    ax = kat_abs(xf)
    q = b[:, -1]
    for j in range(b.shape[1] - 2, -1, -1):
        q = q * ax + b[:, j]
    q = q * ax + 1.0
    return (p / q).to(x.dtype)


def _group_rational_kat(x: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    from kat_rational.kat_1dgroup import rational_1dgroup  # optional extra, CUDA only

    groups = denominator.shape[0]
    shape = x.shape
    x3 = x.reshape(-1, 1, shape[-1]) if x.dim() != 3 else x
    y = rational_1dgroup.apply(x3.float().contiguous(), numerator.float().repeat(groups, 1), denominator.float(), groups)
    return y.reshape(shape).to(x.dtype)


def _group_rational_triton(x: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    from ._triton_kernels import group_rational_triton

    return group_rational_triton(x, numerator, denominator)


_BACKENDS = {
    "reference": group_rational_reference,
    "torch": _group_rational_torch,
    "triton": _group_rational_triton,
    "kat_rational": _group_rational_kat,
}


def group_rational(
    x: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor, backend: str | None = None
) -> torch.Tensor:
    """Apply the group rational to ``x`` of shape ``(..., C)``.

    ``numerator``: ``(1, 6)``; ``denominator``: ``(groups, 4)``. ``backend`` is one of
    ``"reference"``, ``"torch"``, ``"triton"``, ``"kat_rational"`` or None (the best available for
    the device).
    """
    if x.shape[-1] % denominator.shape[0]:
        raise ValueError(
            f"group_rational: {x.shape[-1]} channels do not split into {denominator.shape[0]} groups"
        )
    if backend is not None and backend not in _BACKENDS:
        raise ValueError(f"group_rational: unknown backend {backend!r}; choose one of {', '.join(_BACKENDS)}")
    # float64 (a handful of values in ERR's frequency branch) always takes the torch backend,
    # as does autograd (training); inference goes through the registered op, which
    # torch.compile(fullgraph=True) keeps as one node.
    if x.dtype == torch.float64 or (
        torch.is_grad_enabled() and (x.requires_grad or numerator.requires_grad or denominator.requires_grad)
    ):
        name = backend or ("torch" if x.dtype == torch.float64 else pick_backend("group_rational", x))
        if name == "triton" and backend is None and (numerator.requires_grad or denominator.requires_grad):
            name = "torch"  # the Triton kernel has no backward: training needs the coefficients' gradients
        return _BACKENDS[name](x, numerator, denominator)
    return _group_rational_op(x, numerator, denominator, backend or "")


@torch.library.custom_op("err_stream::group_rational", mutates_args=())
def _group_rational_op(x: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor, backend: str) -> torch.Tensor:
    # The backend choice happens inside the op: invisible to the compiler (no graph break).
    name = backend or pick_backend("group_rational", x)
    fn = _BACKENDS.get(name)
    if fn is None:
        raise ValueError(f"group_rational: unknown backend {name!r}; choose one of {', '.join(_BACKENDS)}")
    y = fn(x, numerator, denominator)
    return y.clone() if y is x else y.contiguous()


@_group_rational_op.register_fake
def _(x, numerator, denominator, backend):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


class GroupRational(nn.Module):
    """KAT_Group-compatible module: parameters ``weight_numerator`` (1, 6) and
    ``weight_denominator`` (groups, 4), applied over the last axis."""

    def __init__(self, num_groups: int = 8, mode: str = "gelu") -> None:
        super().__init__()
        num, den = RATIONAL_INIT[mode]
        self.num_groups = num_groups
        self.weight_numerator = nn.Parameter(torch.tensor(num, dtype=torch.float32).view(1, -1))
        self.weight_denominator = nn.Parameter(torch.tensor(den, dtype=torch.float32).repeat(num_groups, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return group_rational(x, self.weight_numerator, self.weight_denominator)

    def extra_repr(self) -> str:
        return f"num_groups={self.num_groups}, order=(5, 4)"


