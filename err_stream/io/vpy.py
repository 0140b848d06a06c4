"""A VapourSynth script (``.vpy``) as a video source: ``err-stream script.vpy out.mkv``.

The script is evaluated in this process (as ``vspipe`` does: ``vspipe -a`` arguments become
its globals) and its output clip is read frame by frame as YUV code values, like a decoded
file: the same colour stage, Restorer and encoder follow. What the clip says is kept: its
format (bit depth, subsampling), frame rate (or each frame's ``_DurationNum/_DurationDen``
when the rate is variable) and the colour properties ``_Matrix``, ``_Range`` (or
``_ColorRange``), ``_Primaries``, ``_Transfer``, ``_ChromaLocation``. An audio node set as output 1 (vspipe's convention for a
script with audio) is encoded beside the video (FLAC in Matroska/MOV, else AAC).

The evaluated script is kept per path, so probing and reading evaluate it once. Every front
end reaches a script through the source registry (io/sources.py: :func:`probe_vpy` and
:class:`VpySource`).
"""

from __future__ import annotations

import runpy
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..colour.planes import PlaneFormat, yuv_format_name
from ..colour.spec import ColourSpec
from .source import Source, SourceFrame, StreamSummary, VideoInfo

# Variable-rate scripts: frame times on a 90 kHz clock (MPEG's), exact for common rates.
VFR_TIME_BASE = Fraction(1, 90000)
AUDIO_OUTPUT = 1

_scripts: dict[tuple[Path, tuple], dict] = {}


def _vapoursynth():
    try:
        import vapoursynth
    except ImportError:
        raise UserError("a .vpy input needs VapourSynth: pip install 'err-stream[vs]'") from None
    return vapoursynth


def evaluate(path: Path, args: dict[str, str] | None = None) -> dict:
    """Run the script once per (path, args); return its outputs (index -> node)."""
    vs = _vapoursynth()
    key = (path.resolve(), tuple(sorted((args or {}).items())))
    if key in _scripts:
        return _scripts[key]
    vs.clear_outputs()
    try:
        runpy.run_path(str(path), init_globals={**(args or {}), "__file__": str(path)}, run_name="__vapoursynth__")
    except vs.Error as e:
        raise UserError(f"{path}: the script failed: {e}") from None
    except Exception as e:  # the user's script: any error is theirs to fix
        raise UserError(f"{path}: the script failed: {type(e).__name__}: {e}") from None
    outputs = {}
    for index, node in vs.get_outputs().items():
        outputs[index] = node.clip if hasattr(node, "clip") else node
    vs.clear_outputs()
    _scripts[key] = outputs
    return outputs


def _format_name(fmt) -> str:
    """The FFmpeg pixel format of a VapourSynth YUV integer format."""
    vs = _vapoursynth()
    if fmt.color_family != vs.YUV or fmt.sample_type != vs.INTEGER:
        raise UserError(
            f"the script's output is {fmt.name}; give err-stream integer YUV (e.g. end the script with "
            f"clip = core.resize.Bicubic(clip, format=vs.YUV444P16, matrix_s='709'))"
        )
    name = yuv_format_name(fmt.subsampling_w, fmt.subsampling_h, fmt.bits_per_sample)
    if name is None:
        raise UserError(f"the script's output {fmt.name} has a chroma subsampling FFmpeg has no format for")
    return name


def probe_vpy(path: str | Path, args: dict[str, str] | None = None) -> VideoInfo:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such script")
    vs = _vapoursynth()
    outputs = evaluate(path, args)
    clip = outputs.get(0)
    if not isinstance(clip, vs.VideoNode):
        raise UserError(f"{path}: the script sets no video output 0 (end it with clip.set_output())")
    if clip.format is None or clip.width == 0 or clip.height == 0:
        raise UserError(f"{path}: the script's output changes size or format between frames; not supported")
    try:
        pix_fmt = PlaneFormat.parse(_format_name(clip.format))
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    if clip.num_frames == 0:
        raise UserError(f"{path}: the script's output has no frames")
    try:
        props = clip.get_frame(0).props
    except vs.Error as e:
        raise UserError(f"{path}: the script failed at frame 0: {e}") from None
    rate = Fraction(clip.fps.numerator, clip.fps.denominator) if clip.fps.numerator else None
    audio = outputs.get(AUDIO_OUTPUT)
    others = [StreamSummary(AUDIO_OUTPUT, "audio", "vapoursynth")] if isinstance(audio, vs.AudioNode) else []
    return VideoInfo(
        path=path,
        format_name="vapoursynth",
        video_index=0,
        codec="vapoursynth",
        width=clip.width,
        height=clip.height,
        pix_fmt=pix_fmt,
        tags=ColourSpec.from_vs_props(props),
        time_base=Fraction(rate.denominator, rate.numerator) if rate else VFR_TIME_BASE,
        average_rate=rate,
        frames_estimate=clip.num_frames,
        duration=float(clip.num_frames / rate) if rate else None,
        sample_aspect_ratio=Fraction(props["_SARNum"], props["_SARDen"]) if props.get("_SARDen") else None,
        other_streams=others,
        script_args=dict(args or {}),
    )


class VpySource(Source):
    """The frames of a script's video output, in order, with their timestamps."""

    name = "vapoursynth"

    def __init__(self, info: VideoInfo, prefetch: int | None = None) -> None:
        super().__init__(info)
        self.prefetch = prefetch

    def frames(self) -> Iterator[SourceFrame]:
        vs = _vapoursynth()
        clip = evaluate(self.info.path, self.info.script_args)[0]
        cfr = self.info.average_rate is not None
        t = Fraction(0)
        n = -1
        try:
            for n, frame in enumerate(clip.frames(prefetch=self.prefetch, close=True)):
                planes = tuple(np.array(frame[i]) for i in range(3))  # VapourSynth's are read-only
                if cfr:
                    pts, duration = n, 1
                else:
                    props = frame.props
                    if not props.get("_DurationDen"):
                        raise UserError(f"{self.info.path}: variable frame rate, but frame {n} has no _DurationNum/_DurationDen")
                    step = Fraction(props["_DurationNum"], props["_DurationDen"])
                    pts, duration = round(t / VFR_TIME_BASE), round(step / VFR_TIME_BASE)
                    t += step
                yield SourceFrame(index=n, pts=pts, duration=duration, planes=planes, keepalive=frame)
        except vs.Error as e:
            raise UserError(f"{self.info.path}: the script failed at frame {n + 1}: {e}") from None


class ScriptAudio:
    """The other streams of a script's output: its audio node, if any, encoded into the
    output (there are no packets to copy). The same calls as the sink's StreamCopier."""

    copied = 0  # packets copied: none, the audio is encoded

    def __init__(self, info: VideoInfo, out_container, container_format: str, only: set[int] | None = None) -> None:
        import av

        vs = _vapoursynth()
        self.output = out_container
        self.map: dict = {}
        self.node = evaluate(info.path, info.script_args).get(AUDIO_OUTPUT)
        if not isinstance(self.node, vs.AudioNode) or (only is not None and AUDIO_OUTPUT not in only):
            self.node = None
            return
        codec = "flac" if container_format in ("matroska", "mov", "nut") else "aac"
        self.stream = out_container.add_stream(codec, rate=self.node.sample_rate)
        n = self.node.num_channels
        self.stream.layout = av.AudioLayout({1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}.get(n, f"{n}c"))
        self.map[AUDIO_OUTPUT] = self.stream
        self.done = 0  # VapourSynth audio frames sent
        self.samples = 0
        self.flushed = False

    def pump(self, until: float | None = None) -> None:
        import av

        node = self.node
        if node is None or self.flushed:
            return
        while self.done < node.num_frames:
            if until is not None and self.samples / node.sample_rate > until:
                return
            f = node.get_frame(self.done)
            data = np.stack([np.asarray(f[c]) for c in range(node.num_channels)])
            if data.dtype != np.float32:
                scale = float(1 << (node.bits_per_sample - 1))
                data = (data.astype(np.float32) / scale)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data, dtype=np.float32), format="fltp", layout=self.stream.layout)
            frame.sample_rate = node.sample_rate
            frame.pts = self.samples
            self.samples += data.shape[1]
            self.done += 1
            for p in self.stream.encode(frame):
                self.output.mux(p)
        if until is None:
            for p in self.stream.encode(None):
                self.output.mux(p)
            self.flushed = True

    def close(self) -> None:
        pass
