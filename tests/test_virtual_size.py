"""Virtual frame size: the frequency branch computed as for a larger frame, used in training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from err_stream.model import ERR, ERRConfig
from err_stream.train import Trainer, config_from_dict
from err_stream.train.virtual_size import UHD_8K_PIXELS, draw_virtual_pixels, virtual_frame_size
from err_stream.weights import read_state_dict


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = ERR(ERRConfig()).eval()
    with torch.no_grad():
        m.beta.fill_(0.5)  # the initial beta = 1 would mute the frequency branch
    return m


@pytest.fixture(autouse=True)
def one_thread_no_denormals():
    """One torch thread (several starve each other on a busy machine) and denormals flushed
    (random weights make them in the scan, which makes CPU forwards ~10x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)
    torch.set_num_threads(n)


def _branch_inputs(model, x):
    seen = []
    original = model.FW_KAN1.forward

    def spy(t):
        seen.append(t.detach().clone())
        return original(t)

    model.FW_KAN1.forward = spy
    try:
        with torch.no_grad():
            y = model(x)
    finally:
        del model.FW_KAN1.forward
    return seen[0], y


def test_branch_sees_the_dc_of_the_virtual_size(model):
    x = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    dc_own, y_own = _branch_inputs(model, x)
    with virtual_frame_size(model, 3840 * 2160):
        dc_4k, y_4k = _branch_inputs(model, x)
    # DC = mean * sqrt(h/2 * w/2): the same mean, the side ratio 64x64 -> 1920x1080.
    ratio = math.sqrt(1920 * 1080) / 64
    assert torch.allclose(dc_4k, dc_own * ratio, rtol=1e-6)  # dk_sum is float32
    assert not torch.equal(y_4k, y_own)
    assert "hfr_frequency" not in vars(model)  # the method is back
    with torch.no_grad(), virtual_frame_size(model, 128 * 128):  # its own size: no change
        assert torch.allclose(model(x), y_own, atol=1e-6)


def test_draws_cover_the_crop_to_8k_and_follow_the_ramp():
    crop = 128 * 128
    draws = [draw_virtual_pixels(np.random.default_rng([0, k]), crop, UHD_8K_PIXELS, 0.5) for k in range(400)]
    sizes = [d for d in draws if d is not None]
    assert 150 < len(sizes) < 250  # about half the steps
    assert min(sizes) >= crop and max(sizes) <= UHD_8K_PIXELS
    assert max(sizes) > (0.6 * 7680) * (0.6 * 4320) and min(sizes) < 4 * crop  # log-uniform in side: both ends
    early = [draw_virtual_pixels(np.random.default_rng([1, k]), crop, UHD_8K_PIXELS, 1.0, ramp=0.25) for k in range(100)]
    cap = (math.sqrt(crop) * (math.sqrt(UHD_8K_PIXELS / crop)) ** 0.25) ** 2
    assert all(crop <= d <= cap * (1 + 1e-9) for d in early)
    assert draw_virtual_pixels(np.random.default_rng(0), crop, UHD_8K_PIXELS, 0.0) is None


def test_training_with_virtual_sizes_and_a_fresh_frequency_branch(golden_path, tmp_path):
    cfg = config_from_dict({
        "seed": 1,
        "init": str(golden_path),
        "init_exclude": ["FW_KAN"],
        "data": {"train": {"target": "skimage:astronaut", "degradation": "camera_lowlight", "crop": 128, "workers": 0}},
        # Only the tail trains (train.trainable): autograd stops before the scan, so this stays fast.
        "train": {"batch_size": 1, "virtual_size": 1.0, "virtual_warmup": 2, "trainable": ["FW_KAN", "convf", "beta"]},
        "optim": {"lr": 1e-4},
        "schedule": {"iterations": 2},
        "log": {"every": 1, "checkpoint_every": 100, "tensorboard": False},
    })
    trainer = Trainer(cfg, tmp_path, device="cpu", progress=None)
    golden = read_state_dict(golden_path)
    fresh = ERR(ERRConfig())  # what the seeded initialisation gives
    sd = trainer.model.state_dict()
    for k, v in sd.items():
        if k.startswith("FW_KAN"):
            assert not torch.equal(v, golden[k].float()) or torch.equal(golden[k].float(), fresh.state_dict()[k])
        else:
            assert torch.equal(v, golden[k].float()), k
    assert torch.count_nonzero(trainer.model.FW_KAN1.act1.weight_denominator) == 0  # identity rational
    trainer.run()
    # The fixed rational gradient moves the identity rationals' denominators in training.
    assert torch.count_nonzero(trainer.model.FW_KAN1.act1.weight_denominator) > 0
    # Frozen parameters did not move.
    after = trainer.model.state_dict()
    assert torch.equal(after["enter1.0.weight"], golden["enter1.0.weight"].float())
    assert torch.equal(after["outer1.0.weight"], golden["outer1.0.weight"].float())
    assert all(math.isfinite(p.abs().sum().item()) for p in trainer.model.parameters())
