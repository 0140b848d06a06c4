"""Small synthetic clips for the video tests, made with PyAV.

Pictures are written as YUV code values we choose (a moving gradient with texture), so
tests know exactly what went in. All clips are tiny: a dozen frames at 64x48 or so.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from err_stream.colour import ChromaLocation, ColourSpec, Matrix, Primaries, Range, Transfer

# x265's words for a typical HDR10 grade (P3 primaries in a BT.2020 container, 1000 nits).
HDR_MASTER_DISPLAY = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"
HDR_MAX_CLL = (1000, 400)

# The colour tags of the clips below (chroma sited left: what H.264 decoders report anyway
# when the stream does not say).
BT709 = ColourSpec(Matrix.BT709, Range.LIMITED, Primaries.BT709, Transfer.BT709, ChromaLocation.LEFT)
BT601 = ColourSpec(Matrix.SMPTE170M, Range.LIMITED, Primaries.SMPTE170M, Transfer.SMPTE170M, ChromaLocation.LEFT)
# HDR10 as masters are made: BT.2020, PQ, chroma co-sited top-left.
HDR10 = ColourSpec(Matrix.BT2020NC, Range.LIMITED, Primaries.BT2020, Transfer.SMPTE2084, ChromaLocation.TOPLEFT)
HLG = ColourSpec(Matrix.BT2020NC, Range.LIMITED, Primaries.BT2020, Transfer.ARIB_STD_B67, ChromaLocation.TOPLEFT)


def yuv_planes(i: int, w: int, h: int, bits: int = 8, sx: int = 1, sy: int = 1, full: bool = False, chroma: float = 0.3):
    """Frame ``i`` of a moving pattern as Y, Cb, Cr code planes (uint8 or uint16).
    ``chroma``: colour amplitude (0.3 reaches outside the RGB gamut in places, 0.08 does not)."""
    s = 1 << (bits - 8)
    lo, hi = (0, 255 * s + (s - 1)) if full else (16 * s, 235 * s)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    rng = np.random.default_rng(i)
    luma = 0.5 + 0.35 * np.sin((xx + 3 * i) / 5.0) * np.cos((yy - 2 * i) / 7.0) + 0.05 * rng.standard_normal((h, w))
    y = lo + np.clip(luma, 0, 1) * (hi - lo)
    cw, ch = -(-w >> sx), -(-h >> sy)
    cy, cx = np.mgrid[0:ch, 0:cw].astype(np.float64)
    clo, chi = (0, 255 * s + (s - 1)) if full else (16 * s, 240 * s)
    mid = 128 * s
    cb = mid + chroma * (chi - clo) * np.sin((cx + i) / 4.0)
    cr = mid + chroma * (chi - clo) * np.cos((cy - i) / 3.0)
    dt = np.uint8 if bits == 8 else np.uint16
    return tuple(np.rint(p).clip(0, (1 << bits) - 1).astype(dt) for p in (y, cb, cr))


def fill(frame: av.VideoFrame, planes, tags: ColourSpec | None = None) -> av.VideoFrame:
    if tags is not None:
        tags.apply_to(frame)  # some encoders (prores_ks) take the tags from the frames
    for p, a in zip(frame.planes, planes):
        item = a.dtype.itemsize
        view = np.frombuffer(p, dtype=a.dtype, count=a.shape[0] * (p.line_size // item)).reshape(a.shape[0], -1)
        view[:, : a.shape[1]] = a
    return frame


def frame_planes(frame: av.VideoFrame):
    """Y, Cb, Cr of a decoded frame as arrays (copies)."""
    out = []
    dt = np.uint8 if frame.format.components[0].bits == 8 else np.uint16
    for p in frame.planes:
        item = np.dtype(dt).itemsize
        a = np.frombuffer(p, dtype=dt, count=p.height * (p.line_size // item)).reshape(p.height, -1)[:, : p.width]
        out.append(a.copy())
    return out


def _video_stream(c, codec: str, w: int, h: int, pix_fmt: str, rate, time_base, tags: ColourSpec, options: dict):
    s = c.add_stream(codec, rate=rate)
    s.width, s.height, s.pix_fmt = w, h, pix_fmt
    s.time_base = time_base
    cc = s.codec_context
    cc.time_base = time_base
    tags.apply_to(cc)
    cc.options = options
    return s


def _encode_audio(c, a, seconds: float, rate: int = 48000):
    n = int(seconds * rate)
    t = np.arange(n) / rate
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    samples = np.stack([tone, tone])
    pts = 0
    for start in range(0, n, 1024):
        chunk = np.ascontiguousarray(samples[:, start : start + 1024])
        f = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        f.sample_rate = rate
        f.pts = pts
        pts += chunk.shape[1]
        for p in a.encode(f):
            c.mux(p)
    for p in a.encode(None):
        c.mux(p)


def make_h264_aac(path: Path, w: int = 64, h: int = 48, frames: int = 12, fps: int = 12, audio: bool = True, crf: int = 18) -> Path:
    """H.264 8-bit 4:2:0, BT.709 limited range, with an AAC stereo track."""
    tags = BT709
    with av.open(str(path), "w") as c:
        v = _video_stream(c, "libx264", w, h, "yuv420p", fps, Fraction(1, fps * 1000),
                          tags,
                          {"crf": str(crf), "preset": "ultrafast"})
        a = c.add_stream("aac", rate=48000) if audio else None
        if a is not None:
            a.layout = "stereo"
        for i in range(frames):
            f = fill(av.VideoFrame(w, h, "yuv420p"), yuv_planes(i, w, h), tags)
            f.pts = i * 1000
            f.time_base = v.time_base
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        if a is not None:
            _encode_audio(c, a, frames / fps)
    return path


def make_hevc_pq(path: Path, w: int = 64, h: int = 48, frames: int = 8, fps: int = 24) -> Path:
    """HEVC 10-bit 4:2:0, BT.2020 non-constant matrix, PQ transfer, chroma sited top-left,
    HDR10 static metadata."""
    return make_hevc_hdr(path, HDR10, "yuv420p10le", w, h, frames, fps)


def make_hevc_hdr(path: Path, tags: ColourSpec = HDR10, pix_fmt: str = "yuv420p10le", w: int = 64, h: int = 48,
                  frames: int = 8, fps: int = 24, chroma: float = 0.3) -> Path:
    """HEVC (libx265) of the moving pattern with these colour tags (PQ or HLG, limited or full
    range), 10-bit 4:2:0 or 4:2:2, with HDR10 static metadata (mastering display, content
    light level) in the bitstream."""
    params = f"log-level=error:master-display={HDR_MASTER_DISPLAY}:max-cll={HDR_MAX_CLL[0]},{HDR_MAX_CLL[1]}"
    sx, sy = (1, 1) if "420" in pix_fmt else (1, 0)
    with av.open(str(path), "w") as c:
        v = _video_stream(c, "libx265", w, h, pix_fmt, fps, Fraction(1, fps),
                          tags,
                          {"crf": "20", "preset": "ultrafast", "x265-params": params})
        for i in range(frames):
            planes = yuv_planes(i, w, h, bits=10, sx=sx, sy=sy, full=tags.range == Range.FULL, chroma=chroma)
            f = fill(av.VideoFrame(w, h, pix_fmt), planes, tags)
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
    return path


# Irregular frame times (ms): a variable-frame-rate clip.
VFR_PTS_MS = [0, 40, 80, 200, 233, 300, 420, 430, 500, 620, 700, 733]


def make_vfr_mkv_with_subtitles(path: Path, w: int = 64, h: int = 48) -> Path:
    """H.264 with irregular timestamps (1/1000 time base) and a SubRip subtitle stream."""
    tb = Fraction(1, 1000)
    tags = BT601
    with av.open(str(path), "w") as c:
        v = _video_stream(c, "libx264", w, h, "yuv420p", 25, tb,
                          tags,
                          {"crf": "18", "preset": "ultrafast"})
        s = c.add_mux_stream("subrip")
        s.time_base = tb
        s.metadata["language"] = "eng"
        for i, t in enumerate(VFR_PTS_MS):
            f = fill(av.VideoFrame(w, h, "yuv420p"), yuv_planes(i, w, h), tags)
            f.pts = t
            f.time_base = tb
            for p in v.encode(f):
                c.mux(p)
            if i in (1, 6):
                p = av.Packet(f"subtitle at frame {i}".encode())
                p.stream = s
                p.pts = p.dts = t
                p.duration = 150
                p.time_base = tb
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
    return path


def make_prores_422_10bit(path: Path, w: int = 64, h: int = 48, frames: int = 6, fps: int = 24) -> Path:
    """ProRes 422 HQ, 10-bit 4:2:2, BT.709, in a .mov."""
    tags = BT709
    with av.open(str(path), "w") as c:
        v = _video_stream(c, "prores_ks", w, h, "yuv422p10le", fps, Fraction(1, fps),
                          tags, {"profile": "hq"})
        for i in range(frames):
            f = fill(av.VideoFrame(w, h, "yuv422p10le"), yuv_planes(i, w, h, bits=10, sx=1, sy=0), tags)
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
    return path


def make_vp9_webm(path: Path, w: int = 64, h: int = 48, frames: int = 10, fps: int = 12, chroma: float = 0.3) -> Path:
    """VP9 8-bit 4:2:0, BT.709 limited range, in a .webm (what DALI's CPU decoder reads)."""
    tags = BT709
    with av.open(str(path), "w") as c:
        v = _video_stream(c, "libvpx-vp9", w, h, "yuv420p", fps, Fraction(1, fps),
                          tags,
                          {"crf": "10", "b": "0", "deadline": "realtime", "cpu-used": "8"})
        for i in range(frames):
            f = fill(av.VideoFrame(w, h, "yuv420p"), yuv_planes(i, w, h, chroma=chroma), tags)
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
    return path


def decode_all(path: Path):
    """(frames as planes, pts list, time_base, first frame) of the first video stream."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        tb = vs.time_base
        frames, pts, first = [], [], None
        for f in c.decode(vs):
            if first is None:
                first = f
            frames.append(frame_planes(f))
            pts.append(f.pts)
        return frames, pts, tb, first


def packets(path: Path, kind: str):
    """(bytes, pts seconds) of every packet of the streams of one type."""
    out = []
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type == kind]
        if not streams:
            return out
        for p in c.demux(streams):
            if p.size == 0 and p.pts is None:
                continue
            out.append((bytes(p), None if p.pts is None else float(p.pts * p.time_base)))
    return out
