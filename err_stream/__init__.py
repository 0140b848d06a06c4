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

from .engine import Restorer
from .image import restore_image
from .model import ERR, ERRConfig
from .weights import CheckpointError, load_model

__all__ = ["ERR", "ERRConfig", "Restorer", "restore_image", "load_model", "CheckpointError", "__version__"]
