"""Checkpoint loading: formats, strict checks with readable errors, presets (offline)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from err_stream import CheckpointError, load_model
from err_stream.weights import PRESETS, pick_preset_file, read_state_dict, save_checkpoint

from fake_hub import serve


def test_published_layout_loads_strictly(golden_path):
    m = load_model(golden_path, device="cpu")
    assert not m.training
    sd = torch.load(golden_path, weights_only=True)["params"]
    for k, v in m.state_dict().items():
        assert torch.equal(v, sd[k]), k


def test_bare_state_dict_and_safetensors_round_trip(golden_model, tmp_path):
    bare = tmp_path / "bare.pth"
    torch.save(golden_model.state_dict(), bare)
    st = save_checkpoint(golden_model, tmp_path / "w.safetensors")
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        ref = golden_model(x)
        for p in (bare, st):
            assert torch.equal(load_model(p, device="cpu")(x), ref)


def test_truncated_file_is_reported_with_its_name(golden_path, tmp_path):
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(golden_path.read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match="truncated.pth.*(truncated|corrupt)"):
        load_model(bad, device="cpu")


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "notes.pth"
    bad.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.pth"):
        load_model(bad, device="cpu")
    with pytest.raises(CheckpointError, match="no such file"):
        load_model(tmp_path / "missing.pth", device="cpu")


def test_other_network_lists_missing_and_unexpected_keys(tmp_path):
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 3))
    path = tmp_path / "resnet.pth"
    torch.save({"params": other.state_dict()}, path)
    with pytest.raises(CheckpointError) as e:
        load_model(path, device="cpu")
    msg = str(e.value)
    assert "resnet.pth" in msg and "961 missing" in msg and "4 unexpected: 0.weight, 0.bias, 2.weight, 2.bias" in msg
    assert "another network" in msg


def test_wrong_shape_is_named(golden_path, tmp_path):
    sd = read_state_dict(golden_path)
    sd["enter1.0.weight"] = torch.zeros(16, 4, 3, 3)  # a 4-channel input: no ERR configuration has that
    path = tmp_path / "rgba.pth"
    torch.save({"params": sd}, path)
    with pytest.raises(CheckpointError, match=r"1 shape mismatch: enter1\.0\.weight: file \(16, 4, 3, 3\) vs model \(16, 3, 3, 3\)"):
        load_model(path, device="cpu")


def test_the_configuration_is_read_from_the_checkpoint(tmp_path):
    """A checkpoint of another ERR size (more blocks, fewer heads, wider scan, ...) builds that
    network: the configuration comes from the file's shapes, not from our defaults."""
    from err_stream import ERR, ERRConfig

    cfg = ERRConfig(channels=8, number_block=2, unit_num=2, num_heads=4, ffn_expansion_factor=3.0, scan_width=16, scan_depth=1, kan_groups=4)
    torch.manual_seed(0)
    small = ERR(cfg).eval()
    path = save_checkpoint(small, tmp_path / "small.safetensors")
    loaded = load_model(path, device="cpu")
    assert loaded.config == cfg
    assert ERRConfig.from_state_dict(read_state_dict(path)) == cfg
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        assert torch.equal(loaded(x), small(x))


def test_dataparallel_prefix_is_accepted(golden_model, tmp_path):
    path = tmp_path / "dp.pth"
    want = golden_model.state_dict()
    torch.save({"params": {"module." + k: v for k, v in want.items()}}, path)
    got = load_model(path, device="cpu").state_dict()
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)


REPO_FILES = [
    "ERR/UHD-LL/net_g_UHDLL.pth",
    "ERR/UHD-Haze/net_g_haze.pth",
    "ERR/UHD-Blur/net_g_blur.pth",
    "ERR/4K-Rain13k/net_g_rain13k.pth",
    "IERR/UHD-LL/net_g_UHDLL.pth",
    "visual_results/UHD-LL.zip",
    "README.md",
]


@pytest.mark.parametrize("name, expected", [
    ("uhd-ll", "ERR/UHD-LL/net_g_UHDLL.pth"), ("uhd-haze", "ERR/UHD-Haze/net_g_haze.pth"),
    ("uhd-blur", "ERR/UHD-Blur/net_g_blur.pth"), ("4k-rain13k", "ERR/4K-Rain13k/net_g_rain13k.pth"),
])
def test_preset_file_choice_skips_ierr_and_results(name, expected):
    assert pick_preset_file(PRESETS[name], REPO_FILES) == expected


def test_ambiguous_preset_is_an_error_not_a_guess():
    with pytest.raises(CheckpointError, match="several files"):
        pick_preset_file(PRESETS["uhd-haze"], ["a/haze_v1.pth", "b/haze_v2.pth"])


def _cli(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "err_stream.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture()
def fake_hub(golden_path, tmp_path):
    repo = tmp_path / "repo"
    for f in REPO_FILES:
        (repo / f).parent.mkdir(parents=True, exist_ok=True)
        if f.endswith(".pth"):
            shutil.copy(golden_path, repo / f)
        else:
            (repo / f).write_text("not a checkpoint")
    server, url = serve("Chenzzzzzz/ERR", repo)
    env = dict(os.environ, HF_ENDPOINT=url, ERR_STREAM_HF_CACHE=str(tmp_path / "hf-cache"), HF_HUB_DISABLE_TELEMETRY="1")
    env.pop("HF_HUB_OFFLINE", None)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    yield env
    server.shutdown()


@pytest.mark.slow
def test_weights_fetch_downloads_into_the_hf_cache_then_works_offline(fake_hub, tmp_path, golden_path):
    r = _cli(["weights", "fetch", "uhd-ll"], fake_hub, tmp_path)
    assert r.returncode == 0, r.stderr
    path = Path(r.stdout.strip().splitlines()[-1])
    assert path.read_bytes() == golden_path.read_bytes()
    assert str(tmp_path / "hf-cache") in str(path) and "UHD-LL" in str(path)
    # Now without network: listed as cached, and usable as --preset.
    offline = dict(fake_hub, HF_ENDPOINT="http://127.0.0.1:9", HF_HUB_OFFLINE="1")
    r = _cli(["weights", "list"], offline, tmp_path)
    assert r.returncode == 0 and str(path) in r.stdout
    img = tmp_path / "in.png"
    from PIL import Image

    Image.new("RGB", (40, 30), (20, 30, 40)).save(img)
    # (The golden checkpoint's random weights leave [0, 1] far: accept and clamp; the guard is tested elsewhere.)
    r = _cli(["image", str(img), str(tmp_path / "out.png"), "--preset", "uhd-ll", "--device", "cpu", "--accept-out-of-range"],
             offline, tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.png").exists()


def test_fetch_without_network_fails_fast_with_instructions(tmp_path):
    env = dict(os.environ, HF_ENDPOINT="http://127.0.0.1:9", ERR_STREAM_HF_CACHE=str(tmp_path / "empty"))
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    r = _cli(["weights", "fetch", "uhd-blur"], env, tmp_path)
    assert r.returncode == 1
    assert "huggingface.co/datasets/Chenzzzzzz/ERR" in r.stderr and "--weights FILE" in r.stderr
    assert "Traceback" not in r.stderr
