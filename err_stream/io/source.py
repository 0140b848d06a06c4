"""Where frames come from: what every source shares (:class:`VideoInfo`, :class:`SourceFrame`,
:class:`Source`), and the PyAV file source with its probe.

A source yields :class:`SourceFrame` objects in presentation order, each with its own
timestamp. PyAV frames carry their YUV planes as they were decoded (integer code values,
never converted to RGB by FFmpeg). The other sources (NVIDIA DALI: io/dali.py; VapourSynth
scripts: io/vpy.py; pipes and URLs: io/live_source.py) share the interface; io/sources.py
is the registry a run chooses from.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..colour.codes import Range
from ..colour.hdr import HdrMetadata
from ..colour.planes import PlaneFormat
from ..colour.spec import ColourSpec
from .damage import DamageWatch

log = logging.getLogger(__name__)


@dataclass
class StreamSummary:
    index: int
    type: str
    codec: str


@dataclass
class VideoInfo:
    """What we need to know about the input before decoding it all."""

    path: Path
    format_name: str
    video_index: int
    codec: str
    width: int
    height: int
    pix_fmt: PlaneFormat
    tags: ColourSpec  # what the stream states (see err_stream.colour.policy for the rest)
    time_base: Fraction
    average_rate: Fraction | None
    frames_estimate: int | None
    duration: float | None
    sample_aspect_ratio: Fraction | None = None
    rotation: int = 0
    hdr: HdrMetadata | None = None
    # The picture has an alpha channel (a yuva* format, or VP9's alpha in WebM, which
    # FFmpeg's decoder drops). The model restores colour, not alpha: see check_alpha.
    alpha: bool = False
    script_args: dict | None = None  # a .vpy input: the arguments its globals get (io/vpy.py)
    other_streams: list[StreamSummary] = field(default_factory=list)
    live: str | None = None  # a pipe or URL (as the user wrote it): read once, no seeking

    @property
    def label(self) -> str:
        """How messages name the input."""
        if self.live is None:
            return str(self.path)
        return "standard input" if self.live == "-" else self.live

    @functools.cached_property
    def tick(self) -> int:
        """One frame period in ``time_base`` units (at least 1; 1 without a frame rate): the
        step a timestamp takes where a frame states none."""
        if self.average_rate:
            return max(1, round(1 / (self.average_rate * self.time_base)))
        return 1

    def check_frame(self, frame: Any, index: int) -> None:
        """Refuse a decoded frame (an ``av.VideoFrame``) of another size or pixel format than
        the stream's: one run converts one picture format."""
        if frame.width != self.width or frame.height != self.height or plain_pix_fmt(frame.format.name)[0] != self.pix_fmt.name:
            raise UserError(
                f"{self.label}: the picture changes from {self.width}x{self.height} {self.pix_fmt.name} to "
                f"{frame.width}x{frame.height} {frame.format.name} at frame {index}; not supported"
            )

    def describe(self) -> str:
        t = self.tags.describe()
        return (
            f"{self.codec} {self.width}x{self.height} {self.pix_fmt.name} ({self.pix_fmt.subsampling()}, "
            f"{self.pix_fmt.bits}-bit, {t['matrix']}/{t['range']}/{t['primaries']}/{t['transfer']})"
        )


@dataclass
class SourceFrame:
    """One decoded frame. Exactly one of ``planes`` (Y, Cb, Cr code values: numpy arrays or
    torch tensors) and ``rgb601`` (H x W x 3 uint8 torch tensor from DALI) is set."""

    index: int
    pts: int
    duration: int
    planes: tuple[Any, Any, Any] | None = None
    rgb601: Any = None
    ready: Any = None  # a CUDA event the data is ready after (GPU sources)
    keepalive: Any = None  # what owns the memory ``planes`` view (an av.VideoFrame)
    side_data: dict = field(default_factory=dict)


class Source:
    """What every source offers a run: :meth:`frames` in presentation order, and afterwards
    what the run reports about the input.

    ``name``: the decoder, as the run reports it; ``delivers``: ``"planes"`` (integer code
    planes, packed into the executor's host buffers) or ``"rgb601"`` (DALI's RGB, corrected on
    the device); ``damage``: concealed decoder errors let through (``ignore_errors``);
    ``damaged``: damaged pictures dropped (streams); ``missing``: pictures the stream's clock
    says were sent but never arrived (streams); ``ended``: how the input ended ("end",
    "stopped", "stalled" or "failed"; None until it has), with ``reason`` for the last two;
    ``first_arrival``: when the first frame was received (``time.monotonic()``; a stream's,
    while it was probed), None when the run's first read is that moment; ``buffered_peak``:
    a network input's most compressed stream (bytes) held at once, waiting for the model
    (None for the others)."""

    name = "pyav"
    delivers = "planes"
    first_arrival: float | None = None
    buffered_peak: int | None = None

    def __init__(self, info: VideoInfo | None) -> None:
        self.info = info  # None only while a stream is probed (io/live_source.py), up to its first picture
        self.damage: list = []
        self.damaged = 0
        self.missing = 0
        self.ended: str | None = None
        self.reason = ""

    def frames(self) -> Iterator[SourceFrame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the source holds (a stream's connection); safe to call twice."""


def _open(path: Path):
    import av

    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected a video file")
    try:
        return av.open(str(path))
    except av.error.FFmpegError as e:
        raise UserError(f"{path}: not a video file FFmpeg can read, or truncated/corrupt ({_reason(e)})") from None


def _reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e).split(":")[0] or type(e).__name__


def _pick_video_stream(container, path: Path):
    for s in container.streams.video:
        if not s.disposition & _attached_pic_flag():
            return s
    raise UserError(f"{path}: has no video stream")


def _attached_pic_flag() -> int:
    import av

    return int(av.stream.Disposition.attached_pic)


def probe(path: str | Path) -> VideoInfo:
    """Read a video file's container and first frame; raise UserError if it is not a usable
    video. (Any input, ``.vpy`` scripts included: :func:`~.sources.probe_input`.)"""
    import av

    path = Path(path)
    container = _open(path)
    try:
        vs = _pick_video_stream(container, path)
        first = None
        try:
            for frame in container.decode(vs):
                first = frame
                break
        except av.error.FFmpegError as e:
            raise UserError(f"{path}: corrupt or truncated video: decoding failed at frame 0 ({_reason(e)})") from None
        if first is None:
            raise UserError(f"{path}: the video stream has no decodable frames (empty or corrupt file)")
        return video_info(container, vs, first, path)
    finally:
        container.close()


def video_info(container, vs, first, path: Path, live: str | None = None) -> VideoInfo:
    """What :func:`probe` reports, from an open container, its video stream and first frame."""
    name, jpeg_range = plain_pix_fmt(first.format.name)
    fmt = PlaneFormat.parse(name)
    # Some decoders leave frame tags unspecified when the container has them.
    tags = ColourSpec.from_av(first).filled_from(ColourSpec.from_av(vs.codec_context))
    if jpeg_range is not None:
        tags = dataclasses.replace(tags, range=jpeg_range)
    hdr = _hdr_of(first, vs.codec_context)
    tb = Fraction(vs.time_base.numerator, vs.time_base.denominator) if vs.time_base else Fraction(1, 90000)
    rate = vs.average_rate or vs.guessed_rate
    rate = Fraction(rate.numerator, rate.denominator) if rate else None
    duration = None
    if vs.duration is not None:
        duration = float(vs.duration * vs.time_base)
    elif container.duration:
        duration = container.duration / 1e6
    estimate = vs.frames or (round(duration * rate) if duration and rate else None)
    sar = vs.sample_aspect_ratio
    others = [
        StreamSummary(s.index, s.type, s.codec_context.name if s.codec_context else "none")
        for s in container.streams
        if s.index != vs.index
    ]
    return VideoInfo(
        path=path,
        format_name=container.format.name,
        video_index=vs.index,
        codec=vs.codec_context.name,
        width=first.width,
        height=first.height,
        pix_fmt=fmt,
        tags=tags,
        time_base=tb,
        average_rate=rate,
        frames_estimate=estimate or None,
        duration=duration,
        sample_aspect_ratio=Fraction(sar.numerator, sar.denominator) if sar else None,
        rotation=int(getattr(first, "rotation", 0) or 0),
        alpha=first.format.name.startswith("yuva") or vs.metadata.get("alpha_mode", vs.metadata.get("ALPHA_MODE")) == "1",
        hdr=hdr,
        other_streams=others,
        live=live,
    )


def _hdr_of(frame, codec_context) -> HdrMetadata | None:
    from av.sidedata.sidedata import Type

    found: dict = {}
    for source in (codec_context.decoded_side_data or {}, {sd.type: sd for sd in frame.side_data.values()}):
        for key in (Type.MASTERING_DISPLAY_METADATA, Type.CONTENT_LIGHT_LEVEL):
            if key in source and key not in found:
                found[key] = bytes(source[key])
    return HdrMetadata.from_side_data(found.get(Type.MASTERING_DISPLAY_METADATA), found.get(Type.CONTENT_LIGHT_LEVEL))


# FFmpeg's deprecated full-range ("JPEG") formats: the same planes as yuv*, with the range
# in the name instead of the tag. Encoders other than MJPEG refuse them.
_JPEG_FORMATS = {"yuvj420p": "yuv420p", "yuvj422p": "yuv422p", "yuvj444p": "yuv444p", "yuvj440p": "yuv440p", "yuvj411p": "yuv411p"}


def plain_pix_fmt(name: str) -> tuple[str, Range | None]:
    """``(yuv* name, Range.FULL)`` for a ``yuvj*`` format, else ``(name, None)``; a
    ``yuva*`` format gives its colour planes' format (the alpha rule is applied by the
    caller: see :attr:`VideoInfo.alpha`)."""
    if name in _JPEG_FORMATS:
        return _JPEG_FORMATS[name], Range.FULL
    if name.startswith("yuva"):
        return "yuv" + name[4:], None
    return name, None


def plane_views(frame, fmt: PlaneFormat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, Cb, Cr of a decoded PyAV frame as numpy views of its buffers (no copy)."""
    out = []
    item = fmt.dtype.itemsize
    for i, (h, w) in enumerate(fmt.plane_shapes(frame.width, frame.height)):
        p = frame.planes[i]
        stride = p.line_size // item
        a = np.frombuffer(p, dtype=fmt.dtype, count=h * stride).reshape(h, stride)
        out.append(a[:, :w])
    return tuple(out)  # type: ignore[return-value]


class PyAVSource(Source):
    """Decode a file with FFmpeg through PyAV, threaded (frame and slice threads)."""

    def __init__(self, info: VideoInfo, threads: int = 0, ignore_errors: bool = False) -> None:
        super().__init__(info)
        self.threads = threads
        # Concealed decoder errors (io/damage.py) fail the run unless ignored; then counted in ``damage``.
        self.ignore_errors = ignore_errors

    def _damaged(self, found: list) -> None:
        for d in found:
            if not self.ignore_errors:
                raise UserError(
                    f"{self.info.path}: damaged video: the decoder concealed an error at {d.describe()}",
                    instead=["ignore_errors"], instead_for="to restore it anyway",
                )
            log.warning("%s: damaged video, concealed by the decoder: %s", self.info.path.name, d.describe())
            self.damage.append(d)

    def frames(self) -> Iterator[SourceFrame]:
        import av

        info = self.info
        container = _open(info.path)
        vs = container.streams[info.video_index]
        vs.thread_type = "AUTO"
        vs.codec_context.thread_count = self.threads
        index = 0
        last_pts: int | None = None
        stream_end: dict[int, float] = {}
        packet_times: list[float] = []
        watch = DamageWatch(decoder=vs.codec_context.name)
        try:
            with watch:
                try:
                    for packet in container.demux():
                        if packet.pts is not None and packet.time_base is not None:
                            end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                            stream_end[packet.stream.index] = max(stream_end.get(packet.stream.index, -math.inf), end)
                        if packet.stream.index != vs.index:
                            continue
                        if packet.pts is not None:
                            packet_times.append(float(packet.pts * packet.time_base))
                        for frame in packet.decode():
                            info.check_frame(frame, index)
                            if frame.is_corrupt:
                                # Prefer FFmpeg's own words when its log already has them; the
                                # decoder's threads may log a moment after the frame comes out.
                                logged = watch.check(index, packet_times)
                                self._damaged(logged or watch.record("the decoder marked the frame corrupt", _time(frame.pts, info), index, packet_times))
                            pts = frame.pts
                            if pts is None:
                                pts = 0 if last_pts is None else last_pts + max(1, int(frame.duration or 0) or info.tick)
                            last_pts = pts
                            yield SourceFrame(
                                index=index,
                                pts=pts,
                                duration=int(frame.duration or 0),
                                planes=plane_views(frame, info.pix_fmt),
                                keepalive=frame,
                            )
                            index += 1
                        self._damaged(watch.check(index, packet_times))
                except av.error.FFmpegError as e:
                    at = f"frame {index}" + (f" (after t={_time(last_pts, info):.3f} s)" if last_pts is not None else "")
                    raise UserError(f"{info.path}: corrupt or truncated video: decoding failed at {at}: {_reason(e)}") from None
            self._damaged(watch.finish(index, packet_times))  # errors logged by the last decoder threads
            _check_complete(info, container, stream_end, index, last_pts)
        finally:
            container.close()


def check_alpha(info: VideoInfo, drop_alpha: bool) -> None:
    """The one alpha rule: a picture with alpha is refused, whatever the codec (FFV1, VP9 in
    WebM, ProRes 4444...), unless the ``drop_alpha`` setting says to restore the colour and leave the
    alpha out. It is never dropped silently."""
    if info.alpha and not drop_alpha:
        raise UserError(
            f"{info.path}: the video has an alpha channel, which is not restored or carried",
            instead=["drop_alpha"], instead_for="to restore the colour only",
        )
    if info.alpha:
        log.warning("%s: dropping the alpha channel, as asked", info.path.name)


def _time(pts: int | None, info: VideoInfo) -> float:
    return float((pts or 0) * info.time_base)


def _check_complete(info: VideoInfo, container, stream_end: dict[int, float], frames: int, last_pts) -> None:
    """A file cut short can demux without an error (Matroska does): compare where the
    streams end with the duration the container declares."""
    if not container.duration or not stream_end:
        return
    start = (container.start_time or 0) / 1e6
    declared = start + container.duration / 1e6
    reached = max(stream_end.values())
    tick = float(1 / info.average_rate) if info.average_rate else 0.04
    if reached < declared - max(0.5, 3 * tick):
        raise UserError(
            f"{info.path}: truncated video: the streams stop at {reached:.3f} s (after frame {frames - 1}, "
            f"t={_time(last_pts, info):.3f} s) but the file declares {declared:.3f} s"
        )
