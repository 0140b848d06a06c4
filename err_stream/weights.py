"""Checkpoints: formats, strict loading with readable errors, presets and downloads.

Formats: basicsr ``.pth`` (``torch.load(p)["params"]``, the published layout), a bare state
dict in a ``.pth``/``.pt``, and ``.safetensors``. Loading is state-dict driven and strict:
every key and shape must match ERR's, otherwise :class:`CheckpointError` names the file and
lists the first differences.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import torch

from .engine.settings import RestoreSettings
from .errors import UserError
from .model import ERR, ERRConfig

# The preset table and the package's own weights live in .presets (no torch needed to list them).
from .presets import DEMO_WEIGHTS, HF_REPO, HF_REPO_TYPE, HF_URL, PRESETS, Preset  # noqa: F401

log = logging.getLogger(__name__)


class CheckpointError(UserError, ValueError):
    """A file that is not an ERR checkpoint (or not one we can read)."""


# ----------------------------------------------------------------------------- reading files
def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint file into a flat ``{key: tensor}`` dict (no model involved)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path}: is a folder, expected a .pth or .safetensors file")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file

            return dict(load_file(str(path)))
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointError(f"checkpoint {path}: not a readable safetensors file ({e})") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        # torch's own text for pickles it refuses is about weights_only, not about the file.
        reason = "" if "weights_only" in first or len(first) > 160 else f" ({first})"
        raise CheckpointError(
            f"checkpoint {path}: not a readable PyTorch checkpoint: truncated, corrupt, or not a checkpoint at all{reason}"
        ) from None
    return _unwrap(obj, path)


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        # basicsr saves {"params": sd} (and sometimes "params_ema"); other trainers use "state_dict".
        for key in ("params", "params_ema", "state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            # DataParallel / compiled wrappers prefix every key.
            for prefix in ("module.", "_orig_mod."):
                if all(k.startswith(prefix) for k in tensors):
                    tensors = {k[len(prefix) :]: v for k, v in tensors.items()}
            return tensors
    raise CheckpointError(f"checkpoint {path}: holds no state dict (found {type(obj).__name__})")


def check_state_dict(model: torch.nn.Module, sd: dict[str, torch.Tensor], source: str, limit: int = 5) -> None:
    """Raise :class:`CheckpointError` unless ``sd`` has exactly ``model``'s keys and shapes."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong = [
        f"{k}: file {tuple(sd[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in sd and tuple(sd[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or wrong):
        return
    lines = [f"checkpoint {source} does not fit the ERR network ({len(sd)} tensors in the file, {len(expected)} expected):"]
    for title, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong)):
        if items:
            more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
            lines.append(f"  {len(items)} {title}: " + ", ".join(items[:limit]) + more)
    if len(missing) == len(expected):
        lines.append("  none of ERR's keys is in it: is this a checkpoint of another network?")
    raise CheckpointError("\n".join(lines))


# ----------------------------------------------------------------------------- presets
def _hf_cache_dir() -> str | None:
    return os.environ.get("ERR_STREAM_HF_CACHE")  # tests point this at a local fake cache


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def pick_preset_file(preset: Preset, files: list[str]) -> str:
    """Choose the preset's checkpoint among a repository's file list.

    Only ERR checkpoints count (``.pth``/``.safetensors``, not IERR's or visual results).
    A file matches if its name contains the task's most specific token; ties are an error that
    lists the candidates rather than a guess.
    """
    ckpts = [f for f in files if f.lower().endswith((".pth", ".safetensors"))]
    ckpts = [f for f in ckpts if not any(_normalise(part).startswith("ierr") for part in Path(f).parts)]
    for token in preset.tokens:
        hits = [f for f in ckpts if token in _tokens_of(f)] if len(token) <= 3 else [f for f in ckpts if token in _normalise(f)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            # Prefer files under a folder or name that says ERR.
            err_hits = [f for f in hits if "err" in _normalise(f)]
            if len(err_hits) == 1:
                return err_hits[0]
            raise CheckpointError(
                f"preset {preset.name}: several files in {HF_URL} could be the {preset.task} checkpoint: "
                + ", ".join(sorted(hits)) + "; download the right one and use it as the weights file",
                instead=["weights"],
            )
    raise CheckpointError(
        f"preset {preset.name}: no {preset.task} checkpoint found among {len(ckpts)} checkpoint files of {HF_URL}; "
        "download it from there and use it as the weights file",
        instead=["weights"],
    )


def _tokens_of(path: str) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9]+", path.lower()) if t}


def _offline_error(preset: Preset, reason: str) -> CheckpointError:
    return CheckpointError(
        f"preset {preset.name}: cannot download the {preset.task} checkpoint ({reason}); check the network or "
        f"proxy (and that HF_HUB_OFFLINE is not 1), or download it by hand from {HF_URL} and use it as the weights file",
        instead=["weights"],
    )


def fetch_preset(name: str) -> Path:
    """Download (or find in the Hugging Face cache) the authors' checkpoint for a preset."""
    preset = _preset(name)
    try:
        from huggingface_hub import HfApi, hf_hub_download
    except ImportError:  # pragma: no cover - core dependency
        raise CheckpointError("huggingface_hub is not installed: pip install huggingface_hub") from None
    cached = cached_preset(name)
    if cached is not None:
        return cached
    reason = _hub_unreachable()
    if reason:
        raise _offline_error(preset, reason)
    try:
        files = HfApi().list_repo_files(HF_REPO, repo_type=HF_REPO_TYPE)
    except Exception as e:
        raise _offline_error(preset, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    filename = pick_preset_file(preset, files)
    try:
        return Path(hf_hub_download(HF_REPO, filename, repo_type=HF_REPO_TYPE, cache_dir=_hf_cache_dir()))
    except Exception as e:
        raise _offline_error(preset, f"{type(e).__name__}") from None


def _hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the Hugging Face Hub cannot be reached, or None if it seems reachable.

    huggingface_hub retries a failing request with back-off for about half a minute; a quick
    TCP probe lets us fail at once on a machine without network (unless a proxy is set, in
    which case only the real request can tell).
    """
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=timeout).close()
    except OSError as e:
        return f"{url.hostname} is not reachable: {e.strerror or e}"
    return None


def cached_preset(name: str) -> Path | None:
    """The cached checkpoint of a preset, if it was fetched before (no network)."""
    preset = _preset(name)
    files = {str(Path(f)): p for f, p in _cached_files().items()}
    if not files:
        return None
    try:
        return files[pick_preset_file(preset, list(files))]
    except CheckpointError:
        return None


def _cached_files() -> dict[str, Path]:
    """``{repo file path: local path}`` of what the HF cache holds of our repository."""
    try:
        from huggingface_hub import scan_cache_dir
    except ImportError:  # pragma: no cover
        return {}
    try:
        info = scan_cache_dir(_hf_cache_dir())
    except Exception:
        return {}
    out: dict[str, Path] = {}
    for repo in info.repos:
        if repo.repo_id == HF_REPO and repo.repo_type == HF_REPO_TYPE:
            for rev in repo.revisions:
                for f in rev.files:
                    out[f.file_name if "/" not in str(f.file_path) else _repo_relative(f.file_path)] = Path(f.file_path)
    return out


def _repo_relative(p: Path) -> str:
    parts = Path(p).parts
    i = parts.index("snapshots") if "snapshots" in parts else -1
    return "/".join(parts[i + 2 :]) if i >= 0 else Path(p).name


def list_cached() -> list[tuple[str, Path | None]]:
    """Each preset with its cached file (or None)."""
    return [(name, cached_preset(name)) for name in PRESETS]


def _preset(name: str) -> Preset:
    try:
        return PRESETS[name.lower()]
    except KeyError:
        raise CheckpointError(f"unknown preset; choose one of: {', '.join(PRESETS)}", option="preset", value=name) from None


# ----------------------------------------------------------------------------- the model
def resolve_weights(path_or_preset: str | os.PathLike | None) -> Path:
    """A file path for a path, a preset name, ``"demo"`` or None (the embedded demo weights)."""
    if path_or_preset is None or str(path_or_preset) == "demo":
        if not DEMO_WEIGHTS.exists():
            raise CheckpointError(
                "no weights given and the embedded demo weights are not installed (presets: " + ", ".join(PRESETS) + ")",
                instead=["weights", "preset"],
            )
        return DEMO_WEIGHTS
    s = str(path_or_preset)
    if s.lower() in PRESETS and not Path(s).exists():
        return fetch_preset(s)
    return Path(s)


def load_model(
    path_or_preset: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> ERR:
    """Load an ERR checkpoint (file path, preset name, or None for our demo weights) strictly.

    Returns the model in eval mode on ``device`` (default: CUDA if available, else CPU),
    with floating parameters in ``dtype`` (default float32).
    """
    path = resolve_weights(path_or_preset)
    sd = read_state_dict(path)
    model = ERR(ERRConfig.from_state_dict(sd))
    check_state_dict(model, sd, str(path))
    model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    device = RestoreSettings(device=device).torch_device()
    model = model.to(device=device, dtype=dtype or torch.float32).eval()
    return model


def save_checkpoint(model_or_sd: torch.nn.Module | dict, path: str | os.PathLike, half: bool = False) -> Path:
    """Save in the published layout (``{"params": sd}`` for .pth) or as safetensors."""
    sd = model_or_sd.state_dict() if isinstance(model_or_sd, torch.nn.Module) else model_or_sd
    sd = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous() for k, v in sd.items()}
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(tmp))
    else:
        torch.save({"params": sd}, str(tmp))
    os.replace(tmp, path)
    return path
