"""What a transcode reports: the result (the command line's JSON summary), and the error of a
stream that stopped early after what arrived was written."""

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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class InputStopped(ProcessingError):
    """A stream stalled or failed: what arrived was written (``result``), but not all of it."""

    def __init__(self, message: str, result: TranscodeResult) -> None:
        super().__init__(message)
        self.result = result
