"""benchmarks/eval_demo.py: the targets table's numbers mean what they say (tiny sizes, seeded weights)."""

from __future__ import annotations

import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import eval_demo  # noqa: E402


def test_targets_on_small_frames(golden_path):
    res = eval_demo.evaluate(str(golden_path), photos=["skimage:coffee"], sizes=("128x128",), degradations=("exposure_noise",),
                             lit_sizes=("128x128",), clips=False, log=lambda msg: None)
    dark = res["dark"]["exposure_noise"]["128x128"]
    assert set(dark) >= set(eval_demo.METHODS) and dark["diverged"][1] == 1
    checks = {t["check"]: t for t in res["targets"]}
    al = dark["auto-levels + gamma"]["psnr"]
    t = checks["exposure_noise 128x128: PSNR ≥ auto-levels+γ + 1 dB"]
    assert t["bound"] == pytest.approx(al + 1) and t["pass"] == (dark["model"]["psnr"] >= al + 1)
    lit = checks["lit 128x128: PSNR of output vs input ≥ 30 dB"]
    assert lit["value"] == res["lit"]["128x128"]["psnr"] and np.isfinite(lit["value"])
    assert "| exposure_noise | 128x128 |" in eval_demo.table(res)


def test_flicker_divides_by_the_brightness_gain(tmp_path):
    """A model that doubles the brightness of a flickering clip flickers exactly as much, relatively."""
    path = tmp_path / "flicker.mp4"
    levels = [60, 80, 60, 90, 70, 60]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=12)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv444p"
        s.options = {"crf": "0", "preset": "ultrafast"}
        for v in levels:
            for p in s.encode(av.VideoFrame.from_ndarray(np.full((64, 64, 3), v, np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)

    class Doubler:
        def restore(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2

    f = eval_demo.flicker(Doubler(), path, "cpu", max_frames=10)
    assert f["frames"] == len(levels) and f["gain"] == pytest.approx(2.0, rel=0.02)
    assert f["model"] == pytest.approx(f["input"], rel=0.02)
    assert f["input"] == pytest.approx(np.abs(np.diff(levels)).mean() / 255, rel=0.05)
