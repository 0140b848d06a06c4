"""Restore single images: numpy arrays, torch tensors and image files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import numpy as np
import torch

from .engine import Restorer
from .engine.output_check import check_output, clamp_output
from .model import ERR

if TYPE_CHECKING:
    from .colour.codes import Transfer
    from .colour.hdr import HdrPath
    from .colour.policy import ResolvedColour
    from .colour.spec import ColourSpec

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def restore_image(model: ERR | Restorer, image: ArrayOrTensor, *, accept_out_of_range: bool = False,
                  hdr: HdrPath | None = None) -> ArrayOrTensor:
    """Restore one image of any size and return the same kind, shape and dtype.

    ``image``: numpy H x W x 3 (uint8, uint16, or float in [0, 1]), or a torch tensor
    3 x H x W / B x 3 x H x W (float in [0, 1], or uint8). Integer results are clamped and
    rounded; float results are returned as the network gives them (not clamped). Sizes that
    are not multiples of 128 are reflect-padded right/bottom and cropped back, as in the
    paper's inference script.

    Raises :class:`~err_stream.engine.output_check.OutputRangeError` when the result is
    non-finite or has more than 0.1 % of pixels outside [-0.1, 1.1] (the weights diverged
    on this image, or over-expose it: see its ``diverged``); ``accept_out_of_range=True``
    clamps such a result to [0, 1] instead.

    ``hdr``: the image is PQ or HLG R'G'B' (e.g. a 16-bit master): the model sees its
    SDR-referred picture and the result is taken back (:class:`~err_stream.colour.hdr.HdrPath`;
    the output check applies to the SDR-referred result).
    """
    # compile=False: one image, one size; compiling for it would not pay off.
    restorer = model if isinstance(model, Restorer) else Restorer(model, tiling="off", compile=False)

    @torch.inference_mode()
    def restore(x: torch.Tensor) -> torch.Tensor:
        y = restorer.restore(x if hdr is None else hdr.to_sdr(x))
        if accept_out_of_range:
            clamp_output(y)
        else:
            check_output(y)
        return y if hdr is None else hdr.from_sdr(y, x.to(y.device))

    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"restore_image: expected an H x W x 3 RGB array, got shape {image.shape}")
        scale = _integer_scale(image.dtype)
        x = torch.from_numpy(np.ascontiguousarray(image).astype(np.float32) / scale).permute(2, 0, 1)
        y = restore(x[None])[0].permute(1, 2, 0).cpu().numpy()
        if scale != 1.0:
            return np.clip(np.rint(y * scale), 0, scale).astype(image.dtype)
        return y.astype(image.dtype, copy=False)
    if isinstance(image, torch.Tensor):
        squeeze = image.dim() == 3
        x = image[None] if squeeze else image
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"restore_image: expected a 3 x H x W or B x 3 x H x W tensor, got {tuple(image.shape)}")
        if image.is_floating_point():
            y = restore(x.float()).to(image.dtype)
        else:
            scale = float(torch.iinfo(image.dtype).max)
            y = restore(x.float() / scale)
            y = (y * scale).round_().clamp_(0, scale).to(image.dtype)
        return y[0] if squeeze else y
    raise TypeError(f"restore_image: expected a numpy array or torch tensor, got {type(image).__name__}")


def _integer_scale(dtype: np.dtype) -> float:
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise ValueError(f"restore_image: unsupported dtype {dtype}; use uint8, uint16 or float")


class LoadedImage(NamedTuple):
    pixels: np.ndarray  # H x W x 3 uint8/uint16
    colour: ResolvedColour  # what the file states, the rest by the untagged rule (sRGB)


def read_image(path: str | Path) -> np.ndarray:
    """Read an 8- or 16-bit RGB image (PNG, JPEG, TIFF...) as H x W x 3 uint8/uint16.

    Grey images are expanded to RGB and alpha is dropped. 16-bit PNGs are read through
    PyAV's PNG decoder (Pillow reduces 16-bit RGB PNGs to 8 bits)."""
    return load_image(path).pixels


def load_image(path: str | Path, transfer: Transfer | None = None) -> LoadedImage:
    """:func:`read_image`, and the image's colour: a PNG's cICP, sRGB or gAMA chunk as
    FFmpeg reads them; whatever the file does not state is decided by the rule every front
    end follows for untagged input (err_stream.colour.policy: an RGB picture is sRGB).
    ``transfer``: what the caller states (e.g. PQ for a TIFF master, which cannot say it);
    it replaces what the file states."""
    from .colour.policy import resolve
    from .colour.spec import ColourSpec

    path = Path(path)
    suffix = path.suffix.lower()
    stated = ColourSpec()
    if suffix in (".tif", ".tiff"):
        import tifffile

        a = tifffile.imread(str(path))
    elif suffix == ".png":
        a, stated = _read_png(path)
    else:
        from PIL import Image

        with Image.open(path) as im:
            a = np.asarray(im.convert("RGB"))
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"{path}: expected an RGB or grey image, got shape {a.shape}")
    a = a[..., :3]
    if transfer is not None:
        import dataclasses

        stated = dataclasses.replace(stated, transfer=transfer)
    if a.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{path}: unsupported sample type {a.dtype} (8 or 16 bit images only)")
    return LoadedImage(np.ascontiguousarray(a), resolve(stated, a.shape[1], a.shape[0], rgb=True))


def _read_png(path: Path):
    import av

    from .colour.spec import ColourSpec

    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    deep = frame.format.name.startswith(("rgb48", "rgba64", "gray16", "ya16"))
    return frame.to_ndarray(format="rgb48le" if deep else "rgb24"), ColourSpec.from_av(frame)


def write_image(path: str | Path, image: np.ndarray, *, overwrite: bool = True, colour: ColourSpec | None = None) -> None:
    """Write H x W x 3 uint8/uint16 atomically, as every output is written
    (:class:`~err_stream.io.output_file.OutputFile`: locked, a partial file renamed into place).
    ``colour``: primaries and transfer to state in a 16-bit PNG's cICP chunk (e.g. an HDR
    master's); other formats do not carry them."""
    from .io.output_file import OutputFile

    path = Path(path)
    if image.dtype == np.uint16 and path.suffix.lower() not in (".png", ".tif", ".tiff"):
        raise ValueError(f"{path}: 16-bit output needs .png or .tiff")
    with OutputFile(path, overwrite=overwrite) as out:
        tmp = out.tmp  # same extension as ``path``: the writers below choose the format by it
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(str(tmp), image, photometric="rgb")
        elif image.dtype == np.uint16:
            _write_png16(tmp, image, colour)
        else:
            from PIL import Image

            Image.fromarray(image).save(tmp, quality=95) if path.suffix.lower() in (".jpg", ".jpeg") else Image.fromarray(image).save(tmp)
        out.commit()


def _write_png16(path: Path, image: np.ndarray, colour: ColourSpec | None = None) -> None:
    # Pillow cannot write 16-bit RGB PNGs; PyAV's png encoder can (rgb48be), and writes the
    # primaries and transfer it is given as a cICP chunk.
    import av

    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image, dtype=np.uint16), format="rgb48be")
    with av.open(str(path), "w", format="image2") as out:
        st = out.add_stream("png", rate=1)
        st.width, st.height, st.pix_fmt = image.shape[1], image.shape[0], "rgb48be"
        if colour is not None:  # the encoder reads them from the frame
            frame.color_primaries, frame.color_trc = int(colour.primaries), int(colour.transfer)
        for p in st.encode(frame):
            out.mux(p)
        for p in st.encode():
            out.mux(p)
