"""Inference engine: the Restorer (device, precision, padding, exact tiling)."""

from .padding import pad_to_multiple
from .restorer import PRECISIONS, Restorer, TilePlan

__all__ = ["Restorer", "TilePlan", "PRECISIONS", "pad_to_multiple"]
