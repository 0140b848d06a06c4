"""The ERR network and its configuration.

Provenance: the architecture is ERR from "From Zero to Detail: Deconstructing Ultra-High-
Definition Image Restoration from Progressive Spectral Perspective" (Chen Zhao, Zhizhou Chen
et al., CVPR 2025, arXiv:2503.13165), whose reference code is github.com/NJU-PCALab/ERR and
whose trained checkpoints are the Hugging Face dataset Chenzzzzzz/ERR. This package is a new implementation (written from
the paper and the checkpoints' layout, checked against the reference outputs in
tests/data/), not a copy of that code. The upstream repository carries no licence file, so
the published checkpoints come with no stated licence: see the README's weights section.
"""

from .config import ERRConfig
from .err import ERR

__all__ = ["ERR", "ERRConfig"]
