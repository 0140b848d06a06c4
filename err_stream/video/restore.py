"""The restore stage: each frame's way through the model, on the device.

Code planes (packed in one of the executor's host buffers, pinned on CUDA) go to the device,
are converted to R'G'B' float with the stream's own matrix and range, restored, checked by
the output guard and converted to the output's code planes; all of it inside the engine's
:class:`~err_stream.engine.executor.StreamingExecutor` (on CUDA: upload, compute and download
streams ordered by events). The main thread batches decoded frames and submits them; it
never waits for the model. An output ``size`` other than the input's is made here too: the
restored R'G'B' frames are resampled on the device before they become code planes.
"""

from __future__ import annotations

import logging
import queue

import numpy as np
import torch
import torch.nn.functional as F

from ..colour.convert import PackedFrameColour, YCbCrConverter
from ..colour.hdr import HdrPath, LightLevel
from ..colour.policy import resolve
from ..engine.executor import StreamingExecutor
from ..io.source import Source, SourceFrame
from .pipeline import END, Channel
from .planning import TranscodePlan

log = logging.getLogger(__name__)


def colour_conversion(plan: TranscodePlan) -> tuple[YCbCrConverter, PackedFrameColour, PackedFrameColour]:
    """The one place a run's colour conversion is built from what the input is: the
    stream's colour as stated, completed by the untagged rule (err_stream.colour.policy; a
    guessed matrix is logged as a warning), its pixel format and size in, the output's pixel
    format and size out; for a PQ or HLG stream, the HDR path the ``hdr`` setting asks for
    (err_stream.colour.hdr), with the output's light level measured on the way out
    (``.light_level`` of the conversion out). Returns the converter, the conversion in and the
    conversion out (the same object when the size is kept).

    Raises :class:`~err_stream.errors.UserError` for a matrix there is no conversion for."""
    info, encoder, opts = plan.info, plan.encoder, plan.options.encode
    colour = resolve(info.tags, info.width, info.height)
    for guess in colour.guesses:
        (log.warning if guess.warn else log.info)("%s", guess.message)
    hdr = HdrPath.for_spec(colour.spec, opts.hdr, info.hdr, opts.hdr_peak)
    if hdr is not None:
        log.info("HDR path: %s shown to the model as SDR-referred light (203 cd/m2 = 1.0 below the shoulder, "
                 "%g cd/m2 on 1.0), sRGB curve, %s primaries", hdr.transfer.label, hdr.peak, hdr.model_primaries.label)
    light = LightLevel() if hdr is not None else None
    converter = YCbCrConverter.for_spec(colour.spec)
    into = PackedFrameColour(converter, info.pix_fmt, encoder.pix_fmt, info.width, info.height, hdr=hdr, light_level=light)
    if (encoder.width, encoder.height) == (info.width, info.height):
        return converter, into, into
    return converter, into, PackedFrameColour(converter, info.pix_fmt, encoder.pix_fmt, encoder.width, encoder.height,
                                              hdr=hdr, light_level=light)


def scale(rgb: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """R'G'B' frames (B x 3 x H x W) resampled to ``width`` x ``height``: bicubic (a = -0.5,
    as PIL's) and, when shrinking, antialiased (the kernel widened by the ratio, so 4K to
    1080p weighs every source pixel instead of skipping three in four)."""
    return F.interpolate(rgb.float(), size=(height, width), mode="bicubic", align_corners=False, antialias=True)


class RestoreStage:
    """Owns the executor: :meth:`pack` fills a host buffer with a decoded frame (decode
    thread), :meth:`feed` batches frames and submits them (main thread), handing each batch's
    ticket to the encoder in order."""

    def __init__(self, plan: TranscodePlan, source: Source, restorer, device: torch.device, batch: int, queue_frames: int) -> None:
        info = plan.info
        self.batch = batch
        self.restorer = restorer
        self.converter, self.colour, self.colour_out = colour_conversion(plan)
        self.in_shapes, self.out_shapes = self.colour.in_shapes, self.colour_out.out_shapes
        # No scaling path at all at the input's size: the colour round trip stays exact.
        self.size = None if self.colour_out is self.colour else (plan.encoder.width, plan.encoder.height)
        packed = source.delivers == "planes"
        # The way back keeps the input's chroma where the model did not change it, given the
        # input's codes: only for packed planes of the output's size (DALI's RGB and a
        # resized picture are downsampled afresh).
        self.keeps_chroma = packed and self.size is None
        # One frame's code planes travel packed in one host buffer: enough buffers for the
        # decode queue, the batch being uploaded and one being filled. DALI's RGB is on its own.
        self.executor = StreamingExecutor(
            restorer,
            device=device,
            pre=self.colour.to_rgb if packed else self._from_rgb601,
            post=self._to_codes,
            max_batch=batch,
            depth=4,
            input_shape=(info.pix_fmt.frame_elements(info.width, info.height),),
            input_dtype=info.pix_fmt.torch_dtype,
            input_slots=max(queue_frames, 2 * batch) + batch + 1 if packed else 0,
            accept_out_of_range=plan.options.run.accept_out_of_range,
            name="err-stream-model",
        )

    def _from_rgb601(self, rgb8: torch.Tensor) -> torch.Tensor:
        rgb = self.converter.from_bt601_limited_rgb(rgb8)
        return rgb if self.colour.hdr is None else self.colour.hdr.to_sdr(rgb)

    def _to_codes(self, rgb: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        if self.size is not None:
            rgb = scale(rgb, *self.size)
        # Passthrough is not clamped, so its round trip is exact (with the input's codes:
        # see err_stream.colour.convert); the HDR path is never clamped (it holds the model's
        # output within the peak itself).
        codes = inputs if self.keeps_chroma else None
        return self.colour_out.from_rgb(rgb, codes, clamp=self.restorer is not None)

    def pack(self, frame: SourceFrame) -> None:
        """Move a decoded frame's planes into a host buffer (decode thread); the decoder's
        own buffer can go."""
        if frame.planes is None:
            return
        slot = self.executor.input_slot()
        host = slot.tensor.numpy()
        if host.dtype == np.int16:
            host = host.view(np.uint16)
        at = 0
        for plane, (h, w) in zip(frame.planes, self.in_shapes):
            host[at : at + h * w].reshape(h, w)[...] = plane
            at += h * w
        frame.planes = None
        frame.keepalive = slot

    def feed(self, frames_in: Channel, tickets_out: Channel) -> None:
        """Take decoded frames as they come, up to ``batch`` at a time, and submit them."""
        ended = False
        while not ended:
            item = frames_in.get()
            if item is END:
                break
            frames = [item]
            while len(frames) < self.batch:
                try:
                    item = frames_in.get_nowait()
                except queue.Empty:
                    break
                if item is END:
                    ended = True
                    break
                frames.append(item)
            self._submit(frames, tickets_out)
        tickets_out.put(END)

    def _submit(self, frames: list[SourceFrame], tickets_out: Channel) -> None:
        inputs = [f.keepalive if f.keepalive is not None else f.rgb601 for f in frames]
        after = [f.ready for f in frames if f.ready is not None]
        for f in frames:
            f.keepalive = f.rgb601 = None
        tickets_out.put((frames, self.executor.submit(inputs, index=frames[0].index, after=after)))

    @property
    def light_level(self) -> LightLevel | None:
        """The restored frames' MaxCLL/MaxFALL as they are measured (HDR path only)."""
        return self.colour_out.light_level

    @property
    def clamped_frames(self) -> int:
        return self.executor.clamped_frames

    def close(self) -> None:
        self.executor.close()  # also wakes the threads blocked on it
