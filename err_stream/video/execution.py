"""Run a planned transcode: source -> restore -> encode, overlapped.

Three threads of ours and the engine's executor run at once, joined by bounded queues (so
memory stays flat however long the video is):

* the decode stage (video/decode.py), which packs each frame's planes into one of the
  executor's host buffers (pinned on CUDA);
* the restore stage (video/restore.py) on the main thread, which batches frames and submits
  them to the executor; the executor's thread converts YCbCr to R'G'B' float with the
  stream's matrix and range, runs the Restorer, applies the output guard and converts back,
  on the device;
* the encode stage (video/encode.py), which takes each batch's ticket in order (the only wait
  for the device) and writes the frames with their own timestamps beside the other streams.

A file output is locked from the start (also while a stream is awaited) and renamed into
place only when complete.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import torch

from ..engine.executor import ExecutorClosed, StreamingExecutor
from ..errors import ProcessingError
from ..engine.settings import RestoreSettings
from ..io.endpoints import StdoutClaim, output_options
from ..io.output_file import OutputFile
from ..io.sink import VideoSink
from ..io.source import Source, VideoInfo
from ..progress import Progress
from .clock import Pace
from .decode import DecodeStage
from .encode import EncodeStage, NoticedProgress
from .pipeline import Cancelled, Channel, Workers
from .planning import TranscodePlan, with_input
from .restore import RestoreStage
from .result import FramesLost, InputStopped, TranscodeResult

log = logging.getLogger(__name__)


def execute(plan: TranscodePlan, restorer=None, progress: Progress | None = None,
            stop: threading.Event | None = None) -> TranscodeResult:
    """Restore every frame of the planned input into its output (``restorer=None``:
    passthrough). ``progress``: the front end's callback; ``stop``: set it to end a stream
    input early (what arrived is restored and the output finished: a success).

    Raises :class:`~err_stream.errors.ProcessingError` for failures while processing (among
    them :class:`~err_stream.engine.output_check.OutputRangeError`); after finishing the
    output, :class:`InputStopped` when a stream stalls or fails, and :class:`FramesLost`
    when pictures of a stream were lost on the way (damaged, or never arrived)."""
    out = plan.output
    with contextlib.ExitStack() as stack:
        output = None
        if out.is_file:
            # OUT is locked from here on, also while a stream is awaited: a second run stops at once.
            output = stack.enter_context(OutputFile(out.path, overwrite=plan.options.run.overwrite,
                                                    source=plan.input.path if plan.input.is_file else None))
        device = restorer.device if restorer is not None else RestoreSettings(device=plan.options.run.device).torch_device()
        if plan.info is None and restorer is not None and not _warms_up_per_shape(restorer):
            # A stream's frames arrive from the moment it is opened: warm up before, not while they wait.
            warm_up(restorer, 64, 64)
        source = plan.source.open(plan.input, plan.info, plan.options, device=device, low_delay=plan.live, stop=stop)
        stack.callback(source.close)
        if plan.info is None:  # a stream input, probed as it was opened
            plan = with_input(plan, source.info)
            if restorer is not None and _warms_up_per_shape(restorer):  # before its frames are taken (see warm_up)
                warm_up(restorer, plan.info.height, plan.info.width, _batching(plan, device)[0])
        if output is not None:
            target = str(output.tmp)
        elif out.kind == "pipe":
            target = stack.enter_context(StdoutClaim()).target
        else:
            target = out.text
        sink = VideoSink(target, out.text, plan.info, plan.encoder, source=plan.source.beside(source),
                         copy_data=not plan.options.streams.no_data, container=plan.container,
                         options=output_options(out, plan.container, low_delay=plan.live))
        for what in sink.lost:
            log.warning("%s cannot be kept in %s: %s", plan.info.label, out.label(output=True), what)
        try:
            run = _run_stages(plan, source, sink, restorer, device, progress)
        except BaseException:
            sink.abort()
            raise
        if output is not None:
            output.commit()
    return _result(plan, source, restorer, device, run)


def warm_up(restorer, height: int, width: int, batch: int = 1) -> None:
    """Run the model once before a stream's frames: the first call compiles kernels (numba,
    Triton) and initialises the device, which would otherwise put a live stream seconds
    behind from its first frame on (and never let it catch up). Where the fast path compiles
    and captures per input shape, that is done at the stream's size and batch (through an
    executor, as the stream will run; its graphs go when it closes, the compiled code stays);
    elsewhere a small frame is enough (kernels compile per dtype, not size)."""
    if not _warms_up_per_shape(restorer):
        height, width, batch = 64, 64, 1
    log.debug("warming the model up at %dx%d, batch %d", width, height, batch)
    with StreamingExecutor(restorer, max_batch=batch, depth=1, accept_out_of_range=True, name="err-warm-up") as ex:
        frames = [torch.zeros(3, height, width, device=restorer.device)] * batch
        with ex.submit(frames):
            pass


def _warms_up_per_shape(restorer) -> bool:
    """Whether the model's fast path compiles per input shape (then a stream warms it up at
    its size, once it is known)."""
    return restorer.specialises_shapes


def default_batch(info: VideoInfo, device: torch.device) -> int:
    """One frame at a time on CPU; on a GPU enough small frames to make about 2 megapixels."""
    if device.type != "cuda":
        return 1
    return max(1, min(8, 2_000_000 // (info.width * info.height)))


class _Run:
    """What a finished run knows for its result."""

    def __init__(self, frames: int, arrived: int, seconds: float, batch: int, pace: Pace, copied: int,
                 hdr: str | None = None, light: tuple[int, int] | None = None) -> None:
        self.frames, self.arrived, self.seconds, self.batch, self.pace = frames, arrived, seconds, batch, pace
        self.copied = copied
        self.hdr, self.light = hdr, light


def _batching(plan: TranscodePlan, device: torch.device) -> tuple[int, int]:
    """The run's batch size and decode queue length (frames)."""
    batch = plan.options.run.batch or default_batch(plan.info, device)
    queue_frames = plan.options.run.queue_frames
    if plan.live:  # the bound holds for every queue
        batch, queue_frames = min(batch, plan.max_delay), min(queue_frames, plan.max_delay)
    return batch, queue_frames


def _run_stages(plan: TranscodePlan, source: Source, sink: VideoSink, restorer, device: torch.device,
                progress: Progress | None) -> _Run:
    info, options = plan.info, plan.options
    batch, queue_frames = _batching(plan, device)
    what = "passthrough (no model)" if restorer is None else f"model {restorer.precision}"
    line = (f"{info.describe()} -> {plan.encoder.describe()}; decoder {source.name}, {device}, {what}, batch {batch}"
            + (f", at most {plan.max_delay} frames in flight" if plan.live else ""))
    log.info(line)  # says which decoder ran; also given to the progress callback

    stop = threading.Event()
    pace = Pace(info.time_base, info.average_rate, plan.max_delay, options.live.drop_late, stop)
    restore = RestoreStage(plan, source, restorer, device, batch, queue_frames)
    frames, tickets = Channel(max(queue_frames, 2 * batch), stop), Channel(3, stop)
    decode = DecodeStage(source, restore, frames, pace, realtime=options.live.realtime)
    encode = EncodeStage(sink, restore.out_shapes, tickets, pace, NoticedProgress(progress, line),
                         "passthrough" if restorer is None else "restoring", info.frames_estimate)
    workers = Workers(stop, on_error=restore.close)
    t0 = time.perf_counter()
    try:
        workers.start("err-stream-decode", decode.run)
        workers.start("err-stream-encode", encode.run)
        try:
            restore.feed(frames, tickets)
        except (Cancelled, ExecutorClosed):
            if not stop.is_set():
                raise
        workers.join()  # raises the first error of any stage
    except BaseException:
        workers.cancel()
        raise
    finally:
        restore.close()
    if restore.clamped_frames:
        log.warning("%d of %d frames failed the output check (non-finite, or over 0.1%% of pixels outside "
                    "[-0.1, 1.1]) and were clamped to [0, 1] as asked", restore.clamped_frames, encode.written)
    hdr = restore.colour.hdr
    light = restore.light_level.result() if restore.light_level is not None else None
    if light is not None:
        kept = info.hdr.max_cll if info.hdr is not None else None
        log.info("restored HDR light level: MaxCLL %d, MaxFALL %d cd/m2 (measured); the output states %s", *light,
                 f"the input's ({kept}, {info.hdr.max_fall})" if kept is not None else "none")
    return _Run(encode.written, decode.arrived, time.perf_counter() - t0, batch, pace, sink.copier.copied if sink.copier is not None else 0,
                hdr.transfer.label if hdr is not None else None, light)


def _result(plan: TranscodePlan, source: Source, restorer, device: torch.device, run: _Run) -> TranscodeResult:
    buffered = source.buffered_peak
    result = TranscodeResult(
        input=plan.input.text,
        output=plan.output.text,
        frames=run.frames,
        seconds=round(run.seconds, 3),
        fps=round(run.frames / run.seconds, 3) if run.seconds > 0 else 0.0,
        decoder=source.name,
        device=str(device),
        precision=None if restorer is None else restorer.precision,
        passthrough=restorer is None,
        codec=plan.encoder.codec,
        pix_fmt=plan.encoder.pix_fmt.name,
        batch=run.batch,
        decode_errors=len(source.damage),
        dropped_late=run.pace.dropped_late,
        damaged=source.damaged,
        stream_seconds=round(run.pace.clock.stream_seconds, 3),
        ended=source.ended or "end",
        max_delay=plan.max_delay,
        peak_in_flight=run.pace.in_flight.peak if plan.live else None,
        hdr=run.hdr,
        max_cll=run.light[0] if run.light else None,
        max_fall=run.light[1] if run.light else None,
        arrived=run.arrived,
        missing=source.missing,
        buffered_peak_mb=None if buffered is None else round(buffered / (1 << 20), 3),
        copied_packets=run.copied,
    )
    if result.arrived != result.frames + result.dropped_late:
        # Every frame the input gave is written or dropped late; anything else is a fault of ours.
        raise ProcessingError(f"{result.arrived} frames arrived but {result.frames} were written and "
                              f"{result.dropped_late} dropped late: {result.arrived - result.frames - result.dropped_late} "
                              f"frames went missing inside err-stream (a bug: please report it)")
    written = (f"the {run.frames} frames received ({result.stream_seconds:.2f} s of stream) were restored and "
               f"written to {plan.output.label(output=True)}")
    lost = _lost(result)
    if result.ended in ("stalled", "failed"):
        raise InputStopped(f"{plan.info.label}: {source.reason}; {written}" + (f"; {lost}" if lost else ""), result)
    if lost:
        raise FramesLost(f"{plan.info.label}: {lost}; {written}", result)
    return result


def _lost(result: TranscodeResult) -> str:
    """What a stream lost on the way, in words ("" when nothing)."""
    parts = []
    if result.missing:
        parts.append(f"{result.missing} pictures never arrived (see the warnings)")
    if result.damaged:
        parts.append(f"{result.damaged} damaged pictures were dropped")
    return " and ".join(parts)
