"""``err-stream batch JOB.yaml``: restore many videos, split at keyframes across workers
(Ray by default), resumable through a manifest in the output folder."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

HELP = "restore the videos a YAML job names, in parallel pieces on Ray; resumable (--resume)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", help="job file (.yaml); see pipelines/jobs/ for examples")
    p.add_argument("--engine", choices=["ray", "local"], default=None,
                   help="ray: Ray workers (this machine's CPUs/GPUs, or a cluster with --address); "
                        "local: one worker in this process, no Ray needed (default: the job's 'engine', else ray)")
    p.add_argument("--address", metavar="ADDR", help="join this Ray cluster (e.g. 10.0.0.5:6379 or 'auto') instead of starting one")
    p.add_argument("--resume", action="store_true", help="finish an interrupted batch: redo only what its manifest says is unfinished")
    p.add_argument("--dry-run", action="store_true", help="check the job and list inputs, outputs, pieces and frames; run nothing")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout (the table goes to stderr)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    # pipelines/ sits beside err_stream/ (installed as its own top-level package).
    from pipelines.job import load_job
    from pipelines.runner import run_batch

    from .transcode import _terminate_as_interrupt

    job = load_job(args.job)
    # Ray prints its workers' troubles (a worker lost, ...) on stdout: keep stdout for the report.
    with _terminate_as_interrupt(), contextlib.redirect_stdout(sys.stderr):  # SIGTERM stops like Ctrl-C
        report = run_batch(job, engine=args.engine, address=args.address, resume=args.resume, dry_run=args.dry_run,
                           progress=not args.quiet)
    if args.json:
        print(report.table(), file=sys.stderr)
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.table())
    return 2 if report.failed else 0
