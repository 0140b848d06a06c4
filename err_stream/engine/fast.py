"""The fast path of ERR's whole-frame forward: layout, precision, compilation, CUDA graphs.

:class:`FastForward` wraps a prepared copy of the model:

* **channels_last** end to end (the model's layers keep the layout they are given: see
  ``ChannelLayerNorm`` and ``PixelShuffle`` in :mod:`err_stream.model.layers`), so cuDNN and
  the CPU convolutions never convert between NCHW and NHWC around each layer;
* **half weights with float32 islands** for ``fp16``/``bf16``: the weights are converted once,
  instead of autocast re-casting them on every call, except where numerics need float32 (the
  normalisations' weights, the scan's A, D and dt bias, the frequency branch's KAN, the
  attention temperature, and the convs that make each stage's image, so that the input
  picture and the images added to it stay float32; those layers compute in float32 whatever
  their input, see :func:`float32_parameters`);
* **torch.compile(fullgraph=True)** of the whole forward (the scan and the rational are
  registered ops, so the model is one graph), per frame size (``dynamic=False``); compiled
  artefacts are cached on disk (:func:`compile_cache_dir`) so a second run starts fast, and
  the first-use compile time of each size is logged and passed to ``on_compile``;
* **CUDA graphs** per (frame size, batch, dtype) and *lane*: a lane is one caller's set of
  graphs with its own memory pool and capture stream (each executor runs in its own lane,
  see :func:`graph_lane`; a caller outside any lane gets one per CUDA stream), so callers
  never share static buffers, and an executor's graphs are dropped when it closes
  (:meth:`FastForward.release`). Captures are serialised process-wide
  (:data:`CAPTURE_LOCK`): two executors in one process (two ``err()`` calls in a
  VapourSynth script) may start at once.

Every frame size, batch and dtype is a separate compiled graph and a separate capture
(``dynamic=False``, on purpose: ERR's sizes are fixed for a stream), so callers keep the
batch fixed (the executor pads a short last batch; :attr:`FastForward.specialises_shapes`).
The graph path can be rehearsed on a CPU (``rehearse_graphs=True``): the same lanes, keys,
lock, static buffers and replay counts, with a plain call in place of the CUDA graph.

The library never prints: compile times go to the ``err_stream.engine.fast`` logger.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..model import ERR

log = logging.getLogger(__name__)

HALF_DTYPES = (torch.float16, torch.bfloat16)

# One graph capture at a time in the process. torch.cuda.graph begins each capture with a
# device-wide synchronisation, a garbage collection and an empty_cache(), and the caching
# allocator's capture bookkeeping is process-wide: captures from two threads at once (two
# executors starting together) are nothing PyTorch promises to handle, so they take turns.
CAPTURE_LOCK = threading.Lock()

_local = threading.local()
_NEEDS_CUDA = "FastForward: CUDA graphs need a CUDA device (rehearse_graphs=True rehearses them on a CPU)"


class GraphLane:
    """A caller's own set of graphs in every :class:`FastForward` it runs (made by each
    executor). Graphs captured inside ``with graph_lane(lane):`` belong to ``lane`` and are
    dropped by ``FastForward.release(lane)``."""

    def __init__(self, name: str = "lane") -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"GraphLane({self.name!r})"


@contextmanager
def graph_lane(lane: GraphLane) -> Iterator[GraphLane]:
    """Run the calls of this thread inside ``lane`` (see :class:`GraphLane`)."""
    previous = getattr(_local, "lane", None)
    _local.lane = lane
    try:
        yield lane
    finally:
        _local.lane = previous


@dataclass
class _Lane:
    """One lane's graphs ((shape, dtype) -> (static input, static output, graph)), its memory
    pool (graphs of one lane replay one after another and may share memory; lanes may run at
    the same time and must not) and its streams (CUDA only)."""

    graphs: dict[tuple, tuple[torch.Tensor, torch.Tensor, Any]] = field(default_factory=dict)
    pool: Any = None
    capture_stream: Any = None
    side_stream: Any = None


class _StaticReplay:
    """What a CUDA graph does, on the CPU: fixed input and output buffers, and one call of
    the captured function per replay. The graph path's CPU rehearsal, not a speed-up."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], static_in: torch.Tensor, static_out: torch.Tensor) -> None:
        self.fn, self.static_in, self.static_out = fn, static_in, static_out

    def replay(self) -> None:
        self.static_out.copy_(self.fn(self.static_in))

    def reset(self) -> None:
        pass


def compile_cache_dir() -> Path:
    """Where compiled artefacts live: ``compile`` in err-stream's cache folder
    (:func:`err_stream.runtime.cache_dir`)."""
    from ..runtime import cache_dir

    return cache_dir() / "compile"


def _use_compile_cache() -> Path:
    # Inductor and Triton read these when they first need their caches; a user's own setting wins.
    path = compile_cache_dir()
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(path / "inductor"))
    os.environ.setdefault("TRITON_CACHE_DIR", str(path / "triton"))
    return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])


def float32_parameters(model: ERR) -> Iterator[tuple[str, nn.Parameter]]:
    """The parameters that stay float32 in a half-weight model (the float32 islands)."""
    from ..model.hfr import RationalKAN
    from ..model.layers import ChannelLayerNorm, ImageConv
    from ..model.lfr import SS2D
    from ..model.zfe import PriorChannelAttention

    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(module, (nn.LayerNorm, ChannelLayerNorm, RationalKAN, ImageConv)):
            yield from ((prefix + n, p) for n, p in module.named_parameters())
        elif isinstance(module, SS2D):
            yield from ((prefix + n, getattr(module, n)) for n in ("A_logs", "Ds", "dt_projs_bias"))
        elif isinstance(module, PriorChannelAttention):
            yield prefix + "temperature", module.temperature


def prepare_model(
    model: ERR, dtype: torch.dtype = torch.float32, channels_last: bool = True, device: torch.device | str | None = None
) -> ERR:
    """A copy of ``model`` (eval mode, on ``device``, default the model's) with weights in
    ``dtype`` except the float32 islands, and convolution weights channels_last if asked.
    ``model`` is left untouched."""
    fast = copy.deepcopy(model).eval()
    if device is not None:
        fast = fast.to(device)
    fast.requires_grad_(False)
    if dtype != torch.float32:
        keep = {name for name, _ in float32_parameters(fast)}
        for name, p in fast.named_parameters():
            if name not in keep:
                p.data = p.data.to(dtype)
    if channels_last:
        fast = fast.to(memory_format=torch.channels_last)
    return fast


class FastForward:
    """``ERR.forward`` on whole frames, made fast (see the module docstring).

    Args:
        model: the :class:`ERR` to run (copied; the original is not modified).
        device: where to run (the model is moved there).
        dtype: float32, or float16/bfloat16 for half weights with float32 islands.
        channels_last: run in channels_last layout.
        compile: ``torch.compile`` the forward (``None``: on CUDA only; a CPU compile of ERR takes
            minutes, and eager channels_last is already most of the CPU gain).
        cuda_graphs: replay CUDA graphs per size and lane (``None``: when compiling on CUDA).
        rehearse_graphs: on a CPU, run the graph path with :class:`_StaticReplay` in place of
            CUDA graphs (with ``cuda_graphs=True``): for the benchmark's rehearsal and tests.
        on_compile: called as ``on_compile(key, seconds)`` after the first call of each frame
            size (``key`` = (batch, height, width, dtype)) when compiling.
        compile_backend: the ``torch.compile`` backend (``"inductor"``; ``"aot_eager"`` traces
            and checks the graph without generating code, for quick smoke runs).

    Call it with a B x 3 x H x W float tensor on ``device`` (H, W multiples of the model's
    ``multiple``); it returns a contiguous float32 B x 3 x H x W tensor.
    """

    def __init__(
        self,
        model: ERR,
        device: torch.device | str,
        dtype: torch.dtype = torch.float32,
        *,
        channels_last: bool = True,
        compile: bool | None = None,
        cuda_graphs: bool | None = None,
        on_compile: Callable[[tuple, float], None] | None = None,
        compile_backend: str | Callable = "inductor",
        rehearse_graphs: bool = False,
    ) -> None:
        if dtype not in (torch.float32, *HALF_DTYPES):
            raise ValueError(f"FastForward: dtype must be float32, float16 or bfloat16, got {dtype}")
        self.device = torch.device(device)
        is_cuda = self.device.type == "cuda"
        self.dtype = dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = prepare_model(model, dtype, channels_last, self.device)
        self.compile = is_cuda if compile is None else bool(compile)
        self.cuda_graphs = (is_cuda and self.compile) if cuda_graphs is None else bool(cuda_graphs)
        self.rehearse_graphs = bool(rehearse_graphs)
        if self.cuda_graphs and not is_cuda and not self.rehearse_graphs:
            raise ValueError(_NEEDS_CUDA)
        self.on_compile = on_compile
        self.compile_seconds: dict[tuple, float] = {}
        if is_cuda:
            # Let cuDNN time its algorithms once per shape (the frame size of a video is fixed).
            torch.backends.cudnn.benchmark = True
        self._fn: Callable[[torch.Tensor], torch.Tensor] = self._forward
        if self.compile:
            _use_compile_cache()
            self._fn = torch.compile(self._forward, fullgraph=True, dynamic=False, backend=compile_backend)
        self._lanes: dict[Any, _Lane] = {}
        self._lanes_lock = threading.Lock()
        # Measured, not assumed: graph replays so far, and every (batch, height, width, dtype)
        # run (with compile or graphs, each one is a compiled graph and a capture per lane).
        self.graph_replays = 0
        self.shapes: set[tuple] = set()

    def describe(self) -> str:
        parts = [str(self.dtype).removeprefix("torch."), "channels_last" if self.memory_format is torch.channels_last else "NCHW"]
        if self.compile:
            parts.append("compiled")
        if self.cuda_graphs:
            parts.append("CUDA graphs" if self.device.type == "cuda" else "graph rehearsal")
        return ", ".join(parts)

    @property
    def specialises_shapes(self) -> bool:
        """Whether each new input shape costs a compile or a capture (so callers should keep
        the batch and frame size fixed)."""
        return self.compile or self.cuda_graphs

    def captured(self) -> dict[Any, list[tuple]]:
        """The captured (shape, dtype) keys of each lane (what :meth:`release` frees)."""
        with self._lanes_lock:
            return {key: list(lane.graphs) for key, lane in self._lanes.items()}

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        # The input stays float32: it is the image the stages add their corrections to (the
        # model casts it where it enters the features). Output layout is part of the graph.
        y = self.model(x.float().contiguous(memory_format=self.memory_format))
        return y.float().contiguous()

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = (*x.shape[:1], *x.shape[2:], self.dtype)
        self.shapes.add(key)
        first = self.compile and key not in self.compile_seconds
        start = time.perf_counter() if first else 0.0
        if self.cuda_graphs:
            y = self._graphed(x)
        else:
            y = self._fn(x)
        if first:
            if x.is_cuda:
                torch.cuda.synchronize(x.device)
            seconds = time.perf_counter() - start
            self.compile_seconds[key] = seconds
            log.info(
                "compiled ERR for %dx%d, batch %d, %s in %.1f s (cache: %s)",
                key[2], key[1], key[0], self.describe(), seconds, os.environ.get("TORCHINDUCTOR_CACHE_DIR"),
            )
            if self.on_compile is not None:
                self.on_compile(key, seconds)
        return y

    def _lane(self, x: torch.Tensor) -> _Lane:
        key = getattr(_local, "lane", None)
        if key is None:  # outside any lane: one per CUDA stream, as before lanes existed
            key = ("stream", torch.cuda.current_stream(x.device).cuda_stream) if x.is_cuda else ("default",)
        with self._lanes_lock:
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = _Lane()
            return lane

    def _graphed(self, x: torch.Tensor) -> torch.Tensor:
        lane = self._lane(x)
        key = (tuple(x.shape), x.dtype)
        entry = lane.graphs.get(key)
        if entry is None:
            entry = lane.graphs[key] = self._capture(x, lane)
        static_in, static_out, graph = entry
        static_in.copy_(x)
        graph.replay()  # on the current stream, after the copy
        with self._lanes_lock:
            self.graph_replays += 1
        # The static output is overwritten by the next replay: hand out a copy (3 channels, cheap).
        return static_out.clone()

    def _capture(self, x: torch.Tensor, lane: _Lane) -> tuple:
        static_in = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        static_in.copy_(x)
        if not x.is_cuda:
            if not self.rehearse_graphs:
                raise ValueError(_NEEDS_CUDA)
            for _ in range(2):  # the warm-up calls, as on CUDA
                self._fn(static_in)
            with CAPTURE_LOCK:
                static_out = self._fn(static_in)
            return static_in, static_out, _StaticReplay(self._fn, static_in, static_out)
        stream = torch.cuda.current_stream(x.device)
        if lane.side_stream is None:
            lane.side_stream = torch.cuda.Stream(x.device)
            lane.capture_stream = torch.cuda.Stream(x.device)
            lane.pool = torch.cuda.graph_pool_handle()
        # Warm up on a side stream: compilation, autotuning, cuDNN's benchmark and lazy
        # allocations must all happen before capture.
        side = lane.side_stream
        side.wait_stream(stream)
        with torch.cuda.stream(side):
            for _ in range(2):
                self._fn(static_in)
        stream.wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # The lane's own capture stream: torch.cuda.graph otherwise captures every graph of the
        # process on one class-wide stream. thread_local: the executors upload and compute
        # from other threads while we capture.
        with CAPTURE_LOCK:
            lane.capture_stream.wait_stream(stream)
            with torch.cuda.graph(graph, pool=lane.pool, stream=lane.capture_stream, capture_error_mode="thread_local"):
                static_out = self._fn(static_in)
        return static_in, static_out, graph

    def release(self, lane: GraphLane | None = None) -> None:
        """Drop captured graphs and their memory pools: all of them (e.g. before changing
        frame size), or the graphs of ``lane`` (an executor drops its own when it closes)."""
        with self._lanes_lock:
            if lane is None:
                dropped = list(self._lanes.values())
                self._lanes.clear()
            else:
                dropped = [self._lanes.pop(lane)] if lane in self._lanes else []
        if not dropped:
            return
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(self.device)  # no replay may still use the pools
        for gone in dropped:
            for _, _, graph in gone.graphs.values():
                graph.reset()
            gone.graphs.clear()
        dropped.clear()
        if cuda:
            torch.cuda.empty_cache()
