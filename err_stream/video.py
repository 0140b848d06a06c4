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

import contextlib
import logging
import queue
import threading
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .engine.executor import ExecutorClosed, StreamingExecutor
from .engine.settings import RestoreSettings
from .errors import ProcessingError, SettingError, UserError
from .io.colour import PackedFrameColour, YCbCrConverter, resolve_full_range, resolve_matrix
from .io.endpoints import StdoutClaim, endpoint, output_format, output_options
from .io.live_source import LiveSource
from .progress import Progress
from .io.priority import lower_thread_priority
from .io.preflight import plan_output
from .io.sink import CONTAINERS, EncoderSettings, PartialOutput, VideoSink, choose_encoder
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
# Frames a live run holds between its decoder and its encoder unless --max-delay says otherwise.
DEFAULT_MAX_DELAY = 8


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
    dropped_late: int = 0  # live runs with --drop-late: frames dropped for falling behind
    damaged: int = 0  # streams: damaged pictures (lost packets) dropped
    stream_seconds: float = 0.0  # stream time from the first to the last frame written
    ended: str = "end"  # end (input finished), stopped (Ctrl-C on a stream), stalled (past --timeout) or failed (read error)
    max_delay: int | None = None  # live runs: the bound on frames in flight
    peak_in_flight: int | None = None  # live runs: the most frames that were between decoder and encoder at once

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
    format: str | None = None,
    input_format: str | None = None,
    timeout: float | None = None,
    max_delay: int | None = None,
    drop_late: bool = False,
    stop_input: threading.Event | None = None,
) -> TranscodeResult:
    """Restore every frame of ``input`` into ``output`` (``restorer=None``: passthrough).

    ``input``/``output`` are files, ``"-"`` (standard input/output) or URLs FFmpeg handles
    (``udp://``, ``tcp://``, ``srt://``, ``rtmp://``, ``rtsp://``, ``http(s)://`` inputs);
    ``format``/``input_format`` name their containers (standard output needs one). A live
    run (a network endpoint, or ``max_delay`` given) holds at most ``max_delay`` frames
    between decoder and encoder, encodes for low delay and, with ``drop_late``, drops
    frames that fall further behind than that. ``timeout``: seconds a stream may send
    nothing before the run ends (default: 10 for network inputs once they have started; a
    listener or UDP port waits for its sender without limit). ``stop_input``: set it to end
    a stream input early; what arrived is restored and the output finished (a success).

    Raises :class:`UserError` for bad paths, unreadable/corrupt input, unsupported streams
    and bad options, :class:`ProcessingError` for failures while processing, among them
    :class:`~err_stream.engine.output_check.OutputRangeError` when the model's output for a
    frame is non-finite or out of range (``accept_out_of_range=True`` clamps such output
    and goes on). A file ``output`` is only created (atomically) when everything
    succeeded; a stream that stalls or fails still has what arrived restored and the output
    finished, and then raises :class:`InputStopped` saying how much was written."""
    in_ep, out_ep = endpoint(input), endpoint(output)
    live = in_ep.is_network or out_ep.is_network or max_delay is not None
    if max_delay is not None and max_delay < 1:
        raise UserError("--max-delay must be at least 1 frame")
    if live and max_delay is None:
        max_delay = DEFAULT_MAX_DELAY
    if drop_late and not live:
        raise UserError("--drop-late applies to live runs (a network input or output, or --max-delay)")
    if timeout is not None and timeout <= 0:
        raise UserError("--timeout must be more than 0 seconds")
    if decoder == "dali" and not in_ep.is_file:
        raise UserError("--decoder dali reads files only; a stream is decoded by PyAV")
    container = output_format(out_ep, format)
    with contextlib.ExitStack() as stack:
        partial = None
        if out_ep.is_file:
            # OUT is locked from here on, also while a stream is awaited: a second run stops at once.
            partial = PartialOutput(out_ep.path, overwrite=overwrite, source=in_ep.path if in_ep.is_file else None)
            stack.enter_context(partial)
        live_source = None
        if in_ep.is_file:
            info = probe(in_ep.path)
        else:
            live_source = LiveSource(in_ep, input_format, timeout, low_delay=live, stop=stop_input)
            stack.callback(live_source.close)
            info = live_source.info
        check_alpha(info, drop_alpha)
        if planned is not None:  # the caller has already run plan_output with these options
            settings = planned
        elif out_ep.is_file and in_ep.is_file and CONTAINERS.get(out_ep.path.suffix.lower()) == container:
            settings = plan_output(info, out_ep.path, codec, crf, encoder_preset, pix_fmt, encoder_opts, copy_data)
        else:  # a stream cannot be dry-run (it is written once) nor can a stream input be read twice
            name = out_ep.path if out_ep.is_file else Path(f"stream.{container}")
            settings = choose_encoder(info, name, codec, crf, encoder_preset, pix_fmt, encoder_opts, container=container)
        if max_delay is not None and live:
            settings = _low_delay(settings, encoder_opts)
        return _transcode(info, live_source, partial, stack, in_ep, out_ep, container, settings, restorer, device, decoder,
                          copy_data, ignore_errors, progress, batch, queue_frames, accept_out_of_range,
                          max_delay if live else None, drop_late)


def warm_up(restorer, height: int, width: int, batch: int = 1) -> None:
    """Run the model once before a live stream's frames: the first call compiles kernels
    (numba, Triton) and initialises the device, which would otherwise put a live stream
    seconds behind from its first frame on (and never let it catch up). Where the fast path
    compiles and captures per input shape, that is done at the stream's size and batch
    (through an executor, as the stream will run; its graphs go when it closes, the compiled
    code stays); elsewhere a small frame is enough (kernels compile per dtype, not size)."""
    fast = getattr(restorer, "fast", None)
    if fast is None or not fast.specialises_shapes:
        height, width, batch = 64, 64, 1
    log.debug("warming the model up at %dx%d, batch %d", width, height, batch)
    with StreamingExecutor(restorer, max_batch=batch, depth=1, accept_out_of_range=True, name="err-warm-up") as ex:
        frames = [torch.zeros(3, height, width, device=restorer.device)] * batch
        with ex.submit(frames):
            pass


def _low_delay(settings: EncoderSettings, encoder_opts) -> EncoderSettings:
    """A live run's encoder: the low-delay options under the user's own --encoder-opt."""
    from .io.endpoints import low_delay_encoder_options

    options = dict(settings.options)
    user = {item.partition("=")[0] for item in encoder_opts}
    for key, value in low_delay_encoder_options(settings.codec).items():
        if key not in user:
            options[key] = value
    return EncoderSettings(settings.codec, settings.pix_fmt, options)


def _transcode(info, live_source, partial, stack, in_ep, out_ep, container, settings, restorer, device, decoder, copy_data,
               ignore_errors, progress, batch, queue_frames, accept_out_of_range, max_delay, drop_late) -> TranscodeResult:
    if restorer is not None:
        dev = restorer.device
    else:
        dev = RestoreSettings(device=device).torch_device()
    if batch is not None and batch < 1:
        raise SettingError("batch", batch, "must be at least 1")
    batch = batch or default_batch(info, dev)
    if max_delay is not None:
        batch = min(batch, max_delay)
        queue_frames = min(queue_frames, max_delay)
    if live_source is not None and restorer is not None:
        warm_up(restorer, info.height, info.width, batch)
    if live_source is not None:
        decoder_name, source = "pyav", live_source
    else:
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
    line = (f"{info.describe()} -> {settings.describe()}; decoder {decoder_name}, {dev}, {what}, batch {batch}"
            + (f", at most {max_delay} frames in flight" if max_delay is not None else ""))
    log.info(line)  # says which decoder ran (decoder "auto"); also given to the progress callback
    progress = _NoticedProgress(progress, line)

    if partial is not None:
        target = partial.tmp
    elif out_ep.kind == "pipe":
        target = stack.enter_context(StdoutClaim()).target
    else:
        target = out_ep.text
    sink = VideoSink(target, out_ep.text, info, settings, copy_data=copy_data, container=container,
                     options=output_options(out_ep, container, low_delay=max_delay is not None))
    for what in sink.lost:
        log.warning("%s cannot be kept in %s: %s", info.label, out_ep.label(output=True), what)
    run = None
    try:
        run = _Run(info, settings, source, sink, restorer, dev, batch, queue_frames, progress, accept_out_of_range,
                   max_delay, drop_late)
        frames, seconds = run.execute()
    except BaseException:
        if run is not None:
            run.cancel()
        sink.abort()
        raise
    if partial is not None:
        partial.commit()
    result = TranscodeResult(
        input=in_ep.text,
        output=out_ep.text,
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
        dropped_late=run.dropped_late,
        damaged=getattr(source, "damaged", 0),
        stream_seconds=round(run.clock.stream_seconds, 3),
        ended=getattr(source, "ended", None) or "end",
        max_delay=max_delay,
        peak_in_flight=run.peak_in_flight if max_delay is not None else None,
    )
    if result.ended in ("stalled", "failed"):
        raise InputStopped(
            f"{info.label}: {source.reason}; the {frames} frames received ({result.stream_seconds:.2f} s of stream) "
            f"were restored and written to {out_ep.label(output=True)}",
            result,
        )
    return result


def format_is_extension(ep, container: str) -> bool:
    """Whether file endpoint ``ep``'s extension names ``container`` (else --format overrides it)."""
    return CONTAINERS.get(ep.path.suffix.lower()) == container


class InputStopped(ProcessingError):
    """A stream stalled or failed: what arrived was written (``result``), but not all of it."""

    def __init__(self, message: str, result: TranscodeResult) -> None:
        super().__init__(message)
        self.result = result


class StreamClock:
    """Where a run stands against the stream's own clock.

    The first frame decoded fixes the origin (wall clock, stream time). A frame of stream
    time t is *behind* by ``now - origin_wall - (t - origin_t)`` seconds: how much later
    than real time it is being handled. For a live input that is the delay the run adds
    (plus the first frame's own), shown as ``lag`` in the progress line; with
    ``--drop-late`` a frame decoded further behind than ``max_lag`` is dropped."""

    def __init__(self, time_base: Fraction, max_lag: float | None = None) -> None:
        self.time_base = time_base
        self.max_lag = max_lag
        self.origin: tuple[float, int] | None = None
        self.last_pts: int | None = None
        self.lag = 0.0

    def behind(self, pts: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        if self.origin is None:
            self.origin = (now, pts)
        wall0, pts0 = self.origin
        return (now - wall0) - float((pts - pts0) * self.time_base)

    def late(self, pts: int) -> bool:
        return self.max_lag is not None and self.behind(pts) > self.max_lag

    def written(self, pts: int) -> None:
        self.lag = self.behind(pts)
        self.last_pts = pts

    @property
    def stream_seconds(self) -> float:
        if self.origin is None or self.last_pts is None:
            return 0.0
        return float((self.last_pts - self.origin[1]) * self.time_base)


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

    def status(self, text: str) -> None:
        if self.inner is not None and hasattr(self.inner, "status"):
            self.inner.status(text)

    def end(self) -> None:
        if self.inner is not None:
            self.inner.end()


class _Run:
    def __init__(self, info, settings: EncoderSettings, source, sink: VideoSink, restorer, device, batch, queue_frames, progress,
                 accept_out_of_range=False, max_delay: int | None = None, drop_late: bool = False):
        self.info, self.settings, self.source, self.sink = info, settings, source, sink
        self.restorer, self.device, self.batch = restorer, device, batch
        self.stop = threading.Event()
        # A live run's bound on frames between decoder and encoder: the decoder takes a
        # permit per frame and the encoder gives it back once the frame is written, so a
        # slow model stops the reading (backpressure to the sender) instead of queueing.
        self.in_flight = threading.Semaphore(max_delay) if max_delay is not None else None
        frame_s = float(1 / info.average_rate) if info.average_rate else 0.04
        self.clock = StreamClock(info.time_base, max_lag=max_delay * frame_s if drop_late and max_delay else None)
        self.dropped_late = 0
        self._in_flight = 0
        self.peak_in_flight = 0
        self._count_lock = threading.Lock()
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
            if self.clock.late(frame.pts):
                self.dropped_late += 1
                continue
            self._take_permit()
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

    def _take_permit(self) -> None:
        if self.in_flight is None:
            return
        while not self.in_flight.acquire(timeout=0.1):
            if self.stop.is_set():
                raise _Cancelled
        with self._count_lock:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)

    def _encode(self) -> None:
        lower_thread_priority()

        live = self.info.frames_estimate is None
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
                        self.clock.written(frame.pts)
                        if self.in_flight is not None:
                            with self._count_lock:
                                self._in_flight -= 1
                            self.in_flight.release()
                        if live:  # no length, so no ETA: how far into the stream, and how far behind it
                            extra = f", {self.dropped_late} dropped late" if self.dropped_late else ""
                            bar.status(f"t={self.clock.stream_seconds:.2f}s lag={self.clock.lag:.2f}s{extra}")
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
