"""Stage 3, the high-frequency refiner (HFR): a KAN applied per DCT coefficient of the H/2 map."""

from __future__ import annotations

import torch
from torch import nn

from ..ops import GroupRational


class RationalKAN(nn.Module):
    """KAT's KAN layer: identity-initialised rational, Linear, GELU-initialised rational, Linear.
    Works on the last axis (channels)."""

    def __init__(self, channels: int, groups: int = 8) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, channels)
        self.act1 = GroupRational(groups, mode="identity")
        self.act2 = GroupRational(groups, mode="gelu")
        self.fc2 = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act2(self.fc1(self.act1(x))))
