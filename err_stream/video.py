"""Restore a video file: decode -> colour -> Restorer -> colour -> encode, overlapped.

Three threads of ours and the engine's executor run at once, joined by bounded queues (so
memory stays flat however long the video is):

* a decode thread (PyAV or NVIDIA DALI) that packs each frame's planes into one of the
  executor's host buffers (pinned on CUDA);
* the main thread, which batches frames and submits them to the
  :class:`~err_stream.engine.executor.StreamingExecutor`; it never waits for the model;
* the executor's thread, which converts YCbCr to R'G'B' float with the stream's matrix and
  range, runs the Restorer, applies the output guard and converts back, on the device (on
  CUDA: upload, compute and download streams ordered by events);
* an encode thread that takes each batch's ticket in order (the only wait for the device),
  writes the frames with their own timestamps and muxes the copied audio/subtitle/data
  packets beside them.
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

from .engine.executor import ExecutorClosed, StreamingExecutor
from .engine.settings import RestoreSettings
from .errors import ProcessingError, SettingError, UserError
from .progress import Progress
from .io.colour import PackedFrameColour, YCbCrConverter, resolve_full_range, resolve_matrix
from .io.priority import lower_thread_priority
from .io.preflight import plan_output
from .io.sink import EncoderSettings, PartialOutput, VideoSink
from .io.source import (
    DaliSource,
    PyAVSource,
    SourceFrame,
    VideoInfo,
    check_alpha,
    probe,
)

log = logging.getLogger(__name__)

DECODERS = ("auto", "pyav", "dali")


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
    decode_errors: int = 0  # concealed decoder errors let through by ignore_errors

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_decoder(requested: str, info: VideoInfo, device: torch.device) -> str:
    """``auto`` is PyAV, always. DALI hands over RGB it converted itself (BT.601 matrix, its
    own chroma upsampling, rounded to 8 bits): undoing its matrix leaves errors of several
    code values (7/8/8 on a lossless VP9, 25/14/21 on full-range MJPEG), so it is used only
    when asked for (``--decoder dali``), as a fast but inexact path."""
    if requested not in DECODERS:
        raise SettingError("decoder", requested, f"choose one of {', '.join(DECODERS)}")
    if requested == "dali":
        log.warning("decoder dali: colours are approximate (DALI converts to RGB itself); decoder pyav is exact")
    return "pyav" if requested == "auto" else requested


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
    copy_data: bool = True,
    planned: EncoderSettings | None = None,
    ignore_errors: bool = False,
    drop_alpha: bool = False,
    progress: Progress | None = None,
    batch: int | None = None,
    queue_frames: int = 8,
    accept_out_of_range: bool = False,
) -> TranscodeResult:
    """Restore every frame of ``input`` into ``output`` (``restorer=None``: passthrough).

    Raises :class:`UserError` for bad paths, unreadable/corrupt input, unsupported streams
    and bad options, :class:`ProcessingError` for failures while processing, among them
    :class:`~err_stream.engine.output_check.OutputRangeError` when the model's output for a
    frame is non-finite or out of range (``accept_out_of_range=True`` clamps such output
    and goes on). ``output`` is only created (atomically) when everything succeeded."""
    input, output = Path(input), Path(output)
    info = probe(input)
    check_alpha(info, drop_alpha)
    # ``planned``: the caller has already run plan_output with these options.
    settings = planned or plan_output(info, output, codec, crf, encoder_preset, pix_fmt, encoder_opts, copy_data)
    partial = PartialOutput(output, overwrite=overwrite, source=input)
    if restorer is not None:
        dev = restorer.device
    else:
        dev = RestoreSettings(device=device).torch_device()
    if batch is not None and batch < 1:
        raise SettingError("batch", batch, "must be at least 1")
    batch = batch or default_batch(info, dev)
    decoder_name = choose_decoder(decoder, info, dev)
    if info.format_name == "vapoursynth":
        from .io.vpy import VpySource

        decoder_name, source = "vapoursynth", VpySource(info)
    elif decoder_name == "dali":
        gpu = dev.type == "cuda"
        source = DaliSource(info, device="gpu" if gpu else "cpu", device_id=(dev.index or 0) if gpu else 0)
    else:
        source = PyAVSource(info, ignore_errors=ignore_errors)
    what = "passthrough (no model)" if restorer is None else f"model {restorer.precision}"
    line = f"{info.describe()} -> {settings.describe()}; decoder {decoder_name}, {dev}, {what}, batch {batch}"
    log.info(line)  # says which decoder ran (decoder "auto"); also given to the progress callback
    progress = _NoticedProgress(progress, line)

    with partial:
        sink = VideoSink(partial.tmp, output, info, settings, copy_data=copy_data)
        for what in sink.lost:
            log.warning("%s cannot be kept in %s: %s", info.path.name, output.suffix, what)
        run = None
        try:
            run = _Run(info, settings, source, sink, restorer, dev, batch, queue_frames, progress, accept_out_of_range)
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
        decode_errors=len(getattr(source, "damage", ())),
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
    def __init__(self, info, settings: EncoderSettings, source, sink: VideoSink, restorer, device, batch, queue_frames, progress, accept_out_of_range=False):
        self.info, self.settings, self.source, self.sink = info, settings, source, sink
        self.restorer, self.device, self.batch = restorer, device, batch
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.q_in = _Channel(max(queue_frames, 2 * batch), self.stop)
        self.q_out = _Channel(3, self.stop)
        matrix = resolve_matrix(info.tags, info.width, info.height)
        self.converter = YCbCrConverter(matrix, resolve_full_range(info.tags, info.pix_fmt.name))
        self.colour = PackedFrameColour(self.converter, info.pix_fmt, settings.pix_fmt, info.width, info.height)
        self.in_shapes, self.out_shapes = self.colour.in_shapes, self.colour.out_shapes
        dali = isinstance(source, DaliSource)
        # One frame's code planes travel packed in one host buffer (pinned on CUDA): enough
        # buffers for the decode queue, the batch being uploaded and one being filled.
        self.executor = StreamingExecutor(
            restorer,
            device=device,
            pre=self._from_rgb601 if dali else self.colour.to_rgb,
            post=self._to_codes,
            max_batch=batch,
            depth=4,
            input_shape=(info.pix_fmt.frame_elements(info.width, info.height),),
            input_dtype=info.pix_fmt.torch_dtype,
            input_slots=0 if dali else max(queue_frames, 2 * batch) + batch + 1,
            accept_out_of_range=accept_out_of_range,
            name="err-stream-model",
        )
        self.progress = progress
        self.written = 0
        self.threads: list[threading.Thread] = []

    # -- device-side conversions around the model (run by the executor)
    def _from_rgb601(self, rgb8: torch.Tensor) -> torch.Tensor:
        return self.converter.from_bt601_limited_rgb(rgb8)

    def _to_codes(self, rgb: torch.Tensor) -> torch.Tensor:
        # Passthrough is not clamped, so its round trip is exact.
        return self.colour.from_rgb(rgb, clamp=self.restorer is not None)

    # -- threads
    def _guard(self, fn):
        def body():
            try:
                fn()
            except _Cancelled:
                pass
            except BaseException as e:  # handed to the main thread, which raises it
                if isinstance(e, ExecutorClosed) and self.stop.is_set():
                    return  # closed because another thread failed: that one reports
                self.errors.append(e)
                self.stop.set()
                self.executor.close()  # wakes the threads blocked on it

        return body

    def _decode(self) -> None:
        lower_thread_priority()  # FFmpeg's decoder threads, created here, inherit it
        for frame in self.source.frames():
            if frame.planes is not None:
                slot = self.executor.input_slot()
                host = slot.tensor.numpy()
                if host.dtype == np.int16:
                    host = host.view(np.uint16)
                at = 0
                for plane, (h, w) in zip(frame.planes, self.in_shapes):
                    host[at : at + h * w].reshape(h, w)[...] = plane
                    at += h * w
                frame.planes = None  # the decoder's buffer can go
                frame.keepalive = slot
            self.q_in.put(frame)
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
                frames, ticket = item
                with ticket as out:  # waits for this batch's copy to the host, checks it
                    host = out.numpy()
                    if host.dtype == np.int16:
                        host = host.view(np.uint16)
                    for i, frame in enumerate(frames):
                        at, planes = 0, []
                        for h, w in self.out_shapes:
                            planes.append(host[i, at : at + h * w].reshape(h, w))
                            at += h * w
                        self.sink.write(tuple(planes), frame.pts, frame.duration)
                        self.written += 1
                        bar.advance(1)
            self.sink.finish()
        finally:
            bar.end()

    def _submit(self, frames: list[SourceFrame]) -> None:
        inputs = [f.keepalive if f.keepalive is not None else f.rgb601 for f in frames]
        after = [f.ready for f in frames if f.ready is not None]
        for f in frames:
            f.keepalive = f.rgb601 = None
        self.q_out.put((frames, self.executor.submit(inputs, index=frames[0].index, after=after)))

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
                self._submit(frames)
            self.q_out.put(_END)
        except (_Cancelled, ExecutorClosed):
            if not self.stop.is_set():
                raise
        for t in self.threads:
            while t.is_alive():
                t.join(0.1)
                if self.errors:
                    self.stop.set()
        self.executor.close()
        self._raise_errors()
        if self.executor.clamped_frames:
            log.warning("%d of %d frames failed the output check (non-finite, or over 0.1%% of pixels outside "
                        "[-0.1, 1.1]) and were clamped to [0, 1] as asked", self.executor.clamped_frames, self.written)
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
        self.executor.close()
        for t in self.threads:
            t.join(2.0)
