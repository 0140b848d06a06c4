"""Shared fixtures: the golden checkpoint and reference tensors in tests/data/ (see its README)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from golden import GOLDEN_CKPT, GOLDEN_IO  # tests/ is on sys.path (pytest's rootdir conftest)


def _require(path: Path) -> Path:
    # A missing fixture is a broken checkout, never a reason to skip.
    if not path.exists():
        pytest.fail(f"test fixture missing: {path} (tests/data/ ships with the repository)")
    return path


@pytest.fixture(scope="session")
def golden_path() -> Path:
    return _require(GOLDEN_CKPT)


@pytest.fixture(scope="session")
def golden_model(golden_path):
    from err_stream import load_model

    return load_model(golden_path, device="cpu")


def _input_plus(golden_model, offset: float, path: Path) -> str:
    """The golden model with its three stages' output convolutions giving constants that add
    up to ``offset``: weights that return their input + ``offset``."""
    from err_stream.weights import save_checkpoint

    sd = {k: v.clone() for k, v in golden_model.state_dict().items()}
    for name in ("outer1.0", "outer2.0", "out.2"):
        sd[f"{name}.weight"].zero_()
        sd[f"{name}.bias"].fill_(offset if name == "out.2" else 0.0)
    return str(save_checkpoint(sd, path))


@pytest.fixture(scope="session")
def over_exposing(golden_model, tmp_path_factory) -> str:
    """Weights that over-expose lit footage, finite and merely too bright: input + 0.5 (values
    in [0.5, 1.5])."""
    return _input_plus(golden_model, 0.5, tmp_path_factory.mktemp("w") / "over_exposing.pth")


@pytest.fixture(scope="session")
def diverging(golden_model, tmp_path_factory) -> str:
    """Weights whose output is far out of range: input + 3 (what the output check calls
    divergence, as opposed to over-exposure within [-0.5, 2])."""
    return _input_plus(golden_model, 3.0, tmp_path_factory.mktemp("w") / "diverging.pth")


@pytest.fixture(scope="session")
def golden_io() -> dict:
    """Reference tensors by name, plus "strides": the grid each was stored on (tests/golden.py)."""
    from safetensors import safe_open

    with safe_open(_require(GOLDEN_IO), framework="pt") as f:
        io = {k: f.get_tensor(k) for k in f.keys()}
        io["strides"] = json.loads(f.metadata()["strides"])
    return io




@pytest.fixture(autouse=True)
def _ffmpeg_log_level_restored():
    """Every test leaves FFmpeg's log level as it found it: a level left on lets FFmpeg's
    threads call into Python for the rest of the process, where a decoder's teardown can
    deadlock (err_stream/io/ffmpeg_log.py)."""
    import av

    before = av.logging.get_level()
    yield
    assert av.logging.get_level() == before, f"FFmpeg's log level was left at {av.logging.get_level()} (was {before})"
