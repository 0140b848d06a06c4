"""Before/after picture of a demo frame for the README: the bundled dark clip's frame, restored.

    python scripts/demo_picture.py [--weights FILE] [--frame 15] [--out docs/demo-before-after.jpg]

Left: the frame of examples/media/dark_harbour.mp4 as decoded; right: restored by the model
(default: the embedded demo weights), clamped to [0, 1]. Written as a JPEG (quality 85).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from err_stream.image import restore_image  # noqa: E402
from err_stream.weights import load_model  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None)
    p.add_argument("--clip", default=str(ROOT / "examples" / "media" / "dark_harbour.mp4"))
    p.add_argument("--frame", type=int, default=15)
    p.add_argument("--out", default=str(ROOT / "docs" / "demo-before-after.jpg"))
    args = p.parse_args()
    import av
    from PIL import Image

    with av.open(args.clip) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == args.frame:
                frame = f.to_ndarray(format="rgb24")
                break
        else:
            raise SystemExit(f"demo_picture: {args.clip} has no frame {args.frame}")
    torch.set_flush_denormal(True)
    model = load_model(args.weights, device="cpu")
    with torch.inference_mode():
        restored = restore_image(model, frame)
    gap = np.full((frame.shape[0], 8, 3), 255, np.uint8)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([frame, gap, restored], axis=1)).save(out, quality=85)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
