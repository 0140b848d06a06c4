"""The batch job file: YAML, checked completely before anything runs.

Every error names the file, line and column, and the key path (``inputs[2].crf``), and all
errors are reported at once. The smallest job is three lines::

    inputs: ["masters/*.mov"]
    output_dir: restored/
    weights: weights/uhd-ll.pth     # or  preset: uhd-ll

The transcoder's settings are keys under their own names: the model (``weights``,
``preset``, ``passthrough``), how it runs (:class:`~err_stream.engine.settings.RestoreSettings`:
``device``, ``precision``, ``tile``, ``memory_budget``, ``compile``) and every setting of
:class:`~err_stream.video.options.TranscodeOptions` that applies to files (``codec``, ``crf``,
``no_data``, ...; ``-`` or ``_`` alike). They may be given for the whole job or per input, and
are checked by the library's own checks; this module only reads YAML and says where a
problem is. Relative paths are taken from the current folder, like paths on the command line.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import glob as globlib
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from err_stream.engine.settings import RestoreSettings
from err_stream.errors import NO_VALUE, SettingError, UserError
from err_stream.video.options import TranscodeOptions

# The model: a checkpoint file (or "demo"), or an authors' preset; passthrough: none.
MODEL_KEYS = ("weights", "preset", "passthrough")
# How the model runs ("fast" is a development switch, not offered).
RESTORE_KEYS = tuple(f.name for f in dataclasses.fields(RestoreSettings) if f.name != "fast")
# The transcoder's settings that describe streams and pipes: a job reads and writes files.
STREAM_ONLY = ("format", "input_format", "input_opt", "timeout", "max_delay", "drop_late", "realtime")
OPTION_KEYS = tuple(n for n in TranscodeOptions.setting_names() if n not in STREAM_ONLY and n not in RESTORE_KEYS)
# Settings of `err-stream IN OUT`, usable for the whole job and per input.
TRANSCODE_KEYS = MODEL_KEYS + RESTORE_KEYS + OPTION_KEYS
SWITCHES = {"passthrough", "compile"} | {n for n, v in TranscodeOptions().settings().items() if isinstance(v, bool)}
# Where and how an input's output is written and cut; also per input.
OUTPUT_KEYS = ("output_dir", "name", "container", "segment_seconds")
# The whole job only.
JOB_KEYS = ("inputs", "retries", "engine", "address", "workers", "cpus_per_worker", "gpus_per_worker")
# Per input only.
INPUT_KEYS = ("path", "output")

ENGINES = ("ray", "local")
DEFAULT_NAME = "{stem}"
DEFAULT_SEGMENT_SECONDS = 60.0
DEFAULT_RETRIES = 2
NAME_FIELDS = {"stem", "ext", "parent", "index"}


class JobError(UserError):
    """A job file that cannot run; the message lists every problem with its line."""


def job_spelling(option: str, value: object = NO_VALUE) -> str:
    """A setting as a job file writes it, for messages: ``'overwrite: true'``, ``'crf: 18'``."""
    if value is NO_VALUE:
        return f"'{option}: true'" if option in SWITCHES else f"'{option}'"
    return f"'{option}: {str(value).lower() if isinstance(value, bool) else value}'"


@dataclass(frozen=True)
class Request:
    """What a job asks for one input, in the library's terms: the transcoder's options, how
    the model runs, and which model (a checkpoint file, ``demo`` or a preset; None with
    ``passthrough``: no model)."""

    options: TranscodeOptions
    restore: RestoreSettings
    model: str | None
    passthrough: bool

    @classmethod
    def of(cls, settings: dict[str, Any]) -> Request:
        """From an input's merged settings (each already checked where it was read)."""
        return cls(
            TranscodeOptions.of(**{k: v for k, v in settings.items() if k in TranscodeOptions.setting_names()}),
            RestoreSettings(**{k: v for k, v in settings.items() if k in RESTORE_KEYS}),
            settings.get("weights") or settings.get("preset"),
            bool(settings.get("passthrough")),
        )


@dataclass
class InputJob:
    """One input and everything needed to restore it."""

    index: int
    path: Path
    output: Path
    settings: dict[str, Any]  # the job file's settings (TRANSCODE_KEYS), merged job + input, as written
    segment_seconds: float  # 0: the whole file in one piece

    @functools.cached_property
    def request(self) -> Request:
        return Request.of(self.settings)

    def model_key(self) -> tuple:
        """Inputs with the same key share a loaded model in a worker."""
        r = self.request
        return (r.model, r.restore, r.passthrough)


@dataclass
class Job:
    source: Path
    inputs: list[InputJob]
    output_dir: Path
    retries: int = DEFAULT_RETRIES
    engine: str = "ray"
    address: str | None = None
    workers: int | None = None  # None: one per GPU, else 1
    cpus_per_worker: float | None = None
    gpus_per_worker: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- reading
def load_job(path: str | Path) -> Job:
    """Read and check a job file; raise :class:`JobError` listing every problem."""
    path = Path(path)
    if not path.exists():
        raise JobError(f"{path}: no such job file")
    if path.is_dir():
        raise JobError(f"{path}: is a folder; give a job file (.yaml)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise JobError(f"{path}: cannot read it ({e})") from None
    return parse_job(text, path)


def parse_job(text: str, source: Path) -> Job:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else str(source)
        raise JobError(f"{where}: not valid YAML: {getattr(e, 'problem', None) or e}") from None
    checker = _Checker(source)
    job = checker.job(root)
    if checker.errors:
        n = len(checker.errors)
        head = f"{source}: {n} problem{'s' if n > 1 else ''} in the job file:"
        raise JobError("\n  ".join([head, *checker.errors]))
    assert job is not None
    return job


# ----------------------------------------------------------------------------- checking
_constructor = yaml.SafeLoader("")


def _value(node: yaml.Node) -> Any:
    return _constructor.construct_object(node, deep=True)


def _normal(key: str) -> str:
    return key.replace("-", "_")


class _Checker:
    def __init__(self, source: Path) -> None:
        self.source = source
        self._errors: list[tuple[tuple[int, int], str]] = []

    def error(self, node: yaml.Node | None, where: str, message: str) -> None:
        at = f"{self.source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}" if node is not None else str(self.source)
        self._errors.append(((node.start_mark.line, node.start_mark.column) if node is not None else (-1, 0),
                             f"{at}: {where}: {message}" if where else f"{at}: {message}"))

    @property
    def errors(self) -> list[str]:
        """In the order of the file."""
        return [text for _, text in sorted(self._errors, key=lambda e: e[0])]

    # -- structure
    def mapping(self, node: yaml.Node, where: str, allowed: tuple[str, ...]) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Keys (normalised) -> (key node, value node); unknown and repeated keys are errors."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, where, f"expected a mapping of keys ({', '.join(allowed[:4])}, ...), got {_kind(node)}")
            return {}
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for knode, vnode in node.value:
            raw = _value(knode) if isinstance(knode, yaml.ScalarNode) else None
            if not isinstance(raw, str):
                self.error(knode, where, f"keys must be names, got {_kind(knode)}")
                continue
            key = _normal(raw)
            path = f"{where}.{raw}" if where else raw
            if key not in allowed:
                near = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean '{near[0]}'?" if near else f"; known keys: {', '.join(allowed)}"
                self.error(knode, path, f"unknown key{hint}")
                continue
            if key in out:
                self.error(knode, path, f"given twice (first on line {out[key][0].start_mark.line + 1})")
                continue
            out[key] = (knode, vnode)
        return out

    def job(self, root: yaml.Node | None) -> Job | None:
        if root is None:
            self.error(None, "", "the job file is empty; it needs at least 'inputs', 'output_dir' and 'weights' (or 'preset')")
            return None
        top = self.mapping(root, "", JOB_KEYS + OUTPUT_KEYS + TRANSCODE_KEYS)
        if not top and not isinstance(root, yaml.MappingNode):
            return None
        for key in ("inputs", "output_dir"):
            if key not in top:
                self.error(root, "", f"'{key}' is missing")
        settings = self.settings(top, "")
        outputs = self.output_settings(top, "")
        job = Job(source=self.source, inputs=[], output_dir=Path(outputs.get("output_dir", ".")), settings=settings)
        if "retries" in top:
            job.retries = self.integer(top["retries"][1], "retries", minimum=0)
        if "engine" in top:
            job.engine = self.choice(top["engine"][1], "engine", ENGINES)
        if "address" in top:
            job.address = self.text(top["address"][1], "address")
        if "workers" in top:
            node = top["workers"][1]
            if not (isinstance(node, yaml.ScalarNode) and _value(node) == "auto"):
                job.workers = self.integer(node, "workers", minimum=1)
        for key in ("cpus_per_worker", "gpus_per_worker"):
            if key in top:
                setattr(job, key, self.number(top[key][1], key, minimum=0, strict=key == "cpus_per_worker"))
        if "inputs" in top:
            job.inputs = self.inputs(top["inputs"][1], settings, outputs)
        self.check_outputs(job)
        return job

    def inputs(self, node: yaml.Node, settings: dict, outputs: dict) -> list[InputJob]:
        items: list[tuple[yaml.Node, str, dict[str, tuple[yaml.Node, yaml.Node]] | None, str]] = []
        if isinstance(node, yaml.ScalarNode):
            items.append((node, "inputs", None, self.text(node, "inputs")))
        elif isinstance(node, yaml.SequenceNode):
            if not node.value:
                self.error(node, "inputs", "the list is empty")
            for i, item in enumerate(node.value):
                where = f"inputs[{i}]"
                if isinstance(item, yaml.MappingNode):
                    m = self.mapping(item, where, INPUT_KEYS + OUTPUT_KEYS + TRANSCODE_KEYS)
                    if "path" not in m:
                        self.error(item, where, "'path' is missing (the input file, a glob, or a .txt list of files)")
                        continue
                    items.append((m["path"][1], f"{where}.path", m, self.text(m["path"][1], f"{where}.path")))
                else:
                    items.append((item, where, None, self.text(item, where)))
        else:
            self.error(node, "inputs", f"expected a list of files/globs or a .txt list, got {_kind(node)}")
        jobs: list[InputJob] = []
        for vnode, where, overrides, pattern in items:
            if pattern is None:
                continue
            own_settings, own_outputs = dict(settings), dict(outputs)
            explicit_output = None
            if overrides is not None:
                base = where.rsplit(".", 1)[0]
                own_settings = self.settings(overrides, base, inherited=settings)
                own_outputs.update(self.output_settings(overrides, base))
                if "output" in overrides:
                    explicit_output = self.text(overrides["output"][1], f"{base}.output")
            paths = self.expand(vnode, where, pattern)
            if explicit_output is not None and len(paths) > 1:
                self.error(overrides["output"][1], f"{where.rsplit('.', 1)[0]}.output",
                           f"one output file for {len(paths)} inputs; use 'name' (a pattern) instead")
                continue
            for p in paths:
                index = len(jobs)
                out = Path(explicit_output) if explicit_output else self.output_path(vnode, where, p, index, own_outputs)
                if out is None:
                    continue
                jobs.append(InputJob(index, p, out, own_settings, float(own_outputs.get("segment_seconds", DEFAULT_SEGMENT_SECONDS))))
                jobs[-1].node = vnode  # type: ignore[attr-defined]  # for errors found later (duplicates)
                jobs[-1].where = where  # type: ignore[attr-defined]
        return jobs

    def expand(self, node: yaml.Node, where: str, pattern: str) -> list[Path]:
        if pattern.endswith(".txt") and not globlib.has_magic(pattern):
            listing = Path(pattern)
            if not listing.is_file():
                self.error(node, where, f"{pattern}: no such list of inputs")
                return []
            paths = []
            for n, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                p = Path(line)
                if not p.is_file():
                    self.error(node, where, f"{pattern} line {n}: {line}: no such file")
                    continue
                paths.append(p)
            if not paths and not self._errors:
                self.error(node, where, f"{pattern}: lists no files")
            return paths
        if globlib.has_magic(pattern):
            found = sorted(Path(p) for p in globlib.glob(pattern, recursive=True) if Path(p).is_file())
            if not found:
                self.error(node, where, f"{pattern}: matches no files")
            return found
        p = Path(pattern)
        if not p.exists():
            self.error(node, where, f"{pattern}: no such file")
            return []
        if p.is_dir():
            self.error(node, where, f"{pattern}: is a folder; use a glob such as {pattern.rstrip('/')}/*.mov")
            return []
        return [p]

    def output_path(self, node: yaml.Node, where: str, src: Path, index: int, outputs: dict) -> Path | None:
        name = outputs.get("name", DEFAULT_NAME)
        try:
            stem = name.format(stem=src.stem, ext=src.suffix.lstrip("."), parent=src.parent.name, index=index)
        except (KeyError, IndexError, ValueError) as e:
            self.error(node, where, f"name {name!r}: cannot be filled in ({e})")
            return None
        container = outputs.get("container") or src.suffix.lstrip(".")
        return Path(outputs.get("output_dir", ".")) / f"{stem}.{container}"

    def check_outputs(self, job: Job) -> None:
        seen: dict[Path, InputJob] = {}
        for item in job.inputs:
            key = item.output.resolve()
            if key in seen:
                first = seen[key]
                self.error(item.node, item.where,  # type: ignore[attr-defined]
                           f"{item.path} and {first.path} would both be written to {item.output}; set 'name' (e.g. '{{parent}}-{{stem}}')")
            seen[key] = item
            if key == item.path.resolve():
                self.error(item.node, item.where, f"{item.path}: the output would overwrite the input; set 'output_dir' or 'name'")  # type: ignore[attr-defined]

    # -- option groups
    def settings(self, m: dict, base: str, inherited: dict | None = None) -> dict[str, Any]:
        def at(key: str) -> str:
            return f"{base}.{key}" if base else key

        out: dict[str, Any] = {}
        for key in TRANSCODE_KEYS:
            if key not in m:
                continue
            node = m[key][1]
            where = at(_original(m, key))
            if key == "weights":
                out[key] = self.text(node, where)
            elif key == "preset":
                from err_stream.weights import PRESETS

                out[key] = self.choice(node, where, tuple(PRESETS))
            elif key == "passthrough":
                out[key] = self.boolean(node, where)
            elif key == "encoder_opt":
                out[key] = self.encoder_opts(node, where)
            else:
                out[key] = self.setting(node, where, key)
        if "weights" in m and "preset" in m:
            self.error(m["preset"][0], at("preset"), "give 'weights' or 'preset', not both")
        if "weights" in out and out["weights"] is not None and out["weights"] != "demo" and not Path(out["weights"]).is_file():
            self.error(m["weights"][1], at("weights"), f"{out['weights']}: no such checkpoint file")
        merged = {**(inherited or {}), **out}
        if inherited is not None and ("weights" in out or "preset" in out):
            # A per-input model replaces the job's, whichever way the job named it.
            merged.pop("preset" if "weights" in out else "weights", None)
        if inherited is None and "passthrough" not in m and not ({"weights", "preset"} & set(m)):
            self.error(None, "", "name the model: 'weights: FILE' (or 'weights: demo') or 'preset: NAME' "
                       "(or 'passthrough: true' to only decode and re-encode)")
        return merged if inherited is not None else out

    def output_settings(self, m: dict, base: str) -> dict[str, Any]:
        from err_stream.io.sink import CONTAINERS

        out: dict[str, Any] = {}
        for key in OUTPUT_KEYS:
            if key not in m:
                continue
            node, where = m[key][1], (f"{base}.{_original(m, key)}" if base else _original(m, key))
            if key == "output_dir":
                text = self.text(node, where)
                if text is not None:
                    out[key] = text
            elif key == "name":
                text = self.text(node, where)
                if text is not None and self.name_pattern(node, where, text):
                    out[key] = text
            elif key == "container":
                value = self.choice(node, where, tuple(c.lstrip(".") for c in CONTAINERS))
                if value is not None:
                    out[key] = value
            elif key == "segment_seconds":
                if isinstance(node, yaml.ScalarNode) and _value(node) is None:
                    out[key] = 0.0
                else:
                    value = self.number(node, where, minimum=0)
                    if value is not None:
                        out[key] = float(value)
        return out

    def setting(self, node: yaml.Node, where: str, key: str) -> Any:
        """A transcoder or model setting, checked by the library as any front end's is."""
        value = _value(node)
        try:
            if key in RESTORE_KEYS:
                RestoreSettings(**{key: value})
            if key in OPTION_KEYS:
                TranscodeOptions.of(**{key: value})
        except SettingError as e:
            reason = e.describe(job_spelling, setting=False)  # the key path already names the setting
            self.error(node, where, f"{reason}, got {value!r}" if reason.startswith("expected") else f"{value!r}: {reason}")
            return None
        return value

    # -- scalars
    def scalar(self, node: yaml.Node, where: str, what: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, where, f"expected {what}, got {_kind(node)}")
            return _INVALID
        return _value(node)

    def text(self, node: yaml.Node, where: str) -> str | None:
        v = self.scalar(node, where, "a text value")
        if v is _INVALID:
            return None
        if not isinstance(v, (str, int, float)) or isinstance(v, bool) or v == "":
            self.error(node, where, f"expected a text value, got {v!r}")
            return None
        return str(v)

    def choice(self, node: yaml.Node, where: str, choices: tuple[str, ...]) -> str | None:
        v = self.scalar(node, where, "one of " + ", ".join(choices))
        if v is _INVALID:
            return None
        if not isinstance(v, str) or v.lower() not in choices:
            near = difflib.get_close_matches(str(v), choices, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            self.error(node, where, f"{v!r} is not one of {', '.join(choices)}{hint}")
            return None
        return v.lower()

    def integer(self, node: yaml.Node, where: str, minimum: int) -> int | None:
        v = self.scalar(node, where, "a whole number")
        if v is _INVALID:
            return None
        if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
            self.error(node, where, f"expected a whole number ≥ {minimum}, got {v!r}")
            return None
        return v

    def number(self, node: yaml.Node, where: str, minimum: float, strict: bool = False) -> float | None:
        v = self.scalar(node, where, "a number")
        if v is _INVALID:
            return None
        bad = not isinstance(v, (int, float)) or isinstance(v, bool) or v < minimum or (strict and v == minimum)
        if bad:
            self.error(node, where, f"expected a number {'>' if strict else '≥'} {minimum:g}, got {v!r}")
            return None
        return v

    def boolean(self, node: yaml.Node, where: str) -> bool | None:
        v = self.scalar(node, where, "true or false")
        if v is _INVALID:
            return None
        if not isinstance(v, bool):
            self.error(node, where, f"expected true or false, got {v!r}")
            return None
        return v

    def encoder_opts(self, node: yaml.Node, where: str) -> list[str] | None:
        """A list of ``key=value`` strings or a mapping; becomes the transcoder's list."""
        if isinstance(node, yaml.MappingNode):
            out = []
            for k, v in node.value:
                key, value = _value(k), _value(v)
                if not isinstance(key, str) or isinstance(value, (list, dict)) or value is None:
                    self.error(k, f"{where}.{key}", "expected 'option: value' with a text or number value")
                    continue
                out.append(f"{key}={str(value).lower() if isinstance(value, bool) else value}")
            return out
        if isinstance(node, yaml.SequenceNode):
            out = []
            for i, item in enumerate(node.value):
                v = self.text(item, f"{where}[{i}]")
                if v is None:
                    continue
                key, sep, _ = v.partition("=")
                if not sep or not key:
                    self.error(item, f"{where}[{i}]", f"{v!r}: expected key=value (e.g. tune=film)")
                    continue
                out.append(v)
            return out
        self.error(node, where, f"expected a mapping (tune: film) or a list of key=value, got {_kind(node)}")
        return None

    def name_pattern(self, node: yaml.Node, where: str, text: str) -> bool:
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
        except ValueError as e:
            self.error(node, where, f"{text!r}: not a name pattern ({e})")
            return False
        unknown = fields - NAME_FIELDS
        if unknown:
            self.error(node, where, f"{text!r}: unknown field {{{sorted(unknown)[0]}}}; use {{stem}}, {{ext}}, {{parent}} or {{index}}")
            return False
        if "/" in text or "\\" in text:
            self.error(node, where, f"{text!r}: a file name, without folders (set output_dir for the folder)")
            return False
        return True


_INVALID = object()


def _original(m: dict, key: str) -> str:
    """The key as the user spelled it (``pix-fmt`` or ``pix_fmt``)."""
    return str(_value(m[key][0]))


def _kind(node: yaml.Node | None) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node is None:
        return "nothing"
    v = _value(node)
    return "nothing" if v is None else repr(v)
