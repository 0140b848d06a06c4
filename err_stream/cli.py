"""The ``err-stream`` command line.

``err-stream IN OUT [options]`` transcodes a video (the default command); the other
subcommands live in :mod:`err_stream.commands`, one module each, imported only when used.
Exit codes: 0 success, 1 user error (one-line reason on stderr), 2 failure during processing
(also a stream input whose output was finished without every frame: it stalled or failed, or
pictures were lost on the way), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__
from .errors import NO_VALUE, ProcessingError, UserError

# subcommand -> module in err_stream.commands (each has HELP, add_arguments(p), run(args) -> int)
COMMANDS = {
    "transcode": "transcode",
    "image": "image",
    "train": "train",
    "eval": "evaluate",
    "weights": "weights",
    "batch": "batch",
}
DEFAULT_COMMAND = "transcode"


def _module(name: str):
    return importlib.import_module(f"err_stream.commands.{COMMANDS[name]}")


class _Parser(argparse.ArgumentParser):
    """Usage errors are user errors: one line and exit 1 (argparse prints the whole usage
    and exits 2)."""

    def error(self, message: str):
        raise UserError(f"{message} (see '{self.prog} -h')")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, for ``-h`` (``only``: just that subcommand)."""
    parser = _Parser(
        prog="err-stream",
        description="Restore dark, rainy, hazy or blurred video and images with the ERR network.",
        epilog="Without a subcommand, 'err-stream IN OUT' transcodes a video (see 'err-stream transcode -h').",
    )
    _add_global_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        if only is not None and name != only:
            continue
        try:
            mod = _module(name)
        except ImportError:
            continue
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP, epilog=getattr(mod, "EPILOG", None))
        _add_global_arguments(p, version=False)
        mod.add_arguments(p)
    return parser


# How settings named in library errors are written on the command line when suggested.
_SUGGESTED = {"weights": "--weights FILE", "preset": "--preset NAME"}


def cli_spelling(option: str, value: object = NO_VALUE) -> str:
    """A setting as this command line writes it: ``--tile 64x64``, ``--weights FILE``,
    ``--drop-late`` (a switch given)."""
    flag = "--" + option.replace("_", "-")
    if value is NO_VALUE:
        return _SUGGESTED.get(option, flag)
    if value is True:
        return flag
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return f"{flag} {value[0]}x{value[1]}"  # sizes: --tile 512x512, --size 1920x1080
    return f"{flag} {value}"


def _add_global_arguments(parser: argparse.ArgumentParser, version: bool = True) -> None:
    if version:
        parser.add_argument("--version", action="version", version=f"err-stream {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (to stderr)")


def command_of(argv: list[str]) -> tuple[str | None, list[str]]:
    """Split ``argv`` into the subcommand and its arguments. The subcommand is the first
    word after the global options; anything else is a transcode, whose options may come
    before, between or after IN OUT (as in ffmpeg). A file named like a subcommand can be
    given as ./NAME."""
    for i, a in enumerate(argv):
        if a in ("-v", "--verbose"):
            continue
        if a in COMMANDS:
            return a, argv[:i] + argv[i + 1 :]
        if a in ("-h", "--help", "--version"):
            return None, argv
        break
    if not argv:
        return None, argv
    return DEFAULT_COMMAND, argv


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    command, rest = command_of(argv)
    if command is None:
        args = build_parser().parse_args(rest)
        args.command = None
        return args
    parser = build_parser(only=command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    nested = any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
    # Options anywhere among the positionals; a command with its own subcommands (weights)
    # cannot be parsed that way, and does not need it.
    args = sub.parse_args(rest) if nested else sub.parse_intermixed_args(rest)
    args.command = command
    return args


class _InterruptWatch:
    """Remembers that Ctrl-C was pressed. A KeyboardInterrupt raised in the middle of an import
    or inside a worker thread's wait can surface later as some other exception (a module left
    half-initialised gives a RecursionError, a pipeline wraps it as a processing failure);
    once the user has interrupted, whatever comes out of the run is reported as the interruption."""

    def __init__(self) -> None:
        self.pressed = False
        self.previous = None

    def __enter__(self) -> _InterruptWatch:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        self.pressed = True
        raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            import signal

            signal.signal(signal.SIGINT, self.previous)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help", "--version") for a in argv):
        return _main(argv)  # help needs no torch
    with _InterruptWatch() as watch:
        try:
            return _run_main(argv, watch)
        except BaseException:
            if watch.pressed:
                return _interrupted()
            raise


def _interrupted() -> int:
    """Report Ctrl-C and make sure the exit status stays 130. A KeyboardInterrupt that lands
    inside code an extension runs through ``PyRun_String`` while importing (pybind11's exec,
    e.g. in torch's import) sets CPython's "unhandled KeyboardInterrupt" flag even though we
    caught it, and the interpreter then kills itself with SIGINT at exit (status -2). Running
    any code through PyRun_String clears that flag again."""
    print("err-stream: interrupted", file=sys.stderr)
    try:
        import ctypes

        ctypes.pythonapi.PyRun_SimpleString(b"pass")
    except Exception:  # not CPython, or no ctypes: only the exit status is at stake
        pass
    return 130


def _run_main(argv: list[str], watch: _InterruptWatch) -> int:
    try:
        from .runtime import configured

        # Before torch loads: OpenMP waits passively (actively for 'train --active-wait');
        # denormals flushed in the threads torch starts (restored when main() returns, as it
        # may run inside another program).
        command, rest = command_of(argv)
        wait = "active" if command == "train" and "--active-wait" in rest else "passive"
        with configured(omp_wait_policy=wait):
            return _main(argv, watch)
    except KeyboardInterrupt:  # Ctrl-C while starting up (importing torch, loading the model)
        return _interrupted()


def _main(argv: list[str], watch: _InterruptWatch | None = None) -> int:
    try:
        args = parse_arguments(argv)
    except UserError as e:
        print(f"err-stream: error: {e.describe(cli_spelling)}", file=sys.stderr)
        return e.exit_code
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="err-stream: %(message)s", stream=sys.stderr)
    if not getattr(args, "quiet", False):
        # The first frame of a size waits for torch.compile (a minute or more): say how long it took.
        logging.getLogger("err_stream.engine.fast").setLevel(logging.INFO)
    if not args.command:
        build_parser().print_help(sys.stderr)
        return 1
    try:
        return int(_module(args.command).run(args) or 0)
    except (UserError, ProcessingError) as e:
        if watch is not None and watch.pressed:
            raise KeyboardInterrupt from e
        if isinstance(e, UserError):
            print(f"err-stream: error: {e.describe(cli_spelling)}", file=sys.stderr)
        else:
            print(f"err-stream: failed: {e.describe(cli_spelling)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return _interrupted()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
