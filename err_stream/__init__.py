"""err-stream: the ERR restoration network (CVPR 2025) on images and video, exactly and fast."""

from __future__ import annotations

import os as _os

# OpenMP threads (torch's and numba's) spin while waiting for work by default. When anything
# else wants the cores (decoder/encoder threads, VapourSynth, another process) the spinning
# starves the real work: a 256x384 frame took 3.5 s instead of 0.45 s on a loaded 2-core
# machine. Passive waiting costs little here and avoids that; set before torch loads libgomp
# (an explicit OMP_WAIT_POLICY from the user wins).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

# The public names load torch and the model on first use, not at import: ``err-stream``
# answers Ctrl-C during start-up itself (exit 130), and ``--help`` is quick.
_LAZY = {
    "Restorer": ".engine",
    "restore_image": ".image",
    "ERR": ".model",
    "ERRConfig": ".model",
    "CheckpointError": ".weights",
    "load_model": ".weights",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ERR", "ERRConfig", "Restorer", "restore_image", "load_model", "CheckpointError", "__version__"]
