"""``err-stream train CONFIG.yaml``: train or fine-tune ERR (see err_stream.train)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from ..engine.settings import RestoreSettings
from ..errors import UserError

HELP = "train or fine-tune ERR on paired folders or synthetically degraded photos (YAML config)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML training config (see configs/uhd-ll.yaml for the paper's recipe)")
    p.add_argument("--out", metavar="DIR", help="run folder for checkpoints and logs (default: runs/<config name>)")
    p.add_argument(
        "--resume", nargs="?", const=True, default=False, metavar="STATE",
        help="continue the run in --out from its newest checkpoints/state_*.pt (or from the state file given)",
    )
    p.add_argument("--init", metavar="WEIGHTS", help="fine-tune from this checkpoint file or preset (overrides the config's init)")
    p.add_argument("--iterations", type=int, metavar="N", help="override schedule.iterations")
    p.add_argument("--batch-size", type=int, metavar="N", help="override train.batch_size")
    p.add_argument("--workers", type=int, metavar="N", help="override data.train.workers")
    p.add_argument("--seed", type=int, help="override the seed")
    p.add_argument("--stop-at", type=int, metavar="N", help="pause after iteration N with a checkpoint (continue with --resume); "
                   "Ctrl-C or SIGTERM also stop with a checkpoint after the current iteration, and a file named PAUSE in "
                   "--out pauses the run while it exists")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda if available)")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads for torch (default: torch's choice)")
    p.add_argument(
        "--active-wait", action="store_true",
        help="CPU threads spin while waiting for work instead of sleeping: faster on a machine the training "
        "has to itself (a 2-core step: 0.48 s instead of 0.61 s), slower when anything else runs "
        "(sets OMP_WAIT_POLICY=ACTIVE; an OMP_WAIT_POLICY already set wins)",
    )
    p.add_argument("--overwrite", action="store_true", help="start afresh in an --out folder that already holds checkpoints")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..train import Trainer, load_config

    overrides = {}
    for key, value in (
        ("schedule.iterations", args.iterations),
        ("train.batch_size", args.batch_size),
        ("data.train.workers", args.workers),
        ("seed", args.seed),
        ("init", args.init),
    ):
        if value is not None:
            overrides[key] = value
    cfg = load_config(args.config, overrides)
    out = Path(args.out) if args.out else Path("runs") / cfg.name
    has_state = any((out / "checkpoints").glob("state_*.pt")) if (out / "checkpoints").is_dir() else False
    if has_state and not args.resume and not args.overwrite:
        raise UserError(f"{out} already holds a run: pass --resume to continue it, --overwrite to start afresh, or another --out")
    if args.overwrite and not args.resume and (out / "checkpoints").is_dir():
        for f in (out / "checkpoints").glob("*"):
            f.unlink()
        (out / "log.csv").unlink(missing_ok=True)
    device = str(RestoreSettings(device=args.device).torch_device())
    policy = os.environ.get("OMP_WAIT_POLICY", "").upper()
    if args.active_wait and policy != "ACTIVE":
        # cli.main sets it before torch loads; called from a program that already loaded
        # torch, or with the variable set, it is too late or overridden.
        why = f"OMP_WAIT_POLICY is {policy}" if policy else "OpenMP was started before err-stream could set it"
        print(f"err-stream: warning: --active-wait has no effect ({why})", file=sys.stderr)
    if args.threads:
        from .. import runtime

        runtime.configure(args.threads)
    progress = None
    if not args.quiet:
        import logging

        from ..progress import TqdmProgress

        progress = TqdmProgress(unit="it")
        logging.getLogger("err_stream.train").setLevel(logging.INFO)  # the validation lines
    from ..train.control import RunControl

    trainer = Trainer(cfg, out, device=device, resume=args.resume, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    (out / "command.txt").write_text(_command_line(args, device) + "\n")
    # Ctrl-C / SIGTERM: finish the iteration, checkpoint, exit; a file named PAUSE in the run
    # folder pauses the run (with a checkpoint) until it is removed.
    with RunControl(pause_file=out / "PAUSE", status_file=out / "status.json") as control:
        result = trainer.run(stop_at=args.stop_at, control=control)
    final = out / "checkpoints" / f"net_{trainer.step:07d}.pth"
    if trainer.step >= cfg.schedule.iterations:
        done = "done"
    elif trainer.stopped_by:
        done = f"stopped by {trainer.stopped_by} with a checkpoint (continue with --resume)"
    else:
        done = "paused (continue with --resume)"
    summary = f"{done}: {trainer.step} of {cfg.schedule.iterations} iterations, weights in {final}"
    if "val_psnr" in result:
        summary += f" (validation PSNR {result['val_psnr']:.2f} dB, SSIM {result['val_ssim']:.4f})"
    print(summary, file=sys.stderr)
    return 0


def _command_line(args: argparse.Namespace, device: str) -> str:
    """The train command as run (for the run folder: what reproduces it)."""
    parts = ["err-stream", "train", args.config, "--device", device]
    for flag, value in (("--out", args.out), ("--init", args.init), ("--iterations", args.iterations),
                        ("--batch-size", args.batch_size), ("--workers", args.workers), ("--seed", args.seed)):
        if value is not None:
            parts += [flag, str(value)]
    if args.resume:
        parts += ["--resume"] if args.resume is True else ["--resume", str(args.resume)]
    if args.active_wait:
        parts.append("--active-wait")
    return " ".join(shlex.quote(p) for p in parts)
