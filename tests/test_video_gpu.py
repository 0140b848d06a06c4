"""The video pipeline on CUDA (pinned buffers, three streams, events): same results as on CPU.

Skipped without a GPU. Uses a model with seeded random weights, so it needs no checkpoint;
its output leaves [0, 1] far, so the runs accept and clamp it (the output guard would stop them).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from err_stream.engine import Restorer
from err_stream.model import ERR
from err_stream.video import transcode

try:
    import clips
except ImportError:  # tests/ imported as a package
    from tests import clips

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def planes_diff(a, b) -> np.ndarray:
    return np.concatenate([np.abs(x.astype(np.int64) - y.astype(np.int64)).ravel() for fa, fb in zip(a, b) for x, y in zip(fa, fb)])


@pytest.mark.parametrize(
    "make, options",
    [
        (lambda d: clips.make_h264_aac(d / "in.mp4", w=130, h=74), dict(codec="libx264", crf=0)),
        (lambda d: clips.make_hevc_pq(d / "in.mp4", w=96, h=64), dict(encoder_opt=["x265-params=lossless=1"])),
        (lambda d: clips.make_prores_422_10bit(d / "in.mov"), dict(codec="ffv1")),
    ],
    ids=["h264-8bit", "hevc-10bit", "prores-422-10bit"],
)
def test_cuda_passthrough_is_lossless(tmp_path, make, options):
    src = make(tmp_path)
    out = tmp_path / ("out.mkv" if options.get("codec") == "ffv1" else "out" + src.suffix)
    result = transcode(src, out, None, device="cuda", progress=None, batch=3, **options)
    assert result.device.startswith("cuda") and result.decoder == "pyav"
    a, pa, tba, fa = clips.decode_all(src)
    b, pb, tbb, fb = clips.decode_all(out)
    assert len(a) == len(b) == result.frames
    assert fb.format.name == fa.format.name
    assert planes_diff(a, b).max() <= 1


def test_cuda_pipeline_matches_cpu_and_batching_changes_nothing(tmp_path):
    src = clips.make_h264_aac(tmp_path / "in.mp4", w=96, h=64, frames=5, audio=False)
    torch.manual_seed(0)
    model = ERR().eval()
    outs = {}
    for name, device, batch in (("cpu", "cpu", 1), ("cuda1", "cuda", 1), ("cuda4", "cuda", 4)):
        restorer = Restorer(model, device=device, precision="fp32", tiling="off")
        outs[name] = tmp_path / f"{name}.mkv"
        r = transcode(src, outs[name], restorer, codec="ffv1", progress=None, batch=batch, accept_out_of_range=True)
        assert r.frames == 5 and r.batch == batch
    cpu, g1, g4 = (clips.decode_all(outs[k])[0] for k in ("cpu", "cuda1", "cuda4"))
    d = planes_diff(cpu, g1)
    assert d.mean() < 0.2 and d.max() <= 3  # TF32 convolutions on the GPU: tiny differences
    assert planes_diff(g1, g4).max() <= 1
    src_frames = clips.decode_all(src)[0]
    assert planes_diff(src_frames, g1).mean() > 1  # the model did something


def test_fp16_pipeline_close_to_fp32(tmp_path):
    src = clips.make_h264_aac(tmp_path / "in.mp4", w=128, h=128, frames=3, audio=False)
    torch.manual_seed(0)
    model = ERR().eval()
    res = {}
    for precision in ("fp32", "fp16"):
        out = tmp_path / f"{precision}.mkv"
        transcode(src, out, Restorer(model, device="cuda", precision=precision), codec="ffv1", progress=None, accept_out_of_range=True)
        res[precision] = clips.decode_all(out)[0]
    d = planes_diff(res["fp32"], res["fp16"])
    assert d.mean() < 1.0 and np.percentile(d, 99) <= 4


def test_nvenc_when_available(tmp_path):
    import av

    try:
        with av.open(str(tmp_path / "probe.mp4"), "w") as c:
            s = c.add_stream("hevc_nvenc", rate=24)
            s.width, s.height, s.pix_fmt = 256, 144, "yuv420p"
            c.start_encoding()
    except Exception as e:  # no NVENC in this FFmpeg build or driver
        pytest.skip(f"hevc_nvenc unavailable: {e}")
    src = clips.make_h264_aac(tmp_path / "in.mp4", w=256, h=144, frames=8)
    out = tmp_path / "out.mp4"
    r = transcode(src, out, None, device="cuda", codec="hevc_nvenc", progress=None)
    b, _, _, fb = clips.decode_all(out)
    assert r.codec == "hevc_nvenc" and len(b) == 8 and fb.format.name == "yuv420p"
    assert planes_diff(clips.decode_all(src)[0], b).mean() < 3
