"""How to run the model: device, precision, tiling and memory budget, checked in one place.

Every front end translates its own vocabulary into a :class:`RestoreSettings`: the command
line (``--tile 512x512``), the VapourSynth filter (``tile=[512, 512]``, ``fp16=True``) and
the Python API (``RestoreSettings(tile=(512, 512))``). Bad values raise
:class:`~err_stream.errors.SettingError` naming the setting, which each front end words.
Parsing needs no torch; only :meth:`RestoreSettings.torch_device` imports it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Union

from ..errors import SettingError

if TYPE_CHECKING:
    import torch

PRECISIONS = ("fp32", "fp16", "bf16")
# Smallest tile side: ERR's input must be a multiple of 128, so a smaller tile would be
# padded to 128 anyway, and the halo would dominate its cost.
MIN_TILE = 128

Tiling = Union[Literal["auto", "off"], tuple[int, int]]

_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20,
          "g": 2**30, "gb": 10**9, "gib": 2**30, "t": 2**40, "tb": 10**12, "tib": 2**40}


def parse_tile(value: object) -> Tiling:
    """``"auto"``/None, ``"off"``, ``"WxH"``, or ``(w, h)`` / ``[w, h]`` (``[0, 0]``: off)."""
    if value is None or value == "auto":
        return "auto"
    if value == "off":
        return "off"
    size: tuple[int, ...]
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
        if not m:
            raise SettingError("tile", value, "expected a tile size: width x height, e.g. 512x512", instead=[("tile", "auto"), ("tile", "off")])
        size = (int(m[1]), int(m[2]))
    elif isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        size = tuple(value)
    else:
        raise SettingError("tile", value, "expected a tile size: two whole numbers, width and height", instead=[("tile", "auto"), ("tile", "off")])
    w, h = size
    if w == 0 and h == 0:
        return "off"
    if min(w, h) < MIN_TILE:
        raise SettingError(
            "tile", value, f"tiles must be at least {MIN_TILE} pixels wide and high",
            instead=[("tile", "off")], instead_for="for whole frames",
        )
    return (w, h)


def parse_precision(value: object) -> str | None:
    """``"fp32"``, ``"fp16"``, ``"bf16"`` or None (the device's default)."""
    if value is None:
        return None
    if isinstance(value, str) and value.lower() in PRECISIONS:
        return value.lower()
    raise SettingError("precision", value, f"choose one of {', '.join(PRECISIONS)}")


def parse_memory(value: object) -> int | float | None:
    """Bytes (an int, or a string such as ``"6GiB"``, ``"512MB"``); a number in (0, 1] is a
    fraction of the GPU memory free when the Restorer is made; None: the device's default."""
    if value is None:
        return None
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
        unit = m and _UNITS.get(m[2].lower())
        if not m or unit is None:
            raise SettingError("memory_budget", value, "expected bytes with an optional unit, e.g. 6GiB, 512MiB or 8000000000")
        value = float(m[1]) * unit
        if value <= 1:  # "1" or "0.5" as text still means bytes here, not a fraction
            raise SettingError("memory_budget", value, "must be more than one byte")
        return int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise SettingError("memory_budget", value, "expected a positive number of bytes (or a fraction in (0, 1] of the free GPU memory)")
    return value if 0 < value <= 1 else int(value)


def parse_device(value: object) -> str | None:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` (a torch.device is accepted too), or None (default)."""
    if value is None:
        return None
    text = str(value)
    if text == "cpu" or re.fullmatch(r"cuda(:\d+)?", text):
        return text
    raise SettingError("device", value, "choose cpu, cuda or cuda:N")


def default_precision(device_type: str) -> str:
    """Half precision where it is fast and safe for ERR (CUDA), float32 elsewhere."""
    return "fp16" if device_type == "cuda" else "fp32"


@dataclass(frozen=True)
class RestoreSettings:
    """How to run the model. Values are checked (and normalised) when the object is made.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``; None: CUDA if available, else the CPU
            (a Restorer given None uses its model's device).
        precision: ``"fp32"``, ``"fp16"``, ``"bf16"``; None: fp16 on CUDA, fp32 on the CPU.
        tile: ``"auto"`` (whole frame if it fits ``memory_budget``, else the largest tiles
            that do), ``"off"`` (whole frame), or a tile size ``(w, h)`` of at least 128.
        memory_budget: bytes for one frame's working memory (``"6GiB"`` accepted), or a
            fraction in (0, 1] of the free GPU memory; None: 0.8 of the free GPU memory on
            CUDA, unlimited on the CPU.
        fast: run a prepared copy of the model (channels_last; half weights with float32
            islands for half policies); None: on. False: the model as given, under autocast.
        compile: with ``fast``, ``torch.compile`` whole frames and replay CUDA graphs;
            None: on CUDA only.
    """

    device: str | None = None
    precision: str | None = None
    tile: Tiling = "auto"
    memory_budget: int | float | None = None
    fast: bool | None = None
    compile: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", parse_device(self.device))
        object.__setattr__(self, "precision", parse_precision(self.precision))
        object.__setattr__(self, "tile", parse_tile(self.tile))
        object.__setattr__(self, "memory_budget", parse_memory(self.memory_budget))
        for name in ("fast", "compile"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), bool):
                raise SettingError(name, getattr(self, name), "expected True, False or None (the default)")

    def torch_device(self) -> torch.device:
        """The device to use: the one asked for, after checking that it exists here."""
        import torch

        if self.device is None:
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        dev = torch.device(self.device)
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                raise SettingError("device", self.device, "CUDA is not available on this machine", instead=[("device", "cpu")])
            count = torch.cuda.device_count()
            if (dev.index or 0) >= count:
                raise SettingError("device", self.device, f"this machine has {count} GPU(s) (numbered from 0)")
        return dev

    def precision_for(self, device_type: str) -> str:
        return self.precision or default_precision(device_type)
