"""Getting frames out of VapourSynth scripts.

Clips come from video files through a real source filter, BestSource
(``core.bs.VideoSource``; ``pip install vapoursynth-bestsource``, in the ``vs`` extra), not
through a reader of ours.

* :func:`open_vpy` / :func:`frames_from_vpy`: evaluate a ``.vpy`` script in this process and
  read its output as RGB frames with timestamps (how the ``err-stream`` command can take a
  script as its input).
"""

from __future__ import annotations

import os
import runpy
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .filter import _check_clip, _to_rgbs, clip_colour, import_vapoursynth


# ----------------------------------------------------------------------------- .vpy scripts
@dataclass
class VpyVideo:
    """The output of a ``.vpy`` script, as RGBS, with its geometry and timing."""

    clip: object  # vapoursynth.VideoNode (RGBS)
    width: int
    height: int
    num_frames: int
    fps: Fraction | None  # None for variable frame rate (timestamps come from frame durations)

    def frames(self, prefetch: int | None = None) -> Iterator[tuple[np.ndarray, Fraction]]:
        """``(rgb, t)`` for each frame in order: ``rgb`` H x W x 3 float32 in [0, 1] (not
        clamped), ``t`` the frame's start time in seconds. Frames are computed by
        VapourSynth's threads ahead of the caller."""
        t = Fraction(0)
        for n, f in enumerate(self.clip.frames(prefetch=prefetch, close=True)):
            rgb = np.stack([np.asarray(f[p]) for p in range(3)], axis=-1)
            props = f.props
            yield rgb, t
            if "_DurationNum" in props and props.get("_DurationDen", 0):
                t += Fraction(props["_DurationNum"], props["_DurationDen"])
            elif self.fps:
                t = Fraction(n + 1) / self.fps


def open_vpy(path: str | os.PathLike, args: dict[str, str] | None = None, output: int = 0, matrix: int | None = None) -> VpyVideo:
    """Evaluate a VapourSynth script in this process and return its video output as RGBS.

    ``args`` become global variables of the script, as with ``vspipe -a name=value``. YUV
    and integer outputs are converted to RGB with the frames' colour properties; when the
    frames have no ``_Matrix``, with ``matrix``, or else the one err-stream guesses for any
    untagged input (err_stream.colour.policy)."""
    from err_stream.errors import UserError

    vs = import_vapoursynth()
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such script")
    vs.clear_outputs()
    try:
        runpy.run_path(str(path), init_globals=dict(args or {}), run_name="__vapoursynth__")
    except vs.Error as e:
        raise UserError(f"{path}: the script failed: {e}") from None
    except Exception as e:
        raise UserError(f"{path}: the script failed: {type(e).__name__}: {e}") from None
    outputs = vs.get_outputs()
    if output not in outputs:
        raise UserError(f"{path}: the script sets no output {output} (call clip.set_output({output}) in it)")
    node = outputs[output]
    clip = node.clip if hasattr(node, "clip") else node
    if not isinstance(clip, vs.VideoNode):
        raise UserError(f"{path}: output {output} is not a video clip")
    try:
        fmt = _check_clip(vs, clip)
        if fmt.color_family == vs.RGB and fmt.sample_type == vs.FLOAT and fmt.bits_per_sample == 32:
            rgb = clip
        else:
            rgb, _ = _to_rgbs(vs, vs.core, clip, fmt, clip_colour(vs, clip, matrix))
    except vs.Error as e:
        raise UserError(f"{path}: output {output}: {str(e).removeprefix('err: ')}") from None
    fps = Fraction(clip.fps_num, clip.fps_den) if clip.fps_num else None
    return VpyVideo(rgb, clip.width, clip.height, clip.num_frames, fps)


def frames_from_vpy(path: str | os.PathLike, args: dict[str, str] | None = None, output: int = 0) -> Iterator[tuple[np.ndarray, Fraction]]:
    """The frames of a script's output as ``(rgb H x W x 3 float32, start time in seconds)``."""
    yield from open_vpy(path, args, output).frames()
