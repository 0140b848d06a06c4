"""Inference engine: the Restorer (device, precision, padding, exact tiling) and its settings,
the streaming executor every front end runs it through, and the output guard.

Names are imported on first use, so that ``err_stream.engine.settings`` (used to parse
command-line options) does not pull in torch.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "Restorer": ".restorer",
    "TilePlan": ".restorer",
    "PRECISIONS": ".restorer",
    "load_restorer": ".restorer",
    "pad_to_multiple": ".padding",
    "RestoreSettings": ".settings",
    "StreamingExecutor": ".executor",
    "Ticket": ".executor",
    "InputSlot": ".executor",
    "ExecutorClosed": ".executor",
    "OutputRangeError": ".output_check",
}
__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
