"""ERR hyper-parameters. Every published checkpoint uses the defaults."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ERRConfig:
    channels: int = 16  # upstream channel_query_dict[256]
    number_block: int = 1
    unit_num: int = 3
    num_heads: int = 8
    ffn_expansion_factor: float = 2.0
    scan_width: int = 32  # MambaNet wf
    scan_depth: int = 2  # LFSSBlocks per scan group
    kan_groups: int = 8

    # The network reduces by 8 (ZFE), then 4 and 2x2x2 inside the LFR: inputs must be
    # multiples of 128 (the reference inference reflect-pads to that).
    multiple: int = 128

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ERRConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, Any]) -> "ERRConfig":
        """The configuration a state dict was made with, read from its keys and shapes.

        Hyper-parameters whose keys are absent keep their defaults (the strict load that
        follows then names the missing keys)."""
        found: dict[str, Any] = {}

        def shape(key: str, dim: int) -> int | None:
            t = sd.get(key)
            return int(t.shape[dim]) if t is not None and len(t.shape) > dim else None

        def count(prefix: str) -> int | None:
            pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
            idx = {int(m[1]) for k in sd for m in [pattern.match(k)] if m}
            return max(idx) + 1 if idx else None

        c = shape("enter1.0.weight", 0)
        found["channels"] = c
        found["number_block"] = count("block.")
        found["unit_num"] = count("block.0.TransformerBlock.")
        found["num_heads"] = shape("block.0.TransformerBlock.0.attn.temperature", 0)
        hidden = shape("block.0.TransformerBlock.0.ffn.project_in.0.weight", 0)
        found["ffn_expansion_factor"] = hidden / c if hidden and c else None
        found["scan_width"] = shape("middle.conv_01.weight", 0)
        found["scan_depth"] = count("middle.down_group1.l_blk.")
        found["kan_groups"] = shape("FW_KAN1.act1.weight_denominator", 0)
        return cls(**{k: v for k, v in found.items() if v is not None})
