"""Cutting a video at keyframes, and joining restored pieces by stream copy.

A cut is made only at a keyframe that starts a closed group of pictures: every packet before
it (in decode order) is shown before it and every packet after it is shown at or after it,
so each piece decodes on its own and the pieces' frames, in order, are the whole video's
frames. The pieces keep the input's own timestamps: each is stream-copied into a container
that stores them exactly (QuickTime when it takes the codec), restored by the transcoder
into OUT's container, and the restored pieces' packets are muxed into one file with the
input's other streams (audio, subtitles, data), chapters and metadata copied once.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from err_stream.errors import ProcessingError, UserError

if TYPE_CHECKING:
    from err_stream.io.source import VideoInfo

log = logging.getLogger(__name__)


@dataclass
class Segment:
    index: int
    first_packet: int  # position of its keyframe in decode order
    frames: int  # packets (one frame each)
    key_pts: int  # the keyframe's timestamp (input stream time base): how the piece is found again
    start: float  # seconds, first frame shown
    end: float  # seconds, after its last frame

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SegmentPlan:
    path: Path
    video_index: int
    codec: str
    time_base: Fraction
    frames: int
    duration: float
    segments: list[Segment]
    pts: list[int]  # every frame's timestamp, decode order (to check the pieces' outputs)


def plan_segments(path: str | Path, seconds: float, info: VideoInfo | None = None, packets: bool = True) -> SegmentPlan:
    """Read the video's packets (not its pictures) and cut it about every ``seconds``
    (0: one piece) at keyframes that start closed groups of pictures. ``info``: the input's
    probe, if done already; ``packets=False``: an input without packets (a VapourSynth
    script), restored in one piece."""
    import av

    path = Path(path)
    if info is None:
        from err_stream.io.source import probe

        info = probe(path)  # the transcoder's own checks and messages for unreadable input
    if not packets:
        # A VapourSynth script has frames, not packets: the transcoder renders it in one piece.
        frames = info.frames_estimate or 0
        whole = [Segment(0, 0, frames, 0, 0.0, info.duration or 0.0)]
        return SegmentPlan(path, info.video_index, info.codec, info.time_base, frames, info.duration or 0.0, whole, [])
    packets: list[tuple[int | None, bool, int]] = []
    try:
        with av.open(str(path)) as c:
            vs = c.streams[info.video_index]
            for p in c.demux(vs):
                if p.size == 0 and p.pts is None and p.dts is None:
                    continue
                packets.append((p.pts, bool(p.is_keyframe), int(p.duration or 0)))
    except av.error.FFmpegError as e:
        raise UserError(f"{path}: corrupt or truncated video: reading its packets failed after {len(packets)} ({e})") from None
    if not packets:
        raise UserError(f"{path}: the video stream has no packets")
    tb = info.time_base
    whole = [Segment(0, 0, len(packets), packets[0][0] or 0, 0.0, info.duration or 0.0)]
    if seconds <= 0 or any(p[0] is None for p in packets):
        if seconds > 0:
            log.info("%s: some packets have no timestamp; restored in one piece", path)
        return SegmentPlan(path, info.video_index, info.codec, tb, len(packets), info.duration or 0.0, whole, [p[0] or 0 for p in packets])
    pts = [p[0] for p in packets]
    n = len(pts)
    # A keyframe at position i is a clean cut if max(pts[:i]) < pts[i] <= min(pts[i:]).
    suffix_min = [0] * (n + 1)
    suffix_min[n] = None  # type: ignore[call-overload]
    low = None
    for i in range(n - 1, -1, -1):
        low = pts[i] if low is None else min(low, pts[i])
        suffix_min[i] = low
    cuts = [0]
    high = pts[0]
    origin = min(pts)
    for i in range(1, n):
        clean = packets[i][1] and high < pts[i] and suffix_min[i] >= pts[i]
        if clean and float((pts[i] - pts[cuts[-1]] if cuts[-1] else pts[i] - origin) * tb) >= seconds:
            cuts.append(i)
        high = max(high, pts[i])
    end_pts = max(pts) + (packets[pts.index(max(pts))][2] or 0)
    segments = []
    for k, first in enumerate(cuts):
        last = cuts[k + 1] if k + 1 < len(cuts) else n
        start = float((min(pts[first:last]) - origin) * tb) if k else 0.0
        stop = float((pts[cuts[k + 1]] - origin) * tb) if k + 1 < len(cuts) else float((end_pts - origin) * tb)
        segments.append(Segment(k, first, last - first, pts[first], start, stop))
    return SegmentPlan(path, info.video_index, info.codec, tb, n, float((end_pts - origin) * tb), segments, pts)


def constant_rate(plan: SegmentPlan) -> bool:
    """Every frame lasts the same (within a tick)."""
    times = sorted(plan.pts)
    steps = {b - a for a, b in zip(times, times[1:])}
    return not steps or max(steps) - min(steps) <= 1


# Encoders that write the stream's frame rate into their headers (HEVC's VUI timing): on a
# variable-rate input each piece has its own average rate, so pieces would not share headers.
RATE_IN_HEADERS = {"libx265", "hevc_nvenc"}


def segment_container(codec: str, time_base: Fraction) -> str:
    """A container that keeps the piece's timestamps exactly: QuickTime keeps the stream's
    time base; Matroska counts milliseconds (exact when the input does too); NUT otherwise."""
    from err_stream.io.sink import container_codecs

    if codec in container_codecs("mov"):
        return "mov"
    if (1000 * time_base).denominator == 1 and codec in container_codecs("matroska"):
        return "mkv"
    return "nut"


def piece_suffix(encoder: str, output_suffix: str) -> str:
    """Where a restored piece is written: QuickTime when it takes the codec (it keeps every
    packet's presentation and decode times exactly, where Matroska would drop decode times
    and MPEG-TS shift both), else the output's own container."""
    import av

    from err_stream.io.sink import container_codecs

    try:
        codec = av.codec.Codec(encoder, "w").name
    except Exception:
        return output_suffix
    return ".mov" if codec in (container_codecs("mov") or set()) else output_suffix


def write_segment_input(plan: SegmentPlan, seg: Segment, dst: Path) -> None:
    """Copy the piece's video packets (no decoding) into ``dst``, timestamps unchanged."""
    import av

    if seg.index > 0:
        try:
            _copy_packets(plan, seg, dst, seek=True)
            return
        except _NotFound:
            log.info("%s: seeking missed piece %d; reading from the start", plan.path, seg.index)
    try:
        _copy_packets(plan, seg, dst, seek=False)
    except _NotFound:
        raise ProcessingError(f"{plan.path}: piece {seg.index} (keyframe at pts {seg.key_pts}) is no longer in the file; has it changed?") from None
    except av.error.FFmpegError as e:
        raise UserError(f"{plan.path}: corrupt or truncated video near t={seg.start:.3f} s ({e})") from None


class _NotFound(Exception):
    pass


def _copy_packets(plan: SegmentPlan, seg: Segment, dst: Path, seek: bool) -> None:
    import av

    with av.open(str(plan.path)) as ic:
        vs = ic.streams[plan.video_index]
        if seek:
            ic.seek(seg.key_pts, stream=vs, backward=True, any_frame=False)
        with av.open(str(dst), "w", format=_muxer(dst)) as oc:
            o = oc.add_stream_from_template(vs)
            o.time_base = vs.time_base
            copied = 0
            for p in ic.demux(vs):
                if p.size == 0 and p.pts is None and p.dts is None:
                    continue
                if copied == 0:
                    if p.pts == seg.key_pts and p.is_keyframe:
                        pass
                    elif seek and p.pts is not None and p.is_keyframe and p.pts > seg.key_pts and p.dts is not None:
                        raise _NotFound  # the seek landed past the piece
                    else:
                        continue
                p.stream = o
                oc.mux(p)
                copied += 1
                if copied == seg.frames:
                    break
            if copied == 0:
                raise _NotFound
            if copied < seg.frames:
                raise UserError(f"{plan.path}: truncated: piece {seg.index} has {copied} of its {seg.frames} packets")


def _muxer(path: Path) -> str:
    return {".mov": "mov", ".mkv": "matroska", ".nut": "nut"}.get(path.suffix, "mov")


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- joining
def join_segments(plan: SegmentPlan, pieces: list[Path], out: Path, overwrite: bool = False, copy_data: bool = True) -> int:
    """Mux the restored pieces' video packets, in order, with the input's other streams,
    chapters and metadata into ``out`` (atomically), the way the transcoder's sink does.
    Checks that the pieces hold exactly the planned frames with the planned timestamps.
    Returns the number of frames."""
    import av

    from err_stream.io.metadata import apply_metadata, read_metadata
    from err_stream.io.output_file import OutputFile
    from err_stream.io.sink import MUXER_OPTIONS, StreamCopier, container_codecs, container_format
    from err_stream.io.source import probe

    info = probe(plan.path)
    fmt = container_format(out)
    partial = OutputFile(out, overwrite=overwrite, source=plan.path)
    inputs = [av.open(str(p)) for p in pieces]
    try:
        streams = [c.streams.video[0] for c in inputs]
        first = streams[0]
        for k, s in enumerate(streams[1:], 1):
            if bytes(s.codec_context.extradata or b"") != bytes(first.codec_context.extradata or b""):
                raise ProcessingError(
                    f"{plan.path}: restored pieces 0 and {k} were encoded with different stream headers; "
                    "they cannot be joined (is the encoder deterministic in its settings?)"
                )
        metadata = read_metadata(plan.path, info.video_index)
        with partial:
            copier = None
            with av.open(str(partial.tmp), "w", format=fmt, container_options=MUXER_OPTIONS.get(out.suffix.lower(), {})) as oc:
                try:
                    vo = oc.add_stream_from_template(first)
                    vo.time_base = first.time_base
                    if first.codec_context.name == "hevc" and fmt in ("mp4", "mov"):
                        vo.codec_tag = "hvc1"  # as the transcoder writes it
                    for what in apply_metadata(metadata, oc, vo, fmt):
                        log.warning("%s: not kept in %s: %s", plan.path, out.name, what)
                    copier = StreamCopier(info, oc, out, container_codecs(fmt), copy_data)
                    frames = _mux_pieces(plan, inputs, streams, oc, vo, copier)
                    copier.pump(None)
                finally:
                    if copier is not None:
                        copier.close()
            partial.commit()
    except av.error.FFmpegError as e:
        raise ProcessingError(f"{out}: joining the restored pieces failed: {e}") from None
    finally:
        for c in inputs:
            c.close()
    return frames


def _mux_pieces(plan: SegmentPlan, inputs, streams, oc, vo, copier) -> int:
    last_dts = None
    frames = 0
    for seg, c, s in zip(plan.segments, inputs, streams):
        want = sorted(plan.pts[seg.first_packet : seg.first_packet + seg.frames])
        got = []
        for p in c.demux(s):
            if p.size == 0 and p.pts is None and p.dts is None:
                continue
            got.append(p.pts)
            # Each piece's encoder starts its own decode clock; keep the joined one increasing.
            if p.dts is not None and last_dts is not None and p.dts <= last_dts:
                if p.pts is not None and last_dts + 1 <= p.pts:
                    p.dts = last_dts + 1
                else:
                    raise ProcessingError(f"{plan.path}: piece {seg.index} cannot follow piece {seg.index - 1} (decode times overlap)")
            if p.dts is not None:
                last_dts = p.dts
            p.stream = vo
            oc.mux(p)
            frames += 1
            if p.pts is not None:
                copier.pump(float(p.pts * s.time_base) + 1.0)
        _check_times(plan, seg, want, got, s.time_base)
    return frames


def _check_times(plan: SegmentPlan, seg: Segment, want: list[int], got: list, tb) -> None:
    if len(got) != len(want):
        raise ProcessingError(
            f"{plan.path}: piece {seg.index} (t={seg.start:.3f}-{seg.end:.3f} s) came back with {len(got)} frames, "
            f"expected {len(want)}"
        )
    scale = plan.time_base / Fraction(tb.numerator, tb.denominator)
    for w, g in zip(want, sorted(got)):
        if g is None or abs(g - w * scale) > 1:
            raise ProcessingError(
                f"{plan.path}: piece {seg.index}: frame timestamps changed (expected {float(w * plan.time_base):.6f} s, "
                f"got {float(g * tb) if g is not None else None} s)"
            )
