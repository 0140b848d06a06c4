"""Selective scan (the S6 recurrence of Mamba), as used by ERR's SS2D.

Shapes follow mamba_ssm's ``selective_scan_fn``:
``u, delta``: (B, D, L); ``A``: (D, N); ``B, C``: (B, G, N, L) with D divisible by G (each
group of D/G channels shares B and C; ERR has G = 4 scan orders); ``D``: (D,);
``delta_bias``: (D,). With ``dt = softplus(delta + delta_bias)``:

    h_t = exp(dt_t * A) * h_{t-1} + dt_t * B_t * u_t
    y_t = <C_t, h_t> + D * u_t

The state is float32 whatever the input dtype; the output is float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._backend import pick_backend

__all__ = ["selective_scan", "selective_scan_reference"]


def _prepare(u, delta, A, B, C, D, delta_bias, delta_softplus, dtype=torch.float32):
    u = u.to(dtype)
    delta = delta.to(dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[None, :, None]
    if delta_softplus:
        delta = F.softplus(delta)
    return u, delta, A.to(dtype), B.to(dtype), C.to(dtype), None if D is None else D.to(dtype)


def selective_scan_reference(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = True,
) -> torch.Tensor:
    """Token-by-token reference (slow; for tests and the naive benchmark baseline). Computes
    in float32, or in float64 when ``u`` is float64 (the gradient tests' reference)."""
    dtype = torch.float64 if u.dtype == torch.float64 else torch.float32
    u, delta, A, B, C, D = _prepare(u, delta, A, B, C, D, delta_bias, delta_softplus, dtype)
    b, d, length = u.shape
    g = B.shape[1]
    Bx = B.repeat_interleave(d // g, dim=1)  # (b, d, n, L)
    Cx = C.repeat_interleave(d // g, dim=1)
    h = u.new_zeros(b, d, A.shape[1])
    ys = []
    for t in range(length):
        dt = delta[:, :, t, None]
        h = torch.exp(dt * A) * h + dt * Bx[:, :, :, t] * u[:, :, t, None]
        ys.append((h * Cx[:, :, :, t]).sum(-1))
    y = torch.stack(ys, dim=-1)
    if D is not None:
        y = y + u * D[None, :, None]
    return y


def _selective_scan_torch(
    u, delta, A, B, C, D, delta_bias, delta_softplus, chunk: int = 128, max_elements: int = 1 << 22
):
    """Chunked parallel scan in pure torch (differentiable: the training backend).

    Within a chunk of ``chunk`` tokens the linear recurrence ``h_t = a_t h_{t-1} + b_t`` is solved
    by log2(chunk) doubling steps (Hillis-Steele scan of the affine maps, stable: only products of
    decays <= 1 for the usual A < 0), and chunks are chained by their last state. Channels go
    ``d_block`` at a time so that each (B, d_block, chunk, N) temporary holds at most
    ``max_elements`` values, whatever the sequence length."""
    u, delta, A, B, C, D = _prepare(u, delta, A, B, C, D, delta_bias, delta_softplus)
    bsz, d, length = u.shape
    n_state = A.shape[1]
    per_group = d // B.shape[1]
    d_block = max(1, min(d, max_elements // max(1, bsz * chunk * n_state)))
    out = []
    for d0 in range(0, d, d_block):
        d1 = min(d, d0 + d_block)
        grp = torch.arange(d0, d1, device=u.device) // per_group  # B/C group of each channel
        A_blk = A[d0:d1, None, :]  # (db, 1, N)
        h = u.new_zeros(bsz, d1 - d0, n_state)
        ys = []
        for t0 in range(0, length, chunk):
            t1 = min(length, t0 + chunk)
            dt = delta[:, d0:d1, t0:t1].unsqueeze(-1)  # (b, db, T, 1)
            uu = u[:, d0:d1, t0:t1].unsqueeze(-1)
            Bc = B[:, :, :, t0:t1].transpose(2, 3)[:, grp]  # (b, db, T, N)
            Cc = C[:, :, :, t0:t1].transpose(2, 3)[:, grp]
            a = torch.exp(dt * A_blk)  # (b, db, T, N)
            x = dt * uu * Bc
            step = 1
            n = t1 - t0
            while step < n:  # after this step, (a, x)[t] composes the maps of tokens t-2*step+1 .. t
                x = torch.cat([x[:, :, :step], a[:, :, step:] * x[:, :, :-step] + x[:, :, step:]], dim=2)
                a = torch.cat([a[:, :, :step], a[:, :, step:] * a[:, :, :-step]], dim=2)
                step *= 2
            hs = x + a * h.unsqueeze(2)
            h = hs[:, :, -1]
            ys.append((hs * Cc).sum(-1))
        out.append(torch.cat(ys, dim=-1))
    y = torch.cat(out, dim=1)
    if D is not None:
        y = y + u * D[None, :, None]
    return y


def _selective_scan_numba(u, delta, A, B, C, D, delta_bias, delta_softplus):
    from ._numba_scan import selective_scan_numba

    return selective_scan_numba(u, delta, A, B, C, D, delta_bias, delta_softplus)


def _selective_scan_triton(u, delta, A, B, C, D, delta_bias, delta_softplus):
    from ._triton_kernels import selective_scan_triton

    return selective_scan_triton(u, delta, A, B, C, D, delta_bias, delta_softplus)


def _selective_scan_triton_chunked(u, delta, A, B, C, D, delta_bias, delta_softplus):
    from ._triton_kernels import selective_scan_triton_chunked

    return selective_scan_triton_chunked(u, delta, A, B, C, D, delta_bias, delta_softplus)


def mamba_inputs(u, delta, A, B, C, D, delta_bias):
    """The arguments as mamba_ssm's selective_scan kernel takes them, all float32.

    Its contract (csrc/selective_scan/selective_scan.cpp): ``u`` float32, float16 or bfloat16
    and ``delta`` of the same dtype; ``A`` float32; per-token ``B``/``C`` (4-d) of ``u``'s
    dtype; ``D`` and ``delta_bias`` float32; last dimensions contiguous. The model hands
    half ``u``/``delta`` (half weights) with float32 ``B``/``C`` (a float32 island, see
    lfr.py), which the kernel refuses: everything goes float32 here, as the other backends
    compute (the kernel's state is float32 anyway, so only the loads widen)."""
    return tuple(None if t is None else t.float().contiguous() for t in (u, delta, A, B, C, D, delta_bias))


def check_mamba_inputs(u, delta, A, B, C, D, delta_bias) -> None:
    """Raise ValueError where the arguments break mamba_ssm's kernel contract (see
    :func:`mamba_inputs`); the same rules as the kernel's own checks, testable without it
    (tests prove that :func:`mamba_inputs` satisfies them, so the kernel call skips it)."""
    halves = (torch.float32, torch.float16, torch.bfloat16)
    problems = []
    if u.dtype not in halves:
        problems.append(f"u is {u.dtype}, not float32/float16/bfloat16")
    if delta.dtype != u.dtype:
        problems.append(f"delta is {delta.dtype} but u is {u.dtype}")
    if A.dtype != torch.float32:
        problems.append(f"A is {A.dtype}, not float32")
    for name, t in (("B", B), ("C", C)):
        want = u.dtype if t.dim() >= 3 else A.dtype
        if t.dtype != want:
            problems.append(f"{name} is {t.dtype} but must be {want}")
        if t.dim() >= 3 and t.stride(-1) != 1 and t.shape[-1] != 1:
            problems.append(f"{name}'s last dimension is not contiguous")
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and t.dtype != torch.float32:
            problems.append(f"{name} is {t.dtype}, not float32")
    for name, t in (("u", u), ("delta", delta)):
        if t.stride(-1) != 1 and t.shape[-1] != 1:
            problems.append(f"{name}'s last dimension is not contiguous")
    if problems:
        raise ValueError("selective_scan (mamba_ssm): " + "; ".join(problems))


def _selective_scan_mamba(u, delta, A, B, C, D, delta_bias, delta_softplus):
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn  # optional extra

    # mamba_inputs makes everything float32 and contiguous, which check_mamba_inputs would pass
    # by construction: no check on the hot path (the test checks that the conversion suffices).
    u, delta, A, B, C, D, delta_bias = mamba_inputs(u, delta, A, B, C, D, delta_bias)
    return selective_scan_fn(
        u, delta, A, B, C, D, z=None, delta_bias=delta_bias, delta_softplus=delta_softplus, return_last_state=False,
    ).float()


_BACKENDS = {
    "reference": lambda *a: selective_scan_reference(*a),
    "torch": _selective_scan_torch,
    "numba": _selective_scan_numba,
    "triton": _selective_scan_triton,
    "triton_chunked": _selective_scan_triton_chunked,
    "mamba_ssm": _selective_scan_mamba,
}


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = True,
    backend: str | None = None,
) -> torch.Tensor:
    """Run the selective scan with the best backend for ``u``'s device (or ``backend``:
    ``"reference"``, ``"torch"``, ``"numba"``, ``"triton"``, ``"triton_chunked"``, ``"mamba_ssm"``).
    Returns float32 (B, D, L).

    Inference goes through the registered op ``torch.ops.err_stream.selective_scan``, which
    ``torch.compile(fullgraph=True)`` keeps as one opaque node; while autograd records, the
    differentiable backends are called directly (training: on CPU numba's training scan,
    with the torch scan as the fallback)."""
    if u.shape[1] % B.shape[1]:
        raise ValueError(f"selective_scan: {u.shape[1]} channels do not split into {B.shape[1]} groups")
    if backend is not None and backend not in _BACKENDS:
        raise ValueError(f"selective_scan: unknown backend {backend!r}; choose one of {', '.join(_BACKENDS)}")
    tensors = (u, delta, A, B, C, D, delta_bias)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        name = backend or pick_backend("selective_scan", u, needs_grad=True)
        return _BACKENDS[name](u, delta, A, B, C, D, delta_bias, delta_softplus)
    return _selective_scan_op(u, delta, A, B, C, D, delta_bias, delta_softplus, backend or "")


@torch.library.custom_op("err_stream::selective_scan", mutates_args=())
def _selective_scan_op(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    delta_bias: torch.Tensor | None,
    delta_softplus: bool,
    backend: str,
) -> torch.Tensor:
    # The backend is chosen here, inside the op, so that the choice (environment, optional
    # imports, forced_backend) is invisible to the compiler and never breaks a graph.
    name = backend or pick_backend("selective_scan", u)
    fn = _BACKENDS.get(name)
    if fn is None:
        raise ValueError(f"selective_scan: unknown backend {name!r}; choose one of {', '.join(_BACKENDS)}")
    with torch.no_grad():  # the op's gradient is its registered backward (below), never the backend's
        return fn(u, delta, A, B, C, D, delta_bias, delta_softplus).contiguous()


@_selective_scan_op.register_fake
def _(u, delta, A, B, C, D, delta_bias, delta_softplus, backend):
    return u.new_empty(u.shape, dtype=torch.float32)


def _scan_setup_context(ctx, inputs, output):
    ctx.inputs = inputs[:7]
    ctx.delta_softplus = inputs[7]
    ctx.backend = inputs[8]


def _scan_backward(ctx, grad):
    # A checkpoint-style backward, used when the op itself is differentiated (e.g. under
    # torch.compile; eager training calls the differentiable backends directly): on CPU, with
    # numba, the forward runs again saving its checkpoints and numba's backward follows;
    # elsewhere the differentiable torch backend recomputes (the op's output equals it to
    # float32 rounding) and is differentiated.
    needs = ctx.needs_input_grad[:7]
    if not any(n and t is not None for t, n in zip(ctx.inputs, needs)):
        return (None,) * 9
    u = ctx.inputs[0]
    if u.device.type == "cpu" and (ctx.backend or pick_backend("selective_scan", u, needs_grad=False)) == "numba":
        from ._numba_scan_grad import recompute_grads

        return (*recompute_grads(ctx.inputs, ctx.delta_softplus, grad, needs), None, None)
    leaves = [None if t is None else t.detach().requires_grad_(bool(n)) for t, n in zip(ctx.inputs, needs)]
    wanted = [t for t in leaves if t is not None and t.requires_grad]
    with torch.enable_grad():
        y = _selective_scan_torch(*leaves, ctx.delta_softplus)
        grads = iter(torch.autograd.grad(y, wanted, grad))
    return (*(next(grads) if t is not None and t.requires_grad else None for t in leaves), None, None)


_selective_scan_op.register_autograd(_scan_backward, setup_context=_scan_setup_context)
