"""Getting frames into and out of VapourSynth without extra plugins.

* :func:`video_source`: a clip from a video file: ``core.bs.VideoSource`` when the
  BestSource plugin is installed (``pip install vapoursynth-bestsource``), else
  :func:`av_source`, a frame-accurate reader on PyAV (a dependency of err-stream), so that a
  plain ``pip install vapoursynth`` is enough to run ``examples/lowlight.vpy``.
* :func:`open_vpy` / :func:`frames_from_vpy`: evaluate a ``.vpy`` script in this process and
  read its output as RGB frames with timestamps (how the ``err-stream`` command can take a
  script as its input).
"""

from __future__ import annotations

import logging
import os
import runpy
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .filter import _check_clip, _to_rgbs, import_vapoursynth

log = logging.getLogger(__name__)

# PyAV pixel format -> (VapourSynth format name, plane order as VapourSynth wants it (RGB: R, G, B))
_AV_FORMATS = {
    "yuv420p": ("YUV420P8", (0, 1, 2)),
    "yuvj420p": ("YUV420P8", (0, 1, 2)),
    "yuv422p": ("YUV422P8", (0, 1, 2)),
    "yuvj422p": ("YUV422P8", (0, 1, 2)),
    "yuv444p": ("YUV444P8", (0, 1, 2)),
    "yuvj444p": ("YUV444P8", (0, 1, 2)),
    "yuv420p10le": ("YUV420P10", (0, 1, 2)),
    "yuv422p10le": ("YUV422P10", (0, 1, 2)),
    "yuv444p10le": ("YUV444P10", (0, 1, 2)),
    "yuv420p12le": ("YUV420P12", (0, 1, 2)),
    "yuv444p12le": ("YUV444P12", (0, 1, 2)),
    "yuv420p16le": ("YUV420P16", (0, 1, 2)),
    "yuv444p16le": ("YUV444P16", (0, 1, 2)),
    "gbrp": ("RGB24", (2, 0, 1)),  # FFmpeg stores planar RGB as G, B, R
    "gbrp10le": ("RGB30", (2, 0, 1)),
    "gbrp16le": ("RGB48", (2, 0, 1)),
}
# FFmpeg's AVColorRange: 1 = MPEG (limited), 2 = JPEG (full).
_AV_RANGE_FULL = {1: False, 2: True}
_UNSPECIFIED = 2  # the same value for matrix, transfer and primaries in FFmpeg and H.273


def range_prop(full: bool) -> dict:
    """The frame property for full/limited range in this VapourSynth: ``_Range`` (R81+:
    1 = full) or, before it, ``_ColorRange`` (0 = full)."""
    vs = import_vapoursynth()
    if hasattr(vs, "Range"):
        return {"_Range": 1 if full else 0}
    return {"_ColorRange": 0 if full else 1}


def guess_matrix(clip) -> int:
    """The YUV matrix players assume when a file does not state one: BT.709 from 720 lines
    (or 1280 columns) up, BT.601 below."""
    return 1 if clip.height >= 720 or clip.width >= 1280 else 6


def video_source(path: str | os.PathLike):
    """A clip of the first video stream of ``path``: BestSource if installed, else PyAV."""
    vs = import_vapoursynth()
    if hasattr(vs.core, "bs"):
        return vs.core.bs.VideoSource(str(path))
    return av_source(path)


def av_source(path: str | os.PathLike):
    """A frame-accurate clip of the first video stream of ``path``, decoded with PyAV.

    The file's pixel format is kept when VapourSynth has it (8-16 bit YUV, planar RGB);
    others are converted to YUV444P16 or RGB48. Frames carry ``_Matrix``, ``_Range`` (``_ColorRange`` before R81),
    ``_Primaries``, ``_Transfer`` and ``_SARNum``/``_SARDen`` when the file states them.
    Constant frame rate is assumed (the stream's average rate)."""
    vs = import_vapoursynth()
    reader = _AvReader(Path(path))
    fmt = vs.core.get_video_format(getattr(vs, reader.vs_format))
    dtype = np.uint16 if fmt.bytes_per_sample == 2 else np.uint8
    blank = vs.core.std.BlankClip(
        width=reader.width,
        height=reader.height,
        format=fmt.id,
        length=reader.num_frames,
        fpsnum=reader.rate.numerator,
        fpsden=reader.rate.denominator,
        keep=True,
    )

    def fill(n: int, f):
        frame = reader.frame(n)
        out = f.copy()
        for dst, src in enumerate(reader.plane_order):
            plane = frame.planes[src]
            data = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // dtype().itemsize)
            np.copyto(np.asarray(out[dst]), data[:, : plane.width])
        out.props.update(reader.props_of(frame))
        return out

    return vs.core.std.ModifyFrame(blank, blank, fill)


class _AvReader:
    """Decode frame n of a video stream, seeking only when reading backwards or far ahead."""

    _READ_AHEAD = 48  # decoding forward up to this many frames beats a seek

    def __init__(self, path: Path) -> None:
        import av

        from err_stream.errors import UserError

        try:
            self.container = av.open(str(path))
        except (OSError, av.FFmpegError) as e:
            raise UserError(f"{path}: cannot open as a video ({e})") from None
        if not self.container.streams.video:
            raise UserError(f"{path}: has no video stream")
        self.path = path
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        cc = self.stream.codec_context
        self.width, self.height = cc.width, cc.height
        self.rate = Fraction(self.stream.average_rate or self.stream.guessed_rate or 25)
        self.time_base = Fraction(self.stream.time_base)
        self.start = self.stream.start_time or 0
        pix = cc.format.name
        if pix in _AV_FORMATS:
            self.target_pix = None
            self.vs_format, self.plane_order = _AV_FORMATS[pix]
        else:
            self.target_pix = "yuv444p16le" if pix.startswith(("yuv", "nv", "p0", "p2")) else "gbrp16le"
            self.vs_format, self.plane_order = _AV_FORMATS[self.target_pix]
        self.full_range_format = pix.startswith("yuvj")
        sar = self.stream.sample_aspect_ratio
        self.sar = (sar.numerator, sar.denominator) if sar and sar.numerator else None
        self.num_frames = self.stream.frames or self._count_frames()
        self._lock = threading.Lock()
        self._decoded: Iterator | None = None
        self._next = 0

    def _count_frames(self) -> int:
        import av

        with av.open(str(self.path)) as c:
            return sum(1 for p in c.demux(c.streams.video[0]) if p.size)

    def _index(self, frame, fallback: int) -> int:
        if frame.pts is None:
            return fallback
        return round((frame.pts - self.start) * self.time_base * self.rate)

    def _seek(self, n: int) -> None:
        if n or self._decoded is not None:  # a fresh container is already at the start
            target = self.start + int(Fraction(n) / self.rate / self.time_base)
            self.container.seek(target, stream=self.stream, backward=True, any_frame=False)
        self._decoded = self.container.decode(self.stream)
        self._next = None if n else 0  # unknown until a timestamp says

    def frame(self, n: int):
        with self._lock:
            if self._decoded is None or self._next is None or n < self._next or n > self._next + self._READ_AHEAD:
                self._seek(n)
            for frame in self._decoded:
                index = self._index(frame, self._next if self._next is not None else n)
                if index > n and self._next is None:
                    # the seek landed past the frame (rare, inexact index): decode from the start
                    self._seek(0)
                    return self._frame_from_start(n)
                self._next = index + 1
                if index >= n:
                    return self._converted(frame)
            raise IndexError(f"{self.path}: frame {n} could not be decoded (the stream has fewer frames)")

    def _frame_from_start(self, n: int):
        for i, frame in enumerate(self._decoded):
            index = self._index(frame, i)
            self._next = index + 1
            if index >= n:
                return self._converted(frame)
        raise IndexError(f"{self.path}: frame {n} could not be decoded")

    def _converted(self, frame):
        return frame if self.target_pix is None else frame.reformat(format=self.target_pix)

    def props_of(self, frame) -> dict:
        props: dict = {}
        if frame.colorspace != _UNSPECIFIED:
            props["_Matrix"] = int(frame.colorspace)
        if frame.color_primaries != _UNSPECIFIED:
            props["_Primaries"] = int(frame.color_primaries)
        if frame.color_trc != _UNSPECIFIED:
            props["_Transfer"] = int(frame.color_trc)
        full = _AV_RANGE_FULL.get(frame.color_range, True if self.full_range_format else None)
        if full is not None:
            props.update(range_prop(full))
        if self.sar:
            props["_SARNum"], props["_SARDen"] = self.sar
        return props


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
    and integer outputs are converted to RGB with the frames' ``_Matrix`` and range; when
    the frames have no ``_Matrix``, with ``matrix``, or else the one players would guess."""
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
            if fmt.color_family == vs.YUV and matrix is None and clip.get_frame(0).props.get("_Matrix", 2) in (0, 2):
                matrix = guess_matrix(clip)
                log.warning("%s: output %d has no _Matrix frame property; assuming %s", path, output, "BT.709" if matrix == 1 else "BT.601")
            rgb, _ = _to_rgbs(vs, vs.core, clip, fmt, matrix)
    except vs.Error as e:
        raise UserError(f"{path}: output {output}: {str(e).removeprefix('err: ')}") from None
    fps = Fraction(clip.fps_num, clip.fps_den) if clip.fps_num else None
    return VpyVideo(rgb, clip.width, clip.height, clip.num_frames, fps)


def frames_from_vpy(path: str | os.PathLike, args: dict[str, str] | None = None, output: int = 0) -> Iterator[tuple[np.ndarray, Fraction]]:
    """The frames of a script's output as ``(rgb H x W x 3 float32, start time in seconds)``."""
    yield from open_vpy(path, args, output).frames()
