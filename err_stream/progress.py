"""How long-running library calls report progress: a callback object the front end supplies.

The library never draws or prints; the command line passes a :class:`TqdmProgress`, other
callers their own object (or None for silence).
"""

from __future__ import annotations

import sys
from typing import Protocol


class Progress(Protocol):
    def begin(self, task: str, total: int | None, note: str = "") -> None:
        """Work starts: ``task`` names it ("restoring"), ``total`` items are expected (None:
        unknown), ``note`` says how it runs (e.g. the decoder and device chosen)."""

    def advance(self, n: int = 1) -> None:
        """``n`` more items are done."""

    def status(self, text: str) -> None:
        """Where the work stands when there is no total (a live stream: time, lag)."""

    def end(self) -> None:
        """Work stopped (finished, failed or interrupted)."""


class TqdmProgress:
    """A tqdm bar on stderr (the command line's progress); ``note`` is printed above it."""

    def __init__(self, unit: str = "frame") -> None:
        self.unit = unit
        self._bar = None

    def begin(self, task: str, total: int | None, note: str = "") -> None:
        from tqdm import tqdm

        if note:
            print(note, file=sys.stderr)
        self._bar = tqdm(total=total, unit=self.unit, desc=task, file=sys.stderr, dynamic_ncols=True)

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def status(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
