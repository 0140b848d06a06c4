"""The model against the reference implementation's outputs (golden files)."""

from __future__ import annotations

import math

import pytest
import torch

from err_stream import ERR
from err_stream.ops import dct2


def _capture(model: ERR, names: set[str]) -> tuple[dict, list]:
    seen: dict[str, torch.Tensor] = {}
    hooks = []
    for name, mod in model.named_modules():
        if name in names:
            hooks.append(mod.register_forward_hook(lambda _m, _i, out, n=name: seen.setdefault(n, out)))
    return seen, hooks


@pytest.fixture(scope="module")
def golden_run(golden_model, golden_io):
    inter = golden_io["intermediates"]
    seen, hooks = _capture(golden_model, set(inter) | {"enter1"})
    try:
        with torch.no_grad():
            out = golden_model.forward_stages(golden_io["input"])
    finally:
        for h in hooks:
            h.remove()
    return out, seen


def test_final_outputs_match_reference(golden_run, golden_io):
    (out, out1, out2), _ = golden_run
    for name, got in (("out", out), ("out1", out1), ("out2", out2)):
        err = (got - golden_io[name]).abs().max().item()
        assert err <= 1e-4, f"{name}: max abs error {err:.3g}"


# Intermediates the model has as submodules; spp/dct/idct are checked separately below.
SUBMODULES = [
    "downsample1", "block.0", "down", "downavg", "block1.0", "up", "block2.0", "downsample2",
    "middle.conv_01", "middle.down_group1", "middle.down_group2", "middle.up_group2", "middle",
    "embed_in", "deep1", "convf",
]


@pytest.mark.parametrize("name", SUBMODULES)
def test_intermediate_matches_reference(golden_run, golden_io, name):
    _, seen = golden_run
    ref = golden_io["intermediates"][name]
    got = seen[name]
    assert got.shape == ref.shape
    assert (got - ref).abs().max().item() <= 1e-4


def test_global_prior_matches_reference(golden_model, golden_run, golden_io):
    _, seen = golden_run
    with torch.no_grad():
        prior = golden_model.spp(seen["enter1"])
    assert (prior - golden_io["intermediates"]["spp"]).abs().max().item() <= 1e-4


def test_frequency_branch_matches_reference(golden_model, golden_io):
    """The DCT of deep1 is the orthonormal DCT; upstream's IDCT keeps only the DC coefficient,
    so its output is a constant map per channel, which hfr_frequency reproduces."""
    inter = golden_io["intermediates"]
    dk = inter["deep1"]
    assert (dct2(dk) - inter["dct"]).abs().max().item() <= 1e-3 * inter["dct"].abs().max().item()
    ref = inter["idct"]
    assert ref.std(dim=(2, 3)).max().item() < 1e-5, "reference IDCT output should be constant per channel"
    with torch.no_grad():
        freq = golden_model.hfr_frequency(dk.sum(dim=(2, 3)), dk.shape[-2] * dk.shape[-1])
    assert (freq[:, :, None, None].expand_as(ref) - ref).abs().max().item() <= 1e-5


def test_frequency_branch_equals_windowed_kan_then_dc_only_idct(golden_model):
    """Our shortcut (KAN on the DC coefficient only) equals the literal upstream computation:
    KANs over every coefficient in 64x64 windows, then an IDCT that keeps only [0, 0]."""
    torch.manual_seed(1)
    dk = torch.randn(1, 16, 128, 192)
    spec = dct2(dk)
    out = torch.empty_like(spec)
    with torch.no_grad():
        for i in range(0, 128, 64):
            for j in range(0, 192, 64):
                win = spec[..., i : i + 64, j : j + 64].flatten(2).transpose(1, 2)
                w = golden_model.FW_KAN1(win)
                w = golden_model.FW_KAN2(w) + w
                w = golden_model.FW_KAN3(w) + w
                out[..., i : i + 64, j : j + 64] = w.transpose(1, 2).reshape(1, 16, 64, 64)
        literal = out[..., 0, 0] / math.sqrt(128 * 192)
        ours = golden_model.hfr_frequency(dk.sum(dim=(2, 3)), 128 * 192)
    assert torch.allclose(ours, literal, atol=1e-5, rtol=1e-5)


def test_state_dict_matches_published_layout(golden_model):
    from pathlib import Path

    listing = Path(__file__).resolve().parents[2] / "shared" / "golden" / "err_state_dict_keys.txt"
    expected = {}
    for line in listing.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape = line.split(" ", 1)
        expected[key] = [int(v) for v in shape.strip("[]").split(",") if v.strip()]
    sd = golden_model.state_dict()
    assert {k: list(v.shape) for k, v in sd.items()} == expected
    assert sum(v.numel() for v in sd.values()) == 1_583_229


def test_forward_rejects_sizes_not_multiple_of_128():
    m = ERR().eval()
    with pytest.raises(ValueError, match="multiples of 128"):
        m(torch.rand(1, 3, 130, 128))


def test_number_block_quirks_build_and_run():
    """number_block > 1 reproduces upstream's loops (only the last `block` group counts,
    block1 runs its first number_block groups)."""
    from err_stream import ERRConfig

    torch.manual_seed(0)
    m = ERR(ERRConfig(number_block=2)).eval()
    assert len(m.block) == 2 and len(m.block1) == 4 and len(m.block2) == 2
    with torch.no_grad():
        y = m(torch.rand(1, 3, 128, 128))
    assert y.shape == (1, 3, 128, 128) and torch.isfinite(y).all()
