"""Compiled CPU selective scan (numba), the CPU inference backend (training: _numba_scan_grad).

Layout is what makes it fast. The scan is sequential in time but independent across channels,
so the kernel vectorises across channels: it works on blocks of ``LANES`` channels of one scan
group, which share ``B_t`` and ``C_t``, with the ``N x LANES`` state kept in L1. One state update
``h = exp(dt * A) * h + dt * u * B`` then costs a few SIMD instructions per ``LANES`` channels,
and the sum over the state index is a plain vector accumulation (no horizontal reduction, no
re-association of floating-point sums).

The ``LANES`` rows of ``u``, ``delta`` and the output are read and written token by token (that
is ``LANES`` sequential streams, which the hardware prefetchers follow), so they need no
transposed copies; only ``B`` and ``C`` (one row per group, not per channel) are transposed to
``(batch, G, L, N)`` once so that a token's ``N`` values are contiguous.

libm's ``expf``/``log1pf`` are scalar calls that LLVM cannot vectorise (numba ships no vector
math library), so the kernel uses branch-free float32 versions that do vectorise:
:func:`_exp_f32` (Cody-Waite range reduction and a degree-6 polynomial, the classic Cephes scheme)
and :func:`_log1p_f32` (Cephes' logf polynomial with Goldberg's log1p correction), for
``exp(dt * A)`` and for ``softplus(delta + delta_bias)``, computed in the kernel. The tests check
them against float64: exp within 1 ulp, softplus within 3 ulp (torch's own is within 1.5); exp
flushes results below the smallest normal float32 (x < -87.34) to 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numba
import numpy as np
import torch
import torch.nn.functional as F
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ..runtime import numba_cache_dir


def cached_njit(**options):
    """``numba.njit(cache=True, **options)`` caching in the user's cache directory.

    numba caches compiled functions beside their source by default, that is inside the
    installed package. Ours go to the user's cache directory (NUMBA_CACHE_DIR, when set, wins).
    numba picks a function's cache place when it is decorated, so the setting is put back
    at once: other packages' numba functions keep numba's own default."""

    def decorate(fn):
        before = numba.config.CACHE_DIR
        if not before:
            numba.config.CACHE_DIR = str(numba_cache_dir())
        try:
            return numba.njit(cache=True, **options)(fn)
        finally:
            numba.config.CACHE_DIR = before

    return decorate


# Channels per SIMD block: 16 float32 = one AVX-512 register (two AVX2 registers).
LANES = 16

# Every fast-math flag except re-association, so that LLVM keeps the range reduction
# x - n*ln2_hi - n*ln2_lo in order (fusing it with "reassoc" would lose the low part).
_FASTMATH = {"nnan", "ninf", "nsz", "arcp", "contract", "afn"}

_f32 = np.float32
_LOG2E = _f32(1.44269504088896341)
_LN2_HI = _f32(0.693359375)
_LN2_LO = _f32(-2.12194440e-4)
_EXP_MIN = _f32(-87.33654)  # exp(_EXP_MIN) is the smallest normal float32
_EXP_MAX = _f32(88.37626)  # keeps 2^n finite; exp overflows at 88.72 anyway
_P0, _P1, _P2 = _f32(1.9875691500e-4), _f32(1.3981999507e-3), _f32(8.3334519073e-3)
_P3, _P4, _P5 = _f32(4.1665795894e-2), _f32(1.6666665459e-1), _f32(5.0000001201e-1)
_HALF, _ONE, _ZERO = _f32(0.5), _f32(1.0), _f32(0.0)
_SQRT2 = _f32(1.41421356237)
_L0, _L1, _L2 = _f32(7.0376836292e-2), _f32(-1.1514610310e-1), _f32(1.1676998740e-1)
_L3, _L4, _L5 = _f32(-1.2420140846e-1), _f32(1.4249322787e-1), _f32(-1.6668057665e-1)
_L6, _L7, _L8 = _f32(2.0000714765e-1), _f32(-2.4999993993e-1), _f32(3.3333331174e-1)
_SOFTPLUS_LINEAR = _f32(20.0)  # torch's softplus threshold: linear above


@intrinsic
def _bits_to_float32(typingctx, bits):  # pragma: no cover - compiled
    """Reinterpret the low 32 bits of an integer as float32 (a bitcast, free and vectorisable)."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        v = args[0]
        if bits.bitwidth > 32:
            v = builder.trunc(v, ir.IntType(32))
        return builder.bitcast(v, ir.FloatType())

    return types.float32(bits), codegen


@numba.njit(inline="always", fastmath=_FASTMATH)
def _exp_f32(x):  # pragma: no cover - compiled
    """float32 exp, branch-free so that loops calling it vectorise."""
    xc = min(max(x, _EXP_MIN), _EXP_MAX)
    n = np.floor(xc * _LOG2E + _HALF)
    r = xc - n * _LN2_HI
    r = r - n * _LN2_LO
    p = _P0 * r + _P1
    p = p * r + _P2
    p = p * r + _P3
    p = p * r + _P4
    p = p * r + _P5
    p = p * (r * r) + r + _ONE
    scale = _bits_to_float32((np.int32(n) + 127) << 23)
    return p * scale if x >= _EXP_MIN else _ZERO


@numba.njit(inline="always", fastmath=_FASTMATH)
def _log1p_f32(y):  # pragma: no cover - compiled
    """float32 log(1 + y) for 0 <= y <= 1, branch-free."""
    w = y + _ONE  # in [1, 2]
    big = w > _SQRT2
    m = w * _HALF if big else w  # m in [sqrt(1/2), sqrt(2)]
    e = _ONE if big else _ZERO
    x = m - _ONE
    z = x * x
    p = _L0 * x + _L1
    p = p * x + _L2
    p = p * x + _L3
    p = p * x + _L4
    p = p * x + _L5
    p = p * x + _L6
    p = p * x + _L7
    p = p * x + _L8
    r = p * x * z + e * _LN2_LO - _HALF * z
    log_w = x + r + e * _LN2_HI
    # log(w) is exact-ish for the rounded w = fl(1 + y); scale back to 1 + y (Goldberg).
    d = w - _ONE
    return log_w * (y / d) if d != _ZERO else y


@numba.njit(inline="always", fastmath=_FASTMATH)
def _softplus_f32(x):  # pragma: no cover - compiled
    """torch's softplus (beta 1, threshold 20) in float32, branch-free."""
    sp = max(x, _ZERO) + _log1p_f32(_exp_f32(-abs(x)))
    return x if x > _SOFTPLUS_LINEAR else sp


@numba.njit(inline="always", fastmath=_FASTMATH)
def _softplus_grad_f32(x):  # pragma: no cover - compiled
    """d softplus / dx as torch computes it: sigmoid(x), 1 above the linear threshold."""
    s = _ONE / (_ONE + _exp_f32(-x))  # exp(-x) is clamped, never inf: s underflows to ~0
    return _ONE if x > _SOFTPLUS_LINEAR else s


@cached_njit(fastmath=_FASTMATH)
def exp_f32_array(x, out):  # pragma: no cover - compiled
    """Elementwise :func:`_exp_f32` (for the accuracy test)."""
    for i in range(x.size):
        out[i] = _exp_f32(x[i])


@cached_njit(fastmath=_FASTMATH)
def softplus_f32_array(x, out):  # pragma: no cover - compiled
    """Elementwise :func:`_softplus_f32` (for the accuracy test)."""
    for i in range(x.size):
        out[i] = _softplus_f32(x[i])


@cached_njit(parallel=True, fastmath=_FASTMATH, nogil=True)
def _scan_kernel(u, delta, bias, softplus, a_t, B, C, d_skip, out, ckpt, every):  # pragma: no cover - compiled
    """u, delta, out: (b, D, L); bias, d_skip: (D,); a_t: (N, D); B, C: (b, G, L, N).
    D / G must be a multiple of LANES (the wrapper pads). With ``every`` > 0 the state after
    tokens every-1, 2*every-1, ... (all but the last chunk's) goes to ckpt (b, ceil(L/every)-1, N, D),
    for the backward pass; ``every`` = 0 saves nothing (inference)."""
    bsz, d, length = u.shape
    g = B.shape[1]
    n_state = B.shape[3]
    per_group = d // g
    blocks = d // LANES
    for job in numba.prange(bsz * blocks):
        bi = job // blocks
        c0 = (job - bi * blocks) * LANES
        k = c0 // per_group
        h = np.zeros((n_state, LANES), dtype=np.float32)
        a = np.empty((n_state, LANES), dtype=np.float32)
        for n in range(n_state):
            for j in range(LANES):
                a[n, j] = a_t[n, c0 + j]
        dtv = np.empty(LANES, dtype=np.float32)
        uv = np.empty(LANES, dtype=np.float32)
        dtu = np.empty(LANES, dtype=np.float32)
        acc = np.empty(LANES, dtype=np.float32)
        for t in range(length):
            for j in range(LANES):
                x = delta[bi, c0 + j, t] + bias[c0 + j]
                dtv[j] = _softplus_f32(x) if softplus else x
                uv[j] = u[bi, c0 + j, t]
                dtu[j] = dtv[j] * uv[j]
                acc[j] = _ZERO
            for n in range(n_state):
                bn = B[bi, k, t, n]
                cn = C[bi, k, t, n]
                for j in range(LANES):
                    hv = _exp_f32(dtv[j] * a[n, j]) * h[n, j] + dtu[j] * bn
                    h[n, j] = hv
                    acc[j] += hv * cn
            for j in range(LANES):
                out[bi, c0 + j, t] = acc[j] + d_skip[c0 + j] * uv[j]
            if every > 0 and (t + 1) % every == 0 and t + 1 < length:
                slot = (t + 1) // every - 1
                for n in range(n_state):
                    for j in range(LANES):
                        ckpt[bi, slot, n, c0 + j] = h[n, j]


def _pad_groups(x: torch.Tensor, groups: int, per_group: int, padded: int) -> torch.Tensor:
    """(..., D) -> (..., G * padded): zero channels appended to each group."""
    if padded == per_group:
        return x
    shape = x.shape[:-1]
    x = F.pad(x.reshape(*shape, groups, per_group), (0, padded - per_group))
    return x.reshape(*shape, groups * padded)


def padded_channels(d: int, groups: int) -> int:
    """Channels per group once padded to whole SIMD blocks."""
    return -(-(d // groups) // LANES) * LANES


def pad_rows(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(b, D, L) -> (b, G * padded, L) float32, contiguous: zero rows appended to each group."""
    d = x.shape[1]
    x = x.detach().float()
    padded = padded_channels(d, groups)
    if padded != d // groups:
        x = _pad_groups(x.transpose(1, 2), groups, d // groups, padded).transpose(1, 2)
    return x.contiguous()


def unpad_channels(x: torch.Tensor, groups: int, per_group: int, dim: int) -> torch.Tensor:
    """Drop the padding channels of dimension ``dim`` (G * padded -> G * per_group)."""
    padded = x.shape[dim] // groups
    if padded == per_group:
        return x
    x = x.unflatten(dim, (groups, padded)).narrow(dim + 1, 0, per_group)
    return x.flatten(dim, dim + 1)


def kernel_inputs(u, delta, A, B, C, D, delta_bias):
    """The kernels' float32, padded, contiguous operands:
    ``(u, delta, bias, a_t, B, C, d_skip)`` as in :func:`_scan_kernel` (delta without its bias)."""
    d = u.shape[1]
    g = B.shape[1]
    per_group = d // g
    padded = padded_channels(d, g)
    u32, dt = pad_rows(u, g), pad_rows(delta, g)
    bias = torch.zeros(d) if delta_bias is None else delta_bias.detach().float()
    d_skip = torch.zeros(d) if D is None else D.detach().float()
    a_t = A.detach().float().t()  # (N, D)
    if padded != per_group:
        a_t, bias, d_skip = (_pad_groups(v, g, per_group, padded) for v in (a_t, bias, d_skip))
    # B_t and C_t of a token contiguous: (b, G, L, N); small (G rows, not D).
    Bt = B.detach().float().transpose(2, 3).contiguous()
    Ct = C.detach().float().transpose(2, 3).contiguous()
    return (u32, dt, bias.contiguous(), a_t.contiguous(), Bt, Ct, d_skip.contiguous())


# Below this many state updates (batch x channels x tokens x states, about 0.1 ms of work) a
# kernel runs on one thread: waking the others costs more, a whole time slice on a busy machine.
_PARALLEL_WORK = 1 << 18


@contextmanager
def torch_thread_count(work: int = _PARALLEL_WORK) -> Iterator[None]:
    """Run numba kernels with torch's thread count (one thread for less than ``_PARALLEL_WORK``
    state updates of ``work``), and keep torch's setting.

    numba's OpenMP pool is torch's (same libgomp): use torch's thread count, and put it back
    afterwards, since launching the numba pool resets it."""
    threads = torch.get_num_threads()
    wanted = threads if work >= _PARALLEL_WORK else 1
    numba.set_num_threads(max(1, min(wanted, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def scan_forward(u, delta, A, B, C, D, delta_bias, delta_softplus, every: int = 0):
    """Run :func:`_scan_kernel`. Returns ``(y, operands, ckpt)``: y (b, D, L) float32 without
    padding, the padded operands of :func:`kernel_inputs` and the saved states (``every`` > 0)."""
    bsz, d, length = u.shape
    g = B.shape[1]
    ops = kernel_inputs(u, delta, A, B, C, D, delta_bias)
    u32, dt, bias, a_t, Bt, Ct, d_skip = ops
    slots = (length - 1) // every if every > 0 else 0
    ckpt = torch.empty(bsz, slots, a_t.shape[0], u32.shape[1])
    out = torch.empty_like(u32)
    with torch_thread_count(u32.numel() * a_t.shape[0]):
        _scan_kernel(
            u32.numpy(), dt.numpy(), bias.numpy(), bool(delta_softplus), a_t.numpy(), Bt.numpy(), Ct.numpy(),
            d_skip.numpy(), out.numpy(), ckpt.numpy(), int(every),
        )
    return unpad_channels(out, g, d // g, 1), ops, ckpt


def selective_scan_numba(u, delta, A, B, C, D, delta_bias, delta_softplus):
    """numba backend of :func:`err_stream.ops.selective_scan` (CPU). Differentiable: while
    autograd records, it runs as :class:`~._numba_scan_grad.NumbaScan` (the training scan)."""
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (u, delta, A, B, C, D, delta_bias)):
        from ._numba_scan_grad import NumbaScan

        return NumbaScan.apply(u, delta, A, B, C, D, delta_bias, delta_softplus)
    with torch.no_grad():
        y, _, _ = scan_forward(u, delta, A, B, C, D, delta_bias, delta_softplus)
        return y.contiguous()
