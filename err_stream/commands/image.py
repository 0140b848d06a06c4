"""``err-stream image IN OUT``: restore image files (PNG, JPEG, TIFF; 8 and 16 bit) or a folder."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..colour.codes import HDR_MODES, Transfer
from ..errors import UserError
from .common import ACCEPT_OPTION, add_model_arguments, make_restorer, restore_settings

log = logging.getLogger(__name__)

HELP = "restore image files (PNG/JPEG/TIFF, 8 or 16 bit), or every image of a folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="an image file or a folder of images")
    p.add_argument("output", help="output file (for one image) or folder (for a folder)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    h = p.add_argument_group("HDR (16-bit PQ or HLG masters)")
    h.add_argument("--transfer", choices=sorted(TRANSFERS), metavar="NAME",
                   help="the images' transfer, for files that do not state it (TIFF; PNG without cICP): "
                        "pq (smpte2084) or hlg (arib-std-b67); replaces what a file states")
    h.add_argument("--hdr", choices=HDR_MODES, default="auto",
                   help="PQ/HLG images: auto shows the model the SDR-referred picture and takes it back exactly; "
                        "passthrough hands it the values as they are")
    h.add_argument("--hdr-peak", type=float, metavar="CD/M2",
                   help="PQ/HLG images: the light that lands on the model's 1.0, and HLG's display peak (default 1000)")
    add_model_arguments(p)


# --transfer's words: FFmpeg's names and the short ones.
TRANSFERS = {"pq": Transfer.SMPTE2084, "smpte2084": Transfer.SMPTE2084, "hlg": Transfer.ARIB_STD_B67,
             "arib-std-b67": Transfer.ARIB_STD_B67}


def _jobs(src: Path, dst: Path) -> list[tuple[Path, Path]]:
    from ..image import IMAGE_SUFFIXES  # loads torch: only when the command runs

    if not src.exists():
        raise UserError(f"{src}: no such file or folder")
    if src.is_dir():
        files = sorted(f for f in src.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UserError(f"{src}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        if dst.exists() and not dst.is_dir():
            raise UserError(f"{dst}: exists and is not a folder (the input is a folder)")
        return [(f, dst / f.name) for f in files]
    if src.suffix.lower() not in IMAGE_SUFFIXES:
        raise UserError(f"{src}: not an image file ({', '.join(IMAGE_SUFFIXES)}); for videos use 'err-stream IN OUT'")
    if dst.is_dir():
        return [(src, dst / src.name)]
    return [(src, dst)]


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..engine.output_check import OutputRangeError
    from ..image import IMAGE_SUFFIXES, load_image, restore_image, write_image

    from ..io.output_file import OutputFile

    restore_settings(args).torch_device()  # bad options fail first
    jobs = _jobs(Path(args.input), Path(args.output))
    for src, out in jobs:
        if out.suffix.lower() not in IMAGE_SUFFIXES:
            raise UserError(f"{out}: unknown image type; use one of {', '.join(IMAGE_SUFFIXES)}")
        if not out.parent.exists() and out.parent == Path(args.output) and Path(args.input).is_dir():
            out.parent.mkdir(parents=True)
        OutputFile(out, overwrite=args.overwrite, source=src)  # the output file's checks, before the model loads
    from ..cli import cli_spelling
    from ..colour.hdr import HdrPath
    from ..colour.spec import ColourSpec
    from ..errors import SettingError

    transfer = TRANSFERS[args.transfer] if args.transfer else None
    HdrPath.for_spec(ColourSpec(), args.hdr, None, args.hdr_peak)  # a bad --hdr-peak fails before the model loads
    restorer = make_restorer(args, same_size_frames=False)
    for src, out in tqdm(jobs, desc="images", unit="img", disable=args.quiet or len(jobs) == 1):
        try:
            image, colour = load_image(src, transfer)
        except UserError:
            raise
        except Exception as e:
            raise UserError(f"{src}: cannot read this image ({e})") from None
        for guess in colour.guesses:  # the untagged rule for RGB: sRGB (nothing users must hear about)
            log.info("%s: %s", src, guess.message)
        try:
            hdr = HdrPath.for_spec(colour.spec, args.hdr, None, args.hdr_peak)
        except SettingError as e:
            raise UserError(f"{src}: {e.describe(cli_spelling)}") from None
        try:
            result = restore_image(restorer, image, accept_out_of_range=args.accept_out_of_range, hdr=hdr)
        except OutputRangeError as e:
            raise e.for_option(ACCEPT_OPTION, where=str(src), frame=None) from None
        if out.suffix.lower() in (".jpg", ".jpeg", ".webp", ".bmp") and result.dtype != "uint8":
            result = (result.astype("float32") / 257.0).round().astype("uint8")
        write_image(out, result, overwrite=args.overwrite, colour=colour.spec if hdr is not None else None)
    return 0
