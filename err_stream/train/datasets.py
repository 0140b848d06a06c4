"""Training and validation data: paired folders, or clean images plus a synthetic degradation.

Sources of images:

* a folder of image files (PNG, JPEG, TIFF; 8 or 16 bit);
* ``skimage:NAMES``: photographs that ship inside scikit-image (no download), e.g.
  ``skimage:astronaut,rocket`` or the named sets ``skimage:train`` / ``skimage:heldout``
  that the demo model uses (:data:`SKIMAGE_SETS`).

Reproducibility: training sample ``k`` (the k-th crop the run sees) is a pure function of
``(seed, k)``: which image (a seeded permutation per pass over the data), where to crop,
which flips, and the degradation's parameters and noise; the crop size is drawn per
iteration from the :class:`Curriculum` stage it falls in. The data order has no state but
the iteration number (:class:`StepBatches`), so a resumed run sees exactly the batches the
uninterrupted run would have seen, whatever the number of loader workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import UserError
from ..image import IMAGE_SUFFIXES, read_image
from .degradations import Degradation

__all__ = [
    "SKIMAGE_SETS",
    "ImageSource",
    "load_source",
    "match_pairs",
    "Curriculum",
    "StepBatches",
    "TrainDataset",
    "ValidationSet",
    "to_tensor",
    "to_numpy",
]

# scikit-image's bundled photographs. "heldout" never enters training: the README's demo clip is
# made from coffee (and chelsea), and the demo model's figures are measured on all three.
SKIMAGE_SETS: dict[str, tuple[str, ...]] = {
    "train": (
        "astronaut", "hubble_deep_field", "immunohistochemistry", "retina", "motorcycle_left", "motorcycle_right",
        # Greyscale photographs (used as grey RGB) add textures the few colour ones lack.
        "camera", "coins", "clock", "grass", "gravel", "brick", "moon",
    ),
    "heldout": ("coffee", "chelsea", "rocket"),
}


class DataError(UserError):
    """A data set that cannot be used as configured (raised before training starts)."""


def _skimage_image(name: str) -> np.ndarray:
    try:
        from skimage import data
    except ImportError:
        raise DataError("skimage: sources need scikit-image: pip install 'err-stream[train]'") from None
    if name in ("motorcycle_left", "motorcycle_right"):
        left, right, _ = data.stereo_motorcycle()
        a = left if name == "motorcycle_left" else right
    else:
        fn = getattr(data, name, None)
        if fn is None or not callable(fn):
            raise DataError(f"skimage:{name}: scikit-image has no such sample image")
        a = np.asarray(fn())
    if a.dtype == bool or a.ndim not in (2, 3):
        raise DataError(f"skimage:{name}: not a photograph ({a.shape}, {a.dtype})")
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    a = a[..., :3]
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a * 255 if a.max() <= 1 else a), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a)


@dataclass
class ImageSource:
    """Named images, each either loaded (array) or a file read on demand."""

    names: list[str]
    arrays: list[np.ndarray] | None = None
    paths: list[Path] | None = None

    def __len__(self) -> int:
        return len(self.names)

    def get(self, i: int) -> np.ndarray:
        if self.arrays is not None:
            return self.arrays[i]
        assert self.paths is not None
        return read_image(self.paths[i])

    def size(self, i: int) -> tuple[int, int]:
        """(height, width) without decoding the whole image where possible."""
        if self.arrays is not None:
            return self.arrays[i].shape[:2]
        return _image_size(self.paths[i])  # type: ignore[index]

    def cache(self) -> None:
        if self.arrays is None:
            self.arrays = [self.get(i) for i in range(len(self))]


def _image_size(path: Path) -> tuple[int, int]:
    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.height, im.width
    except Exception:
        try:
            return read_image(path).shape[:2]
        except Exception as e:
            raise DataError(f"{path}: cannot read this image ({e})") from None


def _image_files(folder: Path, what: str) -> list[Path]:
    if not folder.exists():
        raise DataError(f"{what}: folder {folder} does not exist")
    if not folder.is_dir():
        raise DataError(f"{what}: {folder} is not a folder")
    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{what}: no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def load_source(spec: str, what: str, base: Path | None = None) -> ImageSource:
    """A folder path or ``skimage:NAMES`` -> :class:`ImageSource` (skimage images are loaded)."""
    if spec.startswith("skimage:"):
        names: list[str] = []
        for part in spec[len("skimage:") :].split(","):
            part = part.strip()
            names.extend(SKIMAGE_SETS.get(part, (part,)) if part else ())
        if not names:
            raise DataError(f"{what}: {spec!r} names no images")
        return ImageSource(names=names, arrays=[_skimage_image(n) for n in names])
    folder = Path(spec)
    if base is not None and not folder.is_absolute():
        folder = base / folder
    files = _image_files(folder, what)
    return ImageSource(names=[f.stem for f in files], paths=files)


def match_pairs(input_dir: Path, target_dir: Path, what: str) -> tuple[ImageSource, ImageSource]:
    """Pair degraded and ground-truth images by file name (without extension).

    Every image must have its partner, with the same size; otherwise :class:`DataError`
    lists the offenders.
    """
    inputs = _image_files(input_dir, f"{what}.input")
    targets = _image_files(target_dir, f"{what}.target")
    by_stem_in = {f.stem: f for f in inputs}
    by_stem_gt = {f.stem: f for f in targets}
    only_in = sorted(set(by_stem_in) - set(by_stem_gt))
    only_gt = sorted(set(by_stem_gt) - set(by_stem_in))
    if only_in or only_gt:
        parts = []
        if only_in:
            parts.append(f"{len(only_in)} in {input_dir} without a target ({', '.join(only_in[:5])}{' ...' if len(only_in) > 5 else ''})")
        if only_gt:
            parts.append(f"{len(only_gt)} in {target_dir} without an input ({', '.join(only_gt[:5])}{' ...' if len(only_gt) > 5 else ''})")
        raise DataError(f"{what}: images are paired by file name (without extension), and " + "; ".join(parts))
    stems = sorted(by_stem_in)
    src_in = ImageSource(names=stems, paths=[by_stem_in[s] for s in stems])
    src_gt = ImageSource(names=stems, paths=[by_stem_gt[s] for s in stems])
    wrong = [f"{s} ({a[1]}x{a[0]} vs {b[1]}x{b[0]})" for i, s in enumerate(stems) if (a := src_in.size(i)) != (b := src_gt.size(i))]
    if wrong:
        raise DataError(f"{what}: input and target sizes differ for {len(wrong)} pair(s): {', '.join(wrong[:5])}")
    return src_in, src_gt


def to_tensor(a: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8/uint16 -> float32 3 x H x W in [0, 1]."""
    scale = 65535.0 if a.dtype == np.uint16 else 255.0
    return torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1).div_(scale)


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """3 x H x W float in [0, 1] -> H x W x 3 uint8 (rounded, clamped: what would be saved)."""
    return x.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


class Curriculum:
    """Crop sizes and batch size per iteration: stages ``(start, crop sizes, batch size)``, the
    first starting at iteration 0. Sample numbers run over the whole run, so iteration ``s``
    takes samples ``first_sample(s) .. first_sample(s) + batch_size(s) - 1``."""

    def __init__(self, stages: Sequence[tuple[int, Sequence[int], int]]) -> None:
        self.stages = [(int(s), list(c), int(b)) for s, c, b in stages]
        starts = [s for s, _, _ in self.stages]
        if not starts or starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])):
            raise ValueError(f"Curriculum: stage starts must begin at 0 and increase, got {starts}")
        # Samples before each stage.
        self._first = [0]
        for (s0, _, b0), (s1, _, _) in zip(self.stages, self.stages[1:]):
            self._first.append(self._first[-1] + (s1 - s0) * b0)

    def _stage(self, step: int) -> int:
        return max(i for i, (s, _, _) in enumerate(self.stages) if s <= step)

    def batch_size(self, step: int) -> int:
        return self.stages[self._stage(step)][2]

    def crop_sizes(self, step: int) -> list[int]:
        return self.stages[self._stage(step)][1]

    def first_sample(self, step: int) -> int:
        i = self._stage(step)
        return self._first[i] + (step - self.stages[i][0]) * self.stages[i][2]

    def step_of(self, k: int) -> int:
        """The iteration that sample ``k`` belongs to."""
        i = max(j for j, first in enumerate(self._first) if first <= k)
        return self.stages[i][0] + (k - self._first[i]) // self.stages[i][2]


class StepBatches(torch.utils.data.Sampler):
    """The sample numbers of iterations ``start .. stop - 1``, one list per iteration."""

    def __init__(self, curriculum: Curriculum, start: int, stop: int) -> None:
        self.curriculum, self.start, self.stop = curriculum, start, stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self):
        c = self.curriculum
        for step in range(self.start, self.stop):
            first = c.first_sample(step)
            yield list(range(first, first + c.batch_size(step)))


class TrainDataset(torch.utils.data.Dataset):
    """Random crops (and flips) of paired or synthetically degraded images.

    ``dataset[k]`` is training sample ``k`` (``k`` runs over the whole run, not an epoch):
    a ``(degraded, target)`` pair of float 3 x S x S tensors. The crop size ``S`` is drawn per
    iteration (a batch, so it stacks) from ``crop_sizes``, or from the ``curriculum``'s stage
    (which then also gives the batch sizes). A stage draws its images from those at least its
    largest crop on each side.
    """

    def __init__(
        self,
        target: ImageSource,
        crop_sizes: Sequence[int],
        batch_size: int,
        seed: int,
        degraded: ImageSource | None = None,
        degradation: Degradation | None = None,
        flips: bool = True,
        transpose: bool = True,
        curriculum: Curriculum | None = None,
    ) -> None:
        if (degraded is None) == (degradation is None):
            raise ValueError("TrainDataset: give either degraded images or a degradation")
        self.target, self.degraded, self.degradation = target, degraded, degradation
        self.curriculum = curriculum or Curriculum([(0, crop_sizes, batch_size)])
        self._eligible: dict[int, list[int]] = {}
        self.seed = seed
        self.flips, self.transpose = flips, transpose

    def __len__(self) -> int:  # samples are indexed by their number in the run
        return 2**62

    def fingerprint(self) -> dict:
        """What the data order depends on besides the seed: the images (names and sizes), in order."""
        import hashlib

        h = hashlib.sha256()
        for i, name in enumerate(self.target.names):
            h.update(f"{name}:{self.target.size(i)}\n".encode())
        return {"images": len(self.target), "sha256": h.hexdigest()[:16]}

    def eligible(self, crop: int) -> list[int]:
        """The images at least ``crop`` on each side (a later stage's larger crops skip the small ones)."""
        if crop not in self._eligible:
            self._eligible[crop] = [i for i in range(len(self.target)) if min(self.target.size(i)) >= crop]
            if not self._eligible[crop]:
                raise DataError(f"no training image is at least {crop} px on each side (the crop curriculum's largest crop)")
        return self._eligible[crop]

    def _image_index(self, k: int, step: int) -> int:
        n = len(self.target)
        pool = self.eligible(max(self.curriculum.crop_sizes(step)))
        if len(pool) == n:  # every image: a seeded permutation per pass over the data
            return int(np.random.default_rng([self.seed, 1, k // n]).permutation(n)[k % n])
        m = len(pool)
        return pool[int(np.random.default_rng([self.seed, 1, k // m, m]).permutation(m)[k % m])]

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        step = self.curriculum.step_of(k)
        i = self._image_index(k, step)
        sizes = self.curriculum.crop_sizes(step)
        size = sizes[int(np.random.default_rng([self.seed, 2, step]).integers(len(sizes)))]
        rng = np.random.default_rng([self.seed, 3, k])
        gt = self.target.get(i)
        lq = self.degraded.get(i) if self.degraded is not None else None
        h, w = gt.shape[:2]
        if h < size or w < size:  # checked before training for folders; guard for the rest
            raise DataError(f"image {self.target.names[i]} ({w}x{h}) is smaller than the crop size {size}")
        top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        crop = (slice(top, top + size), slice(left, left + size))
        gt_t = to_tensor(gt[crop])
        lq_t = to_tensor(lq[crop]) if lq is not None else None
        ops = rng.uniform(size=3) < 0.5
        def augment(t: torch.Tensor) -> torch.Tensor:  # noqa: E306
            if self.flips and ops[0]:
                t = t.flip(-1)
            if self.flips and ops[1]:
                t = t.flip(-2)
            if self.transpose and ops[2]:
                t = t.transpose(-1, -2)
            return t.contiguous()

        gt_t = augment(gt_t)
        if lq_t is None:
            assert self.degradation is not None
            lq_t, gt_t = self.degradation.pair(gt_t, rng)
        else:
            lq_t = augment(lq_t)
        return lq_t, gt_t


class ValidationSet:
    """Whole images for validation: ``(name, degraded, target)`` float 3 x H x W tensors.

    Synthetic validation pairs use a fixed seed per image, so every validation (and every
    run with the same seed) sees the same degraded images.
    """

    def __init__(
        self,
        target: ImageSource,
        degraded: ImageSource | None = None,
        degradation: Degradation | None = None,
        seed: int = 0,
        max_images: int | None = None,
    ) -> None:
        self.target, self.degraded, self.degradation, self.seed = target, degraded, degradation, seed
        self.count = min(len(target), max_images) if max_images else len(target)

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        for i in range(self.count):
            gt = to_tensor(self.target.get(i))
            if self.degraded is not None:
                lq = to_tensor(self.degraded.get(i))
            else:
                assert self.degradation is not None
                lq, gt = self.degradation.pair(gt, np.random.default_rng([self.seed, 4, i]))
            yield self.target.names[i], lq, gt


def build_sources(cfg) -> tuple[tuple[ImageSource | None, ImageSource], tuple[ImageSource | None, ImageSource] | None]:
    """``((train degraded or None, train target), (val degraded or None, val target) or None)``
    for a :class:`~err_stream.train.config.TrainConfig`; raises :class:`DataError`."""
    t, v = cfg.data.train, cfg.data.val

    def pair(input_spec: str | None, target_spec: str, what: str) -> tuple[ImageSource | None, ImageSource]:
        if input_spec is None:
            return None, load_source(target_spec, f"{what}.target")
        if input_spec.startswith("skimage:") or target_spec.startswith("skimage:"):
            raise DataError(f"{what}: skimage: sources are clean photographs; use them with a degradation, not as pairs")
        return match_pairs(Path(input_spec), Path(target_spec), what)

    train = pair(t.input, t.target, "data.train")
    val = pair(v.input, v.target, "data.val") if v.target is not None else None
    return train, val
