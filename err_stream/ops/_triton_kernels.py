"""Triton kernels for CUDA: the selective scan and the group rational.

Imported only by the ``"triton"`` backends (never at package import), so the package works
without triton or CUDA. Both kernels also run under Triton's interpreter
(``TRITON_INTERPRET=1``) on CPU tensors, which is how the tests check them without a GPU.

Selective scan: one program per (batch, channel) row keeps the ``N`` float32 states and walks
the sequence in chunks of ``CHUNK`` tokens. Inside a chunk the recurrence
``h_t = a_t h_{t-1} + b_t`` is an associative scan over the affine maps ``(a_t, b_t)``
(``tl.associative_scan``), run on an ``N x CHUNK`` tile whose loads are coalesced along time; the
chunk's start state enters as ``h_t = A_t h_start + B_t`` with ``(A_t, B_t)`` the scanned maps.
Chunks of 128 tokens with 2 warps per program were the fastest setting on an H100 at ERR's 4K
shapes (benchmarks/gpu_ops_check.py times the alternatives).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["selective_scan_triton", "selective_scan_triton_chunked", "group_rational_triton"]


@triton.jit
def _compose(a_first, b_first, a_then, b_then):
    # Applying h -> a_first h + b_first, then h -> a_then h + b_then.
    return a_first * a_then, a_then * b_first + b_then


@triton.jit
def _log1p(y):
    # Accurate log(1 + y) from log (Goldberg's trick); tl has no log1p that also runs
    # under the interpreter.
    w = 1.0 + y
    return tl.where(w == 1.0, y, tl.log(w) * (y / (w - 1.0)))


@triton.jit
def _selective_scan_kernel(
    u_ptr, delta_ptr, a_ptr, b_ptr, c_ptr, dskip_ptr, bias_ptr, out_ptr,
    n_channels, length, per_group, n_groups,
    HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    N_STATE: tl.constexpr, BLOCK_N: tl.constexpr, CHUNK: tl.constexpr,
):
    row = tl.program_id(0)  # over batch * channels
    bi = row // n_channels
    ch = row % n_channels
    grp = ch // per_group
    row_off = row.to(tl.int64) * length
    bc_off = (bi * n_groups + grp).to(tl.int64) * N_STATE * length

    n_idx = tl.arange(0, BLOCK_N)
    n_ok = n_idx < N_STATE
    a = tl.load(a_ptr + ch * N_STATE + n_idx, mask=n_ok, other=0.0).to(tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + ch).to(tl.float32)
    if HAS_D:
        d_skip = tl.load(dskip_ptr + ch).to(tl.float32)
    t_idx = tl.arange(0, CHUNK)
    is_last = (t_idx == CHUNK - 1)[None, :]
    h = tl.zeros([BLOCK_N], dtype=tl.float32)

    for t0 in range(0, length, CHUNK):
        t = t0 + t_idx
        t_ok = t < length
        dt = tl.load(delta_ptr + row_off + t, mask=t_ok, other=0.0).to(tl.float32)
        if HAS_BIAS:
            dt = dt + bias
        if SOFTPLUS:  # torch's softplus: linear above 20
            dt = tl.where(dt > 20.0, dt, _log1p(tl.exp(dt)))
        dt = tl.where(t_ok, dt, 0.0)  # padding tokens are identity maps
        u = tl.load(u_ptr + row_off + t, mask=t_ok, other=0.0).to(tl.float32)
        nt_ok = n_ok[:, None] & t_ok[None, :]
        nt_off = bc_off + n_idx[:, None] * length + t[None, :]
        b_nt = tl.load(b_ptr + nt_off, mask=nt_ok, other=0.0).to(tl.float32)
        c_nt = tl.load(c_ptr + nt_off, mask=nt_ok, other=0.0).to(tl.float32)

        decay = tl.exp(dt[None, :] * a[:, None])  # (BLOCK_N, CHUNK)
        drive = (dt * u)[None, :] * b_nt
        acc_a, acc_b = tl.associative_scan((decay, drive), axis=1, combine_fn=_compose)
        hs = acc_a * h[:, None] + acc_b
        y = tl.sum(hs * c_nt, axis=0)
        if HAS_D:
            y = y + d_skip * u
        tl.store(out_ptr + row_off + t, y, mask=t_ok)
        h = tl.sum(tl.where(is_last, hs, 0.0), axis=1)  # state after the chunk


def selective_scan_triton(
    u, delta, A, B, C, D, delta_bias, delta_softplus, chunk: int = 128, num_warps: int = 2
):
    """triton backend of :func:`err_stream.ops.selective_scan` (inference only): float32 state
    and output, inputs of any float dtype."""
    bsz, d, length = u.shape
    n_groups, n_state = B.shape[1], B.shape[2]
    u = u.detach().contiguous()
    delta = delta.detach().contiguous()
    A = A.detach().float().contiguous()
    B = B.detach().contiguous()
    C = C.detach().contiguous()
    out = torch.empty(bsz, d, length, device=u.device, dtype=torch.float32)
    if out.numel() == 0:
        return out
    dskip = A if D is None else D.detach().float().contiguous()  # placeholder pointer when absent
    bias = A if delta_bias is None else delta_bias.detach().float().contiguous()
    chunk = min(chunk, max(16, triton.next_power_of_2(length)))
    _selective_scan_kernel[(bsz * d,)](
        u, delta, A, B, C, dskip, bias, out,
        d, length, d // n_groups, n_groups,
        HAS_D=D is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=bool(delta_softplus),
        N_STATE=n_state, BLOCK_N=max(16, triton.next_power_of_2(n_state)), CHUNK=chunk,
        num_warps=num_warps,
    )
    return out


@triton.jit
def _group_rational_kernel(x_ptr, num_ptr, den_ptr, out_ptr, total, channels, per_group, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ok = offs < total
    x = tl.load(x_ptr + offs, mask=ok, other=0.0).to(tl.float32)
    grp = ((offs % channels) // per_group).to(tl.int32)
    # P(x) = a0 + a1 x + ... + a5 x^5 (shared); Q(x) = 1 + sum_j |b_j| |x|^(j+1) (per group).
    p = tl.load(num_ptr + 5)
    p = p * x + tl.load(num_ptr + 4)
    p = p * x + tl.load(num_ptr + 3)
    p = p * x + tl.load(num_ptr + 2)
    p = p * x + tl.load(num_ptr + 1)
    p = p * x + tl.load(num_ptr + 0)
    ax = tl.abs(x)
    den = den_ptr + grp * 4
    q = tl.abs(tl.load(den + 3, mask=ok, other=0.0))
    q = q * ax + tl.abs(tl.load(den + 2, mask=ok, other=0.0))
    q = q * ax + tl.abs(tl.load(den + 1, mask=ok, other=0.0))
    q = q * ax + tl.abs(tl.load(den + 0, mask=ok, other=0.0))
    q = q * ax + 1.0
    tl.store(out_ptr + offs, (p / q).to(out_ptr.dtype.element_ty), mask=ok)


def group_rational_triton(x: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """triton backend of :func:`err_stream.ops.group_rational` (inference only): computed in
    float32, returned in ``x``'s dtype."""
    num = numerator.detach().float().reshape(-1).contiguous()
    den = denominator.detach().float().contiguous()
    if num.numel() != 6 or den.dim() != 2 or den.shape[1] != 4:
        raise ValueError(f"group_rational: expected (1, 6) and (groups, 4) coefficients, got {tuple(numerator.shape)} "
                         f"and {tuple(denominator.shape)}")
    xc = x.detach().contiguous()
    out = torch.empty_like(xc)
    total = xc.numel()
    if total:
        channels = x.shape[-1]
        block = 1024
        _group_rational_kernel[(triton.cdiv(total, block),)](
            xc, num, den, out, total, channels, channels // den.shape[0], BLOCK=block, num_warps=4
        )
    return out


# ---------------------------------------------------------------- chunk-parallel selective scan
#
# The kernel above gives each (batch, channel) row one program that walks its chunks one after
# another: at ERR's 4K shapes that is 512 programs, each ~1,000 chunks deep, far too few to
# fill a GPU. The chunk-parallel version runs one program per (row, chunk) in three launches:
#
#   1. per chunk, from a zero state: the chunk's composed decay prod(exp(dt a)) and end state;
#   2. per row, the chunks' maps composed in order (an associative scan over chunks, BLOCK_C
#      at a time), giving the true state at the end of every chunk;
#   3. per chunk again, the scan restarted from the previous chunk's end state, and the output
#      y = <C, h> + D u.
#
# The inputs are read twice (passes 1 and 3) instead of once, in exchange for rows x chunks
# programs instead of rows.


@triton.jit
def _chunk_maps(
    u_ptr, delta_ptr, b_ptr, row_off, bc_off, t0, length, a, bias, n_idx, n_ok,
    HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, CHUNK: tl.constexpr,
):
    # The scanned affine maps (acc_a, acc_b) of one chunk (BLOCK_N x CHUNK), plus dt and u.
    t = t0 + tl.arange(0, CHUNK)
    t_ok = t < length
    dt = tl.load(delta_ptr + row_off + t, mask=t_ok, other=0.0).to(tl.float32)
    if HAS_BIAS:
        dt = dt + bias
    if SOFTPLUS:
        dt = tl.where(dt > 20.0, dt, _log1p(tl.exp(dt)))
    dt = tl.where(t_ok, dt, 0.0)  # padding tokens are identity maps
    u = tl.load(u_ptr + row_off + t, mask=t_ok, other=0.0).to(tl.float32)
    nt_ok = n_ok[:, None] & t_ok[None, :]
    b_nt = tl.load(b_ptr + bc_off + n_idx[:, None] * length + t[None, :], mask=nt_ok, other=0.0).to(tl.float32)
    decay = tl.exp(dt[None, :] * a[:, None])
    drive = (dt * u)[None, :] * b_nt
    acc_a, acc_b = tl.associative_scan((decay, drive), axis=1, combine_fn=_compose)
    return acc_a, acc_b, u, t, t_ok, nt_ok


@triton.jit
def _scan_chunk_state_kernel(
    u_ptr, delta_ptr, a_ptr, b_ptr, bias_ptr, decay_ptr, state_ptr,
    n_channels, length, per_group, n_groups, n_chunks,
    HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, N_STATE: tl.constexpr, BLOCK_N: tl.constexpr,
    CHUNK: tl.constexpr,
):
    row = tl.program_id(0)
    chunk = tl.program_id(1)
    bi = row // n_channels
    ch = row % n_channels
    row_off = row.to(tl.int64) * length
    bc_off = (bi * n_groups + ch // per_group).to(tl.int64) * N_STATE * length
    n_idx = tl.arange(0, BLOCK_N)
    n_ok = n_idx < N_STATE
    a = tl.load(a_ptr + ch * N_STATE + n_idx, mask=n_ok, other=0.0).to(tl.float32)
    bias = 0.0
    if HAS_BIAS:
        bias = tl.load(bias_ptr + ch).to(tl.float32)
    acc_a, acc_b, _, _, _, _ = _chunk_maps(
        u_ptr, delta_ptr, b_ptr, row_off, bc_off, chunk * CHUNK, length, a, bias, n_idx, n_ok,
        HAS_BIAS, SOFTPLUS, CHUNK,
    )
    is_last = (tl.arange(0, CHUNK) == CHUNK - 1)[None, :]
    out = (row.to(tl.int64) * n_chunks + chunk) * BLOCK_N + n_idx
    tl.store(decay_ptr + out, tl.sum(tl.where(is_last, acc_a, 0.0), axis=1))
    tl.store(state_ptr + out, tl.sum(tl.where(is_last, acc_b, 0.0), axis=1))


@triton.jit
def _scan_chunk_carry_kernel(decay_ptr, state_ptr, n_chunks, BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr):
    # In place: state[row, c] becomes the true state after chunk c.
    row = tl.program_id(0)
    n_idx = tl.arange(0, BLOCK_N)
    c_idx = tl.arange(0, BLOCK_C)
    is_last = (c_idx == BLOCK_C - 1)[:, None]
    carry = tl.zeros([BLOCK_N], dtype=tl.float32)
    base = row.to(tl.int64) * n_chunks * BLOCK_N
    for c0 in range(0, n_chunks, BLOCK_C):
        c = c0 + c_idx
        ok = (c < n_chunks)[:, None]
        off = base + c[:, None] * BLOCK_N + n_idx[None, :]
        dec = tl.load(decay_ptr + off, mask=ok, other=1.0)
        st = tl.load(state_ptr + off, mask=ok, other=0.0)
        pa, pb = tl.associative_scan((dec, st), axis=0, combine_fn=_compose)
        ends = pa * carry[None, :] + pb
        tl.store(state_ptr + off, ends, mask=ok)
        carry = tl.sum(tl.where(is_last, ends, 0.0), axis=0)


@triton.jit
def _scan_chunk_output_kernel(
    u_ptr, delta_ptr, a_ptr, b_ptr, c_ptr, dskip_ptr, bias_ptr, state_ptr, out_ptr,
    n_channels, length, per_group, n_groups, n_chunks,
    HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    N_STATE: tl.constexpr, BLOCK_N: tl.constexpr, CHUNK: tl.constexpr,
):
    row = tl.program_id(0)
    chunk = tl.program_id(1)
    bi = row // n_channels
    ch = row % n_channels
    row_off = row.to(tl.int64) * length
    bc_off = (bi * n_groups + ch // per_group).to(tl.int64) * N_STATE * length
    n_idx = tl.arange(0, BLOCK_N)
    n_ok = n_idx < N_STATE
    a = tl.load(a_ptr + ch * N_STATE + n_idx, mask=n_ok, other=0.0).to(tl.float32)
    bias = 0.0
    if HAS_BIAS:
        bias = tl.load(bias_ptr + ch).to(tl.float32)
    acc_a, acc_b, u, t, t_ok, nt_ok = _chunk_maps(
        u_ptr, delta_ptr, b_ptr, row_off, bc_off, chunk * CHUNK, length, a, bias, n_idx, n_ok,
        HAS_BIAS, SOFTPLUS, CHUNK,
    )
    prev = (row.to(tl.int64) * n_chunks + chunk - 1) * BLOCK_N + n_idx
    h0 = tl.load(state_ptr + prev, mask=(chunk > 0) & n_ok, other=0.0)
    c_nt = tl.load(c_ptr + bc_off + n_idx[:, None] * length + t[None, :], mask=nt_ok, other=0.0).to(tl.float32)
    y = tl.sum((acc_a * h0[:, None] + acc_b) * c_nt, axis=0)
    if HAS_D:
        y = y + tl.load(dskip_ptr + ch).to(tl.float32) * u
    tl.store(out_ptr + row_off + t, y, mask=t_ok)


def selective_scan_triton_chunked(
    u, delta, A, B, C, D, delta_bias, delta_softplus, chunk: int = 128, num_warps: int = 4, block_chunks: int = 64
):
    """Chunk-parallel triton backend of :func:`err_stream.ops.selective_scan` (inference only):
    one program per (row, chunk), see the comment above. Same contract as
    :func:`selective_scan_triton`."""
    bsz, d, length = u.shape
    n_groups, n_state = B.shape[1], B.shape[2]
    u = u.detach().contiguous()
    delta = delta.detach().contiguous()
    A = A.detach().float().contiguous()
    B = B.detach().contiguous()
    C = C.detach().contiguous()
    out = torch.empty(bsz, d, length, device=u.device, dtype=torch.float32)
    if out.numel() == 0:
        return out
    dskip = A if D is None else D.detach().float().contiguous()
    bias = A if delta_bias is None else delta_bias.detach().float().contiguous()
    chunk = min(chunk, max(16, triton.next_power_of_2(length)))
    n_chunks = triton.cdiv(length, chunk)
    block_n = max(16, triton.next_power_of_2(n_state))
    decay = torch.empty(bsz * d, n_chunks, block_n, device=u.device, dtype=torch.float32)
    state = torch.empty_like(decay)
    flags = dict(HAS_BIAS=delta_bias is not None, SOFTPLUS=bool(delta_softplus), N_STATE=n_state, BLOCK_N=block_n)
    _scan_chunk_state_kernel[(bsz * d, n_chunks)](
        u, delta, A, B, bias, decay, state, d, length, d // n_groups, n_groups, n_chunks,
        CHUNK=chunk, num_warps=num_warps, **flags,
    )
    _scan_chunk_carry_kernel[(bsz * d,)](
        decay, state, n_chunks, BLOCK_N=block_n, BLOCK_C=min(block_chunks, max(16, triton.next_power_of_2(n_chunks))),
        num_warps=num_warps,
    )
    _scan_chunk_output_kernel[(bsz * d, n_chunks)](
        u, delta, A, B, C, dskip, bias, state, out, d, length, d // n_groups, n_groups, n_chunks,
        HAS_D=D is not None, CHUNK=chunk, num_warps=num_warps, **flags,
    )
    return out
