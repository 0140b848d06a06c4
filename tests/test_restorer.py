"""restore_image / Restorer: padding, dtypes, tiny inputs, exact tiling, precision policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from err_stream import Restorer
from err_stream import restore_image as _restore_image
from err_stream.engine.padding import pad_to_multiple


def _reference_restore(model, x: torch.Tensor) -> torch.Tensor:
    """The paper's inference: reflect-pad right/bottom to a multiple of 128, run, crop; then
    clamped to [0, 1] as restore_image(..., accept_out_of_range=True) does."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % 128, (-w) % 128
    xp = F.pad(x, (0, pw, 0, ph), mode="reflect")
    with torch.no_grad():
        return model(xp)[..., :h, :w].clamp(0, 1)


def restore_image(model, image):
    """The golden checkpoint's seeded random weights put most pixels far outside [0, 1],
    which the output check refuses (tests/test_executor.py): these tests of padding, dtypes
    and sizes accept and clamp, and compare with the clamped reference."""
    return _restore_image(model, image, accept_out_of_range=True)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 200 x 300 image with structure (smooth gradients plus texture), uint8."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:200, 0:300] / 300.0
    base = np.stack([0.2 + 0.5 * xx, 0.3 + 0.4 * yy, 0.25 + 0.2 * np.sin(8 * xx * yy)], -1)
    return np.clip((base + 0.05 * rng.standard_normal(base.shape)) * 255, 0, 255).astype(np.uint8)


def test_odd_size_matches_reference_inference(golden_model, photo):
    x = torch.from_numpy(photo).permute(2, 0, 1).float()[None] / 255
    ref = _reference_restore(golden_model, x)
    got = restore_image(golden_model, x)
    assert got.shape == x.shape
    assert (got - ref.clamp(0, 1)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("dtype, scale", [(np.uint8, 255), (np.uint16, 65535), (np.float32, 1)])
def test_numpy_dtypes_round_trip(golden_model, photo, dtype, scale):
    img = (photo.astype(np.float64) / 255 * scale).astype(dtype) if scale != 1 else photo.astype(np.float32) / 255
    out = restore_image(golden_model, img)
    assert out.dtype == img.dtype and out.shape == img.shape
    x = torch.from_numpy(img.astype(np.float32) / scale).permute(2, 0, 1)[None]
    ref = _reference_restore(golden_model, x)[0].permute(1, 2, 0).numpy()
    if scale == 1:
        assert np.abs(out - np.clip(ref, 0, 1)).max() <= 1e-5
    else:
        expected = np.clip(np.rint(ref * scale), 0, scale)
        assert np.abs(out.astype(np.float64) - expected).max() <= 1  # rounding at .5 boundaries
        assert out.min() >= 0 and out.max() <= scale


def test_torch_tensor_kinds(golden_model, photo):
    t8 = torch.from_numpy(photo).permute(2, 0, 1).contiguous()
    out = restore_image(golden_model, t8)
    assert out.dtype == torch.uint8 and out.shape == t8.shape
    tb = torch.stack([t8.float() / 255] * 2)
    outb = restore_image(golden_model, tb)
    assert outb.shape == tb.shape and torch.allclose(outb[0], outb[1], atol=1e-6)


@pytest.mark.parametrize("shape", [(129, 1), (5, 5), (1, 200), (130, 3)])
def test_tiny_inputs_use_the_documented_fallback(golden_model, shape):
    h, w = shape
    x = torch.rand(1, 3, h, w)
    xp = pad_to_multiple(x, 128)
    assert xp.shape[-2:] == (256 if h > 128 else 128, 256 if w > 128 else 128)
    # The fallback is a mirror extension: the padded image starts with the original.
    assert torch.equal(xp[..., :h, :w], x)
    if w == 1:
        assert torch.equal(xp[..., :h, :], x.expand(-1, -1, -1, xp.shape[-1]))
    out = restore_image(golden_model, x)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_padding_equals_reflect_when_possible():
    x = torch.rand(1, 3, 200, 300)
    assert torch.equal(pad_to_multiple(x, 128), F.pad(x, (0, 84, 0, 56), mode="reflect"))


@pytest.mark.parametrize("size, tile", [
    ((300, 520), (128, 128)),
    ((256, 384), (144, 208)),
    ((390, 260), (256, 128)),
    ((131, 700), (300, 200)),
])
def test_exact_tiling_equals_whole_frame(golden_model, size, tile):
    torch.manual_seed(size[0])
    x = torch.rand(1, 3, *size)
    whole = Restorer(golden_model, tiling="off").restore(x)
    tiled = Restorer(golden_model, tiling=tile).restore(x)
    assert (tiled - whole).abs().max().item() <= 1e-5


def test_auto_tiling_follows_the_memory_budget(golden_model):
    r = Restorer(golden_model, tiling="auto", memory_budget=200 * 2**20)
    assert r.plan(1080, 1920).tile is not None
    assert r.plan(128, 128).tile is None
    big = Restorer(golden_model, tiling="auto", memory_budget=64 * 2**30)
    assert big.plan(1080, 1920).tile is None
    x = torch.rand(1, 3, 260, 390)
    small = Restorer(golden_model, tiling="auto", memory_budget=40 * 2**20)
    assert small.plan(260, 390).tile is not None
    assert (small.restore(x) - Restorer(golden_model, tiling="off").restore(x)).abs().max().item() <= 1e-5


def test_bad_arguments_are_explained(golden_model):
    with pytest.raises(ValueError, match="precision"):
        Restorer(golden_model, precision="fp8")
    with pytest.raises(ValueError, match="at least 128"):
        Restorer(golden_model, tiling=(64, 64))
    with pytest.raises(ValueError, match="B x 3 x H x W"):
        Restorer(golden_model).restore(torch.rand(1, 4, 32, 32))


def test_the_tiled_schedule_is_the_models_and_consistent(golden_model):
    """The engine takes halo, grid, size multiple and memory figures from the model's schedule,
    and every step reads only maps that the input or an earlier step provides."""
    from err_stream.model.schedule import ShellStep, TrunkStep, err_schedule

    sched = err_schedule(golden_model)
    r = Restorer(golden_model, tiling=(200, 200))
    assert r.multiple == sched.multiple == 128 and r.tiling == (192, 192)  # on the schedule's 16-px grid
    have = {"x"}
    for step in sched.steps:
        reads = step.reads if isinstance(step, TrunkStep) else [n for n, _ in step.reads]
        assert set(reads) <= have, (step.name, set(reads) - have)
        if isinstance(step, ShellStep):
            have |= {n for n, _ in step.keeps} | {n + "_sum" for n, _ in step.sums}
            assert step.bytes_per_pixel > 0
        else:
            with torch.no_grad():
                have |= set(step.run(golden_model, _trunk_probe(golden_model, step)))
    assert sched.output in have
    assert [s.name for s in sched.steps if not s.half_safe] == ["frequency"]


def _trunk_probe(model, step) -> dict:
    """Small stand-in maps for a trunk step's inputs (shapes of a 256x256 frame)."""
    c = model.config.channels
    shapes = {"x": (1, 3, 256, 256), "x1": (1, c, 32, 32), "pooled": (1, 3 * c, 32, 32), "e1_sum": (1, c),
              "x2": (1, c, 64, 64), "dk": (1, c, 128, 128), "dk_sum": (1, c)}
    return {name: torch.rand(shapes[name]) for name in step.reads}
