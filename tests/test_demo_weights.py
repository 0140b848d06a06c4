"""The shipped demo weights stay bounded at every frame size (issue 9).

The frequency branch is the only part of ERR that depends on the frame size (through the DC
coefficient, mean * sqrt(h/2 * w/2)), so running it at virtual sizes from 128x128 to 8K on a
small crop covers every size in milliseconds; one real 1024x1024 frame checks the claim.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from err_stream.image import restore_image
from err_stream.train.datasets import _skimage_image, to_numpy, to_tensor
from err_stream.train.degradations import CameraLowLight
from err_stream.train.metrics import psnr
from err_stream.train.virtual_size import virtual_frame_size
from err_stream.weights import DEMO_WEIGHTS, load_model

SIZES = [(128, 128), (256, 256), (512, 512), (1024, 1024), (1920, 1080), (2048, 2048), (3840, 2160), (7680, 4320)]


def in_range_share(y: torch.Tensor) -> float:
    assert torch.isfinite(y).all(), "non-finite output"
    return float(((y >= -0.05) & (y <= 1.05)).float().mean())


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # several threads starve each other on a busy machine
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def model():
    return load_model(str(DEMO_WEIGHTS), device="cpu").eval()


@pytest.fixture(scope="module")
def crop():
    """A 128x128 crop of a held-out photograph."""
    return to_tensor(_skimage_image("coffee")[100:228, 200:328])


@pytest.fixture(scope="module")
def dark(crop):
    deg = CameraLowLight(lit_probability=0.0)
    return torch.stack([deg.pair(crop, np.random.default_rng(s))[0] for s in (1, 2, 3)])


@pytest.fixture(scope="module")
def lit(crop):
    return torch.stack([crop, (crop * 1.3).clamp(0, 1)])  # as photographed, and over-exposed


def run(model, x, w, h):
    with torch.inference_mode(), virtual_frame_size(model, w * h):
        return model(x)


@pytest.mark.parametrize("w,h", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_dark_input_in_range_at_every_frame_size(model, dark, w, h):
    assert in_range_share(run(model, dark, w, h)) >= 0.999


def test_lit_input_bounded_and_the_same_at_every_frame_size(model, lit):
    outs = [run(model, lit, w, h) for w, h in SIZES]
    for y in outs:
        assert torch.isfinite(y).all() and y.abs().max() < 2.0
    assert max((y - outs[0]).abs().max().item() for y in outs) < 0.02


@pytest.mark.xfail(strict=True, reason="issue 18 target not met by the CPU-trained demo weights: they take part of an "
                   "over-exposed lit crop past 1.05; flips to XPASS when better weights ship")
def test_lit_input_in_range(model, lit):
    assert in_range_share(run(model, lit, 128, 128)) >= 0.999


def test_bounded_on_a_real_1024_frame(model):
    """A real 1024x1024 frame (the first demo weights gave NaN or 1e22 from about 1024 px):
    finite, bounded and brighter. The trained weights brighten this dark frame about 4.5x and
    take its brightest fur a little past white (measured: 0.12% of pixels above 1.1, peak 1.2),
    which the output check reports as over-exposure with what to do, never as divergence."""
    from err_stream.engine.output_check import OutputRangeError

    photo = np.asarray(Image.fromarray(_skimage_image("chelsea")).resize((1024, 1024), Image.Resampling.LANCZOS))
    dark = CameraLowLight(lit_probability=0.0).pair(to_tensor(photo), np.random.default_rng(7))[0]
    with torch.inference_mode():
        y = model(dark[None])
    assert torch.isfinite(y).all() and -0.5 < float(y.min()) and float(y.max()) < 1.5
    assert in_range_share(y) >= 0.995
    assert float(y.clamp(0, 1).mean()) > float(dark.mean()) + 0.1  # it brightens
    try:
        with torch.inference_mode():
            restore_image(model, dark)
    except OutputRangeError as e:
        assert not e.diverged and "over-exposed" in str(e)


def test_normally_lit_input_is_not_destroyed(model, lit):
    with torch.inference_mode():
        y = model(lit[:1]).clamp(0, 1)
    assert psnr(to_numpy(y[0]), to_numpy(lit[0])) > 15.0
