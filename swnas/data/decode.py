"""Image-folder files decoded into uint8 batches: packed paths, the two views, and worker batches.

:class:`DiskBatches` turns one split (:class:`FolderSplit`) into uint8 NHWC batches of
``input_size`` pixels:

- training: the standard ImageNet augmentation, a random resized crop (area 8-100 %, aspect
  3/4-4/3, ten tries then a centre crop) and a horizontal flip;
- evaluation and stage features: resize the shorter side to ``input_size * 256 / 224`` and take
  the centre ``input_size`` square (un-augmented).

Decoding and augmentation run in DataLoader worker processes (``workers``); each worker builds a
whole batch at once, so the main process receives one shared-memory uint8 tensor per batch.
Memory is bounded by the batch and the prefetch depth (``workers * prefetch`` batches in
flight), never by the data set. The random numbers of every crop and flip are drawn in the main
process from ``(seed, epoch)``, so an epoch's batches are the same for any number of workers and
a resumed run continues exactly as an uninterrupted one. Under DDP each rank decodes only its
slice of every global batch.

JPEGs much larger than the crop are decoded at a reduced scale (libjpeg's DCT scaling through
Pillow's ``draft``) before the crop is resized, which is what makes full-size ImageNet decoding
affordable on the CPU; see ``docs/scale.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from swnas.errors import InputError

__all__ = [
    "PathTable",
    "FolderSplit",
    "DiskBatches",
    "decode_eval",
    "decode_train",
    "check_int",
    "RESIZE_RATIO",
    "TRAIN_DRAWS",
]

RESIZE_RATIO = 256 / 224  # evaluation: shorter side to input_size * 256 / 224, then centre crop
_SCALE = (0.08, 1.0)
_RATIO = (3 / 4, 4 / 3)
_TRIES = 10
TRAIN_DRAWS = 2 * _TRIES + 3  # per image: (area, log-ratio) per try, x, y, flip


# ------------------------------------------------------------------------------ path storage


class PathTable:
    """File paths packed into one byte array plus offsets.

    A Python list of a million strings is a million objects whose reference counts forked
    DataLoader workers touch, copying the pages; two NumPy arrays are two objects.
    """

    def __init__(self, paths: list[str]):
        encoded = [p.encode("utf-8", "surrogateescape") for p in paths]
        self.offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(b) for b in encoded], out=self.offsets[1:])
        self.blob = np.frombuffer(b"".join(encoded), np.uint8).copy()

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.blob[a:b].tobytes().decode("utf-8", "surrogateescape")

    def take(self, idx: np.ndarray) -> PathTable:
        """A new table with the paths at ``idx``, in that order."""
        return PathTable([self[int(i)] for i in idx])

    @property
    def nbytes(self) -> int:
        return int(self.blob.nbytes + self.offsets.nbytes)


@dataclass
class FolderSplit:
    """One split of an image folder: packed paths and int64 labels."""

    paths: PathTable
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> FolderSplit:
        return FolderSplit(self.paths.take(idx), self.labels[idx])


def check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------ decoding


def _decode(path: str, size: int, channels: int, box_of) -> np.ndarray:
    """Open ``path`` once, crop ``box_of(w, h)`` (x0, y0, x1, y1 in full-resolution pixels) and
    resize it to ``size`` x ``size``; uint8 HWC.

    A JPEG whose crop is at least twice ``size`` is decoded at a reduced scale first (libjpeg's
    DCT scaling via Pillow's ``draft``), keeping the decoded crop no smaller than ``size``.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
            x0, y0, x1, y1 = box_of(w, h)
            if im.format == "JPEG":
                im.draft(im.mode, (math.ceil(w * size / (x1 - x0)), math.ceil(h * size / (y1 - y0))))
            img = im.convert("RGB" if channels == 3 else "L")
            sx, sy = img.size[0] / w, img.size[1] / h  # < 1 when decoded at a reduced scale
            out = img.resize((size, size), Image.Resampling.BILINEAR, box=(x0 * sx, y0 * sy, x1 * sx, y1 * sy))
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"imagefolder: cannot read image {path!r}: {exc}") from exc
    return np.asarray(out).reshape(size, size, channels)


def decode_eval(path: str, size: int, channels: int = 3) -> np.ndarray:
    """Evaluation view: shorter side to ``size * 256 / 224``, centre ``size`` crop; uint8 HWC."""

    def box(w: int, h: int) -> tuple[float, float, float, float]:
        side = size * min(w, h) / round(size * RESIZE_RATIO)  # the crop's side in source pixels
        x0, y0 = (w - side) / 2, (h - side) / 2
        return x0, y0, x0 + side, y0 + side

    return _decode(path, size, channels, box)


def _crop_box(w: int, h: int, u: np.ndarray) -> tuple[float, float, float, float]:
    """Random resized crop from the uniforms ``u`` (TRAIN_DRAWS values in [0, 1))."""
    area = w * h
    lo, hi = math.log(_RATIO[0]), math.log(_RATIO[1])
    for t in range(_TRIES):
        target = area * (_SCALE[0] + (_SCALE[1] - _SCALE[0]) * u[2 * t])
        ratio = math.exp(lo + (hi - lo) * u[2 * t + 1])
        cw = int(round(math.sqrt(target * ratio)))
        ch = int(round(math.sqrt(target / ratio)))
        if 0 < cw <= w and 0 < ch <= h:
            x0 = int(u[2 * _TRIES] * (w - cw + 1))
            y0 = int(u[2 * _TRIES + 1] * (h - ch + 1))
            return x0, y0, x0 + cw, y0 + ch
    # fallback: the central crop with the aspect ratio clamped into range
    if w / h < _RATIO[0]:
        cw, ch = w, int(round(w / _RATIO[0]))
    elif w / h > _RATIO[1]:
        ch, cw = h, int(round(h * _RATIO[1]))
    else:
        cw, ch = w, h
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    return x0, y0, x0 + cw, y0 + ch


def decode_train(path: str, size: int, u: np.ndarray, channels: int = 3) -> np.ndarray:
    """Training view: random resized crop to ``size`` and a flip when ``u[-1] < 0.5``; uint8 HWC."""
    arr = _decode(path, size, channels, lambda w, h: _crop_box(w, h, u))
    return arr[:, ::-1] if u[-1] < 0.5 else arr


# ------------------------------------------------------------------------------ batches


class _BatchReader(torch.utils.data.Dataset):
    """Map-style data set whose items are whole batches: ``reader[(indices, uniforms)]``."""

    def __init__(self, split: FolderSplit, size: int, channels: int):
        self.split, self.size, self.channels = split, size, channels

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, job: tuple[np.ndarray, np.ndarray | None]) -> tuple[torch.Tensor, torch.Tensor]:
        idx, uniforms = job
        out = torch.empty((len(idx), self.size, self.size, self.channels), dtype=torch.uint8)
        view = out.numpy()  # filled in place: one copy per image, none per batch
        for k, i in enumerate(idx):
            path = self.split.paths[int(i)]
            if uniforms is None:
                view[k] = decode_eval(path, self.size, self.channels)
            else:
                view[k] = decode_train(path, self.size, uniforms[k], self.channels)
        return out, torch.from_numpy(self.split.labels[idx])


def _epoch_seed(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), 0x5157]))


class DiskBatches:
    """uint8 NHWC batches of one split, decoded by DataLoader workers.

    Parameters
    ----------
    split : FolderSplit
    input_size, in_channels : int
    batch_size : int
        The *global* batch; under DDP rank r of K receives slice r of it (B must divide by K).
    train : bool
        Augmented, shuffled, ``len // batch_size`` full batches per epoch (the remainder differs
        from epoch to epoch); otherwise the evaluation view of every image in order.
    workers : int
        DataLoader worker processes (0 decodes in the calling process).
    prefetch : int
        Batches each worker prepares ahead.
    seed : int
    rank, world_size : int
    pin_memory : bool
        Page-locked batches for faster host-to-GPU copies.
    copies : int
        Training only: an epoch draws from ``copies`` independently augmented copies of the split
        (the ``original`` recipe's 3), shuffled together; each image is decoded once per copy.
    """

    def __init__(
        self,
        split: FolderSplit,
        *,
        input_size: int,
        in_channels: int = 3,
        batch_size: int = 256,
        train: bool = True,
        workers: int = 4,
        prefetch: int = 2,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        pin_memory: bool = False,
        copies: int = 1,
    ):
        self.split = split
        self.size = check_int(input_size, "input_size", 8)
        self.channels = in_channels
        self.batch = check_int(batch_size, "batch_size", 1)
        self.workers = check_int(workers, "workers", 0)
        self.prefetch = check_int(prefetch, "prefetch", 1)
        self.train, self.seed = bool(train), int(seed)
        self.rank, self.world = int(rank), int(world_size)
        self.pin = bool(pin_memory)
        self.copies = check_int(copies, "copies", 1)
        if self.batch % self.world:
            raise InputError(f"batch_size={self.batch} must be divisible by the world size {self.world}")
        if len(split) == 0:
            raise InputError("the split holds no images")

    @property
    def steps(self) -> int:
        """Batches per epoch."""
        if self.train:
            return max(1, len(self.split) * self.copies // self.batch)
        return math.ceil(len(self.split) / self.batch)

    def jobs(self, epoch: int) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """This rank's (indices, uniforms) of every batch of ``epoch``; the same for any worker count."""
        n = len(self.split)
        if not self.train:
            idx = np.arange(n)
            return [(idx[i : i + self.batch], None) for i in range(0, n, self.batch)]
        total = n * self.copies  # positions of the epoch; position i shows image i % n
        gb = min(self.batch, (total // self.world) * self.world)
        if gb == 0:
            raise InputError(f"{n} training images cannot be split over {self.world} ranks")
        steps = total // gb
        rng = _epoch_seed(self.seed, epoch)
        perm = (rng.permutation(total)[: steps * gb] % n).reshape(steps, gb)
        uniforms = rng.random((steps, gb, TRAIN_DRAWS))
        per = gb // self.world
        sl = slice(self.rank * per, (self.rank + 1) * per)
        return [(perm[s, sl], uniforms[s, sl]) for s in range(steps)]

    def epoch(self, epoch: int = 0, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(images uint8 (b, S, S, C), labels int64 (b,))`` for every batch of ``epoch``."""
        jobs = self.jobs(epoch)[start_step:]
        reader = _BatchReader(self.split, self.size, self.channels)
        if self.workers == 0:
            for job in jobs:
                yield reader[job]
            return
        loader = torch.utils.data.DataLoader(
            reader,
            batch_size=None,
            sampler=jobs,
            num_workers=min(self.workers, max(1, len(jobs))),
            prefetch_factor=self.prefetch,
            pin_memory=self.pin,
            persistent_workers=False,
        )
        yield from loader

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.epoch(0)
