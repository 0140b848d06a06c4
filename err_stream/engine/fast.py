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
* **CUDA graphs** per (frame size, batch, dtype, CUDA stream): each executor slot has its own
  stream, hence its own graph and memory pool, so slots never share static buffers.

The library never prints: compile times go to the ``err_stream.engine.fast`` logger.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

from ..model import ERR

log = logging.getLogger(__name__)

HALF_DTYPES = (torch.float16, torch.bfloat16)


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
        cuda_graphs: replay CUDA graphs per size and stream (``None``: when compiling on CUDA).
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
        if self.cuda_graphs and not is_cuda:
            raise ValueError("FastForward: CUDA graphs need a CUDA device")
        self.on_compile = on_compile
        self.compile_seconds: dict[tuple, float] = {}
        if is_cuda:
            # Let cuDNN time its algorithms once per shape (the frame size of a video is fixed).
            torch.backends.cudnn.benchmark = True
        self._fn: Callable[[torch.Tensor], torch.Tensor] = self._forward
        if self.compile:
            _use_compile_cache()
            self._fn = torch.compile(self._forward, fullgraph=True, dynamic=False, backend=compile_backend)
        # (shape, dtype, stream) -> (static input, static output, graph); one memory pool per stream.
        self._graphs: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.cuda.CUDAGraph]] = {}
        self._pools: dict[int, tuple] = {}

    def describe(self) -> str:
        parts = [str(self.dtype).removeprefix("torch."), "channels_last" if self.memory_format is torch.channels_last else "NCHW"]
        if self.compile:
            parts.append("compiled")
        if self.cuda_graphs:
            parts.append("CUDA graphs")
        return ", ".join(parts)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        # The input stays float32: it is the image the stages add their corrections to (the
        # model casts it where it enters the features). Output layout is part of the graph.
        y = self.model(x.float().contiguous(memory_format=self.memory_format))
        return y.float().contiguous()

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = (*x.shape[:1], *x.shape[2:], self.dtype)
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

    def _graphed(self, x: torch.Tensor) -> torch.Tensor:
        stream = torch.cuda.current_stream(x.device)
        key = (tuple(x.shape), x.dtype, stream.cuda_stream)
        entry = self._graphs.get(key)
        if entry is None:
            entry = self._graphs[key] = self._capture(x, stream)
        static_in, static_out, graph = entry
        static_in.copy_(x)
        graph.replay()  # on the current stream, after the copy
        # The static output is overwritten by the next replay: hand out a copy (3 channels, cheap).
        return static_out.clone()

    def _capture(self, x: torch.Tensor, stream: torch.cuda.Stream) -> tuple:
        static_in = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        static_in.copy_(x)
        # Warm up on a side stream: compilation, autotuning, cuDNN's benchmark and lazy
        # allocations must all happen before capture.
        side = torch.cuda.Stream(x.device)
        side.wait_stream(stream)
        with torch.cuda.stream(side):
            for _ in range(2):
                self._fn(static_in)
        stream.wait_stream(side)
        pool = self._pools.get(stream.cuda_stream)
        if pool is None:
            # One pool per stream: graphs of one stream replay one after another and may share
            # memory; graphs of different streams may run at the same time and must not.
            pool = self._pools[stream.cuda_stream] = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        # thread_local: the executor uploads the next frames from other threads while we capture.
        with torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local"):
            static_out = self._fn(static_in)
        return static_in, static_out, graph

    def release(self) -> None:
        """Drop the captured graphs and their memory pools (e.g. before changing frame size)."""
        self._graphs.clear()
        self._pools.clear()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
