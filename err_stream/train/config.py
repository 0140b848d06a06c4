"""Training configuration: a YAML file mapped onto dataclasses, checked before training.

Defaults are the paper's UHD-LL recipe (``configs/uhd-ll.yaml`` spells them out). A config
only needs the data; every other section can be left out::

    data:
      train: {input: data/low, target: data/gt}   # paired by file name
      val: {input: data/val/low, target: data/val/gt}

or, with no degraded folder, clean images and a synthetic degradation::

    data:
      train: {target: photos/, degradation: lowlight, crop: [128, 256]}

:func:`load_config` raises :class:`ConfigError` (a one-line, fix-it message) for unknown
keys, wrong types, crop sizes that are not multiples of 128, missing folders, unpaired or
mismatched images, crops larger than the images, ... all before a model is built.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import UserError
from ..model import ERRConfig
from .degradations import Degradation, build_degradation
from .losses import LossWeights

__all__ = ["ConfigError", "TrainConfig", "Stage", "load_config", "config_from_dict", "check_data"]

MULTIPLE = ERRConfig().multiple  # the network's input sides must be multiples of this


class ConfigError(UserError):
    """A training configuration that cannot be used (raised before training starts)."""


@dataclass
class Stage:
    """A later stage of a crop curriculum: from iteration ``start`` on, these crops (and batch size)."""

    start: int = 0
    crop: int | list[int] = 128  # crop side(s); several: one is drawn per batch
    batch_size: int | None = None  # None: train.batch_size


@dataclass
class TrainData:
    target: str = ""  # ground-truth (or clean) images: folder or skimage:NAMES
    input: str | None = None  # degraded images, paired with target by file name
    degradation: str | dict | None = None  # synthetic degradation of target, instead of input
    crop: int | list[int] = 768  # crop side(s); several: one is drawn per batch
    flips: bool = True  # random horizontal / vertical flips
    transpose: bool = False  # random transposition (90-degree rotations with the flips)
    cache: bool = False  # keep decoded images in memory (small data sets)
    workers: int = 4  # data loader processes (0: load in the training process)
    # Later stages (ascending ``start``): e.g. larger crops at a smaller batch size for the end
    # of the run. The first stage (from iteration 0) is ``crop`` at ``train.batch_size``.
    curriculum: list[Stage] = field(default_factory=list)


@dataclass
class ValData:
    target: str | None = None
    input: str | None = None
    degradation: str | dict | None = None  # default: the training degradation, if any
    max_images: int | None = None
    every: int = 5000  # validate every N iterations (and at the end)


@dataclass
class Data:
    train: TrainData = field(default_factory=TrainData)
    val: ValData = field(default_factory=ValData)


@dataclass
class Optim:
    lr: float = 5e-4
    weight_decay: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])


@dataclass
class Schedule:
    iterations: int = 500_000  # length of the run and of the cosine decay
    eta_min: float = 1e-7  # learning rate at the end of the cosine
    warmup: int = 0  # linear warm-up iterations (the paper uses none)
    # A run restarted from weights alone (no optimizer state: a fresh machine continuing from
    # the shipped weights at their recorded step) ramps its learning rate up again over this many.
    restart_warmup: int = 200


@dataclass
class Train:
    batch_size: int = 6
    amp: str = "auto"  # auto (bf16 on CUDA, off on CPU), bf16, fp16, off
    grad_clip: float | None = 1.0  # max gradient norm (our addition: upstream does not clip); null: off
    # Share of steps whose frequency branch runs as for a larger frame (train/virtual_size.py),
    # drawn log-uniformly in side up to virtual_max_pixels: robustness to every frame size.
    virtual_size: float = 0.0
    virtual_max_pixels: int = 7680 * 4320
    virtual_warmup: int = 0  # iterations over which the virtual sizes grow from the crop's to the max
    # Train only parameters whose names start with these prefixes (the rest stay frozen, and
    # autograd stops before them): fine-tuning one stage on a small budget. Empty: all.
    trainable: list[str] = field(default_factory=list)


@dataclass
class Log:
    every: int = 100  # CSV / TensorBoard rows of training losses
    checkpoint_every: int = 5000  # write a checkpoint (and its training state) every N iterations
    checkpoint_minutes: float | None = None  # ... and whenever this much wall time has passed since the last
    keep: int = 3  # keep the last N checkpoints (plus the final one); 0 keeps all
    milestone_every: int = 0  # also keep the weights of every N-th iteration in milestones/ (0: none)
    tensorboard: str | bool = "auto"  # auto: if the tensorboard package is installed


@dataclass
class TrainConfig:
    name: str = "err"
    seed: int = 0
    init: str | None = None  # checkpoint file or preset to fine-tune from (None: random init)
    # Parameter name prefixes that keep their fresh (seeded) initialisation when fine-tuning from
    # init, e.g. [FW_KAN] to retrain a frequency branch whose weights overflow on the new data.
    init_exclude: list[str] = field(default_factory=list)
    # ERRConfig fields for a variant of the network (e.g. {channels: 12, num_heads: 4, kan_groups: 4,
    # scan_width: 24}); empty: the published network. The checkpoints record it in their shapes.
    model: dict = field(default_factory=dict)
    data: Data = field(default_factory=Data)
    loss: LossWeights = field(default_factory=LossWeights)
    optim: Optim = field(default_factory=Optim)
    schedule: Schedule = field(default_factory=Schedule)
    train: Train = field(default_factory=Train)
    log: Log = field(default_factory=Log)

    @property
    def crop_sizes(self) -> list[int]:
        """The first stage's crop sizes."""
        c = self.data.train.crop
        return [c] if isinstance(c, int) else list(c)

    def stages(self) -> list[tuple[int, list[int], int]]:
        """The crop curriculum: ``(start iteration, crop sizes, batch size)`` per stage."""
        out = [(0, self.crop_sizes, self.train.batch_size)]
        for st in self.data.train.curriculum:
            out.append((st.start, [st.crop] if isinstance(st.crop, int) else list(st.crop), st.batch_size or self.train.batch_size))
        return out

    def err_config(self) -> ERRConfig:
        return ERRConfig(**self.model)

    def train_degradation(self) -> Degradation | None:
        d = self.data.train.degradation
        return None if d is None else build_degradation(d)

    def val_degradation(self) -> Degradation | None:
        d = self.data.val.degradation if self.data.val.degradation is not None else self.data.train.degradation
        return None if d is None else build_degradation(d)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------- parsing
def _check_type(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return _check_type(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        names = " or ".join(_type_name(a) for a in typing.get_args(tp))
        raise ConfigError(f"config {where}: expected {names}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"config {where}: expected null, got {value!r}")
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"config {where}: expected a list, got {value!r}")
        (arg,) = typing.get_args(tp)
        return [_check_type(v, arg, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config {where}: expected a mapping, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            # YAML reads 5e-4 (no dot) as a string: accept numeric strings.
            try:
                return float(value) if isinstance(value, str) else _fail(where, "a number", value)
            except ValueError:
                _fail(where, "a number", value)
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            _fail(where, "an integer", value)
        return value
    if tp is bool:
        if not isinstance(value, bool):
            _fail(where, "true or false", value)
        return value
    if tp is str:
        if not isinstance(value, str):
            _fail(where, "a string", value)
        return value
    return value


def _fail(where: str, what: str, value: Any) -> Any:
    raise ConfigError(f"config {where}: expected {what}, got {value!r}")


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if typing.get_origin(tp) is list:
        return "a list"
    return getattr(tp, "__name__", str(tp))


def _from_dict(cls: type, d: Any, where: str) -> Any:
    if d is None:
        return cls()
    if not isinstance(d, dict):
        raise ConfigError(f"config {where or 'file'}: expected a mapping, got {d!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ConfigError(f"config {where or 'top level'}: unknown key(s) {', '.join(map(str, unknown))}; known: {', '.join(names)}")
    kwargs = {k: _check_type(v, hints[k], f"{where}.{k}" if where else k) for k, v in d.items()}
    return cls(**kwargs)


def config_from_dict(d: dict[str, Any] | None) -> TrainConfig:
    """Parse and check the values (not the data) of a config mapping."""
    cfg = _from_dict(TrainConfig, d or {}, "")
    _check_values(cfg)
    return cfg


def load_config(path: str | os.PathLike, overrides: dict[str, Any] | None = None, check_files: bool = True) -> TrainConfig:
    """Read a YAML config, apply ``overrides`` (dotted keys, e.g. ``{"schedule.iterations": 10}``)
    and check it, including the data (folders, pairs, image sizes) when ``check_files``."""
    d = _read_yaml(Path(path))
    for key, value in (overrides or {}).items():
        node = d
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    cfg = config_from_dict(d)
    if check_files:
        check_data(cfg)
    return cfg


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file as a mapping; ``base: FILE`` (relative to this file) names a config whose
    values this one overrides (mappings are merged key by key, anything else is replaced)."""
    if not path.exists():
        raise ConfigError(f"config {path}: no such file")
    try:
        d = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(d, dict):
        raise ConfigError(f"config {path}: expected a mapping at the top level")
    base = d.pop("base", None)
    if base is None:
        return d
    if not isinstance(base, str):
        raise ConfigError(f"config {path}: base: expected a file name, got {base!r}")
    base_path = (path.parent / base).resolve()
    if base_path in seen:
        raise ConfigError(f"config {path}: base: {base} includes itself")
    return _merge(_read_yaml(base_path, (*seen, path.resolve())), d)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _check_values(cfg: TrainConfig) -> None:
    t = cfg.data.train
    if not t.target:
        raise ConfigError("config data.train.target: give the ground-truth images (a folder or skimage:NAMES)")
    if (t.input is None) == (t.degradation is None):
        raise ConfigError(
            "config data.train: give either 'input' (degraded images paired with target by file name) "
            "or 'degradation' (lowlight, rain, haze, blur) to make them from target, not both or neither"
        )
    for i, (start, crops, batch) in enumerate(cfg.stages()):
        where = "data.train.crop" if i == 0 else f"data.train.curriculum[{i - 1}]"
        if not crops:
            raise ConfigError(f"config {where}: give at least one crop size")
        for c in crops:
            if c <= 0 or c % MULTIPLE:
                raise ConfigError(
                    f"config {where}: crop {c} is not a positive multiple of {MULTIPLE} "
                    f"(ERR's inputs must be multiples of {MULTIPLE}); e.g. 256, 384, 512, 768"
                )
        if batch < 1:
            raise ConfigError(f"config {where}: batch_size must be at least 1")
        if i and not (cfg.stages()[i - 1][0] < start < cfg.schedule.iterations):
            raise ConfigError(
                f"config {where}: start {start} must be after the previous stage's and before schedule.iterations "
                f"({cfg.schedule.iterations})"
            )
    fields_ = {f.name for f in dataclasses.fields(ERRConfig)} - {"multiple"}
    unknown = sorted(set(cfg.model) - fields_)
    if unknown:
        raise ConfigError(f"config model: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(fields_))}")
    for k, val in cfg.model.items():
        if isinstance(val, bool) or not isinstance(val, (int, float)) or val <= 0:
            raise ConfigError(f"config model.{k}: expected a positive number, got {val!r}")
    m = cfg.err_config()
    if m.channels % m.num_heads or m.channels % m.kan_groups:
        raise ConfigError(
            f"config model: channels ({m.channels}) must be a multiple of num_heads ({m.num_heads}) and of kan_groups ({m.kan_groups})"
        )
    for deg in (t.degradation, cfg.data.val.degradation):
        if deg is not None:
            try:
                build_degradation(deg)
            except (ValueError, TypeError) as e:
                raise ConfigError(f"config degradation: {e}") from None
    v = cfg.data.val
    if v.target is None and (v.input is not None or v.degradation is not None):
        raise ConfigError("config data.val: 'input'/'degradation' given without 'target'")
    if v.target is not None and v.input is None and cfg.val_degradation() is None:
        raise ConfigError("config data.val: give 'input' (degraded images) or a 'degradation' for the validation targets")
    checks = [
        (cfg.train.batch_size >= 1, "train.batch_size must be at least 1"),
        (cfg.schedule.iterations >= 1, "schedule.iterations must be at least 1"),
        (cfg.schedule.warmup >= 0, "schedule.warmup must be 0 or more"),
        (cfg.optim.lr > 0, "optim.lr must be positive"),
        (0 <= cfg.schedule.eta_min <= cfg.optim.lr, "schedule.eta_min must be in [0, optim.lr]"),
        (len(cfg.optim.betas) == 2 and all(0 <= b < 1 for b in cfg.optim.betas), "optim.betas must be two numbers in [0, 1)"),
        (cfg.train.amp in ("auto", "off", "bf16", "fp16"), f"train.amp must be auto, off, bf16 or fp16 (got {cfg.train.amp!r})"),
        (cfg.train.grad_clip is None or cfg.train.grad_clip > 0, "train.grad_clip must be positive (or null for no clipping)"),
        (0 <= cfg.train.virtual_size <= 1, "train.virtual_size must be a probability in [0, 1]"),
        (cfg.train.virtual_max_pixels > 0, "train.virtual_max_pixels must be positive"),
        (cfg.train.virtual_warmup >= 0, "train.virtual_warmup must be 0 or more"),
        (t.workers >= 0, "data.train.workers must be 0 or more"),
        (cfg.log.every >= 1 and cfg.log.checkpoint_every >= 1 and v.every >= 1, "log.every, log.checkpoint_every and data.val.every must be at least 1"),
        (cfg.log.checkpoint_minutes is None or cfg.log.checkpoint_minutes > 0, "log.checkpoint_minutes must be positive (or null)"),
        (cfg.log.milestone_every >= 0 and cfg.schedule.restart_warmup >= 0, "log.milestone_every and schedule.restart_warmup must be 0 or more"),
        (cfg.log.tensorboard in ("auto", True, False), "log.tensorboard must be auto, true or false"),
        (cfg.loss.dct_split >= 1, "loss.dct_split must be at least 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"config {message}")


def check_data(cfg: TrainConfig) -> None:
    """Check folders, pairing and image sizes (raises :class:`ConfigError` naming the problem)."""
    from .datasets import DataError, build_sources

    try:
        train, val = build_sources(cfg)
    except DataError as e:
        raise ConfigError(str(e)) from None
    target = train[1]
    sizes = [target.size(i) for i in range(len(target))]
    big = max(cfg.crop_sizes)
    small = [(target.names[i], s) for i, s in enumerate(sizes) if min(s) < big]
    if small:
        listing = ", ".join(f"{n} ({w}x{h})" for n, (h, w) in small[:5])
        raise ConfigError(
            f"config data.train.crop: {big} is larger than {len(small)} training image(s): {listing}; "
            f"use a smaller crop (a multiple of {MULTIPLE}) or remove those images"
        )
    # Later stages use the images their crops fit in; at least one must.
    for i, (_, crops, _) in enumerate(cfg.stages()[1:]):
        if not any(min(s) >= max(crops) for s in sizes):
            raise ConfigError(f"config data.train.curriculum[{i}]: no training image is at least {max(crops)} px on each side")
    if cfg.init is not None:
        from ..weights import PRESETS

        if cfg.init.lower() not in PRESETS and cfg.init != "demo" and not Path(cfg.init).is_file():
            raise ConfigError(f"config init: {cfg.init} is neither a checkpoint file nor a preset ({', '.join(PRESETS)})")
