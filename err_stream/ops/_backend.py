"""Backend choice for the ops: decided once per (op, device kind) and cached.

Override with the environment variable ``ERR_STREAM_<OP>_BACKEND`` (for example
``ERR_STREAM_SELECTIVE_SCAN_BACKEND=torch``), e.g. to work around one, or in-process with
:func:`forced_backend` (benchmarks and comparisons).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import torch

# Preference order per op and device kind; the first whose requirements import wins.
_PREFERENCE: dict[tuple[str, str], tuple[str, ...]] = {
    ("selective_scan", "cuda"): ("mamba_ssm", "triton", "torch"),
    ("selective_scan", "cpu"): ("numba", "torch"),
    ("group_rational", "cuda"): ("kat_rational", "triton", "torch"),
    ("group_rational", "cpu"): ("torch",),
}

# Backends that support autograd (used whenever a gradient is needed); numba's scan trains
# through its own backward (ops/_numba_scan_grad.py).
_DIFFERENTIABLE = {"reference", "torch", "kat_rational", "mamba_ssm", "numba"}

# Backends forced in-process by forced_backend(), per op (innermost wins).
_forced: dict[str, str] = {}

_REQUIRES = {
    "mamba_ssm": "mamba_ssm",
    "kat_rational": "kat_rational",
    "triton": "triton",
    "triton_chunked": "triton",
    "numba": "numba",
}


@lru_cache(maxsize=None)
def cuda_backend_available(name: str) -> bool:
    """Whether the optional package behind ``name`` can be imported (without importing it
    at module load; the import itself happens on first use)."""
    module = _REQUIRES.get(name)
    if module is None:
        return True
    if importlib.util.find_spec(module) is None:
        return False
    try:  # the CUDA extensions can be installed but broken (ABI mismatch): check once
        importlib.import_module(module if name != "mamba_ssm" else "mamba_ssm.ops.selective_scan_interface")
        if name == "kat_rational":
            importlib.import_module("kat_rational.kat_1dgroup")
    except Exception:
        return False
    return True


@lru_cache(maxsize=None)
def _chosen(op: str, kind: str) -> str:
    forced = os.environ.get(f"ERR_STREAM_{op.upper()}_BACKEND")
    if forced:
        return forced
    if kind == "cuda" and not torch.cuda.is_available():
        return "torch"
    for name in _PREFERENCE.get((op, kind), ("torch",)):
        if cuda_backend_available(name):
            return name
    return "torch"


def pick_backend(op: str, x: torch.Tensor, needs_grad: bool | None = None) -> str:
    """The backend ``op`` uses for tensor ``x``: fast kernels for inference, a differentiable
    one when autograd is recording and a gradient is wanted (``needs_grad``; default: whether
    ``x`` requires one)."""
    kind = "cuda" if x.is_cuda else "cpu"
    name = _forced.get(op) or _chosen(op, kind)
    if needs_grad is None:
        needs_grad = x.requires_grad
    if torch.is_grad_enabled() and needs_grad and name not in _DIFFERENTIABLE:
        return "torch"
    return name


def describe_backends(device: torch.device | str = "cpu") -> dict[str, str]:
    """Which backend each op uses on ``device`` (for JSON summaries and bug reports)."""
    kind = "cuda" if torch.device(device).type == "cuda" else "cpu"
    return {op: _forced.get(op) or _chosen(op, kind) for op in ("selective_scan", "group_rational")}


@contextmanager
def forced_backend(op: str, name: str) -> Iterator[None]:
    """Use backend ``name`` for ``op`` (``"selective_scan"`` or ``"group_rational"``) on every
    device inside the ``with`` block, e.g. ``forced_backend("selective_scan", "reference")``.
    Autograd still falls back to a differentiable backend."""
    previous = _forced.get(op)
    _forced[op] = name
    try:
        yield
    finally:
        if previous is None:
            _forced.pop(op, None)
        else:
            _forced[op] = previous
