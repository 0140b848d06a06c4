"""How far NVIDIA DALI's decoded colours are from FFmpeg's, per plane, on a GPU (NVDEC).

`--decoder auto` no longer picks DALI because its RGB output is not colour-exact (measured
with DALI's CPU decoder: 7/8/8 code values off on a lossless VP9, 25/14/21 on full-range
MJPEG). This script measures, on the GPU, both of DALI's output types against PyAV's planes:

* ``rgb``: what `--decoder dali` uses (DALI's BT.601 RGB, undone by our converter);
* ``ycbcr``: DALI's YCbCr output (``image_type=YCbCr``; the CPU decoder refuses it). If its
  luma is exact and its chroma is repeated per 2x2 cell (max 0 in the "chroma by cell"
  column), DaliSource can switch to it and become exact.

The clips are coded as NVDEC decodes them: H.264 High profile, 8-bit 4:2:0, near-lossless
(crf 1; crf 0 would be lossless, which x264 codes in the High 4:4:4 Predictive profile that
NVDEC cannot decode), and VP9 profile 0. Exactness is judged decoder against decoder on the
same bitstream, so the coding loss does not enter the figures.

Needs a CUDA GPU, DALI (`pip install '.[dali]'`) and nothing from the network (the clips are
made here). About a minute. Prints one table; exits 0 (1 without a GPU). It cannot run on
the lent GPU machines as they are: DALI's wheel is about 476 MB and a call carries 64 MB
(benchmarks/README.md says what it needs).

    python benchmarks/gpu_dali_exactness.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from fractions import Fraction

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

import clips  # noqa: E402

from err_stream.colour import YCbCrConverter, resolve  # noqa: E402
from err_stream.io.dali import DaliSource  # noqa: E402
from err_stream.io.source import probe  # noqa: E402


# What NVDEC decodes of H.264: Baseline, Main and High, 8-bit 4:2:0 (not High 4:4:4).
NVDEC_H264_PROFILES = ("Baseline", "Constrained Baseline", "Main", "High")


def make_h264_high(path: Path, w: int = 256, h: int = 144, frames: int = 8, fps: int = 12) -> Path:
    """H.264 High profile, 8-bit 4:2:0, BT.709 limited range, near-lossless: a stream NVDEC
    decodes (crf 0 would make x264 switch to High 4:4:4 Predictive, which it does not)."""
    import av

    tags = clips.BT709
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.time_base = Fraction(1, fps)
        cc = s.codec_context
        tags.apply_to(cc)
        cc.options = {"preset": "medium", "profile": "high", "crf": "1"}
        for i in range(frames):
            f = clips.fill(av.VideoFrame(w, h, "yuv420p"), clips.yuv_planes(i, w, h), tags)
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def nvdec_decodes(path: Path) -> tuple[bool, str]:
    """Whether NVDEC decodes this H.264 or VP9 stream (profile and chroma format), and what it is."""
    import av

    with av.open(str(path)) as c:
        cc = c.streams.video[0].codec_context
        what = f"{cc.name} {cc.profile} {cc.format.name}"
        if cc.format.name != "yuv420p":
            return False, what
        if cc.name == "h264":
            return cc.profile in NVDEC_H264_PROFILES, what
        return cc.name == "vp9" and cc.profile == "Profile 0", what


def dali_ycbcr(path: Path, frames: int) -> np.ndarray:
    import nvidia.dali as dali
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types

    @dali.pipeline_def(batch_size=1, num_threads=2, device_id=0)
    def pipe():
        return fn.experimental.readers.video(filenames=[str(path)], sequence_length=frames, device="gpu",
                                             image_type=types.DALIImageType.YCbCr, name="r")

    p = pipe()
    p.build()
    (out,) = p.run()
    return np.array(out.as_cpu()[0])


def main() -> int:
    if not torch.cuda.is_available():
        print("needs a CUDA GPU")
        return 1
    rows = []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        made = {
            "h264 high bt709 limited": make_h264_high(d / "a.mp4"),
            "vp9 bt709 limited": clips.make_vp9_webm(d / "b.webm", w=256, h=144, frames=8),
        }
        for name, path in made.items():
            ok, what = nvdec_decodes(path)
            if not ok:
                rows.append((name, f"skipped: NVDEC does not decode {what}", ""))
                continue
            info = probe(path)
            want = clips.decode_all(path)[0]
            conv = YCbCrConverter.for_spec(resolve(info.tags, info.width, info.height).spec)
            got = []
            for f in DaliSource(info, device="gpu").frames():
                if f.ready is not None:
                    f.ready.synchronize()
                rgb = conv.from_bt601_limited_rgb(f.rgb601[None].cuda())
                planes = conv.rgb_to_planes(rgb, info.pix_fmt)
                got.append([p[0].cpu().numpy().astype(int) for p in planes])
            rgb_err = [max(int(np.abs(g[k] - w[k].astype(int)).max()) for g, w in zip(got, want)) for k in range(3)]
            try:
                ycc = dali_ycbcr(path, len(want))
                y_err = max(int(np.abs(ycc[i, :, :, 0].astype(int) - w[0]).max()) for i, w in enumerate(want))
                cell = max(int(np.abs(ycc[i, 0::2, 0::2, k].astype(int) - w[k]).max()) for i, w in enumerate(want) for k in (1, 2))
                ycc_err = f"{y_err} / {cell}"
            except Exception as e:  # report and go on
                ycc_err = f"failed: {str(e).splitlines()[0][:60]}"
            rows.append((name, "/".join(map(str, rgb_err)), ycc_err))
    print(f"device: {torch.cuda.get_device_name()}")
    print("| clip | rgb path: max error Y/Cb/Cr | ycbcr: max error Y / chroma by cell |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
