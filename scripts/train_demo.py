"""Train, export and measure the demo low-light model (err_stream/assets/demo-lowlight.*).

    python scripts/fetch_photos.py    # once: the training photographs, into runs/photos
    python scripts/train_demo.py --device cuda [--iterations N | --minutes M] [--out runs/demo-lowlight]

1. ``err-stream train configs/demo-lowlight.yaml`` (resumes the run in --out if there is one);
   ``--minutes M`` first times 40 iterations and sets the iteration count to fill M minutes
   (the count used is recorded, so the exact run can be repeated with ``--iterations``);
2. exports the final weights as fp16 safetensors to err_stream/assets/demo-lowlight.safetensors;
3. measures them on the held-out photographs (benchmarks/eval_demo.py) and writes the card
   err_stream/assets/demo-lowlight.yaml (config, command, training summary, metrics).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import sys
import tempfile
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from err_stream.cli import main as cli  # noqa: E402
from err_stream import runtime  # noqa: E402
from err_stream.weights import DEMO_WEIGHTS, load_model, save_checkpoint  # noqa: E402

CONFIG = ROOT / "configs" / "demo-lowlight.yaml"
# The fine-tune starts from the first demo weights, kept in git history (the asset is overwritten).
FIRST_WEIGHTS = ROOT / "runs" / "demo-lowlight-v1.safetensors"
FIRST_WEIGHTS_COMMIT = "96c73df"
CARD = DEMO_WEIGHTS.with_suffix(".yaml")


def _rows(log: Path) -> list[dict]:
    with log.open(newline="") as fh:
        return list(csv.DictReader(fh))


def probe_seconds_per_step(device: str, steps: int = 40) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        rc = cli(["train", str(CONFIG), "--device", device, "--iterations", str(steps), "--out", tmp, "--quiet"])
        if rc:
            raise SystemExit(rc)
        rows = [r for r in _rows(Path(tmp) / "log.csv") if r["sec_per_step"]]
        # The last logged window excludes start-up (compilation, first allocations).
        return float(rows[-1]["sec_per_step"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--iterations", type=int, help="override the config's schedule.iterations")
    g.add_argument("--minutes", type=float, help="pick the iteration count that fills this many minutes")
    p.add_argument("--out", default=str(ROOT / "runs" / "demo-lowlight"))
    p.add_argument("--threads", type=int)
    p.add_argument("--batch-size", type=int, help="override train.batch_size (smaller GPUs; the card records it)")
    p.add_argument("--skip-train", action="store_true", help="only export and measure the run in --out")
    p.add_argument("--eval-draws", type=int, default=2, help="darkenings per held-out photograph in the evaluation")
    p.add_argument("--metrics", nargs="+", metavar="JSON",
                   help="use these eval_demo.py --json results (e.g. one per size, run in parallel) instead of evaluating here")
    args = p.parse_args()
    runtime.configure()  # denormals flushed: CPU steps are up to 10x slower on them

    iterations = args.iterations
    if args.minutes:
        sps = probe_seconds_per_step(args.device)
        iterations = max(100, int(args.minutes * 60 / sps) // 50 * 50)
        print(f"{sps:.3f} s/step on {args.device}: {iterations} iterations", file=sys.stderr)
    cmd = ["train", str(CONFIG.relative_to(ROOT)), "--device", args.device, "--out", args.out, "--quiet"]
    if iterations:
        cmd += ["--iterations", str(iterations)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    out = Path(args.out)
    if not args.skip_train and not FIRST_WEIGHTS.exists():
        import subprocess

        FIRST_WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
        blob = subprocess.run(["git", "-C", str(ROOT), "show", f"{FIRST_WEIGHTS_COMMIT}:err_stream/assets/demo-lowlight.safetensors"],
                              capture_output=True, check=True).stdout
        FIRST_WEIGHTS.write_bytes(blob)
    if not args.skip_train and not (ROOT / "runs" / "photos" / "SOURCES.yaml").exists():
        print("run python scripts/fetch_photos.py first (it gathers the training photographs into runs/photos)", file=sys.stderr)
        return 1
    if not args.skip_train:
        if (out / "checkpoints").is_dir() and any((out / "checkpoints").glob("state_*.pt")):
            cmd.append("--resume")
        rc = cli(cmd)
        if rc:
            return rc

    nets = sorted((out / "checkpoints").glob("net_*.pth"))
    if not nets:
        print(f"no checkpoints in {out}", file=sys.stderr)
        return 1
    final = nets[-1]
    model = load_model(str(final), device="cpu")
    DEMO_WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, DEMO_WEIGHTS, half=True)

    from eval_demo import evaluate

    if args.metrics:
        parts = [json.loads(Path(f).read_text()) for f in args.metrics]
        res = dict(parts[0])
        res["sizes"] = {k: v for part in parts for k, v in part["sizes"].items()}
        res["images"] = [r for part in parts for r in part["images"]]
    else:
        res = evaluate(str(DEMO_WEIGHTS), device=args.device, draws=args.eval_draws)
    cfg_every = int(yaml.safe_load((out / "config.yaml").read_text())["log"]["every"])
    log_rows = _rows(out / "log.csv")
    rows = [r for r in log_rows if r["loss"] and r["loss"] != "nan"]
    vals = [r for r in log_rows if r["val_psnr"]]
    trained_steps = int(final.stem.split("_")[1])
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    recorded = (out / "command.txt").read_text().split() if (out / "command.txt").exists() else []
    train_device = recorded[recorded.index("--device") + 1] if "--device" in recorded[:-1] else args.device
    if args.skip_train and CARD.exists():  # keep where the weights were trained, not where they were measured
        old = yaml.safe_load(CARD.read_text()) or {}
        if old.get("trained", {}).get("iterations") == trained_steps:
            device_name = old["trained"].get("device", device_name)
    photos = ROOT / "runs" / "photos" / "SOURCES.yaml"
    sources = yaml.safe_load(photos.read_text()) if photos.exists() else []
    by_package: dict[str, dict] = {}
    for src in sources:
        entry = by_package.setdefault(src["package"], {"version": src["version"], "photographs": 0, "licences": []})
        entry["photographs"] += 1
        if src["licence"] not in entry["licences"]:
            entry["licences"].append(src["licence"])
    seconds = sum(float(r["sec_per_step"]) * cfg_every for r in log_rows if r.get("sec_per_step"))
    config = yaml.safe_load((out / "config.yaml").read_text())
    card = {
        "name": "demo-lowlight",
        "what": "ERR fine-tuned by err-stream's trainer on real photographs darkened by a camera model of night capture "
        "(camera_lowlight), with its frequency branch trained at virtual frame sizes up to 8K. A demonstration of the "
        "pipeline, not the paper's model: use the authors' checkpoints (--preset) for real work.",
        "reproduce": f"python scripts/fetch_photos.py && python scripts/train_demo.py --device {train_device} --iterations {trained_steps}",
        "train_command": f"err-stream train configs/demo-lowlight.yaml --device {train_device} --iterations {trained_steps} "
        "--out runs/demo-lowlight",
        "trained": {
            "date": datetime.date.today().isoformat(),
            "device": device_name,
            "iterations": trained_steps,
            "wall_seconds": round(seconds),
            "crop_sizes": config["data"]["train"]["crop"],
            "batch_size": config["train"]["batch_size"],
            "trainable": config["train"].get("trainable") or "all",
            "init": f"{config.get('init')} (fresh: {', '.join(config.get('init_exclude') or []) or 'none'})",
            "virtual_frame_size": {"probability": config["train"].get("virtual_size"),
                                   "max_pixels": config["train"].get("virtual_max_pixels"),
                                   "warmup": config["train"].get("virtual_warmup")},
            "loss_curve": [{"step": int(r["step"]), "loss": round(float(r["loss"]), 3)} for r in rows[:: max(1, len(rows) // 8)] + rows[-1:]],
            "skipped_non_finite_steps": sum(int(float(r.get("skipped") or 0)) for r in log_rows) if "skipped" in (log_rows[0] if log_rows else {}) else None,
            "validation": [{"step": int(r["step"]), "psnr": float(r["val_psnr"]), "ssim": float(r["val_ssim"])} for r in vals],
        },
        "data": {
            "train": {
                "made_by": "python scripts/fetch_photos.py (apt-get download + dpkg-deb -x; nothing is committed)",
                "photographs": len(sources),
                "sources": by_package,
                "per_file_licences": "runs/photos/SOURCES.yaml (written by scripts/fetch_photos.py)",
            },
            "validation": "scikit-image coffee, chelsea, rocket (never trained on; the README's demo clip is made from coffee)",
            "evaluation": "matplotlib grace_hopper + scikit-image coffee, chelsea, rocket (benchmarks/eval_demo.py)",
        },
        "degradation": {
            "config": config["data"]["train"]["degradation"],
            "ranges": "err_stream/train/degradations.py CameraLowLight docstring: 2-8 EV drops (15% normally lit pairs, "
            "0-1 EV), ISO gain making up 0-50% of the drop, Poisson shot noise from a 2,000-20,000 e- full well scaled by the "
            "gain, 1-6 e- read noise, post-gain noise, RGGB mosaic + bilinear demosaic + 0-2.5 px chroma blur, light-source "
            "casts (tungsten, sodium, LEDs, fluorescent, moonlight) 20-100% uncorrected, +-1.5 EV illumination fields and "
            "vignettes, clipped lamps on 35% of dark pairs, 8-bit, JPEG q35-90 (45%) or H.264 CRF 20-38 (35%)",
        },
        "metrics_held_out": res["sizes"],
        "metrics_note": f"Y-channel PSNR (dB) / SSIM, crop border 4, {res['degradation']} darkenings ({res['draws']} per photo, "
        f"{res['draws_at_4k']} at 4K; benchmarks/eval_demo.py); 'lit': the unmodified photo through the model",
        "config": config,
        "weights": {"file": DEMO_WEIGHTS.name, "format": "safetensors, fp16", "bytes": DEMO_WEIGHTS.stat().st_size},
    }
    CARD.write_text(yaml.safe_dump(card, sort_keys=False, width=120))
    from eval_demo import table

    print(table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
