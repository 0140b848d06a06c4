"""The plumbing between a run's stages: bounded channels that give up when the run is
cancelled, and worker threads whose first error stops the others and is raised once."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from ..engine.executor import ExecutorClosed
from ..errors import ProcessingError, UserError


class Cancelled(Exception):
    """The run was cancelled (another stage failed): a stage stops quietly."""


END = object()  # what a channel carries after the last item


class Channel:
    """A bounded queue whose blocking calls give up when the run is cancelled."""

    def __init__(self, size: int, stop: threading.Event) -> None:
        self.q: queue.Queue = queue.Queue(maxsize=size)
        self.stop = stop

    def put(self, item) -> None:
        while True:
            if self.stop.is_set():
                raise Cancelled
            try:
                self.q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def get(self):
        while True:
            if self.stop.is_set():
                raise Cancelled
            try:
                return self.q.get(timeout=0.1)
            except queue.Empty:
                continue

    def get_nowait(self):
        return self.q.get_nowait()


class Workers:
    """The run's threads. The first error in any of them is kept, sets ``stop`` and calls
    ``on_error`` (which wakes threads blocked elsewhere, e.g. on the executor);
    :meth:`join` waits for all and raises that error in the caller's thread."""

    def __init__(self, stop: threading.Event, on_error: Callable[[], None]) -> None:
        self.stop = stop
        self.on_error = on_error
        self.errors: list[BaseException] = []
        self.threads: list[threading.Thread] = []

    def start(self, name: str, fn: Callable[[], None]) -> None:
        def body():
            try:
                fn()
            except Cancelled:
                pass
            except BaseException as e:  # handed to the main thread, which raises it
                if isinstance(e, ExecutorClosed) and self.stop.is_set():
                    return  # closed because another thread failed: that one reports
                self.errors.append(e)
                self.stop.set()
                self.on_error()

        t = threading.Thread(target=body, name=name, daemon=True)
        self.threads.append(t)
        t.start()

    def join(self) -> None:
        for t in self.threads:
            while t.is_alive():
                t.join(0.1)
                if self.errors:
                    self.stop.set()
        self.raise_first()

    def raise_first(self) -> None:
        if not self.errors:
            return
        e = self.errors[0]
        if isinstance(e, (UserError, ProcessingError, KeyboardInterrupt)):
            raise e
        raise ProcessingError(f"{type(e).__name__}: {e}") from e

    def cancel(self) -> None:
        self.stop.set()
        self.on_error()
        for t in self.threads:
            t.join(2.0)
