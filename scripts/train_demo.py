"""Train the demo low-light model in the background, resumably, and ship its milestones.

    python scripts/fetch_photos.py                 # once: the photographs, into runs/photos
    python scripts/train_demo.py start             # start or resume the run in the background (nice 19)
    python scripts/train_demo.py status            # where it is: iteration, loss, s/iteration, ETA, state
    python scripts/train_demo.py pause             # checkpoint and sleep (for timing something); no CPU
    python scripts/train_demo.py continue          # carry on from where it paused
    python scripts/train_demo.py stop              # checkpoint and exit (start again later: it resumes)
    python scripts/train_demo.py export [--checkpoint FILE] [--ship]   # measure a milestone; ship it if better
    python scripts/train_demo.py run --device cuda --resume            # the same run in the foreground (a GPU)

The run (configs/demo-lowlight-full.yaml unless ``--config``) lives in ``runs/demo-lowlight``
(``--out``), which git ignores: ``checkpoints/`` (the last two net + state pairs: weights,
AdamW moments, iteration, every RNG, the data order's position and where each span of
iterations ran), ``milestones/`` (weights every ``log.milestone_every`` iterations),
``log.csv``, ``train.log`` (the background process's output), ``train.pid``,
``status.json`` (refreshed every few seconds) and ``PAUSE`` while paused.

* ``start`` (alias ``resume``) runs ``run`` under ``nohup``-like detachment (own session, stdin
  closed, output appended to train.log) at nice 19 with ``--threads`` (2) torch threads. It
  resumes from the newest state; with none it starts afresh from the config's ``init``, or,
  when the shipped weights' card says they come from this config's run at iteration S (a fresh
  machine, no runs/), from those weights at S with a short learning-rate warm-up.
* Checkpoints every ``log.checkpoint_minutes`` (and ``log.checkpoint_every`` iterations), at
  pause, and at SIGTERM/SIGINT (after the current iteration). A resume continues exactly:
  the same weights as an uninterrupted run, bit for bit on the same device and thread count.
* Pausing: ``pause`` creates ``runs/demo-lowlight/PAUSE`` and waits until the trainer has
  checkpointed and sleeps (anyone may create or delete that file by hand); ``pause --hard``
  sends SIGSTOP to the trainer's process group instead (immediate, no checkpoint), as
  ``kill -STOP -- -$(cat runs/demo-lowlight/train.pid)`` would; ``continue`` undoes either.
* ``export`` writes the checkpoint as fp16 safetensors, measures it and the shipped weights
  with benchmarks/eval_demo.py on the held-out photographs, prints both, and with ``--ship``
  (when the candidate is better, or ``--force``) replaces err_stream/assets/demo-lowlight.safetensors,
  writes its card (steps, wall time, machines, load, data and licences, the held-out table)
  and remakes docs/demo-before-after.jpg. Committing them is left to you.
* GPU (a lent machine, which takes at most 64 MiB of files along): ``pack`` writes
  ``runs/gpu-pack`` (the newest checkpoint pair and the photographs as JPEG q90 at the same
  sizes and names, so the data order continues: ~45 MB); carry it and run
  ``python scripts/train_demo.py --device cuda --resume --out runs/gpu-pack/run --photos runs/gpu-pack/photos --minutes 8``
  there (the same iterations, bf16 autocast), bring ``runs/gpu-pack/run`` back and
  ``adopt`` it: its newest checkpoint and log rows join runs/demo-lowlight, and ``start``
  continues on the CPU. The card lists which iterations ran where.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

CONFIG = ROOT / "configs" / "demo-lowlight-full.yaml"
OUT = ROOT / "runs" / "demo-lowlight"
PHOTOS = ROOT / "runs" / "photos"
PACK = ROOT / "runs" / "gpu-pack"


class LogLines:
    """Progress as a log line every ``every`` iterations (for train.log; no bar)."""

    def __init__(self, every: int) -> None:
        self.every, self.done, self.total, self.text, self.t0 = every, 0, None, "", time.monotonic()

    def begin(self, task: str, total: int | None, note: str = "") -> None:
        self.total, self.t0 = total, time.monotonic()
        print(f"{_stamp()} {task}: {total} iterations to go {note}", flush=True)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.done % self.every == 0:
            rate = (time.monotonic() - self.t0) / self.done
            print(f"{_stamp()} +{self.done}/{self.total} iterations, {rate:.2f} s each, {self.text}", flush=True)

    def status(self, text: str) -> None:
        self.text = text

    def end(self) -> None:
        pass


def _stamp() -> str:
    return datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def _card_path() -> Path:
    from err_stream.weights import DEMO_WEIGHTS

    return DEMO_WEIGHTS.with_suffix(".yaml")


# ----------------------------------------------------------------------------- the process
def _pid(out: Path) -> int | None:
    """The trainer's process id, if it is running (a stale pid file is ignored)."""
    try:
        pid = int((out / "train.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError, IndexError):
        return None
    return pid if "train_demo.py" in cmdline else None


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


def _status(out: Path) -> dict:
    try:
        return json.loads((out / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def cmd_start(args: argparse.Namespace) -> int:
    out = args.out
    pid = _pid(out)
    if pid is not None:
        print(f"already running (pid {pid}); see: python scripts/train_demo.py status", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    (out / "PAUSE").unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "run", "--config", str(args.config), "--out", str(out),
           "--device", args.device, "--threads", str(args.threads), "--omp-wait", args.omp_wait]
    if args.iterations:
        cmd += ["--iterations", str(args.iterations)]
    if args.allow_data_change:
        cmd.append("--allow-data-change")
    for flag, value in (("--photos", args.photos), ("--minutes", args.minutes)):
        if value:
            cmd += [flag, str(value)]
    log = (out / "train.log").open("a")
    log.write(f"\n{_stamp()} start: {' '.join(cmd)} (nice {args.nice})\n")
    log.flush()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: survives the shell, takes group signals
        preexec_fn=lambda: os.nice(args.nice),
    )
    (out / "train.pid").write_text(f"{proc.pid}\n")
    time.sleep(3)
    if proc.poll() is not None:
        print(f"the trainer exited at once (code {proc.returncode}); the end of {out / 'train.log'}:", file=sys.stderr)
        print("".join((out / "train.log").read_text().splitlines(keepends=True)[-15:]), file=sys.stderr)
        return 1
    print(f"training in the background: pid {proc.pid} (process group {proc.pid}), nice {args.nice}; "
          f"log {_rel(out / 'train.log')}; status: python scripts/train_demo.py status")
    return 0


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(os.getpgid(pid), sig)
    except ProcessLookupError:
        pass


def cmd_pause(args: argparse.Namespace) -> int:
    out = args.out
    pid = _pid(out)
    if pid is None:
        print("not running", file=sys.stderr)
        return 1
    if args.hard:
        _signal_group(pid, signal.SIGSTOP)
        print(f"stopped with SIGSTOP (pid {pid} and its workers); python scripts/train_demo.py continue resumes it")
        return 0
    (out / "PAUSE").touch()
    if _wait_until(lambda: _status(out).get("state") == "paused" or _pid(out) is None, args.wait):
        if _pid(out) is None:
            print("the trainer exited", file=sys.stderr)
            return 1
        print(f"paused at iteration {_status(out).get('step')} with a checkpoint; "
              "python scripts/train_demo.py continue (or delete the PAUSE file) resumes it")
        return 0
    print(f"asked to pause ({_rel(out / 'PAUSE')}); it pauses after the current iteration (not yet after {args.wait} s)")
    return 0


def _wait_until(done, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def cmd_continue(args: argparse.Namespace) -> int:
    out = args.out
    (out / "PAUSE").unlink(missing_ok=True)
    pid = _pid(out)
    if pid is None:
        print("not running (start it with: python scripts/train_demo.py start)", file=sys.stderr)
        return 1
    _signal_group(pid, signal.SIGCONT)  # harmless unless it was SIGSTOPped
    print(f"continuing (pid {pid})")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    out = args.out
    pid = _pid(out)
    if pid is None:
        print("not running", file=sys.stderr)
        return 0
    (out / "PAUSE").unlink(missing_ok=True)
    _signal_group(pid, signal.SIGCONT)  # a SIGSTOPped trainer could not handle the SIGTERM
    os.kill(pid, signal.SIGTERM)  # the trainer only: it stops its data workers itself
    if _wait_until(lambda: _pid(out) is None, args.wait):
        print(f"stopped at iteration {_status(out).get('step')} with a checkpoint; "
              "python scripts/train_demo.py start resumes it")
        return 0
    print(f"asked to stop (SIGTERM to {pid}); it stops after the current iteration (still running after {args.wait} s)")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    out = args.out
    st = _status(out)
    pid = _pid(out)
    if not st and pid is None:
        print(f"no run in {_rel(out)}")
        return 1
    state = st.get("state", "?")
    if pid is None and state in ("running", "paused"):
        state = f"not running (last known: {state}; crashed or killed? see {_rel(out / 'train.log')})"
    elif pid is not None and _proc_state(pid) == "T":
        state = "stopped by SIGSTOP"
    elif pid is not None and (out / "PAUSE").exists() and state != "paused":
        state = "pausing after this iteration"
    step, total, pace = st.get("step"), st.get("iterations"), st.get("sec_per_step")
    lines = [f"state: {state}" + (f" (pid {pid})" if pid else "")]
    if step is not None:
        lines.append(f"iteration: {step} of {total}" + (f", {pace:.2f} s each" if pace else ""))
        if pace and total and state == "running":
            eta = datetime.timedelta(seconds=int(pace * (total - step)))
            lines.append(f"remaining: about {eta} at this pace")
    if st.get("loss") is not None:
        lines.append(f"loss: {st['loss']:.4f}, lr: {st.get('lr', 0):.2e}")
    if st.get("last_checkpoint", -1) >= 0:
        lines.append(f"last checkpoint: iteration {st['last_checkpoint']}")
    if st.get("updated"):
        lines.append(f"status written {int(time.time() - st['updated'])} s ago; device {st.get('device')}")
    if st.get("error"):
        lines.append(f"error: {st['error']}")
    lines.append(f"load: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("\n".join(lines))
    return 0


# ----------------------------------------------------------------------------- training
def shipped_run(config: Path) -> int | None:
    """The iteration of this config's run that the shipped weights come from (their card), if any."""
    import yaml

    card = _card_path()
    if not card.exists():
        return None
    run = (yaml.safe_load(card.read_text()) or {}).get("run") or {}
    return int(run["step"]) if run.get("config") == _rel(config) and run.get("step") else None


def cmd_run(args: argparse.Namespace) -> int:
    from err_stream import runtime

    # First: the OpenMP wait policy only takes effect before torch (and libgomp) load.
    runtime.configure(args.threads, omp_wait_policy=args.omp_wait)
    from err_stream.errors import UserError
    from err_stream.train import Trainer, load_config
    from err_stream.train.control import RunControl
    from err_stream.train.trainer import latest_state

    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    overrides: dict = {"schedule.iterations": args.iterations} if args.iterations else {}
    if args.photos:
        overrides["data.train.target"] = str(args.photos)
    out = args.out
    try:
        cfg = load_config(args.config, overrides)
    except UserError as e:
        if "runs/photos" in str(e) and not (PHOTOS / "SOURCES.yaml").exists():
            print("the photographs are missing: run python scripts/fetch_photos.py first", file=sys.stderr)
        print(f"train_demo: {e}", file=sys.stderr)
        return 1
    has_state = latest_state(out) is not None
    if args.resume and not has_state:
        print(f"--resume: no training state in {_rel(out)}", file=sys.stderr)
        return 1
    start_step = None
    if not has_state:
        s = shipped_run(args.config)
        if s is not None and s < cfg.schedule.iterations and not args.from_init:
            cfg.init, start_step = "demo", s  # a fresh machine: continue from the shipped weights
            print(f"no run state in {_rel(out)}: continuing from the shipped weights at iteration {s} "
                  f"(fresh optimizer, {cfg.schedule.restart_warmup}-iteration warm-up)", flush=True)
    try:
        trainer = Trainer(cfg, out, device=args.device, resume=has_state, start_step=start_step,
                          progress=LogLines(cfg.log.every), allow_data_change=args.allow_data_change)
    except UserError as e:
        print(f"train_demo: {e}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    with (out / "commands.txt").open("a") as fh:
        fh.write(f"{_stamp()} iteration {trainer.step}: {' '.join(sys.argv)}\n")
    import threading

    with RunControl(pause_file=out / "PAUSE", status_file=out / "status.json") as control:
        timer = None
        if args.minutes:  # a lent GPU's session is short: stop in time, with a checkpoint
            timer = threading.Timer(args.minutes * 60, control.request_stop, args=("time limit",))
            timer.daemon = True
            timer.start()
        try:
            trainer.run(stop_at=args.stop_at, control=control)
        finally:
            if timer is not None:
                timer.cancel()
    how = "done" if trainer.step >= cfg.schedule.iterations else f"stopped ({trainer.stopped_by or 'stop_at'})"
    print(f"{_stamp()} {how} at iteration {trainer.step} of {cfg.schedule.iterations}; checkpoints in {_rel(out / 'checkpoints')}",
          flush=True)
    return 0


# ----------------------------------------------------------------------------- a lent GPU
def cmd_pack(args: argparse.Namespace) -> int:
    """The newest checkpoint pair and the photographs as JPEG (same names and sizes) in --pack."""
    import shutil

    from PIL import Image

    from err_stream.train.trainer import latest_state

    state = latest_state(args.out)
    if state is None:
        print(f"no training state in {_rel(args.out)}", file=sys.stderr)
        return 1
    pack = args.pack
    shutil.rmtree(pack, ignore_errors=True)
    (pack / "run" / "checkpoints").mkdir(parents=True)
    (pack / "photos").mkdir()
    step = state.stem.split("_")[1]
    for name in (state.name, f"net_{step}.pth"):
        shutil.copyfile(args.out / "checkpoints" / name, pack / "run" / "checkpoints" / name)
    for name in ("config.yaml", "log.csv"):
        if (args.out / name).exists():
            shutil.copyfile(args.out / name, pack / "run" / name)
    photos = sorted(f for f in args.photos_dir.iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg"))
    for f in photos:
        with Image.open(f) as im:
            im.convert("RGB").save(pack / "photos" / f"{f.stem}.jpg", quality=args.quality)
    size = sum(f.stat().st_size for f in pack.rglob("*") if f.is_file())
    print(f"{_rel(pack)}: iteration {int(step)}, {len(photos)} photographs, {size / 2**20:.1f} MiB; on the GPU machine:\n"
          f"  python scripts/train_demo.py --device cuda --resume --out {_rel(pack / 'run')} --photos {_rel(pack / 'photos')} "
          f"--minutes 8\nthen bring {_rel(pack / 'run')} back and run: python scripts/train_demo.py adopt")
    return 0


def cmd_adopt(args: argparse.Namespace) -> int:
    """Take the newest checkpoint (and the log rows) of a run continued elsewhere into --out."""
    import shutil

    from err_stream.train.trainer import latest_state

    src = args.source
    state = latest_state(src)
    mine = latest_state(args.out)
    if state is None:
        print(f"no training state in {src}", file=sys.stderr)
        return 1
    step = int(state.stem.split("_")[1])
    if mine is not None and int(mine.stem.split("_")[1]) >= step:
        print(f"{_rel(args.out)} is already at iteration {int(mine.stem.split('_')[1])} (>= {step}): nothing to adopt")
        return 0
    if _pid(args.out) is not None:
        print("stop the run first (python scripts/train_demo.py stop)", file=sys.stderr)
        return 1
    (args.out / "checkpoints").mkdir(parents=True, exist_ok=True)
    for name in (state.name, f"net_{step:07d}.pth"):
        shutil.copyfile(src / "checkpoints" / name, args.out / "checkpoints" / name)
    if (src / "log.csv").exists():
        shutil.copyfile(src / "log.csv", args.out / "log.csv")  # the same run's log, continued
    for net in sorted((src / "milestones").glob("net_*.pth")):
        (args.out / "milestones").mkdir(exist_ok=True)
        shutil.copyfile(net, args.out / "milestones" / net.name)
    print(f"adopted iteration {step} from {src}; python scripts/train_demo.py start continues from it")
    return 0


# ----------------------------------------------------------------------------- export and card
def _state_for(out: Path, step: int) -> dict:
    """The newest training state at or after ``step`` (its history up to ``step``), if any."""
    import torch

    states = sorted((out / "checkpoints").glob("state_*.pt"))
    later = [s for s in states if int(s.stem.split("_")[1]) >= step]
    if not later:
        return {}
    state = torch.load(later[0], map_location="cpu", weights_only=True)
    spans = []
    for span in state.get("history", []):
        if "first_step" not in span or span["first_step"] >= step:
            continue
        span = dict(span)
        if span["last_step"] > step:  # prorate the span that ran past the milestone
            share = (step - span["first_step"]) / max(1, span["last_step"] - span["first_step"])
            span["seconds"] = round(span["seconds"] * share, 1)
            span["last_step"] = step
        spans.append(span)
    return {**state, "history": spans}


def _score(res: dict) -> dict:
    import numpy as np

    dark = [s["model"]["psnr"] for by in res["dark"].values() for s in by.values()]
    return {"targets_met": sum(t["pass"] for t in res["targets"]), "targets": len(res["targets"]),
            "dark_psnr": float(np.mean(dark)) if dark else float("nan"),
            "lit_psnr": float(np.mean([s["psnr"] for s in res["lit"].values()])) if res["lit"] else float("nan")}


def cmd_export(args: argparse.Namespace) -> int:
    from err_stream import runtime
    from err_stream.weights import DEMO_WEIGHTS, load_model, save_checkpoint
    from eval_demo import evaluate, held_out_photos, table

    runtime.configure(args.threads)
    out = args.out
    ckpt = Path(args.checkpoint) if args.checkpoint else None
    if ckpt is None:
        nets = sorted((out / "milestones").glob("net_*.pth")) or sorted((out / "checkpoints").glob("net_*.pth"))
        if not nets:
            print(f"no checkpoints in {_rel(out)}", file=sys.stderr)
            return 1
        ckpt = nets[-1]
    step = int(ckpt.stem.split("_")[1]) if ckpt.stem.startswith("net_") else None
    (out / "export").mkdir(parents=True, exist_ok=True)
    candidate = out / "export" / f"demo-lowlight-{step if step is not None else ckpt.stem}.safetensors"
    save_checkpoint(load_model(str(ckpt), device="cpu"), candidate, half=True)  # what would ship: fp16
    photos = held_out_photos()
    kw = dict(device=args.device, photos=photos[:4] if args.quick else photos)
    if args.quick:
        kw.update(sizes=("512x512",), lit_sizes=("1920x1080",), clip_frames=24)
    print(f"measuring {_rel(candidate)} ...", file=sys.stderr)
    new = evaluate(str(candidate), **kw)
    print(f"\n## candidate: {_rel(ckpt)}\n\n{table(new)}")
    old = None
    if DEMO_WEIGHTS.exists() and not args.no_compare:
        print("measuring the shipped weights ...", file=sys.stderr)
        old = evaluate(None, **kw)
        print(f"\n## shipped: {_rel(DEMO_WEIGHTS)}\n\n{table(old)}")
    (out / "export" / f"eval-{candidate.stem}.json").write_text(json.dumps({"candidate": new, "shipped": old}, indent=1))
    better = True
    if old is not None:
        s_new, s_old = _score(new), _score(old)
        better = (s_new["targets_met"], s_new["dark_psnr"]) > (s_old["targets_met"], s_old["dark_psnr"])
        print(f"\ncandidate: {s_new}\nshipped:   {s_old}\n-> the candidate is {'better' if better else 'not better'} "
              "(more targets met; on a tie, higher mean model PSNR on the dark rows)")
    if not args.ship:
        return 0
    if not better and not args.force:
        print("not shipped (use --force to ship anyway)", file=sys.stderr)
        return 1
    if args.quick and not args.force:
        print("not shipped: a --quick measurement is not the held-out table the card needs (drop --quick)", file=sys.stderr)
        return 1
    # The README's picture first: it refuses weights whose output on the demo clip is out of range.
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_picture.py"), "--weights", str(candidate)], cwd=ROOT)
    if r.returncode:
        print("not shipped: scripts/demo_picture.py failed with these weights", file=sys.stderr)
        return 1
    DEMO_WEIGHTS.write_bytes(candidate.read_bytes())
    write_card(args, ckpt, step, new)
    print(f"shipped: {_rel(DEMO_WEIGHTS)}, its card and docs/demo-before-after.jpg; review and commit them "
          "(git add err_stream/assets/demo-lowlight.* docs/demo-before-after.jpg)")
    return 0


def _rounded(x):
    """Floats to 4 significant digits (the card is read by people)."""
    if isinstance(x, float):
        return float(f"{x:.4g}")
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x


def write_card(args: argparse.Namespace, ckpt: Path, step: int | None, res: dict) -> None:
    import yaml

    from err_stream.weights import DEMO_WEIGHTS

    out = args.out
    state = _state_for(out, step) if step is not None else {}
    spans = state.get("history", [])
    config = state.get("config") or (yaml.safe_load((out / "config.yaml").read_text()) if (out / "config.yaml").exists() else {})
    by_device: dict[str, dict] = {}
    for s in spans:
        if "first_step" in s:
            key = s.get("gpu") or f"{s['device']}: {s.get('cpu')}"
            d = by_device.setdefault(key, {"iterations": 0, "seconds": 0.0})
            d["iterations"] += s["last_step"] - s["first_step"]
            d["seconds"] = round(d["seconds"] + s["seconds"], 1)
    rows = []
    if (out / "log.csv").exists():
        with (out / "log.csv").open(newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if step is None or int(r["step"]) <= step]
    losses = [r for r in rows if r["loss"] not in ("", "nan")]
    vals = [r for r in rows if r["val_psnr"]]
    sources = yaml.safe_load((PHOTOS / "SOURCES.yaml").read_text()) if (PHOTOS / "SOURCES.yaml").exists() else []
    data: dict = {}
    for src in sources:
        split = data.setdefault(src.get("split", "train"), {"photographs": 0, "packages": {}})
        split["photographs"] += 1
        pkg = split["packages"].setdefault(src["package"], {"version": src["version"], "suite": src.get("suite"),
                                                            "photographs": 0, "licences": []})
        pkg["photographs"] += 1
        if src["licence"] not in pkg["licences"]:
            pkg["licences"].append(src["licence"])
    card = {
        "name": "demo-lowlight",
        "what": "ERR trained by err-stream's trainer, the whole network, on real photographs darkened by a camera model of "
        "night capture (camera_lowlight) and, for a share of the pairs, left lit (the target is the photograph), with its "
        "frequency branch trained at virtual frame sizes up to 8K. A demonstration of the pipeline, not the paper's model: "
        "use the authors' checkpoints (--preset) for real work.",
        "run": {"config": _rel(args.config), "out": _rel(out), "step": step, "checkpoint": _rel(ckpt),
                "iterations": (config.get("schedule") or {}).get("iterations")},
        "reproduce": "python scripts/fetch_photos.py && python scripts/train_demo.py start  "
        "(on a machine without runs/ it continues from these weights at run.step with a learning-rate warm-up)",
        "trained": {
            "date": datetime.date.today().isoformat(),
            "iterations": step,
            "wall_seconds": round(sum(s.get("seconds", 0) for s in spans if "first_step" in s)),
            "by_machine": by_device,
            "spans": spans,
            "restart": state.get("restart"),
            "loss_curve": [{"step": int(r["step"]), "loss": round(float(r["loss"]), 4)}
                           for r in losses[:: max(1, len(losses) // 12)] + losses[-1:]],
            "validation": [{"step": int(r["step"]), "psnr": float(r["val_psnr"]), "ssim": float(r["val_ssim"])} for r in vals],
        },
        "data": {
            "made_by": "python scripts/fetch_photos.py (apt-get download from deb.debian.org + dpkg-deb -x; nothing is committed)",
            **data,
            "per_file_licences": "runs/photos/SOURCES.yaml (written by scripts/fetch_photos.py)",
            "validation": "scikit-image coffee, chelsea, rocket",
            "evaluation": "the held-out photographs (benchmarks/eval_demo.py)",
        },
        "held_out": {"dark": _rounded(res["dark"]), "lit": _rounded(res["lit"]), "flicker": _rounded(res["flicker"]),
                     "targets": _rounded(res["targets"]),
                     "note": "benchmarks/eval_demo.py: Y-PSNR dB / SSIM, crop border 4, "
                     f"{len(res['photos'])} photographs ({res['photos_at_4k']} at 4K), {res['draws']} draw(s) each"},
        "config": config,
        "weights": {"file": DEMO_WEIGHTS.name, "format": "safetensors, fp16", "bytes": DEMO_WEIGHTS.stat().st_size},
    }
    _card_path().write_text(yaml.safe_dump(card, sort_keys=False, width=120, allow_unicode=True))


# ----------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):  # e.g. train_demo.py --device cuda --resume
        argv = ["run", *argv]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:12]))
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", type=Path, default=CONFIG, help=f"training config (default {_rel(CONFIG)})")
        sp.add_argument("--out", type=Path, default=OUT, help=f"run folder (default {_rel(OUT)})")

    for name in ("run", "start", "resume"):
        sp = sub.add_parser(name, help="train in the foreground" if name == "run" else "start or resume the run in the background")
        common(sp)
        sp.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
        sp.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
        sp.add_argument("--omp-wait", default="passive", choices=("passive", "active"),
                        help="OpenMP idle threads: passive (a shared machine) or active (faster on a dedicated one)")
        sp.add_argument("--iterations", type=int, help="override schedule.iterations")
        sp.add_argument("--allow-data-change", action="store_true", help="resume even if the training photographs changed")
        sp.add_argument("--photos", type=Path, help="training photographs (overrides data.train.target, e.g. a GPU pack's)")
        sp.add_argument("--minutes", type=float, help="stop after this many minutes, with a checkpoint")
        if name == "run":
            sp.add_argument("--resume", action="store_true", help="require a training state to continue from")
            sp.add_argument("--stop-at", type=int, help="stop after this iteration (with a checkpoint)")
            sp.add_argument("--from-init", action="store_true", help="without a state: start at 0 from the config's init "
                            "even if the shipped weights come from this run")
        else:
            sp.add_argument("--nice", type=int, default=19, help="niceness of the background process (default 19)")
    for name, text in (("pause", "checkpoint and sleep until continue"), ("continue", "resume a paused run"),
                       ("status", "where the run is"), ("stop", "checkpoint and exit")):
        sp = sub.add_parser(name, help=text)
        common(sp)
        if name in ("pause", "stop"):
            sp.add_argument("--wait", type=float, default=600, help="seconds to wait for it (default 600)")
        if name == "pause":
            sp.add_argument("--hard", action="store_true", help="SIGSTOP the process group now (no checkpoint)")
    sp = sub.add_parser("pack", help="the newest checkpoint and the photographs (JPEG) for a lent GPU")
    common(sp)
    sp.add_argument("--pack", type=Path, default=PACK, help=f"where (default {_rel(PACK)})")
    sp.add_argument("--photos-dir", type=Path, default=PHOTOS, help=f"the training photographs (default {_rel(PHOTOS)})")
    sp.add_argument("--quality", type=int, default=90, help="JPEG quality of the photographs (default 90)")
    sp = sub.add_parser("adopt", help="take the newest checkpoint of a run continued elsewhere (a GPU pack's)")
    common(sp)
    sp.add_argument("source", type=Path, nargs="?", default=PACK / "run", help=f"its run folder (default {_rel(PACK / 'run')})")
    sp = sub.add_parser("export", help="measure a checkpoint against the shipped weights; --ship replaces them")
    common(sp)
    sp.add_argument("--checkpoint", help="weights to measure (default: the newest milestone, else the newest checkpoint)")
    sp.add_argument("--device", default="cpu")
    sp.add_argument("--threads", type=int, default=2)
    sp.add_argument("--quick", action="store_true", help="512² and 1080p on 4 photographs only (a first look)")
    sp.add_argument("--no-compare", action="store_true", help="do not measure the shipped weights")
    sp.add_argument("--ship", action="store_true", help="replace the shipped weights and card if the candidate is better")
    sp.add_argument("--force", action="store_true", help="ship even if not better")
    args = p.parse_args(argv)
    for key in ("out", "config", "photos", "pack", "photos_dir", "source"):
        if getattr(args, key, None) is not None:
            setattr(args, key, getattr(args, key).resolve())
    os.chdir(ROOT)  # configs name their data relative to the repository (runs/photos)
    handlers = {"run": cmd_run, "start": cmd_start, "resume": cmd_start, "pause": cmd_pause, "continue": cmd_continue,
                "status": cmd_status, "stop": cmd_stop, "export": cmd_export, "pack": cmd_pack, "adopt": cmd_adopt}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
