"""The same clip through the transcoder and through the VapourSynth filter: do the pixels agree?

Both front ends run an identity model (every weight zero: ERR's residual structure then
returns its input exactly), so any difference comes from the colour path alone: the
transcoder's own YCbCr<->RGB on the device vs what the VapourSynth filter uses. The clip is
read by BestSource in VapourSynth and by PyAV in the transcoder; the output of both is
compared code value by code value, per plane.

    python benchmarks/colour_paths.py [--frames 5] [VIDEO]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import clips  # noqa: E402  (the tests' PyAV helpers: frame_planes)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("video", nargs="?", default=str(REPO / "examples" / "media" / "dark_harbour.mp4"))
    p.add_argument("--frames", type=int, default=5)
    a = p.parse_args()

    import av
    import torch
    import vapoursynth as vs

    from err_stream.cli import main as cli
    from err_stream.colour import ColourSpec
    from err_stream.model import ERR
    from err_stream.weights import save_checkpoint
    from vs_plugin import err

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        identity = ERR().eval()
        with torch.no_grad():
            for t in identity.parameters():
                t.zero_()
        weights = save_checkpoint(identity, tmp / "identity.safetensors")
        # The first N frames as a lossless file both paths read.
        src = tmp / "src.mkv"
        with av.open(a.video) as i, av.open(str(src), "w") as o:
            vi = i.streams.video[0]
            s = o.add_stream("ffv1", rate=vi.average_rate)
            s.width, s.height, s.pix_fmt = vi.codec_context.width, vi.codec_context.height, vi.codec_context.pix_fmt
            ColourSpec.from_av(vi.codec_context).apply_to(s.codec_context)  # keep the colour tags
            for k, f in enumerate(i.decode(vi)):
                if k == a.frames:
                    break
                o.mux(s.encode(f))
            o.mux(s.encode())
        out = tmp / "transcoded.mkv"
        code = cli([str(src), str(out), "--weights", str(weights), "--codec", "ffv1", "--device", "cpu", "--quiet",
                    "--accept-out-of-range"])
        if code:
            return code
        trans = clips.decode_all(out)[0]

        clip = vs.core.bs.VideoSource(str(src))
        clip = err(clip, weights=str(weights), device_index=-1)
        vsout = [[np.asarray(f[k]).copy() for k in range(f.format.num_planes)] for f in clip.frames(close=True)]

    print(f"{Path(a.video).name}, {len(trans)} frames, identity model, CPU")
    print("| plane | max |diff| (code values) | mean |diff| | pixels differing |")
    print("|---|---|---|---|")
    for k, name in enumerate(("Y", "Cb", "Cr")):
        d = np.concatenate([np.abs(t[k].astype(int) - v[k].astype(int)).ravel() for t, v in zip(trans, vsout)])
        print(f"| {name} | {d.max()} | {d.mean():.3f} | {100 * (d > 0).mean():.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
