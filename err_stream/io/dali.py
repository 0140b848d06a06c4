"""NVIDIA DALI as a source: NVDEC on a GPU (frames stay in GPU memory), or DALI's CPU decoder.

DALI hands over RGB it converted itself (BT.601 limited-range matrix, its own chroma
upsampling, rounded to 8 bits); :meth:`~err_stream.colour.convert.YCbCrConverter.from_bt601_limited_rgb`
undoes its matrix on the device. That is close, not exact (several code values), so DALI is
used only when asked for (the ``decoder`` setting ``dali``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..errors import ProcessingError, SettingError, UserError
from .source import Source, SourceFrame, VideoInfo, _open, _reason

# Codecs NVIDIA DALI decodes: on the GPU (NVDEC), and with its CPU decoder (DALI 2.x).
DALI_GPU_CODECS = ("h264", "hevc", "av1", "vp9", "vp8", "mjpeg", "mpeg4")
DALI_CPU_CODECS = ("vp8", "vp9", "mjpeg")


def dali_available() -> bool:
    try:
        import nvidia.dali  # noqa: F401
    except Exception:
        return False
    return True


def _import_dali():
    try:
        import nvidia.dali as dali
        import nvidia.dali.fn as fn
        import nvidia.dali.types as types
    except ImportError:
        raise SettingError(
            "decoder", "dali", "needs NVIDIA DALI: pip install 'err-stream[dali]'", instead=[("decoder", "pyav")],
        ) from None
    return dali, fn, types


def presentation_timestamps(info: VideoInfo) -> tuple[list[int], list[int]]:
    """The video stream's frame timestamps in presentation order, read from the packets
    (no decoding), with each frame's duration."""
    import av

    container = _open(info.path)
    try:
        pts: list[int] = []
        durations: dict[int, int] = {}
        try:
            for packet in container.demux(container.streams[info.video_index]):
                if packet.size == 0 or packet.pts is None:
                    continue
                pts.append(packet.pts)
                durations[packet.pts] = int(packet.duration or 0)
        except av.error.FFmpegError as e:
            raise UserError(f"{info.path}: corrupt or truncated video: reading failed after {len(pts)} packets: {_reason(e)}") from None
    finally:
        container.close()
    pts.sort()
    return pts, [durations[p] for p in pts]


class DaliSource(Source):
    """Decode with NVIDIA DALI's video reader, streaming the whole file in order.

    On a GPU (``device="gpu"``) NVDEC decodes and frames stay in GPU memory: they reach
    torch through DLPack. DALI's CPU decoder handles VP8/VP9/MJPEG only. DALI converts to
    RGB with BT.601 limited-range coefficients whatever the stream says; frames are passed
    on as that RGB and corrected with the stream's matrix by the colour stage.
    """

    name = "dali"
    delivers = "rgb601"

    def __init__(self, info: VideoInfo, device: str = "cpu", sequence_length: int = 8, threads: int = 2, device_id: int = 0) -> None:
        if info.pix_fmt.bits != 8 or info.pix_fmt.subsampling() != "4:2:0":
            raise SettingError("decoder", "dali", f"reads 8-bit 4:2:0 video only; this is {info.pix_fmt.name}", instead=[("decoder", "pyav")])
        allowed = DALI_GPU_CODECS if device == "gpu" else DALI_CPU_CODECS
        if info.codec not in allowed:
            where = "on the GPU" if device == "gpu" else "with its CPU decoder (VP8, VP9, MJPEG only)"
            raise SettingError("decoder", "dali", f"cannot decode {info.codec} {where}", instead=[("decoder", "pyav")])
        super().__init__(info)
        self.device = device
        self.sequence_length = sequence_length
        self.threads = threads
        self.device_id = device_id
        _import_dali()

    def _pipeline(self, device_id: int | None):
        dali, fn, types = _import_dali()

        @dali.pipeline_def(batch_size=1, num_threads=self.threads, device_id=device_id, prefetch_queue_depth=2)
        def reader():
            video, index = fn.experimental.readers.video(
                filenames=[str(self.info.path.resolve())],
                sequence_length=self.sequence_length,
                device="gpu" if self.device == "gpu" else "cpu",
                enable_frame_num="sequence",
                pad_mode="constant",
                name="reader",
            )
            return video, index

        pipe = reader()
        pipe.build()
        return pipe

    def frames(self) -> Iterator[SourceFrame]:
        import torch

        pts, durations = presentation_timestamps(self.info)
        gpu = self.device == "gpu"
        pipe = self._pipeline(self.device_id if gpu else None)
        copy_stream = torch.cuda.Stream(self.device_id) if gpu else None
        batches = pipe.epoch_size("reader")
        index = 0
        try:
            for _ in range(batches):
                try:
                    video, frame_index = pipe.run()
                except RuntimeError as e:
                    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    raise UserError(f"{self.info.path}: DALI failed to decode after frame {index}: {first}") from None
                idx_cpu = frame_index.as_cpu() if hasattr(frame_index, "as_cpu") else frame_index
                idx = np.asarray(idx_cpu[0]).reshape(-1)
                keep = idx >= 0  # padding frames of the last sequence are numbered -1
                if gpu:
                    with torch.cuda.device(self.device_id), torch.cuda.stream(copy_stream):
                        seq = torch.from_dlpack(video[0]).clone()  # ours: DALI reuses its buffer on the next run
                        ready = torch.cuda.Event()
                        ready.record(copy_stream)
                else:
                    seq = torch.from_numpy(np.array(video[0]))
                    ready = None
                for k in np.flatnonzero(keep):
                    if index >= len(pts):
                        raise ProcessingError(f"DALI decoded more frames than the container holds ({len(pts)})")
                    yield SourceFrame(index=index, pts=pts[index], duration=durations[index], rgb601=seq[k], ready=ready)
                    index += 1
                if ready is not None:
                    ready.synchronize()  # before the next run() may overwrite DALI's output buffer
        finally:
            del pipe
        if index != len(pts):
            raise UserError(f"{self.info.path}: DALI decoded {index} frames but the container holds {len(pts)}: truncated or corrupt?")
