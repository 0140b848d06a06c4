"""``err-stream IN OUT``: restore every frame of a video into a new file (the default command)."""

from __future__ import annotations

import argparse
import json
import signal
import threading

from .common import ACCEPT_OPTION, add_model_arguments, make_restorer, restore_settings

HELP = "restore every frame of a video into a new file, keeping its audio, subtitles, timestamps and colour (default command)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="input video (anything FFmpeg reads)")
    p.add_argument("output", help="output video; the container follows the extension (.mp4, .mov, .mkv, .webm, ...)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (only once the new file is complete)")
    p.add_argument("--no-data", action="store_true",
                   help="leave the input's data streams out (FFmpeg's -dn); the timecode is kept either way")
    p.add_argument("--ignore-errors", action="store_true",
                   help="restore input the decoder reports damaged (errors it concealed) instead of failing; "
                        "the summary counts them")
    p.add_argument("--drop-alpha", action="store_true",
                   help="restore the colour of a video with an alpha channel and leave the alpha out (else refused)")
    p.add_argument("--passthrough", action="store_true", help="skip the model: decode, convert colour and encode only (a check)")
    p.add_argument("--decoder", choices=["auto", "pyav", "dali"], default="auto",
                   help="pyav (FFmpeg), dali (NVIDIA DALI; NVDEC on a GPU), or auto (DALI on a GPU for 8-bit 4:2:0, else PyAV)")
    p.add_argument("--batch", type=int, default=None, metavar="N", help="frames per model call (default: 1 on CPU, ~2 MP on a GPU)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary (frames, seconds, fps, decoder, device, precision) at the end")
    add_model_arguments(p)
    g = p.add_argument_group("encoder (FFmpeg's names; default: the input's codec family at high quality)")
    g.add_argument("--codec", metavar="NAME", help="libx264, libx265, hevc_nvenc, prores_ks, ffv1, libvpx-vp9, libsvtav1, ...")
    g.add_argument("--crf", type=float, metavar="Q", help="constant quality (crf; cq for NVENC)")
    g.add_argument("--encoder-preset", metavar="NAME",
                   help="the encoder's preset (ffmpeg's -preset: e.g. slow, p5); --preset names model weights")
    g.add_argument("--pix-fmt", metavar="FMT", help="output pixel format (default: the input's, e.g. yuv420p10le)")
    g.add_argument("--encoder-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="any encoder option, repeatable (e.g. x265-params=lossless=1)")


def run(args: argparse.Namespace) -> int:
    from ..io.preflight import plan_output
    from ..io.sink import PartialOutput
    from ..io.source import check_alpha, probe
    from ..progress import TqdmProgress
    from ..video import transcode

    # Cheap checks first, so a bad path or option fails before the model loads.
    info = probe(args.input)
    check_alpha(info, args.drop_alpha)
    PartialOutput(args.output, overwrite=args.overwrite, source=info.path)
    # A dry run of the output: a stream or option it cannot take fails now, not after the last frame.
    settings = plan_output(info, _path(args.output), args.codec, args.crf, args.encoder_preset, args.pix_fmt, args.encoder_opt, not args.no_data)
    restore_settings(args).torch_device()  # a bad --device/--tile/... fails before the model loads
    restorer = None if args.passthrough else make_restorer(args)
    with _terminate_as_interrupt(), _worded_for_cli():
        result = transcode(
            args.input,
            args.output,
            restorer,
            device=args.device,
            decoder=args.decoder,
            codec=args.codec,
            crf=args.crf,
            encoder_preset=args.encoder_preset,
            pix_fmt=args.pix_fmt,
            encoder_opts=args.encoder_opt,
            overwrite=args.overwrite,
            copy_data=not args.no_data,
            planned=settings,
            ignore_errors=args.ignore_errors,
            drop_alpha=args.drop_alpha,
            progress=None if args.quiet else TqdmProgress(),
            batch=args.batch,
            accept_out_of_range=args.accept_out_of_range,
        )
    if args.json:
        print(json.dumps(result.as_dict()))
    return 0


def _path(p: str):
    from pathlib import Path

    return Path(p)


class _worded_for_cli:
    """The output guard's error names the command-line option."""

    def __enter__(self):
        return self

    def __exit__(self, kind, e, tb):
        from ..engine.output_check import OutputRangeError

        if isinstance(e, OutputRangeError):
            raise e.for_option(ACCEPT_OPTION, where=None) from None
        return False


class _terminate_as_interrupt:
    """SIGTERM behaves like Ctrl-C, so the partial output is removed either way."""

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._handler)
        return self

    @staticmethod
    def _handler(signum, frame):
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
