"""Compiled CPU selective scan (numba): one thread per (batch, channel) row, the state kept in
registers, no L x D x N temporaries. This is what makes ERR practical on a CPU."""

from __future__ import annotations

import math

import numba
import numpy as np
import torch


@numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
def _scan_kernel(u, delta, A, B, C, D, has_d, bias, softplus, out):  # pragma: no cover - compiled
    bsz, d, length = u.shape
    g = B.shape[1]
    n_state = A.shape[1]
    per_group = d // g
    for row in numba.prange(bsz * d):
        b = row // d
        c = row - b * d
        k = c // per_group
        h = np.zeros(n_state, dtype=np.float32)
        a_row = A[c]
        dd = D[c] if has_d else np.float32(0.0)
        bb = bias[c]
        for t in range(length):
            dt = delta[b, c, t] + bb
            if softplus:
                # softplus as torch computes it: linear above 20
                dt = dt if dt > 20.0 else np.float32(math.log1p(math.exp(dt)))
            x = u[b, c, t]
            dtx = dt * x
            acc = np.float32(0.0)
            for n in range(n_state):
                h[n] = math.exp(dt * a_row[n]) * h[n] + dtx * B[b, k, n, t]
                acc += h[n] * C[b, k, n, t]
            out[b, c, t] = acc + dd * x


def selective_scan_numba(u, delta, A, B, C, D, delta_bias, delta_softplus):
    """numba backend of :func:`err_stream.ops.selective_scan` (CPU, inference only)."""
    un = u.detach().float().contiguous().numpy()
    dn = delta.detach().float().contiguous().numpy()
    An = A.detach().float().contiguous().numpy()
    Bn = B.detach().float().contiguous().numpy()
    Cn = C.detach().float().contiguous().numpy()
    d = u.shape[1]
    Dn = np.zeros(d, np.float32) if D is None else D.detach().float().contiguous().numpy()
    bias = np.zeros(d, np.float32) if delta_bias is None else delta_bias.detach().float().contiguous().numpy()
    out = np.empty(un.shape, np.float32)
    _scan_kernel(un, dn, An, Bn, Cn, Dn, D is not None, bias, bool(delta_softplus), out)
    return torch.from_numpy(out)
