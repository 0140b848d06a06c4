"""The CPU training scan: numba forward saving checkpoints, and its backward pass.

The forward is the inference kernel of :mod:`._numba_scan`, which also stores the state ``h``
after every ``CHECKPOINT_EVERY`` tokens. The backward runs one job per (batch, scan group),
in parallel: from the last chunk of ``CHECKPOINT_EVERY`` tokens to the first, it recomputes
the chunk's states from its checkpoint (kept with the decays ``exp(dt * A)`` in a small
buffer), then walks the chunk backwards with the reverse recurrence

    g_t = dy_t C_t + exp(dt_{t+1} A) g_{t+1}          (dL/dh_t, per channel and state)

from which every gradient is a local product: with ``w = g_t exp(dt_t A) h_{t-1}``,

    dC_t = sum_c dy_t h_t              dB_t = sum_c g_t dt_t u_t
    du_t = dt_t sum_n g_t B_t + D dy_t
    ddt_t = sum_n A w + u_t sum_n g_t B_t
    dA = sum_t w dt_t                  dD = sum_t dy_t u_t

and ``ddelta = ddt * softplus'(delta + delta_bias)``, ``ddelta_bias = sum_t ddelta``.

As in the forward kernel the work is vectorised across the channels of the group, which share
``B_t`` and ``C_t`` (the channels are padded to whole blocks of ``LANES``): each inner loop runs
over all the group's channels for one state index, so that LLVM vectorises it (a loop of just
``LANES`` iterations it would not, being unable to afford its runtime alias checks). The sums
over channels (``dB``, ``dC``) are written as per-channel terms and added up by a separately
compiled reduction that may re-associate. A job owns its batch row and group, so every output
it writes is its own: ``dB``/``dC`` rows and ``du``/``ddelta`` channels directly, the parameter
gradients ``dA``, ``dD``, ``ddelta_bias`` as per-batch partial sums that the wrapper adds up
(no races, no atomics).
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from ._numba_scan import (
    _FASTMATH,
    _ONE,
    _ZERO,
    _exp_f32,
    _softplus_f32,
    _softplus_grad_f32,
    cached_njit,
    pad_rows,
    scan_forward,
    torch_thread_count,
    unpad_channels,
)

__all__ = ["NumbaScan", "CHECKPOINT_EVERY", "recompute_grads", "scan_backward"]

# Tokens between saved states: the backward recomputes this many states per chunk. 16 keeps
# a chunk's states and decays (2 x 16 x N x channels of a group) in L2 and the checkpoints as
# large as u itself (N / 16 states per token).
CHECKPOINT_EVERY = 16


@cached_njit(fastmath=True)
def _row_sums(x, out):  # pragma: no cover - compiled
    """out[n] = sum_j x[n, j]. Compiled on its own with every fast-math flag: re-association
    lets the sums run in vector registers (a fixed order for a given build); the kernels'
    exp must not be compiled that way (see _FASTMATH)."""
    for n in range(x.shape[0]):
        acc = _ZERO
        for j in range(x.shape[1]):
            acc += x[n, j]
        out[n] = acc


@cached_njit(parallel=True, fastmath=_FASTMATH, nogil=True)
def _scan_backward_kernel(
    u, delta, bias, softplus, a_t, B, C, d_skip, ckpt, every, dy, du, ddelta, dA, dD, dbias, dB, dC
):  # pragma: no cover - compiled
    """Operands as :func:`._numba_scan._scan_kernel` (channels padded per group), ``ckpt``
    from it with the same ``every``; ``dy``, ``du``, ``ddelta``: (b, D, L); ``dB``, ``dC``:
    (b, G, L, N); per-batch partial sums ``dA`` (b, N, D), ``dD``, ``dbias`` (b, D)."""
    bsz, d, length = u.shape
    g = B.shape[1]
    n_state = B.shape[3]
    per_group = d // g
    chunks = (length + every - 1) // every
    for job in numba.prange(bsz * g):
        bi = job // g
        k = job - bi * g
        c0 = k * per_group
        a = np.empty((n_state, per_group), dtype=np.float32)
        for n in range(n_state):
            for j in range(per_group):
                a[n, j] = a_t[n, c0 + j]
        hs = np.empty((every + 1, n_state, per_group), dtype=np.float32)  # hs[i + 1]: state after token i
        decay = np.empty((every, n_state, per_group), dtype=np.float32)
        dtb = np.empty((every, per_group), dtype=np.float32)  # the chunk's inputs, token-major
        ub = np.empty((every, per_group), dtype=np.float32)
        dtub = np.empty((every, per_group), dtype=np.float32)
        dyb = np.empty((every, per_group), dtype=np.float32)
        dsp = np.empty((every, per_group), dtype=np.float32)
        gub = np.empty((every, per_group), dtype=np.float32)  # the chunk's outputs
        gdb = np.empty((every, per_group), dtype=np.float32)
        carry = np.zeros((n_state, per_group), dtype=np.float32)  # exp(dt_{t+1} A) g_{t+1}
        gA = np.zeros((n_state, per_group), dtype=np.float32)
        gD = np.zeros(per_group, dtype=np.float32)
        gbias = np.zeros(per_group, dtype=np.float32)
        su = np.empty(per_group, dtype=np.float32)  # sum_n g B
        sa = np.empty(per_group, dtype=np.float32)  # sum_n A w
        pB = np.empty((n_state, per_group), dtype=np.float32)  # per-channel terms of dB_t, dC_t
        pC = np.empty((n_state, per_group), dtype=np.float32)
        for ci in range(chunks - 1, -1, -1):
            t0 = ci * every
            steps = min(length, t0 + every) - t0
            # Token by token, vectorised across channels (strided loads, as in the forward).
            for i in range(steps):
                for j in range(per_group):
                    dtb[i, j] = delta[bi, c0 + j, t0 + i] + bias[c0 + j]
                    ub[i, j] = u[bi, c0 + j, t0 + i]
                    dyb[i, j] = dy[bi, c0 + j, t0 + i]
            for i in range(steps):
                for j in range(per_group):
                    x = dtb[i, j]
                    dsp[i, j] = _softplus_grad_f32(x) if softplus else _ONE
                    dtb[i, j] = _softplus_f32(x) if softplus else x
                    dtub[i, j] = dtb[i, j] * ub[i, j]
            for n in range(n_state):
                for j in range(per_group):
                    hs[0, n, j] = ckpt[bi, ci - 1, n, c0 + j] if ci > 0 else _ZERO
            # The chunk's states again, as the forward computed them.
            for i in range(steps):
                t = t0 + i
                for n in range(n_state):
                    bn = B[bi, k, t, n]
                    for j in range(per_group):
                        av = _exp_f32(dtb[i, j] * a[n, j])
                        decay[i, n, j] = av
                        hs[i + 1, n, j] = av * hs[i, n, j] + dtub[i, j] * bn
            for i in range(steps - 1, -1, -1):
                t = t0 + i
                for j in range(per_group):
                    su[j] = _ZERO
                    sa[j] = _ZERO
                # Loops over the whole group (a trip count LLVM vectorises with its runtime
                # alias checks); the sums over channels go through pB, pC.
                for n in range(n_state):
                    bn = B[bi, k, t, n]
                    cn = C[bi, k, t, n]
                    for j in range(per_group):
                        gy = dyb[i, j]
                        gh = gy * cn + carry[n, j]
                        pC[n, j] = gy * hs[i + 1, n, j]
                        pB[n, j] = gh * dtub[i, j]
                        su[j] += gh * bn
                        w = gh * decay[i, n, j] * hs[i, n, j]
                        gA[n, j] += w * dtb[i, j]
                        sa[j] += w * a[n, j]
                        carry[n, j] = gh * decay[i, n, j]
                _row_sums(pB, dB[bi, k, t])
                _row_sums(pC, dC[bi, k, t])
                for j in range(per_group):
                    gy = dyb[i, j]
                    gub[i, j] = su[j] * dtb[i, j] + d_skip[c0 + j] * gy
                    gd = (sa[j] + su[j] * ub[i, j]) * dsp[i, j]
                    gdb[i, j] = gd
                    gbias[j] += gd
                    gD[j] += gy * ub[i, j]
            for i in range(steps):
                for j in range(per_group):
                    du[bi, c0 + j, t0 + i] = gub[i, j]
                    ddelta[bi, c0 + j, t0 + i] = gdb[i, j]
        for n in range(n_state):
            for j in range(per_group):
                dA[bi, n, c0 + j] = gA[n, j]
        for j in range(per_group):
            dD[bi, c0 + j] = gD[j]
            dbias[bi, c0 + j] = gbias[j]


def scan_backward(ops, ckpt, every: int, delta_softplus: bool, dy: torch.Tensor, per_group: int):
    """Gradients of the scan from the forward's operands and checkpoints (see :func:`scan_forward`)
    and the output gradient ``dy`` (b, D, L) without padding. Returns float32
    ``(du, ddelta, dA, dB, dC, dD, ddelta_bias)`` in the scan's input shapes (dB, dC as
    non-contiguous (b, G, N, L) views)."""
    u32, dt, bias, a_t, Bt, Ct, d_skip = ops
    bsz = dy.shape[0]
    g = Bt.shape[1]
    dy = pad_rows(dy, g)
    du, ddelta = torch.empty_like(u32), torch.empty_like(u32)
    dA = torch.empty(bsz, a_t.shape[0], u32.shape[1])
    dD, dbias = torch.empty(bsz, u32.shape[1]), torch.empty(bsz, u32.shape[1])
    dB, dC = torch.empty_like(Bt), torch.empty_like(Ct)
    with torch_thread_count(u32.numel() * a_t.shape[0]):
        _scan_backward_kernel(
            u32.numpy(), dt.numpy(), bias.numpy(), bool(delta_softplus), a_t.numpy(), Bt.numpy(), Ct.numpy(),
            d_skip.numpy(), ckpt.numpy(), int(every), dy.numpy(), du.numpy(), ddelta.numpy(), dA.numpy(),
            dD.numpy(), dbias.numpy(), dB.numpy(), dC.numpy(),
        )
    du, ddelta = (unpad_channels(v, g, per_group, 1) for v in (du, ddelta))
    dA = unpad_channels(dA.sum(0), g, per_group, 1).t()
    dD, dbias = (unpad_channels(v.sum(0), g, per_group, 0) for v in (dD, dbias))
    return du, ddelta, dA, dB.transpose(2, 3), dC.transpose(2, 3), dD, dbias


def _as_inputs(grads, dtypes, needs) -> tuple:
    """The gradients autograd wants: in the inputs' dtypes, None where none is needed."""
    return tuple(g.to(dtype) if need and dtype is not None else None for g, dtype, need in zip(grads, dtypes, needs))


def recompute_grads(inputs, delta_softplus: bool, dy: torch.Tensor, needs) -> tuple:
    """Gradients for ``inputs`` = (u, delta, A, B, C, D, delta_bias) from the forward run again
    (the registered op's backward, which keeps no checkpoints of its own)."""
    _, ops, ckpt = scan_forward(*inputs, delta_softplus, every=CHECKPOINT_EVERY)
    grads = scan_backward(ops, ckpt, CHECKPOINT_EVERY, delta_softplus, dy, inputs[0].shape[1] // inputs[3].shape[1])
    return _as_inputs(grads, [None if t is None else t.dtype for t in inputs], needs)


class NumbaScan(torch.autograd.Function):
    """The selective scan on CPU with a numba backward (checkpointed, see the module's doc)."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, delta_bias, delta_softplus):
        y, ops, ckpt = scan_forward(u, delta, A, B, C, D, delta_bias, delta_softplus, every=CHECKPOINT_EVERY)
        ctx.save_for_backward(*ops, ckpt)
        ctx.delta_softplus = bool(delta_softplus)
        ctx.per_group = u.shape[1] // B.shape[1]
        ctx.dtypes = [None if t is None else t.dtype for t in (u, delta, A, B, C, D, delta_bias)]
        return y.contiguous()

    @staticmethod
    def backward(ctx, dy):
        *ops, ckpt = ctx.saved_tensors
        grads = scan_backward(ops, ckpt, CHECKPOINT_EVERY, ctx.delta_softplus, dy, ctx.per_group)
        return (*_as_inputs(grads, ctx.dtypes, ctx.needs_input_grad[:7]), None)
