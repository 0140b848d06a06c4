"""``err-stream weights``: fetch the authors' checkpoints and list what is cached."""

from __future__ import annotations

import argparse
import sys

from ..presets import DEMO_WEIGHTS, PRESETS

HELP = "download the authors' checkpoints (presets) or list the cached ones"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    f = sub.add_parser("fetch", help="download a preset's checkpoint into the Hugging Face cache")
    f.add_argument("name", choices=list(PRESETS))
    sub.add_parser("list", help="show the presets and which are cached")


def run(args: argparse.Namespace) -> int:
    from ..weights import fetch_preset, list_cached

    if args.action == "fetch":
        path = fetch_preset(args.name)
        print(path)
        return 0
    rows = [("demo", "our demo low-light model (embedded default)", str(DEMO_WEIGHTS) if DEMO_WEIGHTS.exists() else "not installed")]
    for name, path in list_cached():
        rows.append((name, PRESETS[name].task, str(path) if path else "not cached (err-stream weights fetch " + name + ")"))
    width = max(len(r[0]) for r in rows)
    for name, task, where in rows:
        sys.stdout.write(f"{name:<{width}}  {task}\n{'':<{width}}  {where}\n")
    return 0
