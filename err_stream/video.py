"""Restore a video file: decode -> colour -> Restorer -> colour -> encode, overlapped.

Three stages run at once, joined by bounded queues (so memory stays flat however long the
video is):

* a decode thread (PyAV or NVIDIA DALI) that also stages each frame's planes for the device;
* the main thread, which batches frames, converts YCbCr to R'G'B' float with the stream's
  matrix and range, runs :meth:`Restorer.restore`, and converts back;
* an encode thread that writes the frames with their own timestamps and muxes the copied
  audio/subtitle/data packets beside them.

On CUDA the main thread never waits for the GPU: host->device copies, compute and
device->host copies go on three CUDA streams ordered by events, through pinned host
buffers that are reused (a buffer is handed back when the event of the copy that reads it
has fired). The encode thread is the only one that waits, on the event of the copy it needs.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .engine.settings import RestoreSettings
from .errors import ProcessingError, SettingError, UserError
from .progress import Progress
from .io.colour import YCbCrConverter, resolve_full_range, resolve_matrix
from .io.priority import lower_thread_priority
from .io.sink import EncoderSettings, PartialOutput, VideoSink, choose_encoder
from .io.source import (
    DaliSource,
    PyAVSource,
    SourceFrame,
    VideoInfo,
    dali_available,
    probe,
)

log = logging.getLogger(__name__)

DECODERS = ("auto", "pyav", "dali")
# NVDEC codecs for which --decoder auto picks DALI on a GPU.
DALI_AUTO_CODECS = ("h264", "hevc", "av1", "vp9")


@dataclass
class TranscodeResult:
    """What ``--json`` prints."""

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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_decoder(requested: str, info: VideoInfo, device: torch.device) -> str:
    """``auto``: DALI (NVDEC, frames stay on the GPU) on CUDA for 8-bit 4:2:0 limited-range
    H.264/HEVC/AV1/VP9 when DALI is installed; PyAV otherwise (CPU, 10-bit, 4:2:2, ProRes...)."""
    if requested not in DECODERS:
        raise SettingError("decoder", requested, f"choose one of {', '.join(DECODERS)}")
    if requested != "auto":
        return requested
    if (
        device.type == "cuda"
        and info.codec in DALI_AUTO_CODECS
        and info.pix_fmt.bits == 8
        and info.pix_fmt.subsampling() == "4:2:0"
        # DALI's RGB is clipped to the limited-range gamut: full-range input would lose its extremes.
        and not resolve_full_range(info.tags, info.pix_fmt.name)
        and dali_available()
    ):
        return "dali"
    return "pyav"


def default_batch(info: VideoInfo, device: torch.device) -> int:
    """One frame at a time on CPU; on a GPU enough small frames to make about 2 megapixels."""
    if device.type != "cuda":
        return 1
    return max(1, min(8, 2_000_000 // (info.width * info.height)))


def transcode(
    input: str | Path,
    output: str | Path,
    restorer=None,
    *,
    device: str | torch.device | None = None,
    decoder: str = "auto",
    codec: str | None = None,
    crf: float | None = None,
    encoder_preset: str | None = None,
    pix_fmt: str | None = None,
    encoder_opts: list[str] | tuple[str, ...] = (),
    overwrite: bool = False,
    progress: Progress | None = None,
    batch: int | None = None,
    queue_frames: int = 8,
) -> TranscodeResult:
    """Restore every frame of ``input`` into ``output`` (``restorer=None``: passthrough).

    Raises :class:`UserError` for bad paths, unreadable/corrupt input, unsupported streams
    and bad options, :class:`ProcessingError` for failures while processing. ``output`` is
    only created (atomically) when everything succeeded."""
    input, output = Path(input), Path(output)
    info = probe(input)
    settings = choose_encoder(info, output, codec, crf, encoder_preset, pix_fmt, encoder_opts)
    partial = PartialOutput(output, overwrite=overwrite, source=input)
    if restorer is not None:
        dev = restorer.device
    else:
        dev = RestoreSettings(device=device).torch_device()
    if batch is not None and batch < 1:
        raise SettingError("batch", batch, "must be at least 1")
    batch = batch or default_batch(info, dev)
    decoder_name = choose_decoder(decoder, info, dev)
    if decoder_name == "dali":
        gpu = dev.type == "cuda"
        source = DaliSource(info, device="gpu" if gpu else "cpu", device_id=(dev.index or 0) if gpu else 0)
    else:
        source = PyAVSource(info)
    what = "passthrough (no model)" if restorer is None else f"model {restorer.precision}"
    line = f"{info.describe()} -> {settings.describe()}; decoder {decoder_name}, {dev}, {what}, batch {batch}"
    log.info(line)  # says which decoder ran (decoder "auto"); also given to the progress callback
    progress = _NoticedProgress(progress, line)

    with partial:
        sink = VideoSink(partial.tmp, output, info, settings)
        run = None
        try:
            run = _Run(info, settings, source, sink, restorer, dev, batch, queue_frames, progress)
            frames, seconds = run.execute()
        except BaseException:
            if run is not None:
                run.cancel()
            sink.abort()
            raise
        partial.commit()
    return TranscodeResult(
        input=str(input),
        output=str(output),
        frames=frames,
        seconds=round(seconds, 3),
        fps=round(frames / seconds, 3) if seconds > 0 else 0.0,
        decoder=decoder_name,
        device=str(dev),
        precision=getattr(restorer, "precision", None),
        passthrough=restorer is None,
        codec=settings.codec,
        pix_fmt=settings.pix_fmt.name,
        batch=batch,
    )


# ----------------------------------------------------------------------------- plumbing

class _Cancelled(Exception):
    pass


_END = object()


class _Channel:
    """A bounded queue whose blocking calls give up when the run is cancelled."""

    def __init__(self, size: int, stop: threading.Event) -> None:
        self.q: queue.Queue = queue.Queue(maxsize=size)
        self.stop = stop

    def put(self, item) -> None:
        while True:
            if self.stop.is_set():
                raise _Cancelled
            try:
                self.q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def get(self):
        while True:
            if self.stop.is_set():
                raise _Cancelled
            try:
                return self.q.get(timeout=0.1)
            except queue.Empty:
                continue

    def get_nowait(self):
        return self.q.get_nowait()


@dataclass
class _Done:
    """A processed batch on its way to the encoder."""

    frames: list[SourceFrame]
    planes: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None  # host (CPU path)
    slot: Any = None  # pinned output buffer (CUDA path)
    ready: Any = None  # event of the device->host copy into ``slot``


class _NoticedProgress:
    """The caller's progress callback (or none), given the run's description with ``begin``."""

    def __init__(self, inner: Progress | None, note: str) -> None:
        self.inner, self.note = inner or None, note  # False (older callers): none

    def begin(self, task: str, total: int | None) -> None:
        if self.inner is not None:
            self.inner.begin(task, total, self.note)

    def advance(self, n: int = 1) -> None:
        if self.inner is not None:
            self.inner.advance(n)

    def end(self) -> None:
        if self.inner is not None:
            self.inner.end()


class _Run:
    def __init__(self, info, settings: EncoderSettings, source, sink: VideoSink, restorer, device, batch, queue_frames, progress):
        self.info, self.settings, self.source, self.sink = info, settings, source, sink
        self.restorer, self.device, self.batch = restorer, device, batch
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.q_in = _Channel(max(queue_frames, 2 * batch), self.stop)
        self.q_out = _Channel(3, self.stop)
        matrix = resolve_matrix(info.tags, info.width, info.height)
        self.converter = YCbCrConverter(matrix, resolve_full_range(info.tags, info.pix_fmt.name))
        if device.type == "cuda":
            self.stage: _Stage = _CudaStage(self, queue_frames)
        else:
            self.stage = _HostStage(self)
        self.progress = progress
        self.written = 0
        self.threads: list[threading.Thread] = []

    # -- threads
    def _guard(self, fn):
        def body():
            try:
                fn()
            except _Cancelled:
                pass
            except BaseException as e:  # handed to the main thread, which raises it
                self.errors.append(e)
                self.stop.set()

        return body

    def _decode(self) -> None:
        lower_thread_priority()  # FFmpeg's decoder threads, created here, inherit it
        for frame in self.source.frames():
            self.q_in.put(self.stage.prepare(frame))
        self.q_in.put(_END)

    def _encode(self) -> None:
        lower_thread_priority()

        bar = self.progress
        bar.begin("passthrough" if self.restorer is None else "restoring", self.info.frames_estimate)
        try:
            while True:
                item = self.q_out.get()
                if item is _END:
                    break
                for frame, planes in self.stage.finished(item):
                    self.sink.write(planes, frame.pts, frame.duration)
                    self.written += 1
                    bar.advance(1)
                self.stage.release(item)
            self.sink.finish()
        finally:
            bar.end()

    def execute(self) -> tuple[int, float]:
        t0 = time.perf_counter()
        self.threads = [
            threading.Thread(target=self._guard(self._decode), name="err-stream-decode", daemon=True),
            threading.Thread(target=self._guard(self._encode), name="err-stream-encode", daemon=True),
        ]
        for t in self.threads:
            t.start()
        try:
            ended = False
            while not ended:
                frames = []
                item = self.q_in.get()
                if item is _END:
                    break
                frames.append(item)
                while len(frames) < self.batch:
                    try:
                        item = self.q_in.get_nowait()
                    except queue.Empty:
                        break
                    if item is _END:
                        ended = True
                        break
                    frames.append(item)
                self.q_out.put(self.stage.process(frames))
            self.q_out.put(_END)
        except _Cancelled:
            pass
        for t in self.threads:
            while t.is_alive():
                t.join(0.1)
                if self.errors:
                    self.stop.set()
        self._raise_errors()
        return self.written, time.perf_counter() - t0

    def _raise_errors(self) -> None:
        if not self.errors:
            return
        e = self.errors[0]
        if isinstance(e, (UserError, ProcessingError, KeyboardInterrupt)):
            raise e
        raise ProcessingError(f"{type(e).__name__}: {e}") from e

    def cancel(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(2.0)

    # -- the compute step shared by both stages
    def restore(self, rgb: torch.Tensor) -> torch.Tensor:
        if self.restorer is None:
            return rgb  # passthrough: no clamp, so the round trip is exact
        return self.restorer.restore(rgb).clamp_(0.0, 1.0)


class _Stage:
    def prepare(self, frame: SourceFrame) -> SourceFrame:
        return frame

    def process(self, frames: list[SourceFrame]) -> _Done:
        raise NotImplementedError

    def finished(self, done: _Done):
        raise NotImplementedError

    def release(self, done: _Done) -> None:
        pass


class _HostStage(_Stage):
    """CPU: planes go from the decoder's buffers straight into torch (no copy)."""

    def __init__(self, run: _Run) -> None:
        self.run = run

    def process(self, frames: list[SourceFrame]) -> _Done:
        run = self.run
        with torch.inference_mode():
            rgb = _to_rgb(run, frames, lambda a: torch.from_numpy(a) if isinstance(a, np.ndarray) else a)
            out = run.restore(rgb)
            y, cb, cr = run.converter.rgb_to_planes(out, run.settings.pix_fmt)
        host = np.uint8 if run.settings.pix_fmt.bits == 8 else np.uint16
        planes = [tuple(p[i].numpy().astype(host, copy=False) for p in (y, cb, cr)) for i in range(len(frames))]
        for f in frames:
            f.planes = f.keepalive = f.rgb601 = None  # the decoder's buffers can go
        return _Done(frames, planes)

    def finished(self, done: _Done):
        return zip(done.frames, done.planes)


def _to_rgb(run: _Run, frames: list[SourceFrame], as_tensor) -> torch.Tensor:
    conv = run.converter
    if frames[0].rgb601 is not None:
        return conv.from_bt601_limited_rgb(torch.stack([f.rgb601 for f in frames]))
    fmt = run.info.pix_fmt
    y, cb, cr = (torch.stack([as_tensor(f.planes[k]) for f in frames]) for k in range(3))
    return conv.planes_to_rgb(y, cb, cr, fmt)


class _Slot:
    """A reusable pinned host buffer and the event after which it may be rewritten."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor
        self.event: torch.cuda.Event | None = None

    def wait(self) -> None:
        if self.event is not None:
            self.event.synchronize()
            self.event = None


class _CudaStage(_Stage):
    """CUDA: pinned buffers reused, H2D / compute / D2H on their own streams, ordered by events."""

    def __init__(self, run: _Run, queue_frames: int) -> None:
        self.run = run
        dev = run.device
        info, out_fmt = run.info, run.settings.pix_fmt
        self.h2d = torch.cuda.Stream(dev)
        self.compute = torch.cuda.Stream(dev)
        self.d2h = torch.cuda.Stream(dev)
        in_fmt = info.pix_fmt
        self.in_shapes = in_fmt.plane_shapes(info.width, info.height)
        self.in_elems = in_fmt.frame_elements(info.width, info.height)
        self.out_shapes = out_fmt.plane_shapes(info.width, info.height)
        self.out_elems = out_fmt.frame_elements(info.width, info.height)
        self.in_dtype = in_fmt.torch_dtype
        self.out_dtype = out_fmt.torch_dtype
        # Enough input slots for the queue, the batch being uploaded, and one in hand.
        self.in_pool: queue.Queue[_Slot] = queue.Queue()
        for _ in range(max(queue_frames, 2 * run.batch) + run.batch + 1):
            self.in_pool.put(_Slot(torch.empty(self.in_elems, dtype=self.in_dtype, pin_memory=True)))
        # Output slots: one per batch in the encode queue, one being filled, one being written.
        self.out_pool: queue.Queue[_Slot] = queue.Queue()
        for _ in range(5):
            self.out_pool.put(_Slot(torch.empty((run.batch, self.out_elems), dtype=self.out_dtype, pin_memory=True)))

    def _take(self, pool: queue.Queue) -> _Slot:
        while True:
            if self.run.stop.is_set():
                raise _Cancelled
            try:
                slot = pool.get(timeout=0.1)
            except queue.Empty:
                continue
            slot.wait()
            return slot

    # decode thread
    def prepare(self, frame: SourceFrame) -> SourceFrame:
        if frame.planes is None:
            return frame  # DALI: already on the GPU
        slot = self._take(self.in_pool)
        host = slot.tensor.numpy()
        if host.dtype == np.int16:
            host = host.view(np.uint16)
        at = 0
        for plane, (h, w) in zip(frame.planes, self.in_shapes):
            host[at : at + h * w].reshape(h, w)[...] = plane
            at += h * w
        frame.planes = None
        frame.keepalive = slot
        return frame

    # main thread
    def process(self, frames: list[SourceFrame]) -> _Done:
        run = self.run
        b = len(frames)
        with torch.inference_mode():
            if frames[0].rgb601 is not None:
                for f in frames:
                    if f.ready is not None:
                        self.compute.wait_event(f.ready)
                with torch.cuda.stream(self.compute):
                    for f in frames:
                        f.rgb601.record_stream(self.compute)
                    rgb = run.converter.from_bt601_limited_rgb(torch.stack([f.rgb601 for f in frames]))
                for f in frames:
                    f.rgb601 = None
            else:
                with torch.cuda.stream(self.h2d):
                    codes = torch.empty((b, self.in_elems), dtype=self.in_dtype, device=run.device)
                    for i, f in enumerate(frames):
                        codes[i].copy_(f.keepalive.tensor, non_blocking=True)
                    uploaded = torch.cuda.Event()
                    uploaded.record(self.h2d)
                for f in frames:  # the pinned slots are free again once the upload is done
                    f.keepalive.event = uploaded
                    self.in_pool.put(f.keepalive)
                    f.keepalive = None
                self.compute.wait_event(uploaded)
                with torch.cuda.stream(self.compute):
                    codes.record_stream(self.compute)
                    y, cb, cr = _split(codes, self.in_shapes)
                    rgb = run.converter.planes_to_rgb(y, cb, cr, run.info.pix_fmt)
            with torch.cuda.stream(self.compute):
                out = run.restore(rgb)
                planes = run.converter.rgb_to_planes(out, run.settings.pix_fmt)
                flat = torch.cat([p.reshape(b, -1).to(self.out_dtype) for p in planes], dim=1)
                computed = torch.cuda.Event()
                computed.record(self.compute)
            slot = self._take(self.out_pool)
            self.d2h.wait_event(computed)
            with torch.cuda.stream(self.d2h):
                flat.record_stream(self.d2h)
                slot.tensor[:b].copy_(flat, non_blocking=True)
                downloaded = torch.cuda.Event()
                downloaded.record(self.d2h)
        return _Done(frames, None, slot, downloaded)

    # encode thread
    def finished(self, done: _Done):
        done.ready.synchronize()
        host = done.slot.tensor.numpy()
        if host.dtype == np.int16:
            host = host.view(np.uint16)
        for i, f in enumerate(done.frames):
            at, planes = 0, []
            for h, w in self.out_shapes:
                planes.append(host[i, at : at + h * w].reshape(h, w))
                at += h * w
            yield f, tuple(planes)

    def release(self, done: _Done) -> None:
        self.out_pool.put(done.slot)


def _split(codes: torch.Tensor, shapes: list[tuple[int, int]]) -> list[torch.Tensor]:
    out, at = [], 0
    for h, w in shapes:
        out.append(codes[:, at : at + h * w].view(-1, h, w))
        at += h * w
    return out
