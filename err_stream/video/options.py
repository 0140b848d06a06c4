"""What a transcode is asked to do: one frozen, typed request that every front end builds.

:class:`TranscodeOptions` groups the settings by the part of the run that uses them:

=========  =====================================================================
``decode``   how the input is read: decoder, input_format, input_opt, ignore_errors, drop_alpha
``encode``   what the output video is: codec, crf, encoder_preset, pix_fmt, encoder_opt, format, size,
             hdr, hdr_peak
``streams``  what goes beside it: no_data
``live``     streams and pipes: timeout, max_delay, drop_late, realtime
``run``      how the run goes: device, batch, queue_frames, overwrite, accept_out_of_range
=========  =====================================================================

Setting names are neutral and unique across the groups, so a front end translates its own
words into them and nothing else: the command line's ``--crf 18`` and a job file's ``crf: 18``
both become ``TranscodeOptions.of(crf=18)``. Values are checked when the object is made; a
bad one raises :class:`~err_stream.errors.SettingError` carrying the setting's name and the
value, which each front end words (``--crf -1: ...``, ``inputs[2].crf: ...``). Checks that
need the input or the output (a stream cannot use DALI, the container must take the codec)
are made by :func:`~err_stream.video.planning.plan`.

A new option is a field of one group here, with its check in the group's table, and the
stage that uses it (see docs/architecture.md). Importing this module loads nothing heavy.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from ..colour.codes import HDR_MODES
from ..errors import SettingError, UserError

DECODERS = ("auto", "pyav", "dali")


# ----------------------------------------------------------------------------- checks
# Each check takes (name, value) and returns the value to keep (normalised) or raises
# SettingError. Reasons that say what was expected start with "expected": front ends that
# quote the value after the reason (a job file: "expected a number ≥ 0, got 'high'") rely on it.
Check = Callable[[str, Any], Any]


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingError(name, value, "expected true or false")
    return value


def _number(minimum: float, *, whole: bool = False, strict: bool = False, optional: bool = True) -> Check:
    what = "a whole number" if whole else "a number"
    sign = ">" if strict else "≥"

    def check(name: str, value: Any) -> Any:
        if value is None and optional:
            return None
        kinds = (int,) if whole else (int, float)
        if (isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) or value < minimum
                or (strict and value == minimum)):  # NaN compares false with everything: it would pass
            raise SettingError(name, value, f"expected {what} {sign} {minimum:g}")
        return value

    return check


def _text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise SettingError(name, value, "expected a text value")
    return value


def _choice(choices: tuple[str, ...]) -> Check:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in choices:
            raise SettingError(name, value, f"choose one of {', '.join(choices)}")
        return value.lower()

    return check


def _codec(name: str, value: Any) -> str | None:
    if _text(name, value) is None:
        return None
    from ..io.sink import find_encoder

    find_encoder(value)  # SettingError naming the codec when FFmpeg has no such video encoder
    return value


def _pix_fmt(name: str, value: Any) -> str | None:
    if _text(name, value) is None:
        return None
    from ..colour.planes import PlaneFormat

    try:
        PlaneFormat.parse(value)
    except SettingError:
        raise
    except UserError as e:
        raise SettingError(name, value, e.reason) from None
    return value


def _key_values(example: str) -> Check:
    """``KEY=VALUE`` items (a single string is one item)."""

    def check(name: str, value: Any) -> tuple[str, ...]:
        items = (value,) if isinstance(value, str) else value
        if not isinstance(items, Iterable):
            raise SettingError(name, value, f"expected KEY=VALUE items (e.g. {example})")
        out = []
        for item in items:
            key, sep, _ = item.partition("=") if isinstance(item, str) else ("", "", "")
            if not sep or not key:
                raise SettingError(name, item, f"expected KEY=VALUE (e.g. {example})")
            out.append(item)
        return tuple(out)

    return check


_encoder_opt = _key_values("tune=film")


def _muxer(name: str, value: Any) -> str | None:
    if _text(name, value) is None:
        return None
    from ..io.endpoints import check_muxer

    check_muxer(value)
    return value


def _demuxer(name: str, value: Any) -> str | None:
    if _text(name, value) is None:
        return None
    import av

    if value not in av.formats_available:
        raise SettingError(name, value, "FFmpeg has no such container")
    return value


def _size(name: str, value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value) if isinstance(value, str) else None
    if m is not None:
        size = (int(m[1]), int(m[2]))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        size = (value[0], value[1])
    else:
        raise SettingError(name, value, "expected a picture size, width x height (e.g. 1920x1080)")
    if min(size) < 1:
        raise SettingError(name, value, "expected a picture size of at least 1x1")
    return size


def _device(name: str, value: Any) -> str | None:
    from ..engine.settings import parse_device

    return parse_device(value)


def _checked(group: Any, checks: dict[str, Check]) -> None:
    """Run a group's checks on its fields, keeping the normalised values (frozen: set directly)."""
    for f in fields(group):
        value = checks[f.name](f.name, getattr(group, f.name))
        object.__setattr__(group, f.name, value)


# ----------------------------------------------------------------------------- the groups
@dataclass(frozen=True)
class DecodeOptions:
    """How the input is read. ``decoder``: ``auto`` (PyAV, always), ``pyav`` or ``dali``
    (NVIDIA DALI; approximate colours); ``input_format``: the input's container when FFmpeg
    cannot tell (pipes); ``input_opt``: FFmpeg demuxer and protocol options for a pipe or URL
    (``KEY=VALUE`` items, e.g. ``rtsp_transport=tcp``; checked against FFmpeg by the plan);
    ``ignore_errors``: restore damage the decoder concealed instead of failing; ``drop_alpha``:
    restore the colour of a video with alpha, leaving the alpha out."""

    decoder: str = "auto"
    input_format: str | None = None
    input_opt: tuple[str, ...] = ()
    ignore_errors: bool = False
    drop_alpha: bool = False

    def __post_init__(self) -> None:
        _checked(self, {"decoder": _choice(DECODERS), "input_format": _demuxer, "input_opt": _key_values("rtsp_transport=tcp"),
                        "ignore_errors": _flag, "drop_alpha": _flag})


@dataclass(frozen=True)
class EncodeOptions:
    """What the output video is, in FFmpeg's words: ``codec`` (default: the input's codec
    family), ``crf``, ``encoder_preset``, ``pix_fmt`` (default: the input's), ``encoder_opt``
    (``KEY=VALUE`` items), ``format`` (the output container; default: from OUT) and ``size``
    (``(width, height)`` or ``"WxH"``: the restored frames are scaled to it before encoding;
    default: the input's size). ``hdr``: for PQ and HLG input, ``auto`` shows the model the
    master's SDR-referred picture and takes it back exactly (err_stream.colour.hdr);
    ``passthrough`` hands it the code values as they are. ``hdr_peak``: cd/m2 that land on the
    model's 1.0 (and HLG's display peak; default: a PQ master's mastering display peak, else 1000)."""

    codec: str | None = None
    crf: float | None = None
    encoder_preset: str | None = None
    pix_fmt: str | None = None
    encoder_opt: tuple[str, ...] = ()
    format: str | None = None
    size: tuple[int, int] | None = None
    hdr: str = "auto"
    hdr_peak: float | None = None

    def __post_init__(self) -> None:
        _checked(self, {"codec": _codec, "crf": _number(0), "encoder_preset": _text, "pix_fmt": _pix_fmt,
                        "encoder_opt": _encoder_opt, "format": _muxer, "size": _size,
                        "hdr": _choice(HDR_MODES), "hdr_peak": _number(0, strict=True)})


@dataclass(frozen=True)
class StreamOptions:
    """What goes beside the restored video. ``no_data``: leave the input's data streams out
    (FFmpeg's ``-dn``); the timecode is kept either way."""

    no_data: bool = False

    def __post_init__(self) -> None:
        _checked(self, {"no_data": _flag})


@dataclass(frozen=True)
class LiveOptions:
    """Streams and pipes. ``timeout``: seconds a stream may send nothing before the run ends
    (default: 10 for network inputs once started; a listener or UDP input waits without
    limit); ``max_delay``: frames between decoder and encoder, which also makes the run live
    (default 8 when an input or output is a network URL); ``drop_late``: a live run drops
    frames that arrive further behind real time than ``max_delay`` frames; ``realtime``: read a
    file input at its own rate (FFmpeg's ``-re``), as a live output's players expect it
    (a stream comes at its own rate anyway)."""

    timeout: float | None = None
    max_delay: int | None = None
    drop_late: bool = False
    realtime: bool = False

    def __post_init__(self) -> None:
        _checked(self, {"timeout": _number(0, strict=True), "max_delay": _number(1, whole=True), "drop_late": _flag,
                        "realtime": _flag})


@dataclass(frozen=True)
class RunOptions:
    """How the run goes. ``device``: where colour is converted when there is no model
    (passthrough; with a model, the model's device); ``batch``: frames per model call
    (default: 1 on the CPU, about 2 megapixels on a GPU); ``queue_frames``: decoded frames
    waiting for the model; ``overwrite``: replace an existing OUT (once the new one is
    complete); ``accept_out_of_range``: clamp restored frames that fail the output check
    instead of failing the run."""

    device: str | None = None
    batch: int | None = None
    queue_frames: int = 8
    overwrite: bool = False
    accept_out_of_range: bool = False

    def __post_init__(self) -> None:
        _checked(self, {"device": _device, "batch": _number(1, whole=True), "queue_frames": _number(1, whole=True, optional=False),
                        "overwrite": _flag, "accept_out_of_range": _flag})


GROUPS = {"decode": DecodeOptions, "encode": EncodeOptions, "streams": StreamOptions, "live": LiveOptions, "run": RunOptions}
# setting name -> its group: the one list of settings (the groups' fields)
_GROUP_OF = {f.name: group for group, cls in GROUPS.items() for f in fields(cls)}


@dataclass(frozen=True)
class TranscodeOptions:
    """Everything a transcode is asked to do, checked (see the module docstring). Build it
    from neutral setting names with :meth:`of`; read it by group (``options.encode.crf``)."""

    decode: DecodeOptions = field(default_factory=DecodeOptions)
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    streams: StreamOptions = field(default_factory=StreamOptions)
    live: LiveOptions = field(default_factory=LiveOptions)
    run: RunOptions = field(default_factory=RunOptions)

    @staticmethod
    def setting_names() -> tuple[str, ...]:
        """Every setting's neutral name, group by group."""
        return tuple(_GROUP_OF)

    @classmethod
    def of(cls, **settings: Any) -> TranscodeOptions:
        """Options from settings by name (``TranscodeOptions.of(crf=18, no_data=True)``); the
        rest keep their defaults. An unknown name is a TypeError, as for any keyword."""
        return cls().replace(**settings)

    def replace(self, **settings: Any) -> TranscodeOptions:
        """A copy with these settings changed (checked like the originals)."""
        unknown = sorted(set(settings) - set(_GROUP_OF))
        if unknown:
            raise TypeError(f"TranscodeOptions: no setting named {', '.join(unknown)} (settings: {', '.join(_GROUP_OF)})")
        changed: dict[str, dict[str, Any]] = {}
        for name, value in settings.items():
            changed.setdefault(_GROUP_OF[name], {})[name] = value
        return dataclasses.replace(self, **{g: dataclasses.replace(getattr(self, g), **v) for g, v in changed.items()})

    def settings(self) -> dict[str, Any]:
        """Every setting by name (what :meth:`of` takes)."""
        return {name: getattr(getattr(self, group), name) for name, group in _GROUP_OF.items()}
