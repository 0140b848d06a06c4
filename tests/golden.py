"""Where the golden fixtures live and how the stored subsamples are taken.

The reference run (upstream ERR, seed 0, 256x384 input) produced full tensors for every
intermediate; storing them all would add 16 MB to the repository. `tests/data/` keeps the
input and the final output whole and the other tensors on a regular grid of rows and
columns (plus the last row and column, so the right and bottom borders are covered).
`tests/data/make_golden_fixtures.py` writes the files with `grid_sample` and the tests
compare the model's tensors through the same function.
"""

from __future__ import annotations

from pathlib import Path

import torch

DATA = Path(__file__).resolve().parent / "data"
GOLDEN_CKPT = DATA / "err_seed0_official_format.pth"
GOLDEN_IO = DATA / "err_seed0_io.safetensors"
GOLDEN_KEYS = DATA / "err_state_dict_keys.txt"


def grid_indices(size: int, stride: int) -> torch.Tensor:
    """Every `stride`-th index from 0, plus the last one."""
    idx = list(range(0, size, stride))
    if idx[-1] != size - 1:
        idx.append(size - 1)
    return torch.tensor(idx)


def grid_sample(t: torch.Tensor, stride: int) -> torch.Tensor:
    """The rows and columns `grid_indices` picks from an NCHW tensor (stride 1: all)."""
    if stride == 1:
        return t
    t = t.index_select(-2, grid_indices(t.shape[-2], stride).to(t.device))
    return t.index_select(-1, grid_indices(t.shape[-1], stride).to(t.device)).contiguous()
