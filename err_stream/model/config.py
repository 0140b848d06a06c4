"""ERR hyper-parameters. Every published checkpoint uses the defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass


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
