"""Stage 3, the high-frequency refiner (HFR): a KAN applied per DCT coefficient of the H/2 map."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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
        # ERR runs this branch in float64 (see ERR.hfr_frequency): cast the weights to the input.
        x = F.linear(self.act1(x), self.fc1.weight.to(x.dtype), self.fc1.bias.to(x.dtype))
        return F.linear(self.act2(x), self.fc2.weight.to(x.dtype), self.fc2.bias.to(x.dtype))
