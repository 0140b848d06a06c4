"""Decoder errors that FFmpeg conceals.

Many decoders repair what they can of a damaged picture and go on: an FFV1 slice whose CRC
does not match, an H.264 macroblock row that fails to parse. The frame comes out looking
plausible, no exception is raised, and PyAV exposes no per-frame error flag. What FFmpeg
does do is log the error. :class:`DamageWatch` captures the decoder's error-level log
while a stream is decoded and turns each message into a :class:`Damage` with the frame it
belongs to, so the run fails (or, with the ``ignore_errors`` setting, counts it) instead of passing
concealed damage off as a clean restoration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from .ffmpeg_log import ffmpeg_log_level

# FFmpeg's error messages name the time of the damage for some decoders (FFV1: "at 0.12 seconds").
_AT_SECONDS = re.compile(r"at (\d+(?:\.\d+)?) seconds")


@dataclass
class Damage:
    frame: int
    seconds: float | None
    message: str

    def describe(self) -> str:
        at = f" (t={self.seconds:.3f} s)" if self.seconds is not None else ""
        return f"frame {self.frame}{at}: {self.message}"


class DamageWatch:
    """Capture FFmpeg's error log while decoding (decoder threads included).

    The capture is process-wide (the decoder's threads are FFmpeg's, not ours), so it also
    sees what other FFmpeg users in the process log at the same time: a muxer of this run, a
    stream copier, another transcode in the same process. Only messages logged under the
    decoder's own name (FFmpeg names each log line after its component, e.g. ``ffv1``,
    ``h264``) are taken as damage."""

    def __init__(self, decoder: str | None = None, level: int | None = None) -> None:
        """``level``: FFmpeg's log level while watching (default ERROR; a live source asks
        for WARNING, at which FFmpeg's RTP layer reports lost packets, captured per thread
        by its reader)."""
        self.found: list[Damage] = []
        self._pending: list[str] = []  # the start of a message whose line has not ended yet
        self.decoder = decoder
        self.level = level

    def __enter__(self) -> DamageWatch:
        import av

        self._level = ffmpeg_log_level(self.level if self.level is not None else av.logging.ERROR)
        self._level.__enter__()
        self._capture = av.logging.Capture(local=False)
        self._logs = self._capture.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._capture.__exit__(*exc)
        finally:
            self._level.__exit__(*exc)

    def check(self, frame_index: int, packet_times: list[float]) -> list[Damage]:
        """New errors since the last call, one :class:`Damage` per damaged picture: placed at
        the frame their time names (its rank among the video packets read so far), else at
        ``frame_index`` (the frame being decoded; with frame threads it may be a few frames late)."""
        import av

        new = self._logs[:]
        del self._logs[: len(new)]  # a long stream's log must not grow without end (FFmpeg's threads may append meanwhile)
        texts = self._pending + [
            text
            for level, name, text in new
            if level is not None and level <= av.logging.ERROR and text.strip() and (self.decoder is None or name == self.decoder)
        ]
        # FFmpeg writes one message in several calls ("slice CRC mismatch 687F2BAD!", then
        # "at 0.400000 seconds\n"), and a check can fall between them: a line without its
        # newline yet waits for the next check, or it would pass for a second picture.
        self._pending = []
        while texts and not texts[-1].endswith("\n"):
            self._pending.insert(0, texts.pop())
        damages: list[Damage] = []
        words: list[str] = []  # the current message's pieces
        untimed: list[str] = []  # messages without a time: the picture being decoded (H.264 logs two lines for one)
        for text in texts:
            m = _AT_SECONDS.search(text)
            rest = _AT_SECONDS.sub("", text).strip() if m else text.strip()
            if rest:
                words.append(rest)
            if m:
                damages.extend(self.record(" ".join(words), float(m.group(1)), frame_index, packet_times))
                words = []
            elif text.endswith("\n"):
                untimed += words
                words = []
        if untimed:
            damages.extend(self.record(" ".join(untimed), None, frame_index, packet_times))
        return damages

    def finish(self, frame_index: int, packet_times: list[float]) -> list[Damage]:
        """:meth:`check`, then what is left of an unfinished message (the stream has ended)."""
        found = self.check(frame_index, packet_times)
        if self._pending:
            words, self._pending = " ".join(t.strip() for t in self._pending), []
            found += self.record(words, None, frame_index, packet_times)
        return found

    def record(self, message: str, seconds: float | None, frame_index: int, packet_times: list[float]) -> list[Damage]:
        """One damaged picture (none new if a message of this picture's time was recorded before)."""
        frame = frame_index
        if seconds is not None and packet_times:
            frame = sum(1 for t in packet_times if t < seconds - 1e-6)
        if seconds is not None:
            for earlier in self.found:
                # Each damaged slice of a picture logs its own line with the picture's time:
                # one damaged picture is one Damage.
                if earlier.seconds is not None and abs(earlier.seconds - seconds) < 1e-6:
                    if message and message not in earlier.message:
                        earlier.message = f"{earlier.message} {message}".strip()
                    return []
        d = Damage(frame, seconds, message or "the decoder logged an error")
        self.found.append(d)
        return [d]


def seconds_of(pts: int, time_base: Fraction) -> float:
    return float(pts * time_base)
