"""The one-call API: :func:`plan` and :func:`execute` together."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ..progress import Progress
from .execution import execute
from .options import TranscodeOptions
from .planning import plan
from .result import TranscodeResult


def transcode(input: str | Path, output: str | Path, restorer=None, options: TranscodeOptions | None = None, *,
              progress: Progress | None = None, stop: threading.Event | None = None, **settings: Any) -> TranscodeResult:
    """Restore every frame of ``input`` into ``output`` (``restorer=None``: passthrough).

    ``input``/``output`` are files, ``"-"`` (standard input/output) or URLs FFmpeg handles
    (``udp://``, ``tcp://``, ``rtmp://``, ``rtsp://``, ``http(s)://`` inputs; ``srt://`` only where
    this FFmpeg has it, else refused at once).
    ``options``: the request (default: every setting's default); ``settings``: settings by
    name on top of it (``crf=18``, ``codec="ffv1"``: see :class:`TranscodeOptions`).
    ``progress``: a progress callback; ``stop``: set it to end a stream input early (what
    arrived is restored and the output finished: a success).

    Raises :class:`~err_stream.errors.UserError` for bad paths, unreadable/corrupt input,
    unsupported streams and bad settings, :class:`~err_stream.errors.ProcessingError` for
    failures while processing, among them
    :class:`~err_stream.engine.output_check.OutputRangeError` when the model's output for a
    frame is non-finite or out of range (``accept_out_of_range=True`` clamps such output and
    goes on). A file ``output`` is only created (atomically) when everything succeeded; a
    stream that stalls or fails still has what arrived restored and the output finished, and
    then raises :class:`~.result.InputStopped` saying how much was written; one whose pictures
    were lost on the way (damaged, or never arrived) likewise raises
    :class:`~.result.FramesLost` (both are :class:`~.result.IncompleteOutput`, with the
    ``result``)."""
    options = (options or TranscodeOptions()).replace(**settings)
    return execute(plan(input, output, options), restorer, progress=progress, stop=stop)
