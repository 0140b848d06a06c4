"""Waiting for an observable state of a child process before signalling it.

A fixed sleep before a signal is a race: a fast machine finishes first, a slow one has not
started. These helpers wait for what the test means instead: a shared library mapped (an
import under way), a file present, or frames restored as the progress bar on stderr says.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from pathlib import Path


class StderrReader:
    """Collects a child's stderr in a thread (tqdm redraws with carriage returns, never a
    newline, so line-by-line reading would block)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while True:
            chunk = self.proc.stderr.read1(4096)
            if not chunk:
                return
            with self._lock:
                self._chunks.append(chunk)

    def text(self) -> str:
        with self._lock:
            return b"".join(self._chunks).decode(errors="replace")

    def rest(self, timeout: float = 30.0) -> str:
        """Everything, once the child has closed its stderr."""
        self._thread.join(timeout)
        return self.text()


def _until(check, proc: subprocess.Popen, what: str, timeout: float, why: str = "") -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if check():
            return
        if proc.poll() is not None:
            raise AssertionError(f"finished (exit {proc.returncode}) before {what}{why}")
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def wait_for_frames(proc: subprocess.Popen, reader: StderrReader, at_least: int = 1, timeout: float = 120.0) -> int:
    """Wait until the progress bar shows ``at_least`` frames restored and the run not finished;
    returns the count seen."""
    seen = [0]

    def check() -> bool:
        counts = [(int(a), int(b)) for a, b in re.findall(r"(\d+)/(\d+) \[", reader.text())]
        if counts:
            done, total = counts[-1]
            if done >= total:
                raise AssertionError(f"all {total} frames were done before the signal could be sent")
            seen[0] = done
        return seen[0] >= at_least

    _until(check, proc, f"{at_least} frames were restored", timeout, f": {reader.text()[-500:]}")
    return seen[0]


def wait_for_library(proc: subprocess.Popen, fragment: str, timeout: float = 120.0) -> None:
    """Wait until the child has mapped a shared library whose path contains ``fragment``
    (e.g. ``libtorch_cpu``: torch's import is under way)."""
    maps = Path(f"/proc/{proc.pid}/maps")

    def check() -> bool:
        try:
            return fragment in maps.read_text()
        except OSError:
            return False

    _until(check, proc, f"{fragment} was loaded", timeout)


def wait_for_path(proc: subprocess.Popen, folder: Path, pattern: str, timeout: float = 120.0) -> Path:
    """Wait until a file matching ``pattern`` exists in ``folder``; returns it."""
    found: list[Path] = []

    def check() -> bool:
        found[:] = list(folder.glob(pattern))
        return bool(found)

    _until(check, proc, f"{pattern} appeared", timeout)
    return found[0]
