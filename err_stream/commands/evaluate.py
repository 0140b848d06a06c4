"""``err-stream eval``: PSNR / SSIM (and LPIPS) of restored images against ground truth.

With ``--weights``/``--preset`` (or neither: the demo model) the images of ``--input`` are
restored first; with ``--restored`` they are taken as already restored. Images are paired
with ``--target`` by file name (without extension). Metrics are basicsr's: Y channel of
BT.601, ``--crop-border`` pixels (default 4) removed from every side.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from ..errors import UserError
from .common import ACCEPT_OPTION, add_model_arguments

HELP = "PSNR/SSIM (Y channel, as in the paper) and optionally LPIPS of a model's output against ground truth"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, metavar="DIR", help="degraded images (or restored ones with --restored)")
    p.add_argument("--target", required=True, metavar="DIR", help="ground-truth images, paired with --input by file name")
    p.add_argument("--restored", action="store_true", help="--input holds results already: measure them, run no model")
    p.add_argument("--crop-border", type=int, default=4, metavar="N", help="pixels removed from each side before measuring (default 4)")
    p.add_argument("--lpips", action="store_true", help="also LPIPS (AlexNet; needs the 'lpips' package and its weights)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_arguments(p)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..engine.output_check import OutputRangeError  # loads torch: only when the command runs
    from ..image import restore_image
    from ..train.datasets import DataError, match_pairs
    from ..train.metrics import LPIPS, psnr, ssim

    if args.crop_border < 0:
        raise UserError("--crop-border must be 0 or more")
    if args.restored and (args.weights or args.preset):
        raise UserError("--restored measures --input as it is: leave out --weights/--preset")
    try:
        inputs, targets = match_pairs(Path(args.input), Path(args.target), "eval")
    except DataError as e:
        raise UserError(str(e).replace("eval.input", "--input").replace("eval.target", "--target").replace("eval:", "--input/--target:")) from None
    restorer = None
    if not args.restored:
        from .common import make_restorer

        restorer = make_restorer(args, same_size_frames=False)
    lpips = LPIPS(device=restorer.device if restorer is not None else "cpu") if args.lpips else None

    rows = []
    for i in tqdm(range(len(inputs)), desc="eval", unit="img", disable=args.quiet or len(inputs) == 1):
        name = inputs.names[i]
        try:
            x, gt = inputs.get(i), targets.get(i)
        except Exception as e:
            raise UserError(f"{name}: cannot read this image ({e})") from None
        try:
            y = restore_image(restorer, x, accept_out_of_range=args.accept_out_of_range) if restorer is not None else x
        except OutputRangeError as e:
            raise e.for_option(ACCEPT_OPTION, where=name, frame=None) from None
        if min(gt.shape[:2]) <= 2 * args.crop_border + 10:
            raise UserError(f"{name}: {gt.shape[1]}x{gt.shape[0]} is too small for --crop-border {args.crop_border} and SSIM's 11x11 window")
        row = {"name": name, "psnr": psnr(y, gt, args.crop_border), "ssim": ssim(y, gt, args.crop_border)}
        if lpips is not None:
            row["lpips"] = lpips(y, gt)
        rows.append(row)

    keys = ["psnr", "ssim"] + (["lpips"] if lpips is not None else [])
    mean = {k: _mean([r[k] for r in rows]) for k in keys}
    if args.json:
        print(json.dumps({"images": rows, "mean": mean}, indent=2, allow_nan=True))
        return 0
    width = max(4, *(len(r["name"]) for r in rows))
    header = f"{'image':<{width}}  {'PSNR (dB)':>9}  {'SSIM':>6}" + ("  {:>6}".format("LPIPS") if lpips else "")
    print(header)
    print("-" * len(header))
    for r in rows + [{"name": "mean", **mean}]:
        if r["name"] == "mean":
            print("-" * len(header))
        line = f"{r['name']:<{width}}  {r['psnr']:>9.3f}  {r['ssim']:>6.4f}"
        if lpips is not None:
            line += f"  {r['lpips']:>6.4f}"
        print(line)
    print(f"(Y channel, crop border {args.crop_border})", file=sys.stderr)
    return 0


def _mean(values: list[float]) -> float:
    # An identical pair has infinite PSNR; the mean is then infinite too, which is honest.
    return math.fsum(values) / len(values) if values else float("nan")
