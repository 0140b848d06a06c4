"""End-to-end video pipeline benchmark: does decode/encode overlap with the model?

For a synthetic H.264 clip it measures, in one run on one machine:

  (a) decode + colour + encode alone       (the transcoder with --passthrough)
  (b) the model alone on pre-decoded frames (RGB float already on the device)
  (e) the streaming executor alone          (host RGB frames in, host results out: the
                                             copies, the output check and the hand-offs
                                             that the transcoder and the VS filter add)
  (c) the full pipeline                     (the transcoder with the model)

and prints the pipeline efficiency (c) / min(a, b): 1.0 means the slower of the two sides
sets the pace and the rest is hidden behind it, and (e) / (b), the executor's own cost.
Targets: >= 0.9 on CPU at 640x360, >= 0.95 on a GPU at 3840x2160 with fp16.

    python benchmarks/bench_pipeline.py --size 640x360 --frames 16
    python benchmarks/bench_pipeline.py --size 3840x2160 --frames 48 --device cuda --precision fp16

The model has seeded random weights unless --weights is given (speed does not depend on
them); their output leaves [0, 1], so the runs accept and clamp it (the output check is still
computed and paid for).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

# Before torch loads libgomp: OpenMP threads that spin while waiting starve everything else on
# a busy CPU (the model alone ran 14 s instead of 0.4 s a frame on the main thread of a loaded
# 2-core machine), which made the model-only baseline, not the pipeline, the slow side.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from err_stream.engine import Restorer, StreamingExecutor  # noqa: E402
from err_stream.colour import ColourSpec, Matrix, Primaries, Range, Transfer, YCbCrConverter, resolve  # noqa: E402
from err_stream.io.source import PyAVSource, probe  # noqa: E402
from err_stream.model import ERR  # noqa: E402
from err_stream.video import transcode  # noqa: E402


def make_clip(path: Path, width: int, height: int, frames: int, fps: int = 24) -> Path:
    """A moving textured pattern, H.264 yuv420p BT.709 limited range."""
    import av

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(xx / 23.0) * np.cos(yy / 17.0) + 0.1 * np.sin((xx + yy) / 5.0)
    rng = np.random.default_rng(0)
    noise = [rng.normal(0, 0.02, (height, width)).astype(np.float32) for _ in range(4)]
    cw, ch = (width + 1) // 2, (height + 1) // 2
    cb = (128 + 20 * np.sin(np.mgrid[0:ch, 0:cw][1] / 13.0)).astype(np.uint8)
    cr = (128 + 20 * np.cos(np.mgrid[0:ch, 0:cw][0] / 11.0)).astype(np.uint8)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.time_base = Fraction(1, fps)
        cc = s.codec_context
        tags = ColourSpec(Matrix.BT709, Range.LIMITED, Primaries.BT709, Transfer.BT709)
        tags.apply_to(cc)
        cc.options = {"preset": "ultrafast", "crf": "18"}
        for i in range(frames):
            y = np.clip(16 + 219 * (np.roll(base, 3 * i, axis=1) + noise[i % 4]), 16, 235).astype(np.uint8)
            f = av.VideoFrame(width, height, "yuv420p")
            for plane, a in zip(f.planes, (y, cb, cr)):
                view = np.frombuffer(plane, np.uint8, count=a.shape[0] * plane.line_size).reshape(a.shape[0], -1)
                view[:, : a.shape[1]] = a
            f.pts = i
            tags.apply_to(f)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rgb_frames(clip: Path, device: torch.device) -> list[torch.Tensor]:
    """The clip's frames as 1 x 3 x H x W float RGB on ``device``."""
    info = probe(clip)
    conv = YCbCrConverter.for_spec(resolve(info.tags, info.width, info.height).spec)
    frames = []
    for f in PyAVSource(info).frames():
        y, cb, cr = (torch.from_numpy(np.ascontiguousarray(p))[None].to(device) for p in f.planes)
        frames.append(conv.planes_to_rgb(y, cb, cr, info.pix_fmt))
    return frames


def executor_alone(clip: Path, restorer: Restorer, batch: int) -> tuple[int, float]:
    """fps of the streaming executor: host RGB frames copied into its input slots by this
    thread, results taken in order (and copied out) by a consumer thread."""
    frames = [f[0].cpu() for f in rgb_frames(clip, torch.device("cpu"))]
    _, h, w = frames[0].shape
    tickets: queue.Queue = queue.Queue()

    def consume() -> None:
        while (t := tickets.get()) is not None:
            with t as out:
                out.numpy().copy()

    with StreamingExecutor(restorer, max_batch=batch, input_shape=(3, h, w), input_slots=2 * batch + 2,
                           accept_out_of_range=True) as ex:
        for _ in range(2):  # warm-up: pinned pools and the first allocations
            slot = ex.input_slot()
            slot.tensor.copy_(frames[0])
            with ex.submit([slot]):
                pass
        consumer = threading.Thread(target=consume)
        consumer.start()
        t0 = time.perf_counter()
        for i in range(0, len(frames), batch):
            slots = []
            for f in frames[i : i + batch]:
                slot = ex.input_slot()
                slot.tensor.copy_(f)
                slots.append(slot)
            tickets.put(ex.submit(slots))
        tickets.put(None)
        consumer.join()
        seconds = time.perf_counter() - t0
    return len(frames), seconds


def model_alone(clip: Path, restorer: Restorer, batch: int) -> tuple[int, float]:
    """fps of Restorer.restore on frames decoded and converted to RGB beforehand."""
    frames = rgb_frames(clip, restorer.device)
    batches = [torch.cat(frames[i : i + batch]) for i in range(0, len(frames), batch)]
    sync(restorer.device)
    t0 = time.perf_counter()
    for b in batches:
        restorer.restore(b)
    sync(restorer.device)
    return len(frames), time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", default=None, choices=["fp32", "fp16", "bf16"])
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--codec", default=None, help="encoder (default: the transcoder's choice, libx264 crf 16 medium)")
    ap.add_argument("--encoder-preset", default=None)
    ap.add_argument("--decoder", default="auto")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--clip", default=None, help="use this clip instead of a synthetic one")
    ap.add_argument("--repeat", type=int, default=1, help="measure (a), (b), (c) this many times, interleaved, keep the best "
                    "(other load on the machine then affects the three alike)")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args()

    device = torch.device(args.device)
    precision = args.precision or ("fp16" if device.type == "cuda" else "fp32")
    w, h = (int(v) for v in args.size.lower().split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    clip = Path(args.clip) if args.clip else make_clip(tmp / "clip.mp4", w, h, args.frames)
    info = probe(clip)

    if args.weights:
        from err_stream.weights import load_model

        model = load_model(args.weights, device=device)
    else:
        torch.manual_seed(0)
        model = ERR().eval()
    restorer = Restorer(model, device=device, precision=precision)
    batch = args.batch
    common = dict(device=device, decoder=args.decoder, codec=args.codec, encoder_preset=args.encoder_preset,
                  overwrite=True, batch=batch)

    # Warm-up: first calls pay for kernel selection / allocations, not what we measure.
    with torch.inference_mode():
        restorer.restore(torch.rand(1, 3, h, w, device=device))
    sync(device)
    transcode(clip, tmp / "warm.mp4", None, **common)

    fps_a = fps_b = fps_c = fps_e = 0.0
    for _ in range(max(1, args.repeat)):
        a = transcode(clip, tmp / "passthrough.mp4", None, **common)
        batch = a.batch
        nb, tb = model_alone(clip, restorer, batch)
        ne, te = executor_alone(clip, restorer, batch)
        c = transcode(clip, tmp / "restored.mp4", restorer, accept_out_of_range=True, **common)
        fps_a, fps_b, fps_c = max(fps_a, a.fps), max(fps_b, nb / tb), max(fps_c, c.fps)
        fps_e = max(fps_e, ne / te)
    eff = fps_c / min(fps_a, fps_b)
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    rows = [
        ("(a) decode + colour + encode (passthrough)", fps_a),
        ("(b) model alone, pre-decoded frames", fps_b),
        ("(e) streaming executor, host frames", fps_e),
        ("(c) full pipeline", fps_c),
    ]
    print(f"\nerr-stream video pipeline: {info.width}x{info.height} {info.codec} {info.pix_fmt.name}, {c.frames} frames, "
          f"{dev_name}, {precision}, batch {batch}, decoder {c.decoder}, encoder {c.codec}, best of {max(1, args.repeat)}")
    print(f"{'stage':<46}{'fps':>10}{'ms/frame':>12}")
    for name, fps in rows:
        print(f"{name:<46}{fps:>10.3f}{1000 / fps:>12.1f}")
    print(f"{'executor (e) / model (b)':<46}{fps_e / fps_b:>10.3f}")
    print(f"{'efficiency (c) / min(a, b)':<46}{eff:>10.3f}")
    target = 0.95 if device.type == "cuda" else 0.9
    print(f"target >= {target}: {'met' if eff >= target else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "size": [info.width, info.height], "frames": c.frames, "device": dev_name, "precision": precision,
            "batch": batch, "decoder": c.decoder, "encoder": c.codec,
            "fps_passthrough": fps_a, "fps_model": fps_b, "fps_executor": fps_e, "fps_pipeline": fps_c, "efficiency": eff,
        }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
