"""Options shared by several subcommands (model choice, device, precision, tiling)."""

from __future__ import annotations

import argparse

import torch

from ..errors import UserError
from ..weights import PRESETS


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--weights", metavar="FILE", help="ERR checkpoint (.pth basicsr layout, bare state dict, or .safetensors)")
    src.add_argument("--preset", choices=list(PRESETS), help="the authors' checkpoint for a task (downloaded once, then cached)")
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda if available)")
    g.add_argument("--precision", choices=["fp32", "fp16", "bf16"], default=None, help="default: fp16 on CUDA, fp32 on CPU")
    g.add_argument("--tile", default="auto", metavar="WxH|auto|off", help="exact tiling: tile size, 'auto' (by memory) or 'off'")
    g.add_argument(
        "--no-compile", dest="compile", action="store_false", default=None,
        help="video: do not torch.compile the model (on CUDA it is compiled by default: the first frame "
        "takes a while, later runs load the compiled code from the cache); images are never compiled",
    )
    g.add_argument("--accept-out-of-range", action="store_true",
                   help="clamp the model's output to [0, 1] and go on, instead of failing (exit 2) on a frame "
                        "that is non-finite or has over 0.1%% of pixels outside [-0.1, 1.1] (diverged weights)")


def parse_tile(value: str):
    if value in ("auto", "off"):
        return value
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise UserError(f"--tile {value!r}: expected WxH (e.g. 512x512), 'auto' or 'off'") from None
    if min(w, h) < 128:
        raise UserError(f"--tile {value}: tiles must be at least 128x128")
    return (w, h)


# How the command line spells the option in errors (see OutputRangeError.for_option).
ACCEPT_OPTION = "--accept-out-of-range"


def make_restorer(args: argparse.Namespace, same_size_frames: bool = True):
    """Load the model the options name and wrap it in a Restorer.

    ``same_size_frames``: the frames all have one size (video), so compiling the model for it
    pays off (on CUDA, unless --no-compile); images of varying sizes would compile for each."""
    from ..engine import Restorer
    from ..weights import load_model

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    precision = args.precision or ("fp16" if device.startswith("cuda") else "fp32")
    model = load_model(args.weights or args.preset, device=device)
    return Restorer(
        model, device=device, precision=precision, tiling=parse_tile(args.tile),
        compile=(None if same_size_frames else False) if getattr(args, "compile", None) is None else args.compile,
    )
