"""What FFmpeg (as PyAV loaded it) accepts for an input: its protocols, and ``key=value``
demuxer and protocol options checked the way FFmpeg itself would take them.

PyAV exposes neither the protocol list nor the option tables, and it drops the options
FFmpeg left unused when it opened an input (the ``ffmpeg`` command line refuses those:
``Option ... not found``). So this module asks the libavformat and libavutil that PyAV has
loaded, through ``ctypes``: ``avio_find_protocol_name`` for a URL's protocol, and the
AVOption tables of the generic demuxing context, the I/O layers, the URL's protocol and the
demuxer for each option's name, with FFmpeg's own parser (``av_opt_set`` on a scratch
object of that class) for its value. Where those libraries cannot be found (an unusual
build), nothing is refused here and FFmpeg judges the options when the input opens.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import re
from dataclasses import dataclass

from ..errors import SettingError

log = logging.getLogger(__name__)

SETTING = "input_opt"
# AVOption search flags and the flag every demuxing option carries (libavutil/opt.h).
_SEARCH_FAKE_OBJ = 2
_DECODING_PARAM = 2
_AVERROR_OPTION_NOT_FOUND = -0x54504FF8  # FFERRTAG(0xF8,'O','P','T')


class _AVOption(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("help", ctypes.c_char_p), ("offset", ctypes.c_int), ("type", ctypes.c_int),
                ("default_val", ctypes.c_int64), ("min", ctypes.c_double), ("max", ctypes.c_double),
                ("flags", ctypes.c_int), ("unit", ctypes.c_char_p)]


class _AVClass(ctypes.Structure):
    # Only the leading, stable fields are read.
    _fields_ = [("class_name", ctypes.c_char_p), ("item_name", ctypes.c_void_p), ("option", ctypes.POINTER(_AVOption))]


@dataclass(frozen=True)
class _OptionClass:
    """One AVClass that options may belong to, as messages name it."""

    what: str
    ptr: int


class _Libav:
    """The libavformat/libavutil PyAV loaded (same version, checked)."""

    def __init__(self, fmt: ctypes.CDLL, util: ctypes.CDLL) -> None:
        self.fmt, self.util = fmt, util
        vp = ctypes.c_void_p
        fmt.avio_find_protocol_name.restype = ctypes.c_char_p
        fmt.avio_find_protocol_name.argtypes = [ctypes.c_char_p]
        fmt.avio_protocol_get_class.restype = vp
        fmt.avio_protocol_get_class.argtypes = [ctypes.c_char_p]
        fmt.avformat_get_class.restype = vp
        fmt.av_find_input_format.restype = vp
        fmt.av_find_input_format.argtypes = [ctypes.c_char_p]
        fmt.av_demuxer_iterate.restype = vp
        fmt.av_demuxer_iterate.argtypes = [ctypes.POINTER(vp)]
        util.av_opt_find.restype = ctypes.POINTER(_AVOption)
        util.av_opt_find.argtypes = [vp, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
        util.av_opt_next.restype = ctypes.POINTER(_AVOption)
        util.av_opt_next.argtypes = [vp, ctypes.POINTER(_AVOption)]
        util.av_opt_set.restype = ctypes.c_int
        util.av_opt_set.argtypes = [vp, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
        util.av_opt_free.argtypes = [vp]
        util.av_opt_child_class_iterate.restype = vp
        util.av_opt_child_class_iterate.argtypes = [vp, ctypes.POINTER(vp)]
        util.av_strerror.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]

    # -- classes
    def children(self, cls: int) -> list[int]:
        it = ctypes.c_void_p()
        out = []
        while True:
            child = self.util.av_opt_child_class_iterate(cls, ctypes.byref(it))
            if not child:
                return out
            out.append(child)

    @staticmethod
    def class_name(cls: int) -> str:
        return (_AVClass.from_address(cls).class_name or b"").decode()

    def demuxer_class(self, name: str) -> int | None:
        fmt = self.fmt.av_find_input_format(name.encode())
        # AVInputFormat's public head: name, long_name, flags, extensions, codec_tag, priv_class.
        return ctypes.c_void_p.from_address(fmt + 40).value if fmt else None

    def demuxer_classes(self) -> list[int]:
        it = ctypes.c_void_p()
        out = []
        while True:
            fmt = self.fmt.av_demuxer_iterate(ctypes.byref(it))
            if not fmt:
                return out
            cls = ctypes.c_void_p.from_address(fmt + 40).value
            if cls:
                out.append(cls)

    # -- options
    def find(self, cls: int, key: str) -> bool:
        fake = ctypes.c_void_p(cls)
        found = self.util.av_opt_find(ctypes.byref(fake), key.encode(), None, _DECODING_PARAM, _SEARCH_FAKE_OBJ)
        return bool(found)

    def set_on_scratch(self, cls: int, key: str, value: str) -> int:
        """FFmpeg's parse of ``value`` for ``key`` of class ``cls``: av_opt_set on a zeroed
        object of that class (large enough for every field), freed after."""
        fake = ctypes.c_void_p(cls)
        end, prev = 0, None
        while True:
            prev = self.util.av_opt_next(ctypes.byref(fake), prev)
            if not prev:
                break
            end = max(end, prev.contents.offset)
        scratch = ctypes.create_string_buffer(end + 256)
        ctypes.c_void_p.from_buffer(scratch).value = cls
        try:
            return self.util.av_opt_set(scratch, key.encode(), value.encode(), 0)
        finally:
            self.util.av_opt_free(scratch)

    def strerror(self, code: int) -> str:
        buf = ctypes.create_string_buffer(256)
        self.util.av_strerror(code, buf, len(buf))
        return buf.value.decode(errors="replace")


def _loaded_library(stem: str) -> str | None:
    """The path of the shared library ``stem`` (e.g. ``libavformat``) this process loaded
    with PyAV (Linux: /proc/self/maps), else one shipped beside PyAV (wheels)."""
    maps = "/proc/self/maps"
    if os.path.exists(maps):
        with open(maps) as f:
            for line in f:
                path = line.rsplit(None, 1)[-1]
                if re.search(rf"/{stem}[^/]*\.(so|dylib)", path):  # libavformat.so.61, libavformat-7f51.so.63
                    return path
    import av

    base = os.path.dirname(os.path.dirname(av.__file__))
    for d in (os.path.join(base, "av.libs"), os.path.join(os.path.dirname(av.__file__), ".dylibs")):
        if os.path.isdir(d):
            for name in sorted(os.listdir(d)):
                if name.startswith(stem) or name.startswith(stem[3:] + "-"):
                    return os.path.join(d, name)
    return None


@functools.cache
def _libav() -> _Libav | None:
    import av  # loads FFmpeg's libraries

    try:
        paths = [_loaded_library("libavformat"), _loaded_library("libavutil")]
        if None in paths:
            raise OSError("libavformat/libavutil not found")
        lib = _Libav(ctypes.CDLL(paths[0]), ctypes.CDLL(paths[1]))
        lib.fmt.avformat_version.restype = ctypes.c_uint
        v = lib.fmt.avformat_version()
        if (v >> 16, (v >> 8) & 0xFF, v & 0xFF) != tuple(av.library_versions["libavformat"]):
            raise OSError("a different libavformat than PyAV's")
    except (OSError, AttributeError) as e:
        log.debug("FFmpeg's option tables are not reachable (%s): input options are checked when the input opens", e)
        return None
    return lib


def protocol_of(url: str) -> str | None | bool:
    """The FFmpeg protocol that reads or writes ``url`` (``"udp"``, ``"rtmp"``...), None if
    this FFmpeg has none for it, or True when that cannot be told here."""
    lib = _libav()
    if lib is None:
        return True
    name = lib.fmt.avio_find_protocol_name(url.encode())
    return name.decode() if name else None


def has_protocol(scheme: str) -> bool:
    """Whether this FFmpeg reads and writes ``scheme://`` URLs (RTSP, a demuxer over UDP and
    TCP, counts as one). True where it cannot be told."""
    scheme = scheme.lower()
    if scheme in ("rtsp", "rtsps"):
        import av

        return "rtsp" in av.formats_available
    return protocol_of(f"{scheme}://127.0.0.1:1") is not None


def parse_options(items) -> dict[str, str]:
    """``["key=value", ...]`` to a dict (later keys win); a malformed item is refused."""
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = str(item).partition("=")
        if not eq or not key or key != key.strip():
            raise SettingError(SETTING, item, "expected KEY=VALUE (e.g. rtsp_transport=udp)")
        out[key] = value
    return out


def check_input_options(url: str, items, input_format: str | None = None) -> dict[str, str]:
    """Demuxer and protocol options for an input (``["rtsp_transport=udp", ...]``), checked
    against what FFmpeg accepts for ``url``: each name must belong to the generic demuxing
    context, the I/O layer, ``url``'s protocol or the demuxer (``input_format``; for
    ``rtsp://`` the RTSP demuxer; otherwise any demuxer, since the one that reads a pipe or
    socket is known only once data arrives), and its value must parse as FFmpeg parses it.
    Returns them as a dict; raises :class:`SettingError` (setting ``input_opt``) naming the
    item and why."""
    options = parse_options(items)
    lib = _libav()
    if lib is None or not options:
        return options
    classes = _classes_for(lib, url, input_format)
    for key, value in options.items():
        owners = [c for c in classes if lib.find(c.ptr, key)]
        if not owners:
            where = ", ".join(dict.fromkeys(c.what for c in classes))
            raise SettingError(SETTING, f"{key}={value}", f"FFmpeg has no input option '{key}' here ({where})")
        errors = []
        for owner in owners:
            code = lib.set_on_scratch(owner.ptr, key, value)
            if code >= 0:
                break
            errors.append((owner, code))
        else:
            owner, code = errors[0]
            raise SettingError(SETTING, f"{key}={value}", f"FFmpeg refuses this value for the {owner.what}'s '{key}' "
                                                          f"({lib.strerror(code)})")
    return options


def options_for_input(ep, items, input_format: str | None = None) -> dict[str, str] | None:
    """The checked options for input endpoint ``ep`` (:class:`~.endpoints.Endpoint`), None
    when there are none; a file input refuses them (it is opened as it is)."""
    if not items:
        return None
    if ep.is_file:
        raise SettingError(SETTING, items[0], "input options apply to pipes and URLs (a file is opened as it is)")
    return check_input_options("pipe:0" if ep.kind == "pipe" else ep.text, items, input_format)


def _classes_for(lib: _Libav, url: str, input_format: str | None) -> list[_OptionClass]:
    classes = [_OptionClass("demuxing context", lib.fmt.avformat_get_class())]
    # The I/O layers every protocol runs in (AVIOContext, URLContext: rw_timeout, whitelists...).
    for child in lib.children(classes[0].ptr):
        if lib.class_name(child) == "AVIOContext":
            classes.append(_OptionClass("I/O layer", child))
            classes += [_OptionClass("I/O layer", c) for c in lib.children(child) if lib.class_name(c) == "URLContext"]
            break
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    protocol = lib.fmt.avio_find_protocol_name(url.encode()) if url != "pipe:0" else b"pipe"
    if protocol:
        cls = lib.fmt.avio_protocol_get_class(protocol)
        if cls:
            classes.append(_OptionClass(f"{protocol.decode()} protocol", cls))
    demuxer = input_format or ("rtsp" if scheme in ("rtsp", "rtsps") else None)
    if demuxer is not None:
        cls = lib.demuxer_class(demuxer)
        if cls:
            classes.append(_OptionClass(f"{demuxer} demuxer", cls))
    else:
        # Any demuxer that can read a byte stream: not the session demuxers (RTSP, SDP, RTP),
        # which FFmpeg picks by URL, never from data.
        classes += [_OptionClass("demuxers", c) for c in lib.demuxer_classes()
                    if not lib.class_name(c).split(" ")[0] in _SESSION_DEMUXERS]
    return classes


_SESSION_DEMUXERS = {"RTSP", "SDP", "RTP"}
