"""err-stream: the ERR restoration network (CVPR 2025) on images and video, exactly and fast."""

from __future__ import annotations

__version__ = "0.1.0"

from .engine import Restorer
from .image import restore_image
from .model import ERR, ERRConfig
from .weights import CheckpointError, load_model

__all__ = ["ERR", "ERRConfig", "Restorer", "restore_image", "load_model", "CheckpointError", "__version__"]
