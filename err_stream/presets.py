"""The authors' published checkpoints (presets) and our own demo weights: names and places.

Plain data, no torch: the command line lists these in its help without loading the model
code. Downloading and loading are in :mod:`err_stream.weights`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HF_REPO = "Chenzzzzzz/ERR"
HF_REPO_TYPE = "dataset"
HF_URL = f"https://huggingface.co/datasets/{HF_REPO}"

# Where our own demo weights live inside the package (see err_stream/train).
DEMO_WEIGHTS = Path(__file__).parent / "assets" / "demo-lowlight.safetensors"


@dataclass(frozen=True)
class Preset:
    name: str
    task: str
    # Lower-case tokens that identify the task's file among the repository's files.
    tokens: tuple[str, ...]


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("uhd-ll", "low-light enhancement (UHD-LL)", ("uhdll", "ll", "lowlight", "low")),
        Preset("uhd-haze", "dehazing (UHD-Haze)", ("uhdhaze", "haze", "dehaze")),
        Preset("uhd-blur", "deblurring (UHD-Blur)", ("uhdblur", "blur", "deblur")),
        Preset("4k-rain13k", "deraining (4K-Rain13k)", ("4krain13k", "rain13k", "rain", "derain")),
    )
}
