"""How far NVIDIA DALI's decoded colours are from FFmpeg's, per plane, on a GPU (NVDEC).

`--decoder auto` no longer picks DALI because its RGB output is not colour-exact (measured
with DALI's CPU decoder: 7/8/8 code values off on a lossless VP9, 25/14/21 on full-range
MJPEG). This script measures, on the GPU, both of DALI's output types against PyAV's planes:

* ``rgb``: what `--decoder dali` uses (DALI's BT.601 RGB, undone by our converter);
* ``ycbcr``: DALI's YCbCr output (``image_type=YCbCr``; the CPU decoder refuses it). If its
  luma is exact and its chroma is repeated per 2x2 cell (max 0 in the "chroma by cell"
  column), DaliSource can switch to it and become exact.

Needs a CUDA GPU, DALI (`pip install '.[dali]'`) and nothing from the network (the clips are
made here). About a minute. Prints one table; exits 0 (1 without a GPU).

    python benchmarks/gpu_dali_exactness.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

import clips  # noqa: E402

from err_stream.colour import YCbCrConverter, resolve  # noqa: E402
from err_stream.io.dali import DaliSource  # noqa: E402
from err_stream.io.source import probe  # noqa: E402


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
            "h264 bt709 limited": clips.make_h264_aac(d / "a.mp4", w=256, h=144, frames=8, audio=False, crf=0),
            "vp9 bt709 limited": clips.make_vp9_webm(d / "b.webm", w=256, h=144, frames=8),
        }
        for name, path in made.items():
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
