"""What a transcode reports: the result (the command line's JSON summary), and the errors of a
stream input whose output was finished without every frame: it stalled or failed, or pictures
were lost on the way.

Every frame a run is given is accounted for: ``arrived`` = ``frames`` (written) +
``dropped_late``; on a stream, ``damaged`` pictures were decoded but dropped and ``missing`` ones
never arrived (the stream's clock jumps over them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ProcessingError


@dataclass
class TranscodeResult:
    """How a run went (the command line prints it as its JSON summary)."""

    input: str
    output: str
    frames: int
    seconds: float
    fps: float
    decoder: str
    device: str
    precision: str | None
    passthrough: bool
    codec: str
    pix_fmt: str
    batch: int
    decode_errors: int = 0  # concealed decoder errors let through by ignore_errors
    dropped_late: int = 0  # live runs with drop_late: frames dropped for falling behind
    damaged: int = 0  # streams: damaged pictures (lost packets) dropped
    stream_seconds: float = 0.0  # stream time from the first to the last frame written
    ended: str = "end"  # end (input finished), stopped (Ctrl-C on a stream), stalled (past the timeout) or failed (read error)
    max_delay: int | None = None  # live runs: the bound on frames in flight
    peak_in_flight: int | None = None  # live runs: the most frames that were between decoder and encoder at once
    hdr: str | None = None  # the HDR path's transfer (smpte2084, arib-std-b67) when it ran
    max_cll: int | None = None  # HDR path: the output's MaxCLL, cd/m2, measured (the stream keeps the input's)
    max_fall: int | None = None  # HDR path: the output's MaxFALL, cd/m2, measured
    arrived: int = 0  # frames the input gave the run: frames + dropped_late
    missing: int = 0  # streams: pictures that never arrived (the stream's clock jumps over them)
    buffered_peak_mb: float | None = None  # network inputs: the most compressed stream held, waiting for the model
    copied_packets: int = 0  # packets of the other streams (audio, subtitles, data) copied beside the video

    @property
    def lost(self) -> int:
        """Pictures of the input that are not in the output, other than those dropped late."""
        return self.damaged + self.missing

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class IncompleteOutput(ProcessingError):
    """The output was finished with every frame that arrived (``result``), but the input did not
    give every frame: a stream stalled or failed, or pictures were lost on the way."""

    def __init__(self, message: str, result: TranscodeResult) -> None:
        super().__init__(message)
        self.result = result


class InputStopped(IncompleteOutput):
    """A stream stalled or failed: what arrived was written (``result``), but not all of it."""


class FramesLost(IncompleteOutput):
    """A stream ended, but pictures were lost on the way: damaged (dropped) or never arrived
    (``result.damaged``, ``result.missing``); every other frame was written."""
