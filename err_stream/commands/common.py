"""Options shared by several subcommands (model choice, device, precision, tiling, memory)."""

from __future__ import annotations

import argparse

from ..engine.settings import PRECISIONS, RestoreSettings
from ..presets import PRESETS


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--weights", metavar="FILE", help="ERR checkpoint (.pth basicsr layout, bare state dict, or .safetensors)")
    src.add_argument("--preset", choices=list(PRESETS), help="the authors' checkpoint for a task (downloaded once, then cached)")
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda if available)")
    g.add_argument("--precision", choices=list(PRECISIONS), default=None, help="default: fp16 on CUDA, fp32 on CPU")
    g.add_argument("--tile", default="auto", metavar="WxH|auto|off", help="exact tiling: tile size, 'auto' (by memory) or 'off'")
    g.add_argument("--memory-budget", default=None, metavar="BYTES",
                   help="working memory for one frame, e.g. 6GiB (default: 0.8 of the free GPU memory; no limit on CPU)")
    g.add_argument(
        "--no-compile", dest="compile", action="store_false", default=None,
        help="video: do not torch.compile the model (on CUDA it is compiled by default: the first frame "
        "takes a while, later runs load the compiled code from the cache); images are never compiled",
    )
    g.add_argument("--accept-out-of-range", action="store_true",
                   help="clamp the model's output to [0, 1] and go on, instead of failing (exit 2) on a frame "
                        "that is non-finite or has over 0.1%% of pixels outside [-0.1, 1.1] (weights that diverge, "
                        "or over-expose footage that is already lit)")


def restore_settings(args: argparse.Namespace, same_size_frames: bool = True) -> RestoreSettings:
    """The options' RestoreSettings (checked: a bad value raises SettingError).

    ``same_size_frames``: the frames all have one size (video), so compiling the model for it
    pays off (on CUDA, unless --no-compile); images of varying sizes would compile for each."""
    compile_ = getattr(args, "compile", None)
    if compile_ is None and not same_size_frames:
        compile_ = False
    return RestoreSettings(
        device=args.device, precision=args.precision, tile=args.tile,
        memory_budget=getattr(args, "memory_budget", None), compile=compile_,
    )


# How the command line spells the option in errors (see OutputRangeError.for_option).
ACCEPT_OPTION = "--accept-out-of-range"


def make_restorer(args: argparse.Namespace, same_size_frames: bool = True):
    """Load the model the options name and wrap it in a Restorer.

    ``same_size_frames``: the frames all have one size (video), so compiling the model for it
    pays off (on CUDA, unless --no-compile); images of varying sizes would compile for each."""
    from ..engine.restorer import load_restorer

    return load_restorer(args.weights or args.preset, restore_settings(args, same_size_frames))
