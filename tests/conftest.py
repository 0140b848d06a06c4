"""Shared fixtures: the golden checkpoint and reference outputs in ../shared/golden."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "golden"
GOLDEN_CKPT = GOLDEN / "err_seed0_official_format.pth"
GOLDEN_IO = GOLDEN / "err_seed0_io.pt"


@pytest.fixture(scope="session")
def golden_path() -> Path:
    if not GOLDEN_CKPT.exists():
        pytest.fail(f"golden checkpoint missing at {GOLDEN_CKPT} (shared/ must sit beside the repository)")
    return GOLDEN_CKPT


@pytest.fixture(scope="session")
def golden_model(golden_path):
    from err_stream import load_model

    return load_model(golden_path, device="cpu")


@pytest.fixture(scope="session")
def golden_io() -> dict:
    return torch.load(GOLDEN_IO, map_location="cpu", weights_only=False)


