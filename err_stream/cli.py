"""The ``err-stream`` command line.

``err-stream IN OUT [options]`` transcodes a video (the default command); the other
subcommands live in :mod:`err_stream.commands`, one module each, imported only when used.
Exit codes: 0 success, 1 user error (one-line reason on stderr), 2 failure during processing,
130 interrupted.
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
}
DEFAULT_COMMAND = "transcode"


def _module(name: str):
    return importlib.import_module(f"err_stream.commands.{COMMANDS[name]}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="err-stream",
        description="Restore dark, rainy, hazy or blurred video and images with the ERR network.",
        epilog="Without a subcommand, 'err-stream IN OUT' transcodes a video (see 'err-stream transcode -h').",
    )
    parser.add_argument("--version", action="version", version=f"err-stream {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (to stderr)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if only is not None and name != only:
            continue
        try:
            mod = _module(name)
        except ImportError:
            continue
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
    return parser


# How settings named in library errors are written on the command line when suggested.
_SUGGESTED = {"weights": "--weights FILE", "preset": "--preset NAME"}


def cli_spelling(option: str, value: object = NO_VALUE) -> str:
    """A setting as this command line writes it: ``--tile 64x64``, ``--weights FILE``."""
    if value is NO_VALUE:
        return _SUGGESTED.get(option, "--" + option.replace("_", "-"))
    return f"--{option.replace('_', '-')} {value}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help", "--version") for a in argv):
        return _main(argv)  # help needs no torch
    from .runtime import configured

    # Before torch loads: OpenMP waits passively; denormals flushed in the threads torch
    # starts (restored when main() returns, as it may run inside another program).
    with configured():
        return _main(argv)


def _main(argv: list[str]) -> int:
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is not None and first not in COMMANDS and not any(a in ("-h", "--help", "--version") for a in argv[:1]):
        argv.insert(argv.index(first), DEFAULT_COMMAND)
    parser = build_parser(only=next((a for a in argv if a in COMMANDS), None))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="err-stream: %(message)s", stream=sys.stderr)
    if not args.command:
        parser.print_help(sys.stderr)
        return 1
    try:
        return int(_module(args.command).run(args) or 0)
    except UserError as e:
        print(f"err-stream: error: {e.describe(cli_spelling)}", file=sys.stderr)
        return e.exit_code
    except ProcessingError as e:
        print(f"err-stream: failed: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("err-stream: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
