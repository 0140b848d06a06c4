"""Inference engine: the Restorer (device, precision, padding, exact tiling), the streaming
executor every front end runs it through, and the output guard."""

from .executor import ExecutorClosed, InputSlot, StreamingExecutor, Ticket
from .output_check import OutputRangeError
from .padding import pad_to_multiple
from .restorer import PRECISIONS, Restorer, TilePlan

__all__ = [
    "Restorer",
    "TilePlan",
    "PRECISIONS",
    "pad_to_multiple",
    "StreamingExecutor",
    "Ticket",
    "InputSlot",
    "ExecutorClosed",
    "OutputRangeError",
]
