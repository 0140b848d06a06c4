"""Clips made like broadcast and post-production masters (timecode tracks, rotation,
interlacing, chapters, languages, data streams, damaged FFV1 slices), written with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

try:
    import clips
except ImportError:  # tests/ imported as a package
    from tests import clips

NTSC = Fraction(24000, 1001)


def _write(path: Path, codec: str, pix_fmt: str, *, fmt: str | None = None, rate=NTSC, frames: int = 6, w: int = 64,
           h: int = 48, options: dict | None = None, setup=None, sx: int = 1, sy: int = 1, bits: int = 8) -> Path:
    with av.open(str(path), "w", format=fmt) as c:
        v = c.add_stream(codec, rate=rate)
        v.width, v.height, v.pix_fmt = w, h, pix_fmt
        v.codec_context.options = dict(options or {})
        extra = setup(c, v) if setup else None
        for i in range(frames):
            f = clips.fill(av.VideoFrame(w, h, pix_fmt), clips.yuv_planes(i, w, h, bits=bits, sx=sx, sy=sy))
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
            if extra:
                extra(i)
        for p in v.encode(None):
            c.mux(p)
        for a in c.streams.audio:  # a tone as long as the video
            clips._encode_audio(c, a, frames / float(rate))
    return path


def make_prores_with_timecode(path: Path, timecode: str = "01:00:00:00") -> Path:
    """ProRes 422 HQ in a .mov with a QuickTime ``tmcd`` track, 23.976 fps (a camera master)."""

    def setup(c, v):
        v.metadata["timecode"] = timecode  # the MOV muxer writes the tmcd track from this

    return _write(path, "prores_ks", "yuv422p10le", options={"profile": "hq"}, setup=setup, sx=1, sy=0, bits=10)


def make_h264_with_klv(path: Path, frames: int = 25) -> Path:
    """H.264 in MPEG-TS with a KLV metadata (data) stream, as drones and broadcast feeds carry."""

    def setup(c, v):
        d = c.add_data_stream("klv")

        def each(i):
            p = av.Packet(b"\x06\x0e\x2b\x34\x02\x0b\x01\x01\x0e\x01\x03\x01\x01\x00\x00\x00\x02\x00" + bytes([i]))
            p.stream = d
            p.pts = p.dts = i * 3600
            p.time_base = Fraction(1, 90000)
            c.mux(p)

        return each

    return _write(path, "libx264", "yuv420p", rate=25, frames=frames, options={"crf": "18", "preset": "ultrafast"}, setup=setup)


def make_described_master(path: Path) -> Path:
    """An interlaced (top field first), 90°-rotated H.264 master with chapters, a titled
    and language-tagged video and audio, dispositions and a creation time."""

    def setup(c, v):
        v.codec_context.field_order = 2  # AV_FIELD_TT
        v.set_display_rotation(90)
        v.metadata["language"] = "fra"
        v.metadata["title"] = "picture"
        v.disposition = av.stream.Disposition.default
        c.metadata["title"] = "Harbour, take 3"
        c.metadata["creation_time"] = "2024-05-06T07:08:09.000000Z"
        c.metadata["comment"] = "graded"
        c.set_chapters([
            {"id": 1, "start": 0, "end": 3, "time_base": NTSC ** -1, "metadata": {"title": "Opening"}},
            {"id": 2, "start": 3, "end": 6, "time_base": NTSC ** -1, "metadata": {"title": "Close"}},
        ])
        a = c.add_stream("aac", rate=48000)
        a.layout = "stereo"
        a.metadata["language"] = "spa"
        a.metadata["title"] = "commentary"
        a.disposition = av.stream.Disposition.comment
        return None

    # Interlaced coding, so that the bitstream says top field first as well as the container.
    path = _write(path, "libx264", "yuv420p", options={"crf": "18", "preset": "ultrafast", "flags": "+ildct+ilme"}, setup=setup)
    return path


def make_ffv1_with_bad_slice(path: Path, damaged_frame: int | tuple[int, ...] = 3, frames: int = 6) -> Path:
    """FFV1 level 3 with slice CRCs, intra only, one byte flipped inside the slice data of
    one frame (or of each frame of a tuple): the decoder notices the CRC mismatch, conceals
    it, and returns every frame."""
    _write(path, "ffv1", "yuv420p", rate=25, frames=frames,
           options={"level": "3", "slicecrc": "1", "slices": "4", "g": "1"})
    with av.open(str(path)) as c:
        packets = [bytes(p) for p in c.demux(video=0) if p.size]
    data = bytearray(path.read_bytes())
    for k in (damaged_frame,) if isinstance(damaged_frame, int) else damaged_frame:
        middle = packets[k][len(packets[k]) // 2 : len(packets[k]) // 2 + 32]
        at = data.find(middle)
        assert at > 0 and data.find(middle, at + 1) < 0
        data[at + 8] ^= 0xFF
    path.write_bytes(bytes(data))
    return path
