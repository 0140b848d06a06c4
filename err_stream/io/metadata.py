"""What a file says about its pictures besides the pixels: timecode, rotation, field order,
chapters, titles, languages, dispositions, creation time. Read from the input once and
written onto the output, so that nothing is dropped without a word.

The timecode is not copied as a data track (muxers refuse a bare ``tmcd`` stream): it is
set as the video stream's ``timecode`` tag, from which the MOV/MP4 muxers write a new
``tmcd`` track, MXF its timecode component, and Matroska/AVI a ``TIMECODE`` tag. MPEG-TS
and WebM have no place for it: the caller warns.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

log = logging.getLogger(__name__)

# FFmpeg's AVFieldOrder.
FIELD_ORDERS = {0: "unknown", 1: "progressive", 2: "top field first", 3: "bottom field first",
                4: "top coded first, bottom shown first", 5: "bottom coded first, top shown first"}

# Tags that describe the old file or are rewritten by the muxer; everything else is copied.
_SKIP_CONTAINER_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands"}
_SKIP_STREAM_TAGS = {"encoder", "duration", "handler_name", "vendor_id", "number_of_frames", "number_of_bytes",
                     "bps", "_statistics_writing_app", "_statistics_writing_date_utc", "_statistics_tags"}

# Encoders that code interlaced pictures with FFmpeg's +ildct+ilme flags.
INTERLACED_DCT_ENCODERS = {"libx264", "mpeg2video"}

# Containers that hold the timecode somewhere (a track, a component or a tag).
TIMECODE_CONTAINERS = {"mov", "mp4", "mxf", "mxf_d10", "matroska", "avi", "nut"}


@dataclass
class Metadata:
    container_tags: dict[str, str] = field(default_factory=dict)
    video_tags: dict[str, str] = field(default_factory=dict)
    video_disposition: int = 0
    timecode: str | None = None
    display_matrix: tuple[int, ...] | None = None
    field_order: int = 0
    chapters: list[dict] = field(default_factory=list)
    timecode_streams: list[int] = field(default_factory=list)

    @property
    def rotation(self) -> float:
        """Counter-clockwise degrees of the display matrix (0 without one)."""
        if self.display_matrix is None:
            return 0.0
        import math

        a, b, _, c, d = (v / 65536 for v in self.display_matrix[:5])
        return round(math.degrees(math.atan2(c, a)), 3)

    def describe(self) -> list[str]:
        out = []
        if self.timecode:
            out.append(f"timecode {self.timecode}")
        if self.display_matrix is not None:
            out.append(f"rotation {self.rotation:g}°")
        if self.field_order > 1:
            out.append(FIELD_ORDERS.get(self.field_order, str(self.field_order)))
        if self.chapters:
            out.append(f"{len(self.chapters)} chapters")
        return out


def top_first(field_order: int) -> bool:
    """Whether the top field is displayed first (AV_FIELD_TT, AV_FIELD_BT)."""
    return field_order in (2, 5)


class FieldFlags:
    """Marks each frame interlaced with the input's field order (FFmpeg's ``setfield``
    filter; PyAV cannot set the frame flags), which encoders such as MPEG-2 code from."""

    def __init__(self, field_order: int) -> None:
        self.mode = "tff" if top_first(field_order) else "bff"
        self.graph = None

    def __call__(self, frame):
        if self.graph is None:
            import av.filter

            g = av.filter.Graph()
            src = g.add_buffer(width=frame.width, height=frame.height, format=frame.format.name, time_base=frame.time_base)
            flag = g.add("setfield", self.mode)
            sink = g.add("buffersink")
            src.link_to(flag)
            flag.link_to(sink)
            g.configure()
            self.graph = g
        self.graph.push(frame)
        return self.graph.pull()


def is_timecode_stream(stream) -> bool:
    """A QuickTime ``tmcd`` track (a data stream whose only content is the start timecode)."""
    return stream.type == "data" and "timecode" in stream.metadata


_AVDISCARD_ALL = 48


def carried_as_metadata(stream) -> bool:
    """Streams that are structure, not content: the ``tmcd`` track (its timecode goes on the
    video stream) and the text track MOV keeps chapters in (which the demuxer marks as
    discarded and reads as chapters). They are rewritten by the muxer, never copied."""
    return is_timecode_stream(stream) or int(getattr(stream, "discard", 0) or 0) >= _AVDISCARD_ALL


def read_metadata(path: str | Path, video_index: int) -> Metadata:
    import av

    with av.open(str(path)) as c:
        vs = c.streams[video_index]
        m = Metadata()
        m.container_tags = {k: v for k, v in c.metadata.items() if k.lower() not in _SKIP_CONTAINER_TAGS}
        m.video_tags = stream_tags(vs)
        m.video_disposition = int(vs.disposition)
        m.timecode = vs.metadata.get("timecode") or c.metadata.get("timecode")
        for s in c.streams:
            if is_timecode_stream(s):
                m.timecode_streams.append(s.index)
                m.timecode = m.timecode or s.metadata["timecode"]
        m.container_tags.pop("timecode", None)
        raw = (vs.codec_context.coded_side_data or {}).get("display_matrix")
        if raw is not None and len(raw) == 36:
            m.display_matrix = struct.unpack("<9i", raw)
        m.field_order = int(vs.codec_context.field_order or 0)
        m.chapters = [dict(ch) for ch in c.chapters()]
        return m


def stream_tags(stream) -> dict[str, str]:
    """A stream's tags worth keeping (language, title, ...), in the names muxers write."""
    tags = {k: v for k, v in stream.metadata.items() if k.lower() not in _SKIP_STREAM_TAGS and k != "timecode"}
    if "name" in tags and "title" not in tags:  # MOV reads a track's title back as "name"
        tags["title"] = tags.pop("name")
    return tags


def apply_metadata(m: Metadata, container, video_stream, container_format: str) -> list[str]:
    """Write ``m`` onto an output container and its (not yet opened) video stream; return
    what could not be kept, worded for a warning."""
    lost = []
    for k, v in m.container_tags.items():
        container.metadata[k] = v
    for k, v in m.video_tags.items():
        video_stream.metadata[k] = v
    if m.video_disposition:
        video_stream.disposition = m.video_disposition
    if m.timecode:
        if container_format == "avi":  # AVI keeps tags for the file only
            container.metadata["timecode"] = m.timecode
        elif container_format in TIMECODE_CONTAINERS:
            video_stream.metadata["timecode"] = m.timecode
        else:
            lost.append(f"the timecode {m.timecode} ({container_format} has no place for it)")
    if m.display_matrix is not None:
        video_stream.set_display_matrix(list(m.display_matrix))
    if m.field_order:
        video_stream.codec_context.field_order = m.field_order
        if m.field_order > 1 and video_stream.codec_context.name in INTERLACED_DCT_ENCODERS:
            # Code the fields as fields (the restored frames are woven fields), so the
            # bitstream says interlaced too, not only the container. The field order of
            # the bitstream comes from the frames' flags (FieldFlags), and for x264 from
            # its own parameter.
            opts = dict(video_stream.codec_context.options)
            opts["flags"] = "+ildct+ilme" + opts.get("flags", "")
            if video_stream.codec_context.name == "libx264" and not top_first(m.field_order):
                opts["x264-params"] = ":".join(filter(None, [opts.get("x264-params"), "bff=1"]))
            video_stream.codec_context.options = opts
    if m.chapters:
        if container_format in ("mpegts",):
            lost.append(f"{len(m.chapters)} chapters ({container_format} has none)")
        else:
            container.set_chapters([{**ch, "time_base": Fraction(ch["time_base"].numerator, ch["time_base"].denominator)} for ch in m.chapters])
    return lost
