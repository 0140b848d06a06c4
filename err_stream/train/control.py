"""Controlling a training process from outside, between iterations.

A long run shares its machine: others must be able to stop it without losing work, pause it
while they time something, and see where it is. :class:`RunControl` gives the trainer three
hooks it checks after every iteration:

* **stop**: SIGTERM or SIGINT (Ctrl-C) ask the trainer to finish the iteration, write a
  checkpoint and return (a second SIGINT interrupts at once);
* **pause**: while ``pause_file`` exists the trainer writes a checkpoint once and sleeps
  (polling once a second, using no CPU), then continues where it was. SIGSTOP/SIGCONT to the
  process group (the trainer and its data-loading workers) also work, without the checkpoint;
* **status**: ``status_file`` (JSON, replaced atomically, at most every few seconds) says what
  the run is doing: its state (running, paused, stopped, done, failed), iteration, loss,
  seconds per iteration, last checkpoint, process id.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

__all__ = ["RunControl", "ignore_stop_signals"]


def ignore_stop_signals(_worker_id: int = 0) -> None:
    """Data-loading workers ignore SIGINT/SIGTERM: a Ctrl-C (which the terminal sends to the
    whole process group) must reach only the trainer, which stops them itself after its checkpoint."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class RunControl:
    """Stop requests (signals), a pause file and a status file for one training process.

    Use as a context manager around the training loop (signal handlers are installed on
    entry, from the main thread only, and restored on exit).
    """

    def __init__(
        self,
        pause_file: str | Path | None = None,
        status_file: str | Path | None = None,
        handle_signals: bool = True,
        report_every: float = 2.0,
    ) -> None:
        self.pause_file = Path(pause_file) if pause_file else None
        self.status_file = Path(status_file) if status_file else None
        self.handle_signals = handle_signals
        self.report_every = report_every
        self.stop_reason: str | None = None
        self._previous: dict[int, Any] = {}
        self._last_report = 0.0
        self._status: dict[str, Any] = {}

    # ------------------------------------------------------------------ signals
    def __enter__(self) -> "RunControl":
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self.stop_reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: do not wait for the iteration
        self.stop_reason = signal.Signals(signum).name

    def request_stop(self, reason: str = "requested") -> None:
        self.stop_reason = reason

    @property
    def stop_requested(self) -> bool:
        return self.stop_reason is not None

    # ------------------------------------------------------------------ pause
    @property
    def pause_requested(self) -> bool:
        return self.pause_file is not None and self.pause_file.exists()

    def wait_while_paused(self, on_pause: Callable[[], None] | None = None, poll: float = 1.0) -> float:
        """If the pause file exists: call ``on_pause`` (the checkpoint), then sleep until the
        file is gone or a stop is requested. Returns the seconds spent paused."""
        if not self.pause_requested:
            return 0.0
        t0 = time.monotonic()
        if on_pause is not None:
            on_pause()
        self.report(force=True, state="paused", paused_since=time.time())
        while self.pause_requested and not self.stop_requested:
            time.sleep(poll)
        self._status.pop("paused_since", None)
        self.report(force=True, state="running")
        return time.monotonic() - t0

    # ------------------------------------------------------------------ status
    def report(self, force: bool = False, **fields: Any) -> None:
        """Merge ``fields`` into the status and write it (at most every ``report_every`` s unless forced)."""
        self._status.update(fields)
        if self.status_file is None:
            return
        now = time.monotonic()
        if not force and now - self._last_report < self.report_every:
            return
        self._last_report = now
        status = {**self._status, "pid": os.getpid(), "updated": time.time()}
        self.status_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.status_file.with_name(self.status_file.name + ".part")
        tmp.write_text(json.dumps(status, indent=1, default=str))
        tmp.replace(self.status_file)
