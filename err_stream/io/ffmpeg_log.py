"""FFmpeg's log level, shared by everything in the process that reads FFmpeg's words.

PyAV's log level is one setting for the whole process. Each user saving the level it found
and putting it back on leaving undoes another thread's: a damage watch that began while a
dry run had the level at ERROR put ERROR back when it ended, after the dry run had already
left, and FFmpeg's threads went on calling into Python for the rest of the process. That is
a deadlock waiting to happen: a decoder freed by a thread holding the GIL waits for its frame
threads, and one of them, logging an error, waits for the GIL. So the level is counted: the
most verbose level any user asked for while someone is inside, and PyAV's own setting
(normally None: FFmpeg's threads never enter Python) once the last one has left.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_wanted: Counter[int] = Counter()  # requested level -> users inside
_before: tuple[int | None, bool] | None = None  # PyAV's level and skip-repeated before the first user


@contextmanager
def ffmpeg_log_level(level: int) -> Iterator[None]:
    """FFmpeg's messages up to ``level`` (an ``av.logging`` level) reach PyAV's log and its
    captures while inside (with repeats kept: two damaged pictures in a row log the same words)."""
    _enter(level)
    try:
        yield
    finally:
        _leave(level)


def _enter(level: int) -> None:
    import av

    global _before
    with _lock:
        if not _wanted:
            _before = (av.logging.get_level(), av.logging.get_skip_repeated())
            av.logging.set_skip_repeated(False)
        _wanted[level] += 1
        av.logging.set_level(max(_wanted))


def _leave(level: int) -> None:
    import av

    global _before
    with _lock:
        _wanted[level] -= 1
        if _wanted[level] <= 0:
            del _wanted[level]
        if _wanted:
            av.logging.set_level(max(_wanted))
        elif _before is not None:
            av.logging.set_level(_before[0])
            av.logging.set_skip_repeated(_before[1])
            _before = None
