"""err-stream: the ERR restoration network (CVPR 2025) on images and video, exactly and fast.

Importing the package changes nothing in the process (no environment variables, no thread
settings) and does not import torch: the names below load on first use (so ``err-stream``
answers Ctrl-C during start-up itself, and ``--help`` is quick). Front ends call
:func:`err_stream.runtime.configure` for the process-wide settings.
"""

from __future__ import annotations

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "ERR": ".model",
    "ERRConfig": ".model",
    "Restorer": ".engine.restorer",
    "RestoreSettings": ".engine.settings",
    "restore_image": ".image",
    "transcode": ".video.run",
    "TranscodeOptions": ".video.options",
    "load_model": ".weights",
    "CheckpointError": ".weights",
    "SettingError": ".errors",
    "UserError": ".errors",
}
__all__ = [*_EXPORTS, "__version__"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
