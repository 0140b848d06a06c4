"""The training loop: ERR on random crops with the paper's losses, resumable exactly.

A run folder holds::

    config.yaml                      the resolved configuration
    log.csv                          losses per ``log.every`` iterations, validation PSNR/SSIM
    tb/                              TensorBoard events (if tensorboard is installed)
    checkpoints/net_0005000.pth      weights in the published layout ({"params": state_dict})
    checkpoints/state_0005000.pt     optimizer, scaler, step, RNG states, data position, history
    milestones/net_0005000.pth       weights kept at every ``log.milestone_every`` iterations

Checkpoints are written every ``log.checkpoint_every`` iterations, every
``log.checkpoint_minutes`` of wall time, at the end, when paused and when asked to stop
(:class:`~err_stream.train.control.RunControl`); only the last ``log.keep`` are kept.

The weights files load with every ERR tool (``err-stream --weights``, ``load_model``, the
authors' basicsr code). ``Trainer(..., resume=True)`` continues exactly from the newest
state file: the learning rate is a function of the iteration, the batches a pure function of
(seed, sample number) with the sample numbers of an iteration fixed by the crop curriculum,
and the state holds the optimizer's moments and every global RNG (Python, NumPy, torch,
CUDA). So N iterations in one go and N/2 + resume + N/2 give the same weights, bit for bit
(on the same device and thread count). ``start_step`` instead restarts from weights alone
(e.g. the shipped ones on a fresh machine) at their iteration, with the optimizer afresh and
a short learning-rate warm-up (``schedule.restart_warmup``). The state's ``history`` records
where and when each span of iterations ran (device, CPU, threads, seconds, load).
"""

from __future__ import annotations

import csv
import datetime
import logging
import math
import os
import platform
import random
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import yaml

from ..engine import Restorer
from ..engine.settings import RestoreSettings
from ..errors import ProcessingError, SettingError, UserError
from ..model import ERR, ERRConfig
from ..progress import Progress
from ..weights import check_state_dict, read_state_dict, resolve_weights, save_checkpoint
from .config import TrainConfig
from .control import RunControl, ignore_stop_signals
from .datasets import Curriculum, StepBatches, TrainDataset, ValidationSet, build_sources, to_numpy
from .losses import ERRLoss
from .metrics import psnr, ssim
from .virtual_size import draw_virtual_pixels, virtual_frame_size

log = logging.getLogger(__name__)

__all__ = ["Trainer", "cosine_factor", "lr_factor", "latest_state", "machine_description"]

LOSS_TERMS = ("l1", "ssim", "dct_global", "dct_low", "dct_high")
CSV_COLUMNS = ("step", "lr", "loss", *LOSS_TERMS, "grad_norm", "skipped", "sec_per_step", "val_psnr", "val_ssim")
_MAX_BAD_STEPS = 20  # consecutive non-finite losses before giving up


def cosine_factor(step: int, iterations: int, warmup: int, lr: float, eta_min: float) -> float:
    """Learning-rate multiplier at ``step`` (0-based): linear warm-up, then cosine to ``eta_min``."""
    if step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, iterations - warmup))
    return (eta_min + (lr - eta_min) * 0.5 * (1 + math.cos(math.pi * t))) / lr


def lr_factor(step: int, cfg: TrainConfig, restart: dict | None = None) -> float:
    """The learning-rate multiplier at ``step``: the run's cosine schedule, times a linear ramp
    over ``restart["warmup"]`` iterations from ``restart["step"]`` for a run restarted from weights."""
    s = cfg.schedule
    f = cosine_factor(step, s.iterations, s.warmup, cfg.optim.lr, s.eta_min)
    if restart and restart.get("warmup"):
        f *= min(1.0, (step - restart["step"] + 1) / restart["warmup"])
    return f


def machine_description(device: torch.device) -> dict[str, Any]:
    """Where iterations run: the device, its name (the GPU or the CPU model), threads."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    d = {"device": str(device), "cpu": cpu, "cpu_count": os.cpu_count(), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        d["gpu"] = torch.cuda.get_device_name(device)
    return d


def latest_state(folder: Path) -> Path | None:
    states = sorted((folder / "checkpoints").glob("state_*.pt"))
    return states[-1] if states else None


class Trainer:
    """Train (or fine-tune) ERR as a :class:`TrainConfig` says, writing into ``out_dir``.

    Args:
        config: the checked configuration.
        out_dir: the run folder (created).
        device: ``"cpu"``, ``"cuda"``... (default: CUDA if available).
        resume: False, True (newest state in ``out_dir``) or a state file.
        progress: where progress goes (:class:`err_stream.progress.Progress`; the command
            line passes a tqdm bar); None: silent. The trainer itself never draws.
        start_step: without ``resume``: start at this iteration from the ``init`` weights alone
            (fresh optimizer, ``schedule.restart_warmup`` warm-up), e.g. the shipped weights of
            a run that was at that iteration.
        allow_data_change: resume even if the training images differ from the checkpoint's
            (the data order then differs from the original run's).
    """

    def __init__(
        self,
        config: TrainConfig,
        out_dir: str | Path,
        device: str | torch.device | None = None,
        resume: bool | str | Path = False,
        progress: Progress | None = None,
        start_step: int | None = None,
        allow_data_change: bool = False,
    ) -> None:
        self.cfg = cfg = config
        self.out = Path(out_dir)
        self.device = RestoreSettings(device=device).torch_device()
        self.progress = progress or None
        _seed_everything(cfg.seed)

        (train_lq, train_gt), val = build_sources(cfg)
        if cfg.data.train.cache:
            train_gt.cache()
            if train_lq is not None:
                train_lq.cache()
        self.curriculum = Curriculum(cfg.stages())
        self.dataset = TrainDataset(
            train_gt, cfg.crop_sizes, cfg.train.batch_size, cfg.seed,
            degraded=train_lq, degradation=cfg.train_degradation(),
            flips=cfg.data.train.flips, transpose=cfg.data.train.transpose, curriculum=self.curriculum,
        )
        self.valset = None
        if val is not None:
            self.valset = ValidationSet(val[1], val[0], cfg.val_degradation(), seed=cfg.seed, max_images=cfg.data.val.max_images)

        arch = cfg.err_config()
        self.model = ERR(arch)
        if cfg.init is not None:
            path = resolve_weights(cfg.init)
            sd = read_state_dict(path)
            found = ERRConfig.from_state_dict(sd)
            if found != arch:
                differ = ", ".join(f"{k} {v} (config: {arch.to_dict()[k]})" for k, v in found.to_dict().items() if arch.to_dict()[k] != v)
                raise UserError(f"init {path}: its network differs from the config's model: {differ}; set model: to match, "
                                "or train the variant from scratch (init: null)")
            check_state_dict(self.model, sd, str(path))
            fresh = tuple(cfg.init_exclude)
            kept = {k: v.float() for k, v in sd.items() if not (fresh and k.startswith(fresh))}
            self.model.load_state_dict(kept, strict=not fresh)
            log.info("fine-tuning from %s%s", path, f" (fresh: {', '.join(fresh)})" if fresh else "")
        # channels_last: the convolutions run faster in it (the layers keep the layout they get)
        self.model.to(self.device, memory_format=torch.channels_last).train()

        if cfg.train.trainable:
            prefixes = tuple(cfg.train.trainable)
            for name, p in self.model.named_parameters():
                p.requires_grad_(name.startswith(prefixes))
            if not any(p.requires_grad for p in self.model.parameters()):
                raise UserError(f"train.trainable: no parameter name starts with {', '.join(prefixes)}")
        o = cfg.optim
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay, betas=tuple(o.betas))
        amp = cfg.train.amp
        if amp == "auto":
            amp = "bf16" if self.device.type == "cuda" else "off"
        self.amp_dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.criterion = ERRLoss(cfg.loss)
        self.step = 0
        self.bad_steps = 0
        self.restart: dict | None = None  # {"step", "warmup", "init"} once restarted from weights alone
        self.history: list[dict] = []  # earlier spans of this run (see machine_description)
        self.stopped_by: str | None = None  # why the last run() returned early (a signal name)
        self._segment: dict | None = None
        self._saved_step = -1
        self._tb = None

        if resume:
            state = latest_state(self.out) if resume is True else Path(resume)
            if state is None:
                raise UserError(f"no training state (checkpoints/state_*.pt) in {self.out}", option="resume", value=True)
            self.load_state(state, allow_data_change=allow_data_change)
        elif start_step:
            if not 0 < start_step < cfg.schedule.iterations:
                raise UserError(f"start step {start_step} is outside the run (0 to {cfg.schedule.iterations})")
            self.step = int(start_step)
            self.restart = {"step": self.step, "warmup": cfg.schedule.restart_warmup, "init": cfg.init}
        self._set_lr()

    # ------------------------------------------------------------------ one step
    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None)

    def _set_lr(self) -> None:
        lr = self.cfg.optim.lr * lr_factor(self.step, self.cfg, self.restart)
        for g in self.optimizer.param_groups:
            g["lr"] = lr

    def train_step(self, lq: torch.Tensor, gt: torch.Tensor) -> dict[str, float]:
        """One optimisation step on a batch; returns the loss terms, lr and gradient norm."""
        self._set_lr()
        lq = lq.to(self.device, non_blocking=True, memory_format=torch.channels_last)
        gt = gt.to(self.device, non_blocking=True)
        self.optimizer.zero_grad(set_to_none=True)
        t = self.cfg.train
        # Drawn from (seed, step): a resumed run makes the same draws.
        virtual = draw_virtual_pixels(
            np.random.default_rng([self.cfg.seed, 5, self.step]), lq.shape[-2] * lq.shape[-1], t.virtual_max_pixels, t.virtual_size,
            ramp=(self.step + 1) / t.virtual_warmup if t.virtual_warmup else 1.0,
        )
        with self._autocast(), virtual_frame_size(self.model, virtual):
            out, out1, out2 = self.model.forward_stages(lq)
        loss, terms = self.criterion(out, out1, out2, gt)
        lr = self.optimizer.param_groups[0]["lr"]
        if not torch.isfinite(loss):
            # A non-finite loss would poison AdamW's moments: skip the update (the schedule
            # still advances, so step numbers keep their meaning).
            self.bad_steps += 1
            if self.bad_steps >= _MAX_BAD_STEPS:
                raise ProcessingError(
                    f"training diverged: {self.bad_steps} non-finite losses in a row at step {self.step}; "
                    "lower optim.lr, keep train.grad_clip on, or use train.amp: off"
                )
            log.warning("step %d: non-finite loss, update skipped", self.step)
            grad_norm = float("nan")
        else:
            self.bad_steps = 0
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            clip = self.cfg.train.grad_clip
            trained = [p for p in self.model.parameters() if p.requires_grad]
            grad_norm = float(torch.nn.utils.clip_grad_norm_(trained, clip if clip else float("inf")))
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.step += 1
        row = {"loss": float(loss.detach()), "lr": lr, "grad_norm": grad_norm}
        row.update({k: float(v.detach()) for k, v in terms.items()})
        return row

    # ------------------------------------------------------------------ data
    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The run's batches from the current step on (deterministic, see TrainDataset)."""
        workers = self.cfg.data.train.workers
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=StepBatches(self.curriculum, self.step, self.cfg.schedule.iterations),
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            prefetch_factor=4 if workers else None,
            worker_init_fn=ignore_stop_signals if workers else None,
            # Its own generator: the loader's worker seed would otherwise come from (and advance)
            # torch's global RNG, which the checkpoints restore. The samples use no worker RNG.
            generator=torch.Generator().manual_seed(self.cfg.seed),
        )
        return iter(loader)

    # ------------------------------------------------------------------ the loop
    def run(self, stop_at: int | None = None, control: RunControl | None = None) -> dict[str, Any]:
        """Train to ``schedule.iterations`` (or pause after iteration ``stop_at``, with a
        checkpoint to resume from); returns the last logged losses and validation metrics.

        ``control`` (:class:`RunControl`, entered by the caller) stops the run after the current
        iteration with a checkpoint (``self.stopped_by`` then names why), pauses it while its
        pause file exists, and receives the status."""
        cfg = self.cfg
        self.stopped_by = None
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "checkpoints").mkdir(exist_ok=True)
        (self.out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        csv_path = self.out / "log.csv"
        _truncate_log(csv_path, self.step)
        new_file = not csv_path.exists()
        bar = self.progress
        if bar is not None:
            bar.begin(cfg.name, cfg.schedule.iterations - self.step, note=f"from iteration {self.step}" if self.step else "")
        # On CPU, denormal floats (tiny decay products in the scan, tiny gradients) make steps
        # up to ten times slower: callers run err_stream.runtime.configure() first (the CLI
        # and scripts/train_demo.py do), which flushes them to zero.
        self._segment = {**machine_description(self.device), "first_step": self.step, "last_step": self.step,
                         "started": _now(), "ended": _now(), "seconds": 0.0, "paused_seconds": 0.0, "load_1min": None,
                         "restarted_from_weights": self.restart is not None and self.restart["step"] == self.step}
        self._t_segment = time.monotonic()
        self._loads: list[float] = []
        if control is not None:
            control.report(force=True, state="running", step=self.step, iterations=cfg.schedule.iterations,
                           device=str(self.device), out=str(self.out))
        try:
            last = self._loop(csv_path, new_file, bar, stop_at, control)
        except BaseException as e:
            if control is not None:
                control.report(force=True, state="failed", error=f"{type(e).__name__}: {e}"[:500])
            raise
        finally:
            if bar is not None:
                bar.end()
            if self._tb is not None:
                self._tb.close()
                self._tb = None
        if control is not None:
            state = "done" if self.step >= cfg.schedule.iterations else "stopped" if self.stopped_by else "paused at stop_at"
            control.report(force=True, state=state, step=self.step, stopped_by=self.stopped_by)
        return last

    def _loop(
        self, csv_path: Path, new_file: bool, bar: Progress | None, stop_at: int | None, control: RunControl | None
    ) -> dict[str, Any]:
        cfg = self.cfg
        last: dict[str, Any] = {}
        sums: dict[str, float] = {}
        count = skipped = 0
        t0 = time.perf_counter()
        last_save = time.monotonic()
        pace: float | None = None  # seconds per iteration, smoothed, for the status
        t_step = time.perf_counter()
        with csv_path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
            if new_file:
                writer.writeheader()
            for lq, gt in self.batches():
                row = self.train_step(lq, gt)
                if math.isfinite(row["loss"]):
                    for k, v in row.items():
                        sums[k] = sums.get(k, 0.0) + v
                    count += 1
                else:
                    skipped += 1
                if bar is not None:
                    bar.status(f"loss={row['loss']:.4f}, lr={row['lr']:.2e}")
                    bar.advance(1)
                step = self.step
                now = time.perf_counter()
                pace = now - t_step if pace is None else 0.9 * pace + 0.1 * (now - t_step)
                t_step = now
                done = step >= cfg.schedule.iterations
                pause = stop_at is not None and step >= stop_at and not done
                stop = control is not None and control.stop_requested and not done
                if control is not None:
                    control.report(state="running", step=step, loss=row["loss"], lr=row["lr"], sec_per_step=pace,
                                   last_checkpoint=self._saved_step)
                if step % cfg.log.every == 0 or done or pause:
                    self._loads.append(os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"))
                    # Means over the window's steps with a finite loss; "skipped" counts the others.
                    mean = {k: v / count for k, v in sums.items()} if count else {}
                    mean["lr"] = row["lr"]
                    mean["skipped"] = skipped
                    mean["sec_per_step"] = (time.perf_counter() - t0) / (count + skipped)
                    writer.writerow({"step": step, **{k: _fmt(mean.get(k)) for k in CSV_COLUMNS[1:-2]}})
                    fh.flush()
                    self._tb_scalars(step, {f"train/{k}": v for k, v in mean.items()})
                    last = mean
                    sums, count, skipped, t0 = {}, 0, 0, time.perf_counter()
                if self.valset is not None and (step % cfg.data.val.every == 0 or done):
                    metrics = self.validate()
                    writer.writerow({"step": step, "val_psnr": _fmt(metrics["psnr"]), "val_ssim": _fmt(metrics["ssim"])})
                    fh.flush()
                    self._tb_scalars(step, {"val/psnr": metrics["psnr"], "val/ssim": metrics["ssim"]})
                    log.info("step %d: validation PSNR %.2f dB, SSIM %.4f", step, metrics["psnr"], metrics["ssim"])
                    last.update({"val_psnr": metrics["psnr"], "val_ssim": metrics["ssim"]})
                minutes = cfg.log.checkpoint_minutes
                due = minutes is not None and time.monotonic() - last_save >= minutes * 60
                if step % cfg.log.checkpoint_every == 0 or done or pause or stop or due:
                    self.save()
                    last_save = time.monotonic()
                if pause:
                    break
                if stop:
                    self.stopped_by = control.stop_reason  # type: ignore[union-attr]
                    log.info("stopped (%s) at iteration %d with a checkpoint", self.stopped_by, step)
                    break
                if control is not None and control.pause_requested:
                    paused = control.wait_while_paused(on_pause=lambda: self._saved_step == self.step or self.save())
                    self._segment["paused_seconds"] += paused  # type: ignore[index]
                    t_step = time.perf_counter()
                    t0 += paused  # the log's seconds per iteration leave the pause out
                    if control.stop_requested:  # stopped while paused: the same weights, the history updated
                        self.save()
                        self.stopped_by = control.stop_reason
                        break
        return last

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean PSNR / SSIM (Y channel, crop border 4) of the model's output on the validation set."""
        assert self.valset is not None
        precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]
        # compile=False: a new Restorer per validation would compile (minutes on a CPU) every time.
        restorer = Restorer(self.model, device=self.device, precision=precision, tiling="auto", compile=False)
        scores = []
        try:
            for _, lq, gt in self.valset:
                out = restorer.restore(lq[None])[0]
                a, b = to_numpy(out), to_numpy(gt)
                scores.append((psnr(a, b), ssim(a, b)))
        finally:
            self.model.train()
        return {"psnr": float(np.mean([s[0] for s in scores])), "ssim": float(np.mean([s[1] for s in scores]))}

    # ------------------------------------------------------------------ checkpoints
    def history_now(self) -> list[dict]:
        """The run's spans so far, this process's (up to now) included."""
        seg = self._segment
        if seg is None:
            return list(self.history)
        seg["last_step"] = self.step
        seg["ended"] = _now()
        seg["seconds"] = round(time.monotonic() - self._t_segment - seg["paused_seconds"], 1)
        loads = [v for v in self._loads if math.isfinite(v)]
        seg["load_1min"] = {"mean": round(float(np.mean(loads)), 2), "max": round(max(loads), 2)} if loads else None
        return [*self.history, dict(seg)]

    def save(self) -> Path:
        """Write ``net_<step>.pth`` (published layout) and ``state_<step>.pt``; prune old ones;
        keep the weights of milestone iterations in ``milestones/``."""
        folder = self.out / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        net = save_checkpoint(self.model, folder / f"net_{self.step:07d}.pth")
        state = {
            "step": self.step,
            "net": net.name,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "bad_steps": self.bad_steps,
            "rng": _rng_state(),
            "restart": self.restart,
            # The data order's position (the next iteration's first sample number) and the
            # images it was drawn from: a resume with other images would not continue the order.
            "data": {**self.dataset.fingerprint(), "next_sample": self.curriculum.first_sample(self.step)},
            "history": self.history_now(),
            "model": self.cfg.err_config().to_dict(),
            "config": self.cfg.to_dict(),
        }
        path = folder / f"state_{self.step:07d}.pt"
        tmp = path.with_name(path.name + ".part")
        torch.save(state, tmp)
        tmp.replace(path)
        every = self.cfg.log.milestone_every
        if every and self.step % every == 0:
            (self.out / "milestones").mkdir(exist_ok=True)
            shutil.copyfile(net, self.out / "milestones" / net.name)
        self._saved_step = self.step
        self._prune(folder)
        return net

    def _prune(self, folder: Path) -> None:
        keep = self.cfg.log.keep
        if keep <= 0:
            return
        states = sorted(folder.glob("state_*.pt"))
        for old in states[:-keep]:
            step = old.stem.split("_")[1]
            old.unlink(missing_ok=True)
            (folder / f"net_{step}.pth").unlink(missing_ok=True)

    def load_state(self, path: str | Path, allow_data_change: bool = False) -> None:
        """Restore weights, optimizer, scaler, step, RNGs and history from a state file."""
        path = Path(path)
        if not path.is_file():
            raise SettingError("resume", path, "no such training state file")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise SettingError("resume", path, f"not a readable training state ({type(e).__name__})") from None
        net = path.parent / state["net"]
        sd = read_state_dict(net)
        check_state_dict(self.model, sd, str(net))
        self.model.load_state_dict(sd)
        self.optimizer.load_state_dict(state["optimizer"])  # (the learning rate follows from the step)
        self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.bad_steps = int(state.get("bad_steps", 0))
        self.restart = state.get("restart")
        self.history = list(state.get("history", []))
        _set_rng_state(state["rng"])
        saved, now = state.get("data"), self.dataset.fingerprint()
        if saved and {k: saved[k] for k in now} != now and not allow_data_change:
            raise SettingError(
                "resume", path,
                f"the training images differ from the checkpoint's ({saved['images']} images, "
                f"fingerprint {saved['sha256']}; now {now['images']}, {now['sha256']}), so the data order would not "
                "continue; restore the images, or allow the change (it is recorded)",
                instead=["allow_data_change"],
            )
        if saved and {k: saved[k] for k in now} != now:
            self.history.append({"data_changed_at_step": self.step, "was": saved, "now": now})
        log.info("resumed from %s at step %d", path, self.step)

    # ------------------------------------------------------------------ logging
    def _tb_scalars(self, step: int, values: dict[str, float]) -> None:
        want = self.cfg.log.tensorboard
        if want is False:
            return
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                if want is True:
                    raise UserError("log.tensorboard: true needs the tensorboard package: pip install 'err-stream[train]'") from None
                self.cfg.log.tensorboard = False
                return
            self._tb = SummaryWriter(str(self.out / "tb"))
        for k, v in values.items():
            if v is not None and math.isfinite(v):
                self._tb.add_scalar(k, v, step)
        self._tb.flush()


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.9g}"


def _truncate_log(path: Path, step: int) -> None:
    """Drop log rows after ``step`` (a resumed run writes them again)."""
    if not path.exists():
        return
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        w.writeheader()
        w.writerows(r for r in rows if r.get("step") and int(r["step"]) <= step)


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _rng_state() -> dict[str, Any]:
    """Every global RNG, in types that ``torch.load(weights_only=True)`` reads back."""
    np_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {**np_state, "state": {"key": np_state["state"]["key"].tolist(), "pos": int(np_state["state"]["pos"])}},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(rng: dict[str, Any]) -> None:
    if "python" in rng:  # (states written before these were kept lack them)
        v, internal, gauss = rng["python"]
        random.setstate((v, tuple(internal), gauss))
    if "numpy" in rng:
        st = dict(rng["numpy"])
        st["state"] = {"key": np.asarray(st["state"]["key"], dtype=np.uint32), "pos": st["state"]["pos"]}
        np.random.set_state(st)
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
