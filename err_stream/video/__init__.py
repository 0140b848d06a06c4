"""Restore a video: one typed request (:class:`TranscodeOptions`), one :func:`plan`, one
:func:`execute`.

Every front end builds the same request: the command line (``err-stream IN OUT``), batch
jobs (pipelines/) and the API. :func:`plan` probes the input once and checks the output
before any frame is restored; :func:`execute` runs the pipeline (decode -> restore -> encode,
overlapped). :func:`transcode` does both in one call::

    from err_stream.video import TranscodeOptions, transcode
    transcode("in.mp4", "out.mkv", restorer, TranscodeOptions.of(codec="ffv1"))
    transcode("in.mp4", "out.mp4", None, crf=18)   # settings by name; restorer=None: passthrough

docs/architecture.md draws the request's way from each front end through plan and execute.
Names load on first use (importing :mod:`err_stream.video.options` loads nothing heavy).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "transcode": ".run",
    "TranscodeOptions": ".options",
    "DecodeOptions": ".options",
    "EncodeOptions": ".options",
    "StreamOptions": ".options",
    "LiveOptions": ".options",
    "RunOptions": ".options",
    "TranscodePlan": ".planning",
    "plan": ".planning",
    "execute": ".execution",
    "TranscodeResult": ".result",
    "IncompleteOutput": ".result",
    "InputStopped": ".result",
    "FramesLost": ".result",
    "StreamClock": ".clock",
}
__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
