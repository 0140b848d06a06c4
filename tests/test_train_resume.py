"""The long demo run's machinery: exact resume, checkpoints, pause/stop, curriculum, restarts, variants.

Tiny runs on generated images (128 px crops, batch 1-2, a few iterations, one CPU thread).
Bit-exactness: N iterations straight and N/2 + resume + N/2 must give the same weights, the
same optimizer moments and the same losses, bit for bit.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from err_stream.engine import Restorer
from err_stream.errors import UserError
from err_stream.model import ERR, ERRConfig
from err_stream.train import ConfigError, Trainer, config_from_dict, load_config
from err_stream.train.control import RunControl
from err_stream.train.datasets import Curriculum, StepBatches, TrainDataset, load_source
from err_stream.train.degradations import LowLight
from err_stream.train.trainer import latest_state, lr_factor
from err_stream.weights import load_model, read_state_dict
from test_train import textured  # a photo-like generated image

ROOT = Path(__file__).resolve().parents[1]
# The layers after the scan: a cheap backward for the tests that are not about the scan.
LATE_LAYERS = ["outer2", "enter3", "deep", "embed_in", "convf", "beta", "embed_out", "out."]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    for i, (h, w) in enumerate([(160, 160), (200, 176), (256, 272)]):
        Image.fromarray(textured(i, h, w)).save(root / f"p{i}.png")
    return root


@pytest.fixture(autouse=True)
def one_cpu_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny(photos: Path, trainable: list[str] | None = LATE_LAYERS, **over) -> dict:
    """Iterations 0-1: batch 2 of 128 px; from 2: batch 1 (a curriculum stage)."""
    d = {
        "seed": 7,
        "data": {"train": {"target": str(photos), "degradation": "lowlight", "crop": 128, "workers": 0,
                           "curriculum": [{"start": 2, "crop": 128, "batch_size": 1}]}},
        "train": {"batch_size": 2, "grad_clip": 1.0, "virtual_size": 0.5, "trainable": trainable or []},
        "optim": {"lr": 1e-3},
        "schedule": {"iterations": 4, "eta_min": 1e-5, "warmup": 1},
        "log": {"every": 1, "checkpoint_every": 100, "keep": 2, "tensorboard": False},
    }
    for key, value in over.items():
        node = d
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return d


def weights_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def optimizer_equal(a: Trainer, b: Trainer) -> bool:
    sa, sb = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[i][k], sb[i][k]) for i in sa for k in sa[i])


def losses(folder: Path) -> list[tuple[int, str]]:
    with (folder / "log.csv").open(newline="") as fh:
        return [(int(r["step"]), r["loss"]) for r in csv.DictReader(fh) if r["loss"]]


@pytest.fixture(scope="module")
def straight(photos, tmp_path_factory):
    """The uninterrupted run (late layers), 4 iterations."""
    out = tmp_path_factory.mktemp("straight")
    torch.set_num_threads(1)
    t = Trainer(config_from_dict(tiny(photos)), out, device="cpu")
    t.run()
    return t, out


# ----------------------------------------------------------------------------- exact resume
def test_resume_across_a_curriculum_stage_is_bit_exact(photos, straight, tmp_path):
    ref, ref_out = straight
    cfg = config_from_dict(tiny(photos))
    first = Trainer(cfg, tmp_path, device="cpu")
    first.run(stop_at=3)  # stage 2 began at iteration 2
    assert latest_state(tmp_path).name == "state_0000003.pt"
    resumed = Trainer(config_from_dict(tiny(photos)), tmp_path, device="cpu", resume=True)
    assert resumed.step == 3
    resumed.run()
    assert weights_equal(resumed.model.state_dict(), ref.model.state_dict())
    assert optimizer_equal(resumed, ref)
    assert losses(tmp_path) == losses(ref_out)
    assert resumed.optimizer.param_groups[0]["lr"] == ref.optimizer.param_groups[0]["lr"]


@pytest.mark.slow
def test_whole_network_resume_with_a_loader_process_is_bit_exact(photos, tmp_path):
    """Every layer trains (the ZFE trunk and the scan's backward too), samples come from a worker process."""
    cfg = tiny(photos, trainable=None, **{"data.train.workers": 1, "data.train.curriculum": [], "schedule.iterations": 4})
    a = Trainer(config_from_dict(cfg), tmp_path / "a", device="cpu")
    a.run()
    b = Trainer(config_from_dict(cfg), tmp_path / "b", device="cpu")
    b.run(stop_at=2)
    b = Trainer(config_from_dict(cfg), tmp_path / "b", device="cpu", resume=True)
    b.run()
    assert weights_equal(a.model.state_dict(), b.model.state_dict())
    assert optimizer_equal(a, b)


def test_every_global_rng_is_restored(photos, tmp_path):
    import random

    t = Trainer(config_from_dict(tiny(photos)), tmp_path, device="cpu")
    t.run(stop_at=1)
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    Trainer(config_from_dict(tiny(photos)), tmp_path, device="cpu", resume=True)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


# ----------------------------------------------------------------------------- checkpoints
def test_time_based_checkpoints_keep_two_and_milestones(photos, tmp_path):
    cfg = config_from_dict(tiny(photos, **{"log.checkpoint_minutes": 1e-9, "log.milestone_every": 2}))
    t = Trainer(cfg, tmp_path, device="cpu")
    t.run()
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["net_0000003.pth", "net_0000004.pth", "state_0000003.pt", "state_0000004.pt"]
    assert sorted(p.name for p in (tmp_path / "milestones").iterdir()) == ["net_0000002.pth", "net_0000004.pth"]
    state = torch.load(tmp_path / "checkpoints" / "state_0000004.pt", weights_only=True)
    (span,) = state["history"]
    assert span["device"] == "cpu" and span["cpu"] and span["threads"] == 1
    assert (span["first_step"], span["last_step"]) == (0, 4) and span["seconds"] > 0
    assert state["data"]["images"] == 3 and state["data"]["next_sample"] == 2 * 2 + 2 * 1
    assert load_model(tmp_path / "milestones" / "net_0000002.pth", device="cpu") is not None


def test_pause_file_then_sigterm_checkpoint_and_resume_exactly(photos, straight, tmp_path):
    """A PAUSE file pauses after the iteration with a checkpoint; SIGTERM while paused stops the
    run; resuming finishes it with the uninterrupted run's weights."""
    ref, _ = straight
    (tmp_path / "PAUSE").touch()
    status = tmp_path / "status.json"
    seen: dict = {}

    def operator() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                st = json.loads(status.read_text())
            except (OSError, ValueError):
                st = {}
            if st.get("state") == "paused":
                seen.update(st)
                seen["checkpoint"] = latest_state(tmp_path)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.05)

    helper = threading.Thread(target=operator)
    t = Trainer(config_from_dict(tiny(photos)), tmp_path, device="cpu")
    with RunControl(pause_file=tmp_path / "PAUSE", status_file=status) as control:
        helper.start()
        t.run(control=control)
    helper.join()
    assert seen["step"] == 1 and seen["checkpoint"].name == "state_0000001.pt"
    assert t.stopped_by == "SIGTERM" and t.step == 1
    assert json.loads(status.read_text())["state"] == "stopped"
    (tmp_path / "PAUSE").unlink()
    t = Trainer(config_from_dict(tiny(photos)), tmp_path, device="cpu", resume=True)
    with RunControl(pause_file=tmp_path / "PAUSE", status_file=status) as control:
        t.run(control=control)
    assert t.step == 4 and weights_equal(t.model.state_dict(), ref.model.state_dict())
    assert json.loads(status.read_text())["state"] == "done"
    spans = torch.load(latest_state(tmp_path), weights_only=True)["history"]
    assert [(s["first_step"], s["last_step"]) for s in spans] == [(0, 1), (1, 4)]
    assert spans[0]["paused_seconds"] > 0


def test_restart_from_weights_at_their_step(photos, straight, tmp_path):
    """A fresh machine: weights only, at their iteration: the same data from there, a warm-up."""
    ref, ref_out = straight
    net = tmp_path / "net.pth"
    net.write_bytes((ref_out / "checkpoints" / "net_0000004.pth").read_bytes())
    cfg = tiny(photos, **{"schedule.iterations": 8, "schedule.restart_warmup": 4})
    t = Trainer(config_from_dict({**cfg, "init": str(net)}), tmp_path / "run", device="cpu", start_step=4)
    full = Trainer(config_from_dict(cfg), tmp_path / "full", device="cpu")
    full.step = 4
    assert all(torch.equal(a, b) for a, b in zip(next(t.batches()), next(full.batches())))
    lr = cfg["optim"]["lr"]
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(lr * lr_factor(4, t.cfg) / 4)
    t.run(stop_at=6)
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(lr * lr_factor(5, t.cfg) * 2 / 4)
    state = torch.load(latest_state(tmp_path / "run"), weights_only=True)
    assert state["restart"]["step"] == 4 and state["history"][0]["restarted_from_weights"]


def test_resume_refuses_changed_photographs(photos, tmp_path):
    data = tmp_path / "photos"
    data.mkdir()
    for f in photos.iterdir():
        (data / f.name).write_bytes(f.read_bytes())
    cfg = tiny(data)
    Trainer(config_from_dict(cfg), tmp_path / "run", device="cpu").run(stop_at=1)
    Image.fromarray(textured(9, 160, 192)).save(data / "p9.png")
    with pytest.raises(UserError, match="training images differ"):
        Trainer(config_from_dict(cfg), tmp_path / "run", device="cpu", resume=True)
    t = Trainer(config_from_dict(cfg), tmp_path / "run", device="cpu", resume=True, allow_data_change=True)
    assert t.history[-1]["data_changed_at_step"] == 1


# ----------------------------------------------------------------------------- data order
def test_curriculum_numbers_the_samples():
    c = Curriculum([(0, [128], 4), (10, [256], 2), (15, [512], 1)])
    assert [c.first_sample(s) for s in (0, 1, 10, 11, 15, 16)] == [0, 4, 40, 42, 50, 51]
    assert [c.step_of(k) for k in (0, 3, 4, 39, 40, 41, 42, 49, 50, 51)] == [0, 0, 1, 9, 10, 10, 11, 14, 15, 16]
    batches = list(StepBatches(c, 9, 16))
    assert batches[0] == [36, 37, 38, 39] and batches[1] == [40, 41] and batches[-1] == [50]
    assert sum(len(b) for b in batches) == c.first_sample(16) - c.first_sample(9)
    with pytest.raises(ValueError):
        Curriculum([(5, [128], 1)])


def test_a_stage_with_larger_crops_uses_the_images_they_fit(photos):
    src = load_source(str(photos), "photos")
    c = Curriculum([(0, [128], 2), (3, [256], 1)])
    ds = TrainDataset(src, [128], 2, seed=1, degradation=LowLight(), curriculum=c)
    assert ds.eligible(256) == [2]  # only the 256x272 image
    for k in range(c.first_sample(3), c.first_sample(3) + 4):
        lq, gt = ds[k]
        assert lq.shape == gt.shape == (3, 256, 256)
    first = [ds._image_index(k, 0) for k in range(6)]
    assert sorted(first[:3]) == [0, 1, 2] and sorted(first[3:]) == [0, 1, 2]  # a permutation per pass


# ----------------------------------------------------------------------------- configuration
def test_config_curriculum_model_and_base(photos, tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(tiny(photos)))
    child = tmp_path / "child.yaml"
    child.write_text(yaml.safe_dump({"base": "base.yaml", "name": "narrow", "model": {"channels": 8, "scan_width": 16},
                                     "optim": {"lr": 2e-3}}))
    cfg = load_config(child)
    assert cfg.name == "narrow" and cfg.optim.lr == 2e-3 and cfg.optim.weight_decay == 1e-3  # merged, not replaced
    assert cfg.err_config() == ERRConfig(channels=8, scan_width=16)
    assert cfg.stages() == [(0, [128], 2), (2, [128], 1)]
    bad = [
        ({"model": {"width": 8}}, "unknown key"),
        ({"model": {"channels": 12}}, "multiple of num_heads"),
        ({"model": {"channels": "wide"}}, "positive number"),
        ({"data": {"train": {"curriculum": [{"start": 9, "crop": 128}]}}}, "before schedule.iterations"),
        ({"data": {"train": {"curriculum": [{"start": 2, "crop": 100}]}}}, "multiple of 128"),
        ({"data": {"train": {"curriculum": [{"start": 2, "crop": 384}]}}}, "no training image is at least 384"),
        ({"log": {"checkpoint_minutes": 0}}, "checkpoint_minutes"),
    ]
    for over, message in bad:
        child.write_text(yaml.safe_dump({"base": "base.yaml", **over}))
        with pytest.raises(ConfigError, match=message):
            load_config(child)


def test_shipped_full_run_configs_parse():
    """The long run's configs (their data is checked by train_demo.py on the machine that has it)."""
    full = load_config(ROOT / "configs" / "demo-lowlight-full.yaml", check_files=False)
    assert not full.train.trainable and full.init == "demo" and full.schedule.restart_warmup > 0
    assert full.stages()[-1][1] == [512] and full.log.checkpoint_minutes and full.log.keep == 2
    narrow = load_config(ROOT / "configs" / "demo-lowlight-narrow.yaml", check_files=False)
    assert narrow.init is None and narrow.err_config().channels < 16
    assert narrow.stages() == full.stages() and narrow.log == full.log


# ----------------------------------------------------------------------------- a narrower network
def test_a_narrower_network_trains_saves_loads_and_tiles(photos, tmp_path):
    variant = {"channels": 8, "num_heads": 4, "kan_groups": 4, "scan_width": 16}
    cfg = config_from_dict({**tiny(photos, **{"schedule.iterations": 1, "data.train.curriculum": []}), "model": variant})
    t = Trainer(cfg, tmp_path, device="cpu")
    t.run()
    path = tmp_path / "checkpoints" / "net_0000001.pth"
    assert ERRConfig.from_state_dict(read_state_dict(path)) == ERRConfig(**variant)
    model = load_model(path, device="cpu")
    assert weights_equal(model.state_dict(), t.model.state_dict())
    x = torch.rand(1, 3, 300, 520, generator=torch.Generator().manual_seed(0))
    whole = Restorer(model, tiling="off").restore(x)
    tiled = Restorer(model, tiling=(128, 128)).restore(x)
    assert (tiled - whole).abs().max().item() <= 1e-5
    # The full-width weights do not fit it: a clear error, not a shape dump.
    full = tmp_path / "full.pth"
    torch.save({"params": ERR().state_dict()}, full)
    with pytest.raises(UserError, match="differs from the config's model: channels 16"):
        Trainer(config_from_dict({**cfg.to_dict(), "init": str(full)}), tmp_path / "x", device="cpu")


# ----------------------------------------------------------------------------- the background command
def _train_demo(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "train_demo.py"), *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def _wait(path: Path, predicate, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            st = json.loads(path.read_text())
            if predicate(st):
                return st
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting on {path}")


@pytest.mark.slow
def test_train_demo_start_pause_continue_stop_resume(photos, tmp_path):
    """scripts/train_demo.py end to end: background start, pause (file), continue, stop (SIGTERM),
    start again (resumes): the same weights as one foreground run."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny(photos, **{"schedule.iterations": 40, "data.train.workers": 1})))
    common = ["--config", str(cfg), "--threads", "1"]
    straight = tmp_path / "straight"
    r = _train_demo("run", *common, "--out", str(straight))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "bg"
    r = _train_demo("start", *common, "--out", str(out), "--nice", "0")
    assert r.returncode == 0, r.stdout + r.stderr
    status = out / "status.json"
    _wait(status, lambda st: st.get("step", 0) >= 1)
    r = _train_demo("pause", "--out", str(out), "--wait", "120")
    assert r.returncode == 0 and "paused at iteration" in r.stdout, r.stdout + r.stderr
    paused_at = json.loads(status.read_text())["step"]
    assert latest_state(out).name == f"state_{paused_at:07d}.pt"
    assert "state: paused" in _train_demo("status", "--out", str(out)).stdout
    assert _train_demo("continue", "--out", str(out)).returncode == 0
    _wait(status, lambda st: st.get("state") == "running")
    r = _train_demo("stop", "--out", str(out), "--wait", "120")
    assert r.returncode == 0 and "stopped at iteration" in r.stdout, r.stdout + r.stderr
    st = json.loads(status.read_text())
    assert st["state"] in ("stopped", "done")
    if st["state"] == "stopped":
        r = _train_demo("start", *common, "--out", str(out), "--nice", "0")
        assert r.returncode == 0, r.stdout + r.stderr
        _wait(status, lambda s: s.get("state") == "done")
        deadline = time.monotonic() + 60
        while "state: done" not in _train_demo("status", "--out", str(out)).stdout and time.monotonic() < deadline:
            time.sleep(0.5)
    a = read_state_dict(straight / "checkpoints" / "net_0000040.pth")
    b = read_state_dict(out / "checkpoints" / "net_0000040.pth")
    assert weights_equal(a, b)
    log = (out / "train.log").read_text()
    assert "start:" in log and "done at iteration 40" in log
