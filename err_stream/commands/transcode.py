"""``err-stream IN OUT``: restore every frame of a video into a new file (the default command)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from ..colour.codes import HDR_MODES
from ..video.options import DECODERS
from .common import ACCEPT_OPTION, add_model_arguments, make_restorer, restore_settings

HELP = "restore every frame of a video into a new file, keeping its audio, subtitles, timestamps and colour (default command)"
EPILOG = ("exit codes: 0 done; 1 user error (bad path, input or option); 2 failure while processing, or a stream "
          "input whose output was finished without every frame of the input (it stalled or failed, or pictures were "
          "lost on the way: --json counts them); 130 interrupted")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="input video: a file (anything FFmpeg reads), '-' for standard input, or a stream URL "
                                 "(udp://, tcp://, rtmp://, rtsp://, http(s)://)")
    p.add_argument("output", help="output video: a file (the container follows the extension: .mp4, .mov, .mkv, .webm, ...), "
                                  "'-' for standard output (with --format), or a stream URL (udp://, tcp://, rtmp://, rtsp://)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (only once the new file is complete)")
    p.add_argument("--no-data", action="store_true",
                   help="leave the input's data streams out (FFmpeg's -dn); the timecode is kept either way")
    p.add_argument("--ignore-errors", action="store_true",
                   help="restore input the decoder reports damaged (errors it concealed) instead of failing; "
                        "the summary counts them")
    p.add_argument("--drop-alpha", action="store_true",
                   help="restore the colour of a video with an alpha channel and leave the alpha out (else refused)")
    p.add_argument("--passthrough", action="store_true", help="skip the model: decode, convert colour and encode only (a check)")
    p.add_argument("--decoder", choices=DECODERS, default="auto",
                   help="pyav (FFmpeg), dali (NVIDIA DALI; NVDEC on a GPU; approximate colours), or auto (always PyAV: exact)")
    p.add_argument("--batch", type=int, default=None, metavar="N", help="frames per model call (default: 1 on CPU, ~2 MP on a GPU)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true",
                   help="print a JSON summary at the end (frames, seconds, fps, decoder, device, precision; for a stream "
                        "also what arrived and what was lost: arrived, dropped_late, damaged, missing)")
    add_model_arguments(p)
    s = p.add_argument_group("pipes and live streams")
    s.add_argument("--format", metavar="NAME",
                   help="output container (FFmpeg muxer name: nut, matroska, mpegts, yuv4mpegpipe, flv, ...); needed for '-'")
    s.add_argument("--input-format", metavar="NAME", help="input container when FFmpeg cannot tell from the data (e.g. for '-')")
    s.add_argument("--input-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="an FFmpeg demuxer or protocol option for a pipe or URL input, repeatable "
                        "(e.g. rtsp_transport=tcp, listen_timeout=5000); checked against what FFmpeg accepts")
    s.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="a stream that sends nothing for this long ends the run with exit 2, every frame received written "
                        "(default: 10 for network inputs once started; a listener or UDP input waits for its sender "
                        "without limit)")
    s.add_argument("--max-delay", type=int, metavar="FRAMES",
                   help="live run: at most this many frames between decoder and encoder, low-delay encoding "
                        "(default 8 when an input or output is a network URL)")
    s.add_argument("--drop-late", action="store_true",
                   help="live run: drop frames that arrive further behind real time than --max-delay frames (counted in the summary)")
    s.add_argument("--realtime", action="store_true",
                   help="read a file input at its own frame rate (FFmpeg's -re), e.g. to send it to a live output")
    g = p.add_argument_group("encoder (FFmpeg's names; default: the input's codec family at high quality)")
    g.add_argument("--codec", metavar="NAME", help="libx264, libx265, hevc_nvenc, prores_ks, ffv1, libvpx-vp9, libsvtav1, ...")
    g.add_argument("--crf", type=float, metavar="Q", help="constant quality (crf; cq for NVENC)")
    g.add_argument("--encoder-preset", metavar="NAME",
                   help="the encoder's preset (ffmpeg's -preset: e.g. slow, p5); --preset names model weights")
    g.add_argument("--pix-fmt", metavar="FMT", help="output pixel format (default: the input's, e.g. yuv420p10le)")
    g.add_argument("--size", metavar="WxH", help="output picture size, e.g. 1920x1080: the restored frames are scaled on the "
                                                 "device (bicubic, antialiased when shrinking) before encoding (default: the input's)")
    g.add_argument("--hdr", choices=HDR_MODES, default="auto",
                   help="PQ/HLG input: auto shows the model the master's SDR-referred picture (203 cd/m2 = white, highlights "
                        "under a shoulder) and takes it back exactly; passthrough hands it the code values as they are")
    g.add_argument("--hdr-peak", type=float, metavar="CD/M2",
                   help="PQ/HLG input: the light that lands on the model's 1.0, and HLG's display peak "
                        "(default: a PQ master's mastering display peak, else 1000)")
    g.add_argument("--encoder-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="any encoder option, repeatable (e.g. x265-params=lossless=1)")


def run(args: argparse.Namespace) -> int:
    from ..progress import TqdmProgress
    from ..video.execution import execute
    from ..video.options import TranscodeOptions
    from ..video.planning import plan
    from ..video.result import IncompleteOutput

    # The flags' names are the settings' names (--no-data is no_data).
    names = set(TranscodeOptions.setting_names())
    options = TranscodeOptions.of(**{k: v for k, v in vars(args).items() if k in names})
    # The probe and every check of the output first, so a bad path or option fails before the
    # model loads. A stream can be read only once: execute() opens it, after the model has loaded.
    planned = plan(args.input, args.output, options)
    restore_settings(args).torch_device()  # a bad --device/--tile/... fails before the model loads
    restorer = None if args.passthrough else make_restorer(args)
    # Machine-readable output never shares standard output with the video.
    report = sys.stderr if planned.output.kind == "pipe" else sys.stdout
    stop_input = threading.Event()
    try:
        with _terminate_as_interrupt(), _worded_for_cli(), _ctrl_c_ends_the_stream(stop_input, active=not planned.input.is_file):
            result = execute(planned, restorer, progress=None if args.quiet else TqdmProgress(), stop=stop_input)
    except IncompleteOutput as e:  # the output was finished, without every frame of the input: exit 2
        if args.json:
            print(json.dumps(e.result.as_dict()), file=report)
        raise
    if (not planned.input.is_file and not args.quiet) or result.damaged or result.dropped_late:
        print(_summary(result, planned.output.label(output=True)), file=sys.stderr)
    if args.json:
        print(json.dumps(result.as_dict()), file=report)
    return 0


def _summary(result, where: str) -> str:
    parts = [f"err-stream: {result.frames} frames ({result.stream_seconds:.2f} s of stream) written to {where}"]
    if result.ended == "stopped":
        parts.append("the input was stopped with Ctrl-C")
    if result.dropped_late:
        parts.append(f"{result.dropped_late} dropped late (--drop-late)")
    if result.damaged:
        parts.append(f"{result.damaged} damaged pictures dropped")
    if result.missing:
        parts.append(f"{result.missing} pictures never arrived")
    return "; ".join(parts)


class _worded_for_cli:
    """The output guard's error names the command-line option."""

    def __enter__(self):
        return self

    def __exit__(self, kind, e, tb):
        from ..engine.output_check import OutputRangeError

        if isinstance(e, OutputRangeError):
            raise e.for_option(ACCEPT_OPTION, where=None) from None
        return False


class _ctrl_c_ends_the_stream:
    """Reading a stream, the first Ctrl-C ends the input as if the sender had stopped: what
    arrived is restored and the output finished (exit 0), as one stops a recording. A
    second Ctrl-C abandons the run (exit 130; a file output is then not written)."""

    def __init__(self, stop: threading.Event, active: bool) -> None:
        self.stop = stop
        self.active = active and threading.current_thread() is threading.main_thread()
        self.previous = None

    def __enter__(self):
        if self.active:
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.stop.set()
        print("\nerr-stream: stopping the input and finishing the output (Ctrl-C again to abandon it)", file=sys.stderr)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


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
