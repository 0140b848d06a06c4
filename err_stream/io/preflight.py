"""Know before the first frame is restored that the output can be written.

Some refusals only come when the muxer writes its header or even its trailer (a ``tmcd``
track without a frame rate, a codec a muxer without a codec table does not take, an
encoder option nobody consumed). :func:`plan_output` therefore writes a complete small
file (three grey frames, the first packets of every copied stream, header and trailer) into
a scratch folder, with the real encoder settings and metadata. If that fails it finds the
culprit (the video encoder, or which copied stream) and says what to do.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ProcessingError, UserError
from .sink import (
    DEFAULT_ENCODERS,
    Beside,
    FALLBACK_ENCODERS,
    EncoderOptionError,
    EncoderSettings,
    VideoSink,
    choose_encoder,
    container_format,
)
from .ffmpeg_log import ffmpeg_log_level
from .source import VideoInfo

if TYPE_CHECKING:
    from ..video.options import EncodeOptions

log = logging.getLogger(__name__)

# Encoders worth trying, in order, when the input's family cannot go into the container
# (MXF: the broadcast intermediates and XDCAM-style MPEG-2; MPEG-TS: the broadcast codecs).
CONTAINER_ENCODERS = {
    "mxf": ("prores_ks", "dnxhd", "mpeg2video"),
    "mxf_d10": ("mpeg2video",),
    "mxf_opatom": ("dnxhd",),
    "mpegts": ("libx264", "libx265", "mpeg2video"),
    "avi": ("ffv1", "libx264", "mpeg2video"),
}
# Three, not two: libx265 -> MP4 with only two frames fails at the trailer about one time in
# four ("Not yet implemented", AVERROR_PATCHWELCOME; seen with FFmpeg 9.0 / x265 4.x), which
# would refuse an output the real run writes; with three or four frames it never did in 32.
DRY_RUN_FRAMES = 3


def plan_output(info: VideoInfo, source: Beside, out: Path, request: EncodeOptions, copy_data: bool = True) -> EncoderSettings:
    """The encoder settings for ``out`` (from ``request``, the user's encoder settings),
    proven by a dry run; UserError naming the stream and the way out when the output cannot
    be written. ``source``: the input's kind (what goes beside the video)."""
    out = Path(out)
    copied = source.copied_streams(info)
    settings = choose_encoder(info, out, request, copied=copied)
    failure = dry_run(info, source, out, settings, copy_data)
    if failure is None:
        return settings
    video_failure = dry_run(info, source, out, settings, copy_data, only=set())
    if video_failure is None:  # the video is fine: a copied stream is refused
        raise _blame_stream(info, source, out, settings, copy_data, failure)
    if request.codec is None:  # our default choice failed: another encoder may suit the container
        tried = {settings.codec}
        fmt = container_format(out)
        for name in (*CONTAINER_ENCODERS.get(fmt, ()), DEFAULT_ENCODERS.get(info.codec), *FALLBACK_ENCODERS):
            if name is None or name in tried:
                continue
            tried.add(name)
            try:
                other = choose_encoder(info, out, dataclasses.replace(request, codec=name, encoder_preset=None), copied=copied)
            except UserError:
                continue
            if dry_run(info, source, out, other, copy_data, only=set()) is None and dry_run(info, source, out, other, copy_data) is None:
                log.warning("%s cannot be written into %s files here; using %s", settings.codec, out.suffix, other.codec)
                return other
    raise UserError(
        f"{out}: {container_format(out)} output cannot take {settings.describe()} video ({video_failure})",
        instead=["codec", "pix_fmt"], instead_for="write another container, or",
    )


def dry_run(info: VideoInfo, source: Beside, out: Path, settings: EncoderSettings, copy_data: bool = True,
            only: set[int] | None = None) -> str | None:
    """Write a small file like the real one; None if it worked, else why not (FFmpeg's words)."""
    import av

    with ffmpeg_log_level(av.logging.ERROR):  # FFmpeg's own words for the refusal, captured below
        return _dry_run(info, source, out, settings, copy_data, only)


def _dry_run(info: VideoInfo, source: Beside, out: Path, settings: EncoderSettings, copy_data: bool,
             only: set[int] | None) -> str | None:
    import av

    failure = None
    with tempfile.TemporaryDirectory(prefix="err-stream-preflight-") as d, av.logging.Capture(local=False) as logs:
        scratch = Path(d) / f"dry-run{out.suffix}"
        sink = None
        try:
            sink = VideoSink(scratch, out, info, settings, source=source, copy_data=copy_data, only=only)
            grey = _grey_planes(settings)
            for i in range(DRY_RUN_FRAMES):
                sink.write(grey, i * info.tick, info.tick)
            copied = len(sink.copier.map) if sink.copier is not None else 0
            sink.finish(copy_rest=False)
            sink = None
            failure = _read_back(scratch, container_format(out), settings, copied)
        except EncoderOptionError:
            raise
        except (UserError, ProcessingError, av.error.FFmpegError, ValueError) as e:
            failure = str(e)
        finally:
            if sink is not None:
                sink.abort()
    if failure is None:
        return None
    return _in_ffmpeg_words(failure, logs)


def _read_back(path: Path, fmt: str, settings: EncoderSettings, copied: int) -> str | None:
    """Some muxers write what they do not know as opaque data (MPEG-TS does with ProRes):
    the file must read back as the video we meant, with every copied stream."""
    import av

    codec = av.codec.Codec(settings.codec, "w").canonical_name
    try:
        # The format named: a probe of a two-frame MPEG-TS file would find too little to go on.
        with av.open(str(path), format=fmt) as c:
            video = [s for s in c.streams.video if s.codec_context is not None and s.codec_context.name == codec]
            if not video:
                return f"the file it writes does not read back as {codec} video"
            if len(c.streams) < 1 + copied:
                return f"the file it writes holds {len(c.streams)} of the {1 + copied} streams"
            if next(iter(c.decode(video[0])), None) is None:
                return f"its {codec} video does not decode"
    except av.error.FFmpegError as e:
        return f"the file it writes cannot be read back ({e})"
    return None


def _grey_planes(settings: EncoderSettings):
    fmt = settings.pix_fmt
    mid = 1 << (fmt.bits - 1)
    return tuple(np.full(shape, mid, dtype=fmt.dtype) for shape in fmt.plane_shapes(settings.width, settings.height))


def _in_ffmpeg_words(message: str, logs) -> str:
    """FFmpeg's logged reason when there is one: more telling than an error code."""
    import av

    said = [text.strip() for level, _name, text in logs if level is not None and level <= av.logging.ERROR and text.strip()]
    if "last error log:" in message:
        said.append(message.split("last error log:", 1)[1].strip(" )").split("] ", 1)[-1])
    said = list(dict.fromkeys(said))[-2:]
    return "FFmpeg: " + " / ".join(said) if said else message


def _blame_stream(info: VideoInfo, source: Beside, out: Path, settings: EncoderSettings, copy_data: bool,
                  failure: str) -> UserError:
    """The error naming the copied stream the container refuses; for a data stream it
    suggests the ``no_data`` setting, which each front end words its own way."""
    for st in info.other_streams:
        if st.type == "data" and not copy_data:
            continue
        why = dry_run(info, source, out, settings, copy_data, only={st.index})
        if why is None:
            continue
        reason = (
            f"{info.path}: stream #{st.index} ({st.type}, {st.codec}) cannot be written into {out.suffix} files "
            f"({why}); write another container that takes it"
        )
        if st.type == "data":
            return UserError(reason, instead=["no_data"], instead_for="or, to leave data streams out,")
        return UserError(reason)
    return UserError(f"{out}: cannot be written ({failure})")
