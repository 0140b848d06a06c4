"""The source registry: which kind of input a run reads, and what each kind brings.

An input is one of these kinds, tried in order; the first that accepts the input (and the
``decoder`` setting) is the run's:

============  ======================================  =============================================
kind          input                                   beside the video in the output
============  ======================================  =============================================
vapoursynth   a ``.vpy`` script (io/vpy.py)           its audio node, encoded; no metadata
stream        ``-`` or a URL (io/live_source.py)      its other streams, copied from its one demuxer
dali          a file, with ``decoder: dali``          the file's streams and metadata, copied
pyav          any other file (io/source.py)           the file's streams and metadata, copied
============  ======================================  =============================================

A kind probes its input before the run (:meth:`SourceKind.probe`; a stream cannot be read
twice, so it is probed when opened: ``None`` until then), opens it as a
:class:`~.source.Source`, and tells the output what goes beside the restored video
(:meth:`metadata`, :meth:`copied_streams`, :meth:`other_streams`; for an opened input,
:meth:`beside`). A new kind of input is a new class here, registered in :data:`SOURCES`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ..errors import SettingError
from .endpoints import Endpoint
from .source import Source, StreamSummary, VideoInfo

if TYPE_CHECKING:
    import torch

    from ..video.options import DecodeOptions, TranscodeOptions
    from .metadata import Metadata


class SourceKind:
    """One kind of input. ``name`` is the decoder the run reports; ``packets``: the input is
    a file of coded packets (which a batch can cut at keyframes and copy)."""

    name = "pyav"
    packets = False

    def accepts(self, ep: Endpoint, decode: DecodeOptions) -> bool:
        raise NotImplementedError

    def probe(self, ep: Endpoint, decode: DecodeOptions) -> VideoInfo | None:
        """What the input is, before the run; None for an input that can be read only once."""
        raise NotImplementedError

    def open(self, ep: Endpoint, info: VideoInfo | None, options: TranscodeOptions, *, device: torch.device,
             low_delay: bool = False, stop: threading.Event | None = None) -> Source:
        raise NotImplementedError

    # -- what goes beside the video (the sink and the pre-flight dry run ask)
    def metadata(self, info: VideoInfo) -> Metadata:
        from .metadata import Metadata

        return Metadata()

    def copied_streams(self, info: VideoInfo) -> list[StreamSummary]:
        """The input's streams that are copied packet for packet (the container must take them)."""
        return []

    def other_streams(self, info: VideoInfo, out_container, out, container_format: str, copy_data: bool,
                      only: set[int] | None):
        """What writes the other streams into the output as the video goes (``pump(until)``,
        ``close()``, ``map``: input stream index -> output stream), or None."""
        return None

    def beside(self, source: Source):
        """What goes beside the video of this opened input (the output asks it, see
        io/sink.py's ``Beside``): the kind itself, unless the other streams come from the open
        source (a stream is read once)."""
        return self


class FileInput(SourceKind):
    """A video file FFmpeg reads, decoded by PyAV; its other streams are copied."""

    name = "pyav"
    packets = True

    def accepts(self, ep: Endpoint, decode: DecodeOptions) -> bool:
        return ep.is_file

    def probe(self, ep: Endpoint, decode: DecodeOptions) -> VideoInfo:
        from .source import probe

        return probe(ep.path)

    def open(self, ep, info, options, *, device, low_delay=False, stop=None) -> Source:
        from .source import PyAVSource

        return PyAVSource(info, ignore_errors=options.decode.ignore_errors)

    def metadata(self, info: VideoInfo) -> Metadata:
        from .metadata import read_metadata

        return read_metadata(info.path, info.video_index)

    def copied_streams(self, info: VideoInfo) -> list[StreamSummary]:
        return info.other_streams

    def other_streams(self, info, out_container, out, container_format, copy_data, only):
        from pathlib import Path

        from .sink import StreamCopier, container_codecs

        return StreamCopier(info, out_container, Path(out), container_codecs(container_format), copy_data, only)


class DaliInput(FileInput):
    """A file decoded by NVIDIA DALI (asked for with ``decoder: dali``); approximate colours."""

    name = "dali"

    def accepts(self, ep: Endpoint, decode: DecodeOptions) -> bool:
        if decode.decoder != "dali":
            return False
        if not ep.is_file:
            raise SettingError("decoder", "dali", "reads files only; a stream is decoded by PyAV", instead=[("decoder", "pyav")])
        return True

    def open(self, ep, info, options, *, device, low_delay=False, stop=None) -> Source:
        import logging

        from .dali import DaliSource

        logging.getLogger(__name__).warning(
            "decoder dali: colours are approximate (DALI converts to RGB itself); decoder pyav is exact")
        gpu = device.type == "cuda"
        return DaliSource(info, device="gpu" if gpu else "cpu", device_id=(device.index or 0) if gpu else 0)


class ScriptInput(SourceKind):
    """A VapourSynth script: its output 0, and its audio node at output 1 encoded beside it."""

    name = "vapoursynth"

    def accepts(self, ep: Endpoint, decode: DecodeOptions) -> bool:
        return ep.is_file and ep.path.suffix.lower() == ".vpy"

    def probe(self, ep: Endpoint, decode: DecodeOptions) -> VideoInfo:
        from .vpy import probe_vpy

        return probe_vpy(ep.path)

    def open(self, ep, info, options, *, device, low_delay=False, stop=None) -> Source:
        from .vpy import VpySource

        return VpySource(info)

    def other_streams(self, info, out_container, out, container_format, copy_data, only):
        from .vpy import ScriptAudio

        return ScriptAudio(info, out_container, container_format, only)


class StreamInput(SourceKind):
    """Standard input or a URL: read once, probed on what arrives when it is opened; its one
    demuxer reads every stream, and the other streams' packets are copied from its queue."""

    name = "pyav"

    def accepts(self, ep: Endpoint, decode: DecodeOptions) -> bool:
        return not ep.is_file

    def probe(self, ep: Endpoint, decode: DecodeOptions) -> None:
        return None

    def open(self, ep, info, options, *, device, low_delay=False, stop=None) -> Source:
        from .live_source import LiveSource

        from .input_options import parse_options

        return LiveSource(ep, options.decode.input_format, options.live.timeout, low_delay=low_delay, stop=stop,
                          options=parse_options(options.decode.input_opt) or None)

    def copied_streams(self, info: VideoInfo) -> list[StreamSummary]:
        return info.other_streams

    def beside(self, source: Source):
        return _OpenStream(self, source)


class _OpenStream:
    """What goes beside an opened stream's video: its other streams, from the packets its
    demuxer queued (``source.others``)."""

    def __init__(self, kind: StreamInput, source: Source) -> None:
        self.kind, self.source = kind, source

    def metadata(self, info: VideoInfo) -> Metadata:
        return self.kind.metadata(info)

    def copied_streams(self, info: VideoInfo) -> list[StreamSummary]:
        return self.kind.copied_streams(info)

    def other_streams(self, info, out_container, out, container_format, copy_data, only):
        from pathlib import Path

        from .sink import StreamCopier, container_codecs

        return StreamCopier(info, out_container, Path(out), container_codecs(container_format), copy_data, only,
                            feed=self.source.others)


# Tried in order: the first kind that accepts the input reads it.
SOURCES: tuple[SourceKind, ...] = (ScriptInput(), StreamInput(), DaliInput(), FileInput())


def choose_source(ep: Endpoint, decode: DecodeOptions) -> SourceKind:
    """The kind of source that reads ``ep`` (``decoder: auto`` is always PyAV: DALI's colours
    are approximate, so it reads only when asked for)."""
    for kind in SOURCES:
        if kind.accepts(ep, decode):
            return kind
    raise AssertionError(f"no source accepts {ep}")  # FileInput and StreamInput cover every endpoint
