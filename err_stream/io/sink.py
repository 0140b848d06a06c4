"""Where frames go: the encoder choice and the output container (restored video plus every
other stream copied packet for packet). The atomic output file is :mod:`.output_file`."""

from __future__ import annotations

import errno
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..errors import ProcessingError, SettingError, UserError
from ..colour.planes import PlaneFormat
from .priority import call_at_lower_priority
from .source import StreamSummary, VideoInfo

if TYPE_CHECKING:
    from ..video.options import EncodeOptions
    from .metadata import Metadata

log = logging.getLogger(__name__)


class OtherStreams(Protocol):
    """What writes the other streams into the output as the video goes: :class:`StreamCopier`
    (packets copied) or a script's audio encoder (io/vpy.py's ``ScriptAudio``). ``map``: input
    stream index -> output stream; ``copied``: packets copied so far (none when encoded)."""

    map: dict
    copied: int

    def pump(self, until: float | None = None) -> None: ...

    def close(self) -> None: ...


class Beside(Protocol):
    """What the output asks of the input's kind (io/sources.py) about everything but the
    restored video: its metadata, the streams copied packet for packet (which the container
    must take), and what writes the other streams as the video goes."""

    def metadata(self, info: VideoInfo) -> Metadata: ...

    def copied_streams(self, info: VideoInfo) -> list[StreamSummary]: ...

    def other_streams(self, info: VideoInfo, out_container, out, container_format: str, copy_data: bool,
                      only: set[int] | None) -> OtherStreams | None: ...


# Output containers by extension (FFmpeg muxer names).
CONTAINERS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
    ".ts": "mpegts",
    ".m2ts": "mpegts",
    ".mxf": "mxf",
    ".nut": "nut",
}

# Per input codec family: the encoder that keeps it, and its high-quality defaults.
DEFAULT_ENCODERS = {
    "h264": "libx264",
    "hevc": "libx265",
    "vp9": "libvpx-vp9",
    "vp8": "libvpx-vp9",
    "av1": "libsvtav1",
    "prores": "prores_ks",
    "ffv1": "ffv1",
}
# Tried in order when the family's encoder cannot store the format or the container.
FALLBACK_ENCODERS = ("libx264", "libx265", "libsvtav1", "libvpx-vp9", "ffv1", "wrapped_avframe")  # the last: y4m

ENCODER_DEFAULTS: dict[str, dict[str, str]] = {
    "libx264": {"crf": "16", "preset": "medium"},
    "libx265": {"crf": "18", "preset": "medium", "x265-params": "log-level=error"},
    "libvpx-vp9": {"crf": "20", "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "2"},
    "libsvtav1": {"crf": "24", "preset": "6"},
    "hevc_nvenc": {"preset": "p5", "tune": "hq", "rc": "vbr", "cq": "19"},
    "h264_nvenc": {"preset": "p5", "tune": "hq", "rc": "vbr", "cq": "18"},
    "prores_ks": {},
    "ffv1": {"level": "3"},
}
# Which option the generic crf / encoder_preset settings become, per encoder (None: the encoder has none).
CRF_OPTION = {"libx264": "crf", "libx265": "crf", "libvpx-vp9": "crf", "libsvtav1": "crf", "hevc_nvenc": "cq", "h264_nvenc": "cq"}
PRESET_OPTION = {
    "libx264": "preset", "libx265": "preset", "libsvtav1": "preset", "hevc_nvenc": "preset", "h264_nvenc": "preset",
    "libvpx-vp9": "deadline",
}
# Containers that store no presentation times (a frame's place is its index at a constant
# rate; MXF counts edit units of the frame rate), and the options that keep an encoder from
# reordering frames there: H.264 and HEVC leave the display order to the container, so their
# B-frames read back up to three frames out of place (MPEG-2 and MPEG-4 part 2 carry the order
# in their bitstream and are fine; y4m holds raw pictures, which have no B-frames).
CONSTANT_RATE_CONTAINERS = frozenset({"avi", "mxf", "mxf_d10", "mxf_opatom", "yuv4mpegpipe"})
NO_B_FRAMES = {
    "libx264": {"bf": "0"},
    "libx265": {"x265-params": "bframes=0"},
    "h264_nvenc": {"bf": "0"},
    "hevc_nvenc": {"bf": "0"},
}

def container_format(out: Path) -> str:
    fmt = CONTAINERS.get(out.suffix.lower())
    if fmt is None:
        raise UserError(f"{out}: unknown video container {out.suffix!r}; use one of {', '.join(CONTAINERS)}")
    return fmt


# Extensions that need a muxer option (Blu-ray's M2TS: 192-byte packets with arrival times).
MUXER_OPTIONS = {".m2ts": {"mpegts_m2ts_mode": "1"}}

# Muxers without a codec table: FFmpeg cannot list what they take (PyAV's list for them
# holds only MPEG-2, though MPEG-TS carries H.264/HEVC and MXF DNxHR/ProRes), so a dry run
# of the output (io/preflight.py) decides instead. The stream muxers (RTP, RTSP) likewise.
UNLISTED_MUXERS = {"mpegts", "mxf", "mxf_d10", "mxf_opatom", "rtp_mpegts", "rtp", "rtsp"}


def container_codecs(fmt: str) -> set[str] | None:
    """Codec names the muxer accepts (None: the muxer cannot say; try it)."""
    import av

    if fmt in UNLISTED_MUXERS:
        return None
    with av.open(io.BytesIO(), "w", format=fmt) as c:
        return set(c.supported_codecs)


def storable(codec: str | None, allowed: set[str] | None) -> bool:
    return allowed is None or codec in allowed


class EncoderOptionError(UserError):
    """An ``encoder_opt`` key the encoder does not have."""


def find_encoder(name: str):
    import av

    try:
        codec = av.codec.Codec(name, "w")
    except Exception:
        raise SettingError("codec", name, "no such encoder in this FFmpeg build") from None
    if codec.type != "video":
        raise SettingError("codec", name, "not a video encoder")
    return codec


@dataclass
class EncoderSettings:
    """The output video stream: encoder, pixel format, picture size (and sample aspect
    ratio) and the encoder's options."""

    codec: str
    pix_fmt: PlaneFormat
    width: int
    height: int
    options: dict[str, str] = field(default_factory=dict)
    sample_aspect_ratio: Fraction | None = None

    def describe(self) -> str:
        opts = " ".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.codec} {self.width}x{self.height} {self.pix_fmt.name}" + (f" ({opts})" if opts else "")

    def with_options(self, extra: dict[str, str], keep: set[str] = frozenset()) -> EncoderSettings:
        """These settings with ``extra`` options added, except the keys in ``keep`` (the
        user's own, which win)."""
        options = dict(self.options)
        for key, value in extra.items():
            if key not in keep:
                merge_option(options, key, value)
        return EncoderSettings(self.codec, self.pix_fmt, self.width, self.height, options, self.sample_aspect_ratio)


def merge_option(options: dict[str, str], key: str, value: str) -> None:
    """Set an encoder option; x265's parameter string is one option, so it is extended."""
    if key == "x265-params" and options.get(key):
        options[key] = options[key] + ":" + value
    else:
        options[key] = value


def _pick_pix_fmt(want: PlaneFormat, supported: list[str]) -> PlaneFormat | None:
    """The encoder's format closest to ``want``: same depth and subsampling (planar first),
    else the least that keeps the depth and the chroma resolution."""
    cands = []
    for name in supported:
        try:
            f = PlaneFormat.parse(name)
        except UserError:
            continue
        if name.startswith("yuvj") != want.name.startswith("yuvj"):
            continue
        keeps = f.bits >= want.bits and f.log2_chroma_w <= want.log2_chroma_w and f.log2_chroma_h <= want.log2_chroma_h
        cost = (
            0 if (f.bits, f.log2_chroma_w, f.log2_chroma_h) == (want.bits, want.log2_chroma_w, want.log2_chroma_h) else 1 if keeps else 2,
            f.semi_planar,
            f.bits - want.bits if f.bits >= want.bits else 100,
            (want.log2_chroma_w - f.log2_chroma_w) + (want.log2_chroma_h - f.log2_chroma_h),
        )
        cands.append((cost, f))
    cands.sort(key=lambda c: c[0])
    if not cands or cands[0][0][0] == 2:
        return None
    return cands[0][1]


def choose_encoder(
    info: VideoInfo,
    out: Path,
    request: EncodeOptions,
    *,
    container: str | None = None,
    copied: Sequence[StreamSummary] = (),
) -> EncoderSettings:
    """Turn the user's encoder settings (``request``; by default the input's codec family at
    high quality and its pixel format) into settings this FFmpeg and OUT's container accept.
    ``container``: the muxer (default: from OUT's extension); ``copied``: the input's streams
    that will be copied beside the video (the container must take them)."""
    codec, crf, preset, pix_fmt = request.codec, request.crf, request.encoder_preset, request.pix_fmt
    fmt = container or container_format(out)
    where = f"{out.suffix} files" if container is None else f"{fmt} output"
    allowed = container_codecs(fmt)
    want = PlaneFormat.parse(pix_fmt) if pix_fmt else info.pix_fmt
    if codec is not None:
        enc = find_encoder(codec)
        if not storable(enc.canonical_name, allowed):
            raise SettingError("codec", codec, f"{enc.canonical_name} cannot be stored in {where}")
        formats = [f.name for f in (enc.video_formats or [])]
        chosen = want if want.name in formats or enc.video_formats is None else (None if pix_fmt else _pick_pix_fmt(want, formats))
        if chosen is None:
            raise SettingError("codec", codec, f"cannot encode {want.name}; it takes {', '.join(formats)}", instead=["pix_fmt"])
    else:
        chosen = None
        for name in (DEFAULT_ENCODERS.get(info.codec), *FALLBACK_ENCODERS):
            if name is None:
                continue
            try:
                enc = find_encoder(name)
            except UserError:
                continue
            if not storable(enc.canonical_name, allowed):
                continue
            formats = [f.name for f in (enc.video_formats or [])]
            chosen = want if want.name in formats or enc.video_formats is None else (None if pix_fmt else _pick_pix_fmt(want, formats))
            if chosen is not None:
                codec = name
                break
        if chosen is None or codec is None:
            raise UserError(f"no encoder here can write {want.name} video into {where}", instead=["codec", "pix_fmt"])
    if chosen.name != want.name:
        log.warning("%s cannot encode %s; writing %s", codec, want.name, chosen.name)
    width, height = request.size or (info.width, info.height)
    sar = info.sample_aspect_ratio
    if (width, height) != (info.width, info.height):
        cw, ch = 1 << chosen.log2_chroma_w, 1 << chosen.log2_chroma_h
        if width % cw or height % ch:
            raise SettingError("size", f"{width}x{height}", f"{chosen.name} ({chosen.subsampling()} chroma) needs a width that is "
                               f"a multiple of {cw} and a height that is a multiple of {ch}, e.g. {width - width % cw}x{height - height % ch}")
        if sar:  # the picture keeps its display shape, as FFmpeg's scale filter keeps it
            sar = sar * Fraction(height * info.width, width * info.height)

    options = dict(ENCODER_DEFAULTS.get(codec, {}))
    if codec == "prores_ks":
        options["profile"] = "4444" if chosen.log2_chroma_w == 0 else "hq"
    if crf is not None:
        key = CRF_OPTION.get(codec)
        if key is None:
            raise SettingError("crf", crf, f"{codec} has no constant-quality setting", instead=["encoder_opt"])
        options[key] = f"{crf:g}"
    if preset is not None:
        key = PRESET_OPTION.get(codec)
        if key is None:
            raise SettingError("encoder_preset", preset, f"{codec} has no presets", instead=["encoder_opt"])
        options[key] = preset
    user = {}
    for item in request.encoder_opt:  # KEY=VALUE, checked when the request was made
        key, _, value = item.partition("=")
        merge_option(options, key, value)
        user[key] = value
    if fmt in CONSTANT_RATE_CONTAINERS:
        for key, value in NO_B_FRAMES.get(codec, {}).items():
            if key not in user:
                merge_option(options, key, value)
    for st in copied:
        if st.type in ("audio", "subtitle", "video") and not storable(st.codec, allowed):
            raise UserError(_uncopyable(info, st.index, st.type, st.codec, out))
    if info.hdr is not None:
        if codec == "libx265":
            # What the user gives in x265-params wins (e.g. max-cll measured by an earlier run).
            given = {item.partition("=")[0] for item in options.get("x265-params", "").split(":")}
            params = ":".join(p for p in info.hdr.x265_params() if p.partition("=")[0] not in given)
            if params:
                merge_option(options, "x265-params", params)
        else:
            log.warning("the input has HDR10 metadata; only libx265 output carries it (in the bitstream)")
    return EncoderSettings(codec, chosen, width, height, options, sar)


def _uncopyable(info: VideoInfo, index: int, kind: str, codec: str | None, out: Path) -> str:
    where = f"{out.suffix} files" if out.suffix else f"{out}"
    return (
        f"{info.label}: stream #{index} ({kind}, {codec}) cannot be stored in {where} "
        f"(streams are copied, not converted); write .mkv or another container that takes {codec}"
    )


# ----------------------------------------------------------------------------- the sink
class StreamCopier:
    """Every stream but the restored video, copied packet for packet (no re-encoding), kept in
    step with the video by :meth:`pump`: from a second reader of a file input, or, for a stream
    input (read once), from ``feed``: its own demuxer's queue of the other streams' packets
    (``feed.streams``: the input's streams; ``feed.take()``: the next packet, None when none is
    waiting; io/live_source.py's ``PacketQueue``)."""

    def __init__(self, info: VideoInfo, out_container, out: Path, allowed: set[str] | None,
                 copy_data: bool = True, only: set[int] | None = None, feed=None) -> None:
        import av

        from .metadata import carried_as_metadata, stream_tags

        self.input = av.open(str(info.path)) if feed is None else None
        self.output = out_container
        self.map = {}
        for s in (self.input.streams if feed is None else feed.streams):
            if s.index == info.video_index or carried_as_metadata(s):  # timecode and chapters: io/metadata.py
                continue
            if (s.type == "data" and not copy_data) or (only is not None and s.index not in only):
                continue
            name = s.codec_context.name if s.codec_context is not None else None
            if s.type in ("audio", "subtitle", "video") and not storable(name, allowed):
                message = _uncopyable(info, s.index, s.type, name, out)
                self.close()
                raise UserError(message)
            try:
                o = out_container.add_stream_from_template(s)
            except Exception as e:
                message = f"{info.label}: stream #{s.index} ({s.type}, {name}) cannot be copied to {out.suffix or out}: {e}"
                self.close()
                raise UserError(message) from None
            for k, v in stream_tags(s).items():  # language, title, ...
                o.metadata[k] = v
            o.disposition = s.disposition  # default, forced, commentary, attached picture...
            self.map[s.index] = o
        if feed is not None:
            self._next = feed.take
        else:
            packets = self.input.demux([self.input.streams[i] for i in self.map]) if self.map else iter(())
            self._next = lambda: next(packets, None)
        self._pending = None
        self.copied = 0

    def pump(self, until: float | None = None) -> None:
        """Mux copied packets up to time ``until`` (seconds; None: all that are left, or, from a
        stream, all that arrived)."""
        while True:
            p = self._pending
            if p is None:
                p = self._next()
                if p is None:
                    return
                if p.size == 0 and p.pts is None and p.dts is None:
                    continue  # the demuxer's end-of-stream marker
                if p.stream_index not in self.map:
                    continue  # a stream left out (data with copy_data off), or one a stream added later
            ts = p.dts if p.dts is not None else p.pts
            if until is not None and ts is not None and p.time_base is not None and float(ts * p.time_base) > until:
                self._pending = p
                return
            self._pending = None
            p.stream = self.map[p.stream_index]  # (not p.stream: a stream's demuxer may be closed by now)
            self.output.mux(p)
            self.copied += 1

    def close(self) -> None:
        if self.input is not None:
            self.input.close()


class VideoSink:
    """Encode restored frames with the input's timestamps into the output container, with
    the input's metadata (io/metadata.py) and every other stream copied beside them.

    ``source``: the input's kind (io/sources.py), which says what goes beside the video
    (metadata; streams copied, or a script's audio encoded). ``copy_data=False`` leaves data
    streams out (FFmpeg's ``-dn``); ``only``: copy just these input streams (the pre-flight
    check uses it to find a stream the muxer refuses)."""

    # How far ahead of the video the copied streams are muxed (seconds).
    LEAD = 1.0

    def __init__(self, path: str | Path, out: str | Path, info: VideoInfo, settings: EncoderSettings, *,
                 source: Beside, copy_data: bool = True, only: set[int] | None = None,
                 container: str | None = None, options: dict[str, str] | None = None) -> None:
        """``path``: where the bytes go (a file, a URL, ``pipe:N``); ``out``: what the user
        named (for messages); ``container``: the muxer (default: from OUT's extension);
        ``options``: muxer/protocol options (live outputs)."""
        import av

        from .metadata import FieldFlags, apply_metadata

        self.info = info
        self.settings = settings
        self.fmt = settings.pix_fmt
        self.out = out
        fmt_name = container or container_format(Path(out))
        self.clock = OutputClock(info, fmt_name, settings.codec)
        muxer_options = {**MUXER_OPTIONS.get(Path(str(out)).suffix.lower(), {}), **(options or {})}
        try:
            self.container = av.open(str(path), "w", format=fmt_name, container_options=muxer_options)
        except av.error.FFmpegError as e:
            raise UserError(f"{out}: cannot create the output ({e})") from None
        self.copier: OtherStreams | None = None
        try:
            vs = self.container.add_stream(settings.codec, rate=info.average_rate)
            vs.width, vs.height = settings.width, settings.height
            vs.pix_fmt = self.fmt.name
            # The input's own clock: every frame keeps its timestamp (VFR stays VFR), except
            # where the container has none (AVI, y4m: see OutputClock).
            vs.time_base = self.clock.time_base
            cc = vs.codec_context
            cc.time_base = self.clock.time_base
            if settings.sample_aspect_ratio:
                cc.sample_aspect_ratio = settings.sample_aspect_ratio
            info.tags.apply_to(cc)
            cc.options = dict(settings.options)
            if settings.codec in ("libx265", "hevc_nvenc") and fmt_name in ("mp4", "mov"):
                cc.codec_tag = "hvc1"  # the tag Apple players require
            self.stream = vs
            self.metadata = source.metadata(info)
            self.lost = apply_metadata(self.metadata, self.container, vs, fmt_name)
            self.fields = FieldFlags(self.metadata.field_order) if self.metadata.field_order > 1 else None
            self.copier = source.other_streams(info, self.container, out, fmt_name, copy_data, only)
            try:
                # Opened from a lower-priority thread: the encoder's worker threads inherit it.
                call_at_lower_priority(self.container.start_encoding)
            except (av.error.FFmpegError, ValueError) as e:
                if _is_url(out) and getattr(e, "errno", None) is not None and isinstance(e, OSError):
                    raise UserError(f"{out}: cannot open the output: {e.strerror or e}") from None
                raise UserError(f"{out}: cannot start writing: {settings.codec} with {settings.describe()} refused ({e})") from None
            unused = dict(cc.options or {})
            if unused:  # FFmpeg leaves the options no part of the encoder took
                names = ", ".join(f"'{k}'" for k in unused)
                raise EncoderOptionError(
                    f"{settings.codec} has no option {names} (FFmpeg: Unrecognized option); "
                    f"see 'ffmpeg -h encoder={settings.codec}'",
                    option="encoder_opt",
                )
        except BaseException:
            self.abort()
            raise
        self.frames = 0
        self._last_dts: int | None = None  # of the last packet muxed before the flush

    def write(self, planes: tuple[np.ndarray, np.ndarray, np.ndarray], pts: int, duration: int = 0) -> None:
        import av

        frame = av.VideoFrame(self.settings.width, self.settings.height, self.fmt.name)
        fill_planes(frame, planes, self.fmt)
        frame.pts, frame.duration = self.clock.place(pts, duration)
        frame.time_base = self.clock.time_base
        self.info.tags.apply_to(frame)
        try:
            if self.fields is not None:
                frame = self.fields(frame)
            for packet in self.stream.encode(frame):
                self._last_dts = packet.dts
                self.container.mux(packet)
            if self.copier is not None:
                self.copier.pump(float(pts * self.info.time_base) + self.LEAD)
        except (OSError, av.error.FFmpegError) as e:
            if getattr(e, "errno", None) in RECEIVER_GONE:
                raise ReceiverGone(f"{_label(self.out)}: the receiver went away after {self.frames} frames were written") from None
            if isinstance(e, av.error.FFmpegError):
                raise ProcessingError(f"encoding frame {self.frames} failed: {_ffmpeg_reason(e)}") from None
            raise ProcessingError(f"writing frame {self.frames} failed: {e.strerror or e}") from None
        self.frames += 1

    def finish(self, copy_rest: bool = True) -> None:
        """Flush the encoder, copy the rest of the other streams (``copy_rest``) and write
        the trailer."""
        import av

        try:
            for packet in _valid_decode_times(list(self.stream.encode(None)), self._last_dts):
                self.container.mux(packet)
            if copy_rest and self.copier is not None:
                self.copier.pump(None)
            self.container.close()
            if self.clock.moved:
                log.warning(
                    "the input's frame rate varies; %d of %d frames were moved onto the constant %s fps grid this "
                    "container needs (write .mkv or .mp4 to keep every frame's time)",
                    self.clock.moved, self.frames, f"{float(1 / self.clock.time_base):.3f}",
                )
        except (OSError, av.error.FFmpegError) as e:
            if getattr(e, "errno", None) in RECEIVER_GONE:
                raise ReceiverGone(f"{_label(self.out)}: the receiver went away after {self.frames} frames were written") from None
            raise ProcessingError(f"finishing the output failed: {_ffmpeg_reason(e)}") from None
        finally:
            if self.copier is not None:
                self.copier.close()

    def abort(self) -> None:
        for close in (getattr(self.copier, "close", None), self.container.close):
            if close is None:
                continue
            try:
                close()
            except Exception:  # already failing: the partial file is removed anyway
                pass


class ReceiverGone(ProcessingError):
    """A pipe's reader or a network receiver stopped taking the output."""


RECEIVER_GONE = (errno.EPIPE, errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.ENOTCONN)


def _is_url(out) -> bool:
    return "://" in str(out)


def _label(out) -> str:
    return "standard output" if str(out) == "-" else str(out)


class OutputClock:
    """Output timestamps. Containers with real timestamps get the input's (time base and
    values). AVI has none: a frame's place is its index at a constant rate, which AVI
    declares as 1/time base (MXF and MPEG-2 video likewise count frames). There frames go
    on the grid of the input's average rate at
    the slot nearest their time (a variable-rate input is therefore made constant-rate,
    and a frame is never moved by more than half a frame period unless two frames would
    share a slot)."""

    # MPEG-1/2 video only knows frame rates (its time base must be 1/rate).
    CONSTANT_RATE_CONTAINERS = CONSTANT_RATE_CONTAINERS
    CONSTANT_RATE_ENCODERS = {"mpeg2video", "mpeg1video"}

    def __init__(self, info: VideoInfo, container_format: str, encoder: str = "") -> None:
        self.info = info
        self.constant = container_format in self.CONSTANT_RATE_CONTAINERS or encoder in self.CONSTANT_RATE_ENCODERS
        self.last = -1
        self.moved = 0  # frames placed more than a quarter period from their own time
        if self.constant:
            rate = info.average_rate or Fraction(25)
            self.time_base = Fraction(rate.denominator, rate.numerator)
            self.step = info.time_base / self.time_base  # output ticks per input tick
        else:
            self.time_base = info.time_base

    def place(self, pts: int, duration: int) -> tuple[int, int]:
        if not self.constant:
            return pts, duration
        exact = pts * self.step
        slot = max(self.last + 1, round(exact))
        if abs(slot - exact) > 0.25:
            self.moved += 1
        self.last = slot
        return slot, 1


def fill_planes(frame, planes, fmt: PlaneFormat) -> None:
    """Copy Y, Cb, Cr arrays into a PyAV frame's buffers (planar, or interleaved chroma for
    NV12/P010-style formats)."""
    item = fmt.dtype.itemsize
    shapes = fmt.plane_shapes(frame.width, frame.height)
    if fmt.semi_planar:
        y, cb, cr = planes
        shift = 16 - fmt.bits if fmt.name.startswith("p0") or fmt.name.startswith("p2") else 0  # P010: MSB-aligned
        _view(frame.planes[0], shapes[0], fmt.dtype, item)[...] = np.asarray(y) << shift if shift else y
        ch, cw = shapes[1]
        uv = _view(frame.planes[1], (ch, 2 * cw), fmt.dtype, item).reshape(ch, cw, 2)
        uv[..., 0] = np.asarray(cb) << shift if shift else cb
        uv[..., 1] = np.asarray(cr) << shift if shift else cr
        return
    for p, shape, a in zip(frame.planes, shapes, planes):
        _view(p, shape, fmt.dtype, item)[...] = a


def _view(plane, shape: tuple[int, int], dtype: np.dtype, item: int) -> np.ndarray:
    h, w = shape
    stride = plane.line_size // item
    return np.frombuffer(plane, dtype=dtype, count=h * stride).reshape(h, stride)[:, :w]


def _ffmpeg_reason(e: BaseException) -> str:
    """The error's words, with the line FFmpeg logged for it (which says what was wrong: an
    "Invalid argument" alone does not)."""
    reason = getattr(e, "strerror", None) or str(e)
    log = getattr(e, "log", None)  # PyAV: (level, component, message) of FFmpeg's last error line
    if log and len(log) == 3 and log[2]:
        reason += f" (FFmpeg {log[1] or ''}: {str(log[2]).strip()})".replace(" :", ":")
    return reason


def _valid_decode_times(packets: list, last_dts: int | None) -> list:
    """The encoder's last packets, with decode times a muxer accepts.

    libx265 leaves the decode time of a picture unset when the whole encode is shorter than
    its reordering delay (two frames at the default preset): the first packet then carries
    whatever was in memory (seen: 4860105961587561837 for a picture shown at 0), and the muxer
    refuses it (EINVAL), about one run in three. The pictures themselves are sound, so the
    decode times are rebuilt from the presentation times, the way encoders derive them: the
    k-th smallest pts, shifted back just enough that no picture is decoded after it is shown."""
    times = [(p.pts, p.dts) for p in packets]
    if not times or any(pts is None or dts is None for pts, dts in times):
        return packets
    dts = [d for _, d in times]
    ordered = all(d <= pts for pts, d in times) and all(a < b for a, b in zip(dts, dts[1:]))
    if ordered and (last_dts is None or dts[0] > last_dts):
        return packets
    shown = sorted(pts for pts, _ in times)
    shift = max(0, max(s - pts for s, (pts, _) in zip(shown, times)))
    rebuilt = [s - shift for s in shown]
    if len(set(shown)) != len(shown) or (last_dts is not None and rebuilt[0] <= last_dts):
        return packets  # not repairable here: the muxer's error says what is wrong
    log.warning("the encoder gave its last %d packets decode times no muxer accepts (%s); rebuilt from their "
                "presentation times", len(packets), ", ".join(f"pts {p} dts {d}" for p, d in times[:4]))
    for packet, d in zip(packets, rebuilt):
        packet.dts = d
    return packets
