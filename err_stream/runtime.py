"""Process-wide settings: CPU threads, OpenMP waiting, denormals. Front ends call configure().

Importing err_stream changes none of these: the command line, the VapourSynth filter and
training call :func:`configure` (the CLI through :func:`configured`, which undoes what it
can when the call ends, since ``err_stream.cli.main`` may run inside another program).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def configure(threads: int | None = None, *, omp_wait_policy: str = "passive", flush_denormal: bool = True) -> bool:
    """Apply the settings ERR runs best with; returns whether denormal flushing was turned on
    (so that a caller can turn it off again).

    Args:
        threads: CPU threads for torch (and numba, which follows torch's count); None keeps
            torch's choice.
        omp_wait_policy: OpenMP threads (torch's and numba's) spin while waiting for work by
            default. When anything else wants the cores (decoder/encoder threads,
            VapourSynth, another process) the spinning starves the real work: a 256x384
            frame took 3.5 s instead of 0.45 s on a loaded 2-core machine. ``"passive"``
            waits without spinning. ``"active"`` spins: training, which hands work to its
            threads thousands of times a step, runs faster with it on a machine it has to
            itself (a 2-core step of 4 x 128² crops: 0.48 s instead of 0.61 s; ``err-stream
            train --active-wait``). ``""`` leaves OpenMP's
            default. It only takes effect before torch is imported (libgomp reads it when it
            loads), and an ``OMP_WAIT_POLICY`` set by the user wins.
        flush_denormal: flush denormal floats to zero on this thread and on the threads it
            starts from now on. The scan's decays underflow into denormals, which make CPU
            arithmetic 10-20x slower.
    """
    if omp_wait_policy not in ("passive", "active", ""):
        raise ValueError(f"configure: omp_wait_policy must be 'passive', 'active' or '', got {omp_wait_policy!r}")
    if omp_wait_policy and "OMP_WAIT_POLICY" not in os.environ:
        if "torch" in sys.modules:
            log.debug("OMP_WAIT_POLICY not set: torch (and its OpenMP runtime) is already loaded")
        else:
            os.environ["OMP_WAIT_POLICY"] = omp_wait_policy.upper()
    import torch

    if threads is not None:
        if threads < 1:
            raise ValueError(f"configure: threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    return bool(flush_denormal and torch.set_flush_denormal(True))


@contextmanager
def configured(threads: int | None = None, **kwargs) -> Iterator[None]:
    """:func:`configure` for the duration of a call; the denormal flag is restored after."""
    flushing = configure(threads, **kwargs)
    try:
        yield
    finally:
        if flushing:
            import torch

            torch.set_flush_denormal(False)


def cache_dir() -> Path:
    """err-stream's cache folder: ``$ERR_STREAM_CACHE``, else err-stream's folder in the user's
    cache directory (``$XDG_CACHE_HOME/err-stream`` or ``~/.cache/err-stream`` on Linux, via
    platformdirs). Compiled numba kernels and torch.compile artefacts go there.

    Every compile asks for this folder, so it must not fail where platformdirs is missing
    (a bare Python such as a GPU machine's image): there the XDG rules, which are what
    platformdirs answers on Linux, are applied directly."""
    root = os.environ.get("ERR_STREAM_CACHE")
    if root:
        return Path(root)
    try:
        import platformdirs
    except ImportError:
        xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
        return (Path(xdg) if xdg else Path.home() / ".cache") / "err-stream"
    return Path(platformdirs.user_cache_dir("err-stream", appauthor=False))


def numba_cache_dir() -> Path:
    """Where the compiled numba kernels are cached (never inside the installed package)."""
    return cache_dir() / "numba"
