"""benchmarks/gpu_4k60.py: the rehearsal on the CPU runs every section through the real code
at sizes that are not multiples of the model's, and the guards keep what was measured when a
step fails or the time runs out (a GPU lease returns only what was written under $OUT)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return load("gpu_4k60")


def args_for(bench, *argv: str):
    args = bench.build_parser().parse_args(["--rehearse", *argv])
    bench.configure_sizes(args)
    args.deadline = None
    return args


# ----------------------------------------------------------------------------- the whole rehearsal


@pytest.mark.slow
def test_rehearsal_runs_every_section_with_a_row_for_each_step(tmp_path):
    out = tmp_path / "out" / "gpu_4k60.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OUT=str(tmp_path / "out"))
    proc = subprocess.run([sys.executable, "benchmarks/gpu_4k60.py", "--rehearse"],  # JSON under $OUT by default
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    res = json.loads(out.read_text())
    assert res["rehearse"] is True
    for name in ("model", "profile", "memory", "decode", "encode", "pipeline", "vs"):
        assert res[name]["status"] in ("ok", "skipped: VapourSynth is not installed"), (name, res[name])
        assert "failed_steps" not in res[name], (name, res[name])

    model = res["model"]
    assert model["size"] == [200, 136] and model["padded"] == [256, 256]  # padded to the model's 128
    rows = {r["step"]: r for r in model["rows"]}
    assert len(rows) == 8
    assert rows["eager fp32 (baseline)"]["speedup_vs_baseline"] == 1.0
    for name in ("+ cudnn.benchmark", "+ chunk-parallel Triton scan"):
        assert rows[name]["status"] == "skipped: CUDA only"
    measured = [r for r in model["rows"] if "ms" in r]
    assert len(measured) == 6 and all(r["ms"] > 0 and r["psnr_vs_fp32"] > 0 for r in measured)
    graphs = rows["+ CUDA graphs"]
    assert graphs["status"].startswith("rehearsed") and graphs["graph_replays_per_frame"] == 1.0

    prof = {r["step"]: r for r in res["profile"]["rows"]}
    for name in ("eager fp32", "today's half (autocast)", "fast path"):
        assert prof[name]["per_frame"] > 0, name
    assert prof["fast path, graphs"]["graph_launches_per_frame"] == 1.0  # measured, not assumed

    mem = res["memory"]
    from err_stream import ERR
    from err_stream.model.schedule import err_schedule

    sched = err_schedule(ERR())
    assert mem["schedule_constants"]["shell_bytes_per_pixel"] == sched.shell_bytes_per_pixel
    assert mem["schedule_constants"]["frame_bytes_per_pixel"] == sched.frame_bytes_per_pixel
    mrows = {r["step"]: r for r in mem["rows"]}
    assert mrows["400x272 bf16 tiled"]["plan"].startswith("tiles") and mrows["400x272 bf16 tiled"]["finite"]
    assert mrows["OOM retry"]["status"] == "skipped: CUDA only"

    dec = {r["step"]: r for r in res["decode"]["rows"]}
    assert dec["CPU decode (PyAV)"]["fps"] > 0 and dec["NVDEC (PyAV HWAccel)"]["status"] == "skipped: CUDA only"
    assert all("fps" in r for r in res["encode"]["rows"] if r["encoder"] == "libx264")
    (pipe,) = res["pipeline"]["rows"]
    assert pipe["returncode"] == 0 and pipe["result"]["size"] == [200, 136] and pipe["result"]["efficiency"] > 0
    assert set(res["section_seconds"]) == {"model", "profile", "memory", "decode", "encode", "pipeline", "vs"}


# ----------------------------------------------------------------------------- the guards


def test_a_failing_step_keeps_the_rows_before_it_and_the_next_step_runs(bench, tmp_path):
    report = bench.Report(tmp_path / "r.json", {"run": 1})
    args = args_for(bench)
    seen_on_disk = []

    def section(sec):
        rows = sec["rows"] = []
        bench.run_step(rows, report, "first", lambda: {"ms": 1.0})
        bench.run_step(rows, report, "broken", lambda: 1 / 0)
        # The JSON on disk already holds both rows when the third step starts.
        bench.run_step(rows, report, "third", lambda: seen_on_disk.append(json.loads(report.path.read_text())) or {"ms": 3.0})
        bench.run_step(rows, report, "cuda only", lambda: None)

    sec = bench.run_section(report, "model", section, args)
    on_disk = [(r["step"], r["status"]) for r in seen_on_disk[0]["model"]["rows"]]
    assert on_disk == [("first", "ok"), ("broken", "error"), ("third", "running")]
    saved = json.loads(report.path.read_text())["model"]
    assert saved["status"] == "ok" and saved["failed_steps"] == ["broken"] and sec is report.data["model"]
    rows = {r["step"]: r for r in saved["rows"]}
    assert rows["first"]["ms"] == 1.0 and rows["third"]["ms"] == 3.0
    assert rows["broken"]["status"] == "error" and "ZeroDivisionError" in rows["broken"]["error"]
    assert rows["cuda only"]["status"] == "skipped: CUDA only"


def test_a_failing_section_keeps_its_rows_and_the_next_section_runs(bench, tmp_path):
    report = bench.Report(tmp_path / "r.json", {})
    args = args_for(bench)

    def broken(sec):
        sec["rows"] = [{"step": "measured", "ms": 2.0}]
        raise AttributeError("module has no attribute _SHELL_BYTES_PER_PIXEL")

    bench.run_section(report, "memory", broken, args)
    bench.run_section(report, "decode", lambda sec: sec.update(rows=[{"step": "after", "fps": 5.0}]), args)
    saved = json.loads(report.path.read_text())
    assert saved["memory"]["status"] == "error" and "_SHELL_BYTES_PER_PIXEL" in saved["memory"]["error"]
    assert saved["memory"]["rows"] == [{"step": "measured", "ms": 2.0}]
    assert saved["decode"]["status"] == "ok" and saved["decode"]["rows"][0]["fps"] == 5.0


def test_the_budget_stops_a_step_midway_and_skips_what_follows(bench, tmp_path):
    report = bench.Report(tmp_path / "r.json", {})
    args = args_for(bench, "--cap", "model=0.3")
    args.deadline = time.perf_counter() + 30

    def slow(sec):
        rows = sec["rows"] = []
        bench.run_step(rows, report, "quick", lambda: {"ms": 1.0})

        def forever():
            end = time.monotonic() + 20
            while time.monotonic() < end:  # a compile that takes too long
                time.sleep(0.01)
            return {"ms": 2.0}

        bench.run_step(rows, report, "too slow", forever)
        bench.run_step(rows, report, "never", lambda: {"ms": 3.0})

    t0 = time.monotonic()
    bench.run_section(report, "model", slow, args)
    assert time.monotonic() - t0 < 10
    args.deadline = time.perf_counter() - 1  # the whole budget spent
    bench.run_section(report, "profile", lambda sec: sec.update(ran=True), args)
    saved = json.loads(report.path.read_text())
    assert saved["model"]["status"].startswith("stopped")
    assert [(r["step"], r["status"]) for r in saved["model"]["rows"]] == [
        ("quick", "ok"), ("too slow", "stopped: the time budget ran out")]
    assert saved["profile"]["status"].startswith("stopped") and "ran" not in saved["profile"]


def test_the_json_goes_under_out_by_default(bench, monkeypatch, tmp_path):
    monkeypatch.setenv("OUT", str(tmp_path))
    assert bench.build_parser().parse_args([]).json == str(tmp_path / "gpu_4k60.json")
    monkeypatch.delenv("OUT")
    assert bench.build_parser().parse_args([]).json == "gpu_4k60.json"


def test_sizes_are_not_multiples_and_pad_as_the_restorer_pads(bench):
    args = args_for(bench)
    assert args.model_size == (200, 136) and args.memory_8k == (400, 272)  # stand-ins for 3840x2160, 7680x4320
    full = bench.build_parser().parse_args([])
    bench.configure_sizes(full)
    assert full.model_size == (3840, 2160)
    x = bench.padded_frame(200, 136, bench.torch.device("cpu"), 128)
    assert tuple(x.shape) == (1, 3, 256, 256) and x.is_inference()
    assert bench.padded_size(2160, 3840, 128) == (2176, 3840)


def test_carried_wheels_install_without_an_index(bench, tmp_path):
    """--wheels: what the device needs that its Python lacks, installed from the carried folder."""
    wheels = tmp_path / ".whl"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "errcarried-1.0-py3-none-any.whl", "w") as z:
        z.writestr("errcarried/__init__.py", "VALUE = 42\n")
        z.writestr("errcarried-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: errcarried\nVersion: 1.0\n")
        z.writestr("errcarried-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("errcarried-1.0.dist-info/RECORD", "")
    args = args_for(bench, "--wheels", str(wheels))
    args.site = tmp_path / "site"
    before = list(sys.path)
    try:
        out = bench.install_wheels(args)
        assert out["status"] == "ok", out
        assert "--no-index" in out["command"] and out["installed"] == {"errcarried": True}
        assert (tmp_path / "site" / "errcarried" / "__init__.py").exists()
        assert args.extra_paths == [str(tmp_path / "site")]  # the subprocess benchmarks see it too
    finally:
        sys.path[:] = before
    empty = args_for(bench, "--wheels", str(tmp_path / "none"))
    assert bench.install_wheels(empty)["status"].startswith("error: no wheels")


# ----------------------------------------------------------------------------- DALI exactness script


def test_dali_script_clips_are_ones_nvdec_decodes(tmp_path):
    """crf 0 made x264 code High 4:4:4 Predictive, which NVDEC refuses: the script's clips
    must be High (or lower) 4:2:0 H.264 and VP9 profile 0."""
    sys.path.insert(0, str(ROOT / "tests"))
    dali = load("gpu_dali_exactness")
    import clips

    ok, what = dali.nvdec_decodes(dali.make_h264_high(tmp_path / "a.mp4", frames=3))
    assert ok and what == "h264 High yuv420p"
    ok, what = dali.nvdec_decodes(clips.make_vp9_webm(tmp_path / "b.webm", w=256, h=144, frames=3))
    assert ok, what
    ok, what = dali.nvdec_decodes(clips.make_h264_aac(tmp_path / "c.mp4", w=256, h=144, frames=3, audio=False, crf=0))
    assert not ok and "4:4:4" in what  # what the script used to make
