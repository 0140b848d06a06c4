"""``err(clip, ...)``: the ERR network as a VapourSynth filter.

How frames flow:

* RGBS/RGBH clips go to the model as they are. The colour of other clips is read from the
  frame properties ``_Matrix``, ``_Range`` (or ``_ColorRange`` before R81), ``_Primaries``,
  ``_Transfer`` and ``_ChromaLocation`` into a :class:`~err_stream.colour.ColourSpec`; what
  they leave out is decided by the one untagged-input rule (:mod:`err_stream.colour.policy`;
  ``matrix=`` fills in a missing ``_Matrix`` instead). Integer YUV is converted on the
  device by the transcoder's own colour code; other formats (integer RGB, float YUV) by the
  core ``resize`` plugin, there and back, with the spec's values. Every frame property of
  the input is kept on the output.
* PQ and HLG clips (``_Transfer`` 16 and 18, any format) are shown to the model as their
  SDR-referred picture and taken back exactly (:class:`~err_stream.colour.hdr.HdrPath`, the
  transcoder's HDR path; ``hdr="passthrough"``: their code values as they are); the PQ peak is
  the ``MasteringDisplayMaxLuminance`` frame property where a source sets it.
* VapourSynth runs a Python frame callback (``std.ModifyFrame``) for one frame at a time per
  filter instance. To keep several frames in flight we split the clip into ``lanes``
  interleaved sub-clips (``SelectEvery``), give each its own ``ModifyFrame`` and interleave
  them back: the lanes' callbacks run in parallel on VapourSynth's threads and all hand
  their frames to one :class:`~err_stream.engine.executor.StreamingExecutor` (pinned
  buffers; upload, compute and download streams on CUDA), which is where the overlap of
  copies and compute happens, and where the output guard is checked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from err_stream.errors import NO_VALUE

if TYPE_CHECKING:
    import vapoursynth as vs

def import_vapoursynth():
    """The ``vapoursynth`` module, or an ImportError naming the extra that installs it."""
    try:
        import vapoursynth
    except ImportError:
        raise ImportError("VapourSynth is not installed: pip install 'err-stream[vs]' (VapourSynth R74 or newer)") from None
    return vapoursynth


def err(
    clip: vs.VideoNode,
    *,
    preset: str | None = None,
    weights: str | None = None,
    device_index: int | None = None,
    num_streams: int = 1,
    fp16: bool | None = None,
    tile: Sequence[int] | None = None,
    matrix: int | None = None,
    accept_out_of_range: bool = False,
    precision: str | None = None,
    hdr: str = "auto",
    hdr_peak: float | None = None,
) -> vs.VideoNode:
    """Restore ``clip`` with ERR; returns a clip of the same format, size, length and props.

    Args:
        clip: any constant-format, constant-size RGB or YUV clip (float, or integer of 8 to
            16 bits). GRAY is refused (the network restores colour).
        preset: the authors' checkpoint for a task (``"uhd-ll"``, ``"uhd-haze"``,
            ``"uhd-blur"``, ``"4k-rain13k"``), downloaded once.
        weights: a checkpoint file (``.pth`` or ``.safetensors``). With neither ``preset``
            nor ``weights``, the embedded demo weights.
        device_index: GPU number; ``None`` picks GPU 0 if CUDA is available, else the CPU;
            ``-1`` forces the CPU.
        num_streams: frames in flight at once (each on its own CUDA stream). Use 2-3 on a
            GPU; 1 on the CPU. VapourSynth needs at least ``num_streams`` threads
            (``core.num_threads``) to keep them busy.
        fp16: half-precision compute; default: on for RGBH clips on a GPU, otherwise off.
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"`` (the general form of ``fp16``; pass
            one of the two).
        tile: ``[w, h]``: restore with exact tiles of this size (at least 128x128; the result
            equals the whole-frame one, with less memory); ``[0, 0]``: always the whole frame;
            default: whole frame when it fits the GPU memory, else the largest tiles that do.
        matrix: the YUV matrix (``_Matrix`` values, e.g. 1 = BT.709, 6 = BT.601, 9 = BT.2020)
            for clips whose frames have no ``_Matrix`` property; without it such clips get
            the matrix err-stream guesses for any untagged input (by primaries, then size),
            with a warning.
        accept_out_of_range: a frame whose restored values are non-finite, or have more than
            0.1 % of pixels outside [-0.1, 1.1] (weights that diverge, or over-expose footage
            that is already lit), raises ``vs.Error`` naming the frame and which of the two it
            looks like; ``True`` clamps such output to [0, 1] and goes on.
        hdr: for clips whose ``_Transfer`` is PQ (16) or HLG (18): ``"auto"`` shows the model
            the master's SDR-referred picture (203 cd/m2 as white, highlights under a shoulder,
            the clip's own ``_Primaries``) and takes it back exactly; ``"passthrough"`` hands
            it the values as they are.
        hdr_peak: cd/m2 that land on the model's 1.0, and HLG's display peak (default: the
            ``MasteringDisplayMaxLuminance`` property for PQ, else 1000).
    """
    vs = import_vapoursynth()
    from err_stream import runtime
    from err_stream.errors import UserError

    runtime.configure()  # before torch loads: passive OpenMP waits, denormals flushed
    core = vs.core
    fmt = _check_clip(vs, clip)
    num_streams = _check_num_streams(num_streams)
    try:
        settings = _settings(vs, fmt, device_index, fp16, precision, tile)
        device = settings.torch_device()
    except UserError as e:
        raise vs.Error("err: " + e.describe(filter_spelling)) from None
    if not isinstance(accept_out_of_range, bool):
        raise vs.Error(f"err: accept_out_of_range must be True or False, got {accept_out_of_range!r}")
    _check_matrix(vs, matrix)

    direct = fmt.color_family == vs.RGB and fmt.sample_type == vs.FLOAT
    spec = clip_colour(vs, clip, matrix)
    hdr_path = _hdr_path(vs, clip, spec, hdr, hdr_peak)
    # YUV goes to the device as code planes and is converted there by the transcoder's own
    # colour code (err_stream.colour), so a clip gets the same pixels through both.
    packed = None if direct or fmt.color_family != vs.YUV else _packed_colour(vs, clip, fmt, spec, hdr_path)
    if direct or packed is not None:
        work = clip
    else:
        work, back = _to_rgbs(vs, core, clip, fmt, spec)

    restorer = _restorer(vs, preset, weights, settings, device, num_streams)

    import torch

    from err_stream.engine import StreamingExecutor

    host_dtype = torch.float16 if direct and fmt.bits_per_sample == 16 else torch.float32
    lanes = num_streams + 1
    pre = None
    input_shape: tuple[int, ...] = (3, clip.height, clip.width)
    if packed is not None:  # YUV codes in, YUV codes out (clamped to [0, 1] before; HDR: see HdrPath)
        pre, post = packed.to_rgb, packed.from_rgb  # from_rgb(restored, input codes)
        input_shape, host_dtype = (packed.in_fmt.frame_elements(clip.width, clip.height),), packed.in_fmt.torch_dtype
    elif hdr_path is not None:  # PQ/HLG R'G'B' (as it is, or from resize): the HDR path there and back
        half = host_dtype == torch.float16
        pre = hdr_path.to_sdr
        post = lambda y, x: (lambda z: z.half() if half else z)(hdr_path.from_sdr(y, x.float()))  # noqa: E731
    elif direct:  # float RGB keeps the network's values (the guard bounds them)
        post = (lambda y, _: y.half()) if host_dtype == torch.float16 else None
    else:  # converted back to integer RGB: clamp first
        post = lambda y, _: y.clamp_(0.0, 1.0)  # noqa: E731
    executor = StreamingExecutor(
        restorer,
        pre=pre,
        post=post,
        depth=num_streams,
        input_shape=input_shape,
        input_dtype=host_dtype,
        input_slots=lanes,
        accept_out_of_range=accept_out_of_range,
        name="err-vs-executor",
    )
    out = _parallel_modify(core, work, _frame_callbacks(vs, executor, packed), lanes=lanes)
    if not direct and packed is None:
        out = core.std.CopyFrameProps(back(out), clip)
    return out


# ----------------------------------------------------------------------------- argument checks
def _check_clip(vs, clip):
    if not isinstance(clip, vs.VideoNode):
        raise vs.Error(f"err: clip must be a video clip (vapoursynth.VideoNode), got {type(clip).__name__}")
    fmt = clip.format
    if fmt is None or fmt.id == vs.NONE:
        raise vs.Error("err: variable-format clips are not supported; convert to one format first, e.g. core.resize.Bicubic(clip, format=vs.RGBS)")
    if clip.width == 0 or clip.height == 0:
        raise vs.Error("err: variable-size clips are not supported; resize to one size first, e.g. core.resize.Bicubic(clip, width=1920, height=1080)")
    if fmt.color_family == vs.GRAY:
        raise vs.Error("err: GRAY clips are not supported (ERR restores colour); pass an RGB or YUV clip, e.g. core.resize.Bicubic(clip, format=vs.RGBS)")
    if fmt.color_family not in (vs.RGB, vs.YUV):
        raise vs.Error(f"err: unsupported color family {fmt.color_family.name}; pass an RGB or YUV clip")
    if fmt.sample_type == vs.INTEGER and not 8 <= fmt.bits_per_sample <= 16:
        raise vs.Error(f"err: {fmt.name}: integer clips must have 8 to 16 bits; convert to RGBS first")
    return fmt


def _check_num_streams(num_streams) -> int:
    vs = import_vapoursynth()
    if isinstance(num_streams, bool) or not isinstance(num_streams, int) or num_streams < 1:
        raise vs.Error(f"err: num_streams must be a whole number >= 1 (2 or 3 on a GPU, 1 on the CPU), got {num_streams!r}")
    return num_streams


def _settings(vs, fmt, device_index, fp16, precision, tile):
    """The filter's arguments in the library's terms (a RestoreSettings; checked there)."""
    from err_stream.engine.settings import RestoreSettings

    if device_index is None:
        device = None
    elif isinstance(device_index, bool) or not isinstance(device_index, int) or device_index < -1:
        raise vs.Error(f"err: device_index must be a GPU number (0, 1, ...) or -1 for the CPU, got {device_index!r}")
    else:
        device = "cpu" if device_index == -1 else f"cuda:{device_index}"
    if tile is not None and (isinstance(tile, (str, bytes)) or not isinstance(tile, Sequence) or len(tile) != 2):
        raise vs.Error(f"err: tile must be [w, h] (two whole numbers; [0, 0] for whole frames), got {tile!r}")
    if fp16 is not None and not isinstance(fp16, (bool, int)):
        raise vs.Error(f"err: fp16 must be True or False, got {fp16!r}")
    if fp16 is not None and precision is not None:
        raise vs.Error("err: pass either fp16 or precision, not both")
    settings = RestoreSettings(device=device, precision=precision, tile="auto" if tile is None else list(tile))
    on_gpu = settings.torch_device().type == "cuda"
    if fp16 is not None:
        if fp16 and not on_gpu:
            raise vs.Error("err: fp16=True needs a GPU; on the CPU leave fp16 unset (float32 is used)")
        settings = dataclasses.replace(settings, precision="fp16" if fp16 else "fp32")
    elif precision is None:
        # Half precision where the clip is half already (RGBH on a GPU); float32 otherwise.
        rgbh = fmt.sample_type == vs.FLOAT and fmt.bits_per_sample == 16 and fmt.color_family == vs.RGB
        settings = dataclasses.replace(settings, precision="fp16" if on_gpu and rgbh else "fp32")
    return settings


_VS_ARGUMENT = {"device": "device_index"}
_VS_SUGGESTED = {"weights": 'weights="file.pth"', "preset": "preset=NAME"}


def filter_spelling(option: str, value: object = NO_VALUE) -> str:
    """A setting as this filter's arguments write it: ``tile=[64, 64]``, ``device_index=-1``."""
    if value is NO_VALUE:
        return _VS_SUGGESTED.get(option, option + "=")
    if option == "device":
        value = -1 if value == "cpu" else int(str(value).partition(":")[2] or 0)
    elif option == "tile" and value in ("off", "auto"):
        value = [0, 0] if value == "off" else None
    elif isinstance(value, tuple):
        value = list(value)
    return f"{_VS_ARGUMENT.get(option, option)}={value!r}"


# ----------------------------------------------------------------------------- model
def _restorer(vs, preset, weights, settings, device, num_streams):
    from err_stream.engine import Restorer
    from err_stream.errors import UserError
    from err_stream.weights import PRESETS, load_model

    if preset is not None and weights is not None:
        raise vs.Error("err: pass either preset or weights, not both")
    if preset is not None and (not isinstance(preset, str) or preset.lower() not in PRESETS):
        raise vs.Error(f"err: unknown preset {preset!r}; pass one of: {', '.join(PRESETS)} (or weights=\"file.pth\")")
    try:
        model = load_model(weights if weights is not None else preset, device="cpu")
    except UserError as e:
        raise vs.Error("err: " + e.describe(filter_spelling)) from None
    # Several frames are in flight on a GPU: give each a share of the memory budget.
    budget = 0.8 / num_streams if device.type == "cuda" else None
    return Restorer(model, settings=dataclasses.replace(settings, device=str(device), memory_budget=budget))


# ----------------------------------------------------------------------------- colour
def clip_colour(vs, clip, matrix=None):
    """The colour of ``clip`` (a resolved :class:`~err_stream.colour.ColourSpec`): what its
    first frame's properties state, ``matrix`` where they state no matrix, and the untagged
    rule for the rest; its guesses are logged as VapourSynth warnings."""
    from dataclasses import replace

    from err_stream.colour.codes import Matrix
    from err_stream.colour.policy import resolve
    from err_stream.colour.spec import ColourSpec
    from err_stream.errors import UserError

    _check_matrix(vs, matrix)
    stated = ColourSpec.from_vs_props(clip.get_frame(0).props)
    if matrix is not None and not stated.states("matrix"):
        stated = replace(stated, matrix=Matrix(matrix))
    try:
        resolved = resolve(stated, clip.width, clip.height, rgb=clip.format.color_family == vs.RGB)
    except UserError as e:
        raise vs.Error(f"err: {e}; convert the clip to RGBS first, e.g. core.resize.Bicubic(clip, format=vs.RGBS)") from None
    for warning in resolved.warnings:
        vs.core.log_message(vs.MESSAGE_TYPE_WARNING, f"err: {warning}; pass matrix= or set _Matrix to say otherwise")
    return resolved.spec


def _check_matrix(vs, matrix) -> None:
    from err_stream.colour.codes import KR_KB, Matrix

    if matrix is not None and (isinstance(matrix, bool) or not isinstance(matrix, int) or Matrix.of(matrix) not in KR_KB):
        raise vs.Error(f"err: matrix={matrix!r} is not a YUV matrix err converts; pass a _Matrix value such as 1 (BT.709), 6 (BT.601) or 9 (BT.2020)")


def _hdr_path(vs, clip, spec, mode, peak):
    """The HDR path for a PQ or HLG clip as ``hdr``/``hdr_peak`` ask (None otherwise)."""
    from err_stream.colour.hdr import HdrMetadata, HdrPath
    from err_stream.errors import UserError

    props = clip.get_frame(0).props
    stated = props.get("MasteringDisplayMaxLuminance")  # set by bestsource and ffms2
    metadata = HdrMetadata(max_luminance=float(stated)) if isinstance(stated, (int, float)) else None
    try:
        return HdrPath.for_spec(spec, mode, metadata, peak)
    except UserError as e:
        raise vs.Error("err: " + e.describe(filter_spelling)) from None


def _packed_colour(vs, clip, fmt, spec, hdr_path=None):
    """The device-side colour conversion for a YUV clip (err_stream.colour, as the
    transcoder's), or None for formats it does not take (float YUV, odd depths)."""
    from err_stream.colour.convert import PackedFrameColour, YCbCrConverter
    from err_stream.colour.planes import PlaneFormat, yuv_format_name
    from err_stream.errors import UserError

    name = yuv_format_name(fmt.subsampling_w, fmt.subsampling_h, fmt.bits_per_sample)
    if fmt.sample_type != vs.INTEGER or name is None:
        return None
    try:
        plane_format = PlaneFormat.parse(name)
    except UserError:
        return None
    return PackedFrameColour(YCbCrConverter.for_spec(spec), plane_format, plane_format, clip.width, clip.height, hdr=hdr_path)


def _resize_args(spec, yuv: bool, suffix: str = "") -> dict:
    """The core ``resize`` arguments for ``spec`` (``suffix="_in"``: the source's)."""
    args = {"range" + suffix: int(spec.range.vs)}
    if yuv:
        args["matrix" + suffix] = int(spec.matrix)
        if spec.chroma_location.vs is not None:
            args["chromaloc" + suffix] = spec.chroma_location.vs
    return args


def _to_rgbs(vs, core, clip, fmt, spec):
    """RGBS version of ``clip`` and a function that converts an RGBS result back to ``fmt``,
    both with the colour ``spec`` (frames' own properties win, as resize reads them)."""
    yuv = fmt.color_family == vs.YUV
    rgb = core.resize.Bicubic(clip, format=vs.RGBS, **_resize_args(spec, yuv, "_in"))
    back = {"format": fmt.id, **_resize_args(spec, yuv)}
    return rgb, lambda node: core.resize.Bicubic(node, **back)


# ----------------------------------------------------------------------------- frame serving
def _frame_callbacks(vs, executor, packed=None):
    """``make(offset, cycle)``: the callback for the lane holding frames offset, offset +
    cycle, ... (its ``n`` counts the lane's frames; errors name the clip's frame). With
    ``packed`` (a YUV clip), the frame's planes travel packed in one buffer."""
    from err_stream.engine import OutputRangeError

    def make(offset: int, cycle: int):
        return lambda n, f: restore_frame(n * cycle + offset, f)

    def planes_of(buffer: np.ndarray, shapes) -> list[np.ndarray]:
        if buffer.dtype == np.int16:  # 16-bit codes travel as int16 (see PlaneFormat.torch_dtype)
            buffer = buffer.view(np.uint16)
        out, at = [], 0
        for h, w in shapes:
            out.append(buffer[at : at + h * w].reshape(h, w))
            at += h * w
        return out

    def restore_frame(n: int, f):
        slot = executor.input_slot()
        host = slot.tensor.numpy()
        inputs = planes_of(host, packed.in_shapes) if packed is not None else host
        for p in range(3):
            np.copyto(inputs[p], np.asarray(f[p]), casting="unsafe")
        try:
            with executor.submit([slot], index=n) as result:  # waits for this frame only
                out = f.copy()  # keeps the input frame's properties
                restored = result[0].numpy()
                if packed is not None:
                    restored = planes_of(restored, packed.out_shapes)
                for p in range(3):
                    np.copyto(np.asarray(out[p]), restored[p], casting="unsafe")
        except OutputRangeError as e:
            raise vs.Error("err: " + str(e.for_option("accept_out_of_range=True"))) from None
        return out

    return make


def _parallel_modify(core, clip, make_callback, lanes: int):
    """``std.ModifyFrame(clip, clip, callback)``, with up to ``lanes`` callbacks running at once.

    One ModifyFrame instance runs its callbacks one at a time; ``lanes`` instances over
    interleaved sub-clips run theirs concurrently, and interleaving them restores the order.
    ``make_callback(offset, cycle)`` gives the callback of the lane with frames offset,
    offset + cycle, ..."""
    lanes = max(1, min(lanes, clip.num_frames))
    if lanes == 1:
        return core.std.ModifyFrame(clip, clip, make_callback(0, 1))
    parts = []
    for i in range(lanes):
        part = core.std.SelectEvery(clip, cycle=lanes, offsets=i, modify_duration=False)
        parts.append(core.std.ModifyFrame(part, part, make_callback(i, lanes)))
    out = core.std.Interleave(parts, modify_duration=False)
    if out.num_frames != clip.num_frames:
        out = core.std.Trim(out, 0, clip.num_frames - 1)
    if (out.fps_num, out.fps_den) != (clip.fps_num, clip.fps_den):
        out = core.std.AssumeFPS(out, fpsnum=clip.fps_num, fpsden=clip.fps_den)
    return out
