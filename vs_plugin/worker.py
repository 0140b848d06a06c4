"""The frame worker: one thread that runs the Restorer for frames handed in by other threads.

VapourSynth calls our filter from its own worker threads. Instead of each of those threads
running the model and synchronising the GPU step by step, they hand frames to one
:class:`FrameWorker`, which owns ``num_streams`` *slots*. A slot is one frame in flight:

* a host input and a host output buffer (pinned on CUDA, so copies are asynchronous), reused
  for every frame that goes through the slot;
* on CUDA, its own stream, a device input buffer and an event marking the end of its work.

A caller takes a free slot, fills its host input, and calls :meth:`FrameWorker.run`. The
worker thread queues copy-in, the model and copy-out on the slot's stream and returns at
once (it never synchronises), so while one slot computes, the next slot's host-to-device copy
and the previous slot's device-to-host copy proceed on the other streams. The caller waits
only on its own slot's event, then reads the host output and gives the slot back.

On the CPU the same machinery runs without streams: the worker thread computes each frame
in turn, and the slots only bound how many frames wait.

This module knows nothing of VapourSynth (it works on torch buffers), so it is usable by
any front end that receives frames on several threads.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager

import numpy as np
import torch

from err_stream.engine import Restorer


class Slot:
    """Buffers (and on CUDA a stream and an event) for one frame in flight."""

    def __init__(self, shape: tuple[int, int, int], dtype: torch.dtype, device: torch.device) -> None:
        cuda = device.type == "cuda"
        self.host_in = torch.empty(shape, dtype=dtype, pin_memory=cuda)
        self.host_out = torch.empty(shape, dtype=dtype, pin_memory=cuda)
        # numpy views of the host buffers: what callers read and write.
        self.input: np.ndarray = self.host_in.numpy()
        self.output: np.ndarray = self.host_out.numpy()
        self.stream = torch.cuda.Stream(device) if cuda else None
        self.done = torch.cuda.Event() if cuda else None
        self.device_in = torch.empty((1, *shape), dtype=dtype, device=device) if cuda else None

    def wait(self) -> None:
        """Block (without the GIL) until the slot's queued work has finished."""
        if self.done is not None:
            self.done.synchronize()


class FrameWorker:
    """Restore 3 x H x W frames of one size on ``restorer.device`` with ``num_streams`` slots.

    Args:
        restorer: the model with its device, precision and tiling.
        height, width: the frame size (fixed for the worker's life).
        dtype: sample type of the host buffers (``torch.float32`` or ``torch.float16``).
        num_streams: frames in flight at once (CUDA streams on a GPU).
        clamp: clamp results to [0, 1] (for outputs that will be quantised or converted to
            another colour space; float RGB outputs keep the network's values).
    """

    def __init__(
        self,
        restorer: Restorer,
        height: int,
        width: int,
        dtype: torch.dtype = torch.float32,
        num_streams: int = 1,
        clamp: bool = False,
    ) -> None:
        if num_streams < 1:
            raise ValueError(f"FrameWorker: num_streams must be at least 1, got {num_streams}")
        self.device = restorer.device
        self.num_streams = num_streams
        self._free: queue.Queue[Slot] = queue.Queue()
        for _ in range(num_streams):
            self._free.put(Slot((3, height, width), dtype, self.device))
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        # The thread holds the queue and the restorer, not self: when the last user drops
        # the worker, the finaliser stops the thread. Not at interpreter exit, though: a
        # thread that ran torch/numba code and ends while Python shuts down can abort the
        # process ("terminate called without an active exception"); the daemon thread just
        # ends with the process.
        self._thread = threading.Thread(target=_serve, args=(self._jobs, restorer, clamp), name="err-frame-worker", daemon=True)
        self._thread.start()
        weakref.finalize(self, self._jobs.put, None).atexit = False

    @contextmanager
    def slot(self) -> Iterator[Slot]:
        """A free slot for the caller's frame (waits while all are in flight)."""
        s = self._free.get()
        try:
            yield s
        finally:
            self._free.put(s)

    def run(self, slot: Slot) -> None:
        """Restore ``slot.input`` into ``slot.output``; returns when the output is ready."""
        queued: Future[None] = Future()
        self._jobs.put((slot, queued))
        queued.result()  # the work is queued on the slot's stream (CUDA) or done (CPU)
        slot.wait()


def _serve(jobs: queue.SimpleQueue, restorer: Restorer, clamp: bool) -> None:
    device = restorer.device
    if device.type == "cuda":
        torch.cuda.set_device(device)
    with torch.inference_mode():
        while True:
            item = jobs.get()
            if item is None:
                return
            slot, queued = item
            try:
                _restore_slot(restorer, slot, clamp)
                queued.set_result(None)
            except BaseException as e:  # handed to the waiting caller, who raises it
                queued.set_exception(e)


def _restore_slot(restorer: Restorer, slot: Slot, clamp: bool) -> None:
    if slot.stream is None:
        y = restorer.restore(slot.host_in[None])[0]
        slot.host_out.copy_(y.clamp_(0.0, 1.0) if clamp else y)
        return
    # Queue copy-in, model and copy-out on the slot's stream; nothing here waits for the GPU.
    with torch.cuda.stream(slot.stream):
        slot.device_in.copy_(slot.host_in[None], non_blocking=True)
        y = restorer.restore(slot.device_in)[0]
        slot.host_out.copy_(y.clamp_(0.0, 1.0) if clamp else y, non_blocking=True)
        slot.done.record(slot.stream)
