"""RestoreSettings, typed errors worded by each front end, and a package without import side effects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from err_stream.cli import cli_spelling
from err_stream.cli import main as cli
from err_stream.engine.settings import MIN_TILE, RestoreSettings, parse_memory, parse_tile
from err_stream.errors import SettingError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("value, want", [
    (None, "auto"), ("auto", "auto"), ("off", "off"), ("512x256", (512, 256)), (" 640 X 480 ", (640, 480)),
    ((128, 128), (128, 128)), ([300, 200], (300, 200)), ([0, 0], "off"),
])
def test_tile_spellings_of_every_front_end_parse_to_one_value(value, want):
    assert parse_tile(value) == want
    assert RestoreSettings(tile=value).tile == want


@pytest.mark.parametrize("value, reason", [
    ("64x64", f"at least {MIN_TILE} pixels"), ((512, 100), "at least 128"), ([0, 256], "at least 128"),
    ("512", "512x512"), ("big", "512x512"), ([1.5, 2], "two whole numbers"), ((True, 256), "two whole numbers"), (512, "two whole numbers"),
])
def test_bad_tiles_carry_the_setting_and_the_value(value, reason):
    with pytest.raises(SettingError, match=reason) as e:
        RestoreSettings(tile=value)
    assert e.value.option == "tile" and e.value.value == value
    assert isinstance(e.value, ValueError)  # API callers may catch ValueError


def test_precision_device_and_memory_are_checked_once():
    s = RestoreSettings(device="cpu", precision="BF16", memory_budget="1.5GiB")
    assert (s.device, s.precision, s.memory_budget) == ("cpu", "bf16", 3 * 2**29)
    assert s.precision_for("cuda") == "bf16"
    assert RestoreSettings().precision_for("cuda") == "fp16" and RestoreSettings().precision_for("cpu") == "fp32"
    assert parse_memory(0.5) == 0.5 and parse_memory(6_000_000_000) == 6_000_000_000 and parse_memory("512MB") == 512 * 10**6
    for option, kwargs in (("precision", {"precision": "fp8"}), ("device", {"device": "gpu"}),
                           ("memory_budget", {"memory_budget": "lots"}), ("memory_budget", {"memory_budget": -1})):
        with pytest.raises(SettingError) as e:
            RestoreSettings(**kwargs)
        assert e.value.option == option


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_missing_cuda_is_worded_by_each_front_end(capsys):
    with pytest.raises(SettingError) as e:
        RestoreSettings(device="cuda:1").torch_device()
    assert e.value.describe(cli_spelling) == "--device cuda:1: CUDA is not available on this machine; pass --device cpu"
    assert str(e.value) == "device='cuda:1': CUDA is not available on this machine; pass device='cpu'"
    # The command line says it with its own flags, exit 1, before reading any input.
    assert cli(["image", "nothing.png", "out.png", "--device", "cuda"]) == 1
    assert capsys.readouterr().err.strip() == "err-stream: error: --device cuda: CUDA is not available on this machine; pass --device cpu"


def test_cli_words_a_bad_tile_with_its_flag(tmp_path, capsys):
    img = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(img)
    assert cli(["image", str(img), str(tmp_path / "o.png"), "--device", "cpu", "--tile", "64x64"]) == 1
    assert capsys.readouterr().err.strip() == (
        "err-stream: error: --tile 64x64: tiles must be at least 128 pixels wide and high; for whole frames pass --tile off"
    )
    assert not (tmp_path / "o.png").exists()


def _fresh_python(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "NUMBA_CACHE_DIR")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=120).stdout


def test_importing_the_package_and_building_the_cli_changes_nothing_and_loads_no_torch():
    out = _fresh_python(
        "import json, os, sys\n"
        "before = dict(os.environ)\n"
        "import err_stream, err_stream.cli\n"
        "err_stream.cli.build_parser()\n"
        "heavy = sorted(m for m in ('torch', 'numpy', 'av', 'numba') if m in sys.modules)\n"
        "print(json.dumps({'env': dict(os.environ) == before, 'heavy': heavy, 'version': err_stream.__version__}))\n"
    )
    assert json.loads(out) == {"env": True, "heavy": [], "version": "0.1.0"}


def test_configure_sets_openmp_before_torch_and_numba_caches_in_the_user_cache(tmp_path):
    out = _fresh_python(
        "import json, os\n"
        "from err_stream import runtime\n"
        "runtime.configure(threads=1)\n"
        "import torch, numba\n"
        "from err_stream.ops import _numba_scan\n"
        "print(json.dumps({'omp': os.environ.get('OMP_WAIT_POLICY'), 'threads': torch.get_num_threads(),\n"
        "  'cache': _numba_scan._scan_kernel._cache._cache_path, 'numba_default': numba.config.CACHE_DIR}))\n"
        .replace("import json, os\n", f"import json, os\nos.environ['XDG_CACHE_HOME'] = {str(tmp_path)!r}\n", 1)
    )
    got = json.loads(out)
    assert got["omp"] == "PASSIVE" and got["threads"] == 1
    assert Path(got["cache"]).is_relative_to(tmp_path / "err-stream" / "numba")
    assert got["numba_default"] == ""  # other packages' numba functions keep numba's default


@pytest.mark.slow
def test_train_active_wait_sets_openmp_before_torch():
    """'err-stream train --active-wait' must reach OpenMP before torch loads it (the CLI decides
    before parsing); other commands, and train without it, wait passively. OMP_DISPLAY_ENV
    makes libgomp print the policy it read when it started."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_DISPLAY_ENV"] = "TRUE"

    # torch (and so libgomp) loads during the command, or at the latest after it
    code = "import sys\nfrom err_stream.cli import main\nrc = main(sys.argv[1:])\nimport torch\nsys.exit(rc)\n"

    def policy(*argv):
        run = subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 1, run.stderr[-2000:]  # the missing input
        return [line.split("=")[1].strip(" '") for line in run.stderr.splitlines() if "OMP_WAIT_POLICY" in line]

    assert policy("train", "missing.yaml", "--active-wait") == ["ACTIVE"]
    assert policy("train", "missing.yaml") == ["PASSIVE"]
    assert policy("image", "missing.png", "out.png", "--device", "cpu") == ["PASSIVE"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_number_setting_refuses_nan_and_infinity(value):
    """NaN compares false with every bound, so a range check alone would let it through."""
    from err_stream.video.options import EncodeOptions

    for option in ("crf", "hdr_peak"):
        with pytest.raises(SettingError, match="expected a number") as e:
            EncodeOptions(**{option: value})
        assert e.value.option == option
