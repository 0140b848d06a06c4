"""benchmarks/gpu_4k60.py --smoke: every section of the 4K60 benchmark runs on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_4k60_smoke_runs_every_section(tmp_path):
    out = tmp_path / "gpu_4k60.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "benchmarks/gpu_4k60.py", "--smoke", "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    res = json.loads(out.read_text())
    assert res["smoke"] is True
    for name in ("model", "profile", "decode", "encode", "pipeline", "vs", "memory"):
        assert name in res and "error" not in res[name], (name, res.get(name))

    rows = {r["step"]: r for r in res["model"]["rows"]}
    base = rows["eager fp32 (baseline)"]
    assert base["speedup_vs_baseline"] == 1.0 and base["ms"] > 0
    timed = [r for r in res["model"]["rows"] if "ms" in r]
    assert len(timed) >= 5  # baseline, today's half path, channels_last, half weights, compile
    for r in timed[1:]:
        assert r["psnr_vs_fp32"] >= 50, r  # every step stays equal to the reference within tolerance
    assert any("compile" in r["step"] for r in timed)

    for name, counts in res["profile"].items():
        if isinstance(counts, dict) and "per_frame" in counts:
            assert counts["per_frame"] > 0, name
    assert res["decode"]["cpu_fps"] > 0
    assert all("fps" in r for r in res["encode"]["rows"] if r["encoder"] == "libx264")
    for part in ("pipeline", "vs"):
        for size, r in res[part].items():
            assert r["returncode"] == 0, (part, size, r["output_tail"])
    assert res["pipeline"][next(iter(res["pipeline"]))]["result"]["efficiency"] > 0
    assert res["memory"]["tiled_smoke_finite"] is True
