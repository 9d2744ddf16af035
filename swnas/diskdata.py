"""ImageFolder trees streamed from disk: an index without decoding, batches decoded in workers.

:func:`open_imagefolder` lists ``root/train/<class>/*`` and ``root/val/<class>/*`` (or ``test/``;
Tiny ImageNet's ``val/images`` + ``val_annotations.txt`` layout too) and returns a
:class:`FolderDataset` that holds file names and labels only. Opening ImageNet (1.28 M files) this
way costs the directory walk and ~100 MB of packed path bytes, never the 190 GB of decoded pixels.

:class:`DiskBatches` turns one split into uint8 NHWC batches of ``input_size`` pixels:

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
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from swnas.data import IMAGE_EXTENSIONS, balanced_subset, stratified_split
from swnas.data import scan_annotated_val as _scan_annotated_val
from swnas.errors import InputError

__all__ = ["PathTable", "FolderSplit", "FolderDataset", "DiskBatches", "open_imagefolder",
           "decode_eval", "decode_train", "RESIZE_RATIO", "TRAIN_DRAWS", "STREAM_ABOVE_BYTES",
           "estimated_decoded_bytes", "wants_streaming"]

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

    def take(self, idx: np.ndarray) -> "PathTable":
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

    def subset(self, idx: np.ndarray) -> "FolderSplit":
        return FolderSplit(self.paths.take(idx), self.labels[idx])


@dataclass
class FolderDataset:
    """An image folder opened for streaming; the counterpart of :class:`swnas.data.Dataset`.

    Attributes
    ----------
    name : str
        ``"imagefolder"``.
    root : Path
    train, test : FolderSplit
    val : FolderSplit or None
        A stratified, seeded fraction of ``train`` when ``val_split > 0``.
    num_classes, input_size, in_channels : int
    mean, std : tuple of float
        Per-channel statistics in [0, 1] units, estimated on a seeded sample of training images
        (evaluation transform), used as for the in-memory data sets.
    classes : list of str
    workers : int
        DataLoader worker processes that decode batches (``--workers``).
    streaming : bool
        Always True: the trainer and the feature extractor read batches through :class:`DiskBatches`.
    """

    name: str
    root: Path
    train: FolderSplit
    test: FolderSplit
    num_classes: int
    input_size: int
    in_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: list[str]
    val: FolderSplit | None = None
    workers: int = 4
    streaming: bool = field(default=True, repr=False)

    @property
    def y_train(self) -> np.ndarray:
        return self.train.labels

    @property
    def y_test(self) -> np.ndarray:
        return self.test.labels

    @property
    def y_val(self) -> np.ndarray | None:
        return None if self.val is None else self.val.labels

    def head(self, k: int) -> np.ndarray:
        """The first ``k`` training images in the evaluation view, uint8 NHWC (for probing shapes)."""
        k = min(int(k), len(self.train))
        return np.stack([decode_eval(self.train.paths[i], self.input_size, self.in_channels) for i in range(k)])

    def split(self, which: str) -> FolderSplit:
        """``"train"``, ``"val"`` or ``"test"``."""
        got = {"train": self.train, "val": self.val, "test": self.test}.get(which)
        if got is None:
            raise InputError(f"split must be 'train', 'test' or (with a val_split) 'val', got {which!r}")
        return got

    def __repr__(self) -> str:
        val = 0 if self.val is None else len(self.val)
        return (f"FolderDataset(root={str(self.root)!r}, train={len(self.train)}, val={val}, "
                f"test={len(self.test)}, input_size={self.input_size}, num_classes={self.num_classes})")


# ------------------------------------------------------------------------------ indexing


def _scan_classes(root: Path) -> tuple[list[str], list[str], list[int]]:
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    if not classes:
        raise InputError(f"imagefolder: {str(root)!r} has no class sub-directories (expected root/<class>/<image>)")
    paths: list[str] = []
    labels: list[int] = []
    for ci, c in enumerate(classes):
        for dirpath, dirnames, files in os.walk(root / c):
            dirnames.sort()
            for f in sorted(files):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    paths.append(os.path.join(dirpath, f))
                    labels.append(ci)
    if not paths:
        raise InputError(f"imagefolder: no images ({', '.join(IMAGE_EXTENSIONS)}) under {str(root)!r}")
    return classes, paths, labels


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def open_imagefolder(path: str | os.PathLike, *, input_size: int = 224, in_channels: int = 3,
                     val_split: float = 0.0, subset: int | None = None, seed: int = 0,
                     stats_sample: int = 256, workers: int = 4) -> FolderDataset:
    """Index an ImageFolder tree for streaming, without decoding its images.

    Parameters
    ----------
    path : path-like
        A directory holding ``train/`` and ``val/`` (or ``test/``).
    input_size : int
        Side of the square crops the batches hold (224 for ImageNet).
    in_channels : {3, 1}
        RGB or grey.
    val_split, subset, seed :
        As for :func:`swnas.data.load_dataset`: a balanced subset of the training files, then a
        stratified held-out fraction of them.
    stats_sample : int
        How many training images (seeded choice) are decoded to estimate the channel mean/std.
    workers : int
        DataLoader worker processes the batches of this data set are decoded in (0: in the caller).

    Returns
    -------
    FolderDataset
    """
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"imagefolder: {str(root)!r} is not a directory")
    input_size = _check_int(input_size, "input_size", 8)
    if in_channels not in (1, 3):
        raise InputError(f"in_channels must be 1 or 3, got {in_channels!r}")
    stats_sample = _check_int(stats_sample, "stats_sample", 1)
    workers = _check_int(workers, "workers", 0)
    train_dir = root / "train"
    test_dir = next((root / n for n in ("val", "test") if (root / n).is_dir()), None)
    if not train_dir.is_dir() or test_dir is None:
        raise InputError(f"imagefolder: {str(root)!r} must contain train/ and val/ (or test/) sub-directories")
    classes, tr_paths, tr_labels = _scan_classes(train_dir)
    annotated = _scan_annotated_val(test_dir, classes)
    if annotated is None:
        te_classes, te_paths, te_labels = _scan_classes(test_dir)
        if te_classes != classes:
            raise InputError(f"imagefolder: class folders of {str(test_dir)!r} differ from those of {str(train_dir)!r}")
    else:
        te_paths, te_labels = annotated
    if len(classes) < 2:
        raise InputError(f"imagefolder: {str(train_dir)!r} holds a single class; need at least 2")
    train = FolderSplit(PathTable(tr_paths), np.asarray(tr_labels, np.int64))
    test = FolderSplit(PathTable(te_paths), np.asarray(te_labels, np.int64))
    if subset is not None:
        train = train.subset(balanced_subset(train.labels, _check_int(subset, "subset", 2), seed=seed))
    val = None
    if val_split:
        tr, va = stratified_split(train.labels, val_split, seed=seed)
        train, val = train.subset(tr), train.subset(va)
    mean, std = _sample_stats(train, input_size, in_channels, stats_sample, seed)
    return FolderDataset(name="imagefolder", root=root, train=train, test=test, val=val,
                         num_classes=len(classes), input_size=input_size, in_channels=in_channels,
                         mean=mean, std=std, classes=classes, workers=workers)


def _sample_stats(split: FolderSplit, size: int, channels: int, k: int, seed: int
                  ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    rng = np.random.default_rng(seed + 7)
    idx = np.sort(rng.choice(len(split), size=min(k, len(split)), replace=False))
    s = np.zeros(channels)
    ss = np.zeros(channels)
    for i in idx:  # one image at a time: the estimate costs one decoded image of memory
        x = decode_eval(split.paths[int(i)], size, channels).reshape(-1, channels).astype(np.float64)
        s += x.sum(0)
        ss += np.square(x).sum(0)
    count = len(idx) * size * size * 255.0**2
    mean = s / (count / 255.0)
    std = np.sqrt(np.maximum(ss / count - mean**2, 0.0))
    std[std == 0] = 1.0
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


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
            out = img.resize((size, size), Image.BILINEAR, box=(x0 * sx, y0 * sy, x1 * sx, y1 * sy))
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

    def __init__(self, split: FolderSplit, *, input_size: int, in_channels: int = 3, batch_size: int = 256,
                 train: bool = True, workers: int = 4, prefetch: int = 2, seed: int = 0,
                 rank: int = 0, world_size: int = 1, pin_memory: bool = False, copies: int = 1):
        self.split = split
        self.size = _check_int(input_size, "input_size", 8)
        self.channels = in_channels
        self.batch = _check_int(batch_size, "batch_size", 1)
        self.workers = _check_int(workers, "workers", 0)
        self.prefetch = _check_int(prefetch, "prefetch", 1)
        self.train, self.seed = bool(train), int(seed)
        self.rank, self.world = int(rank), int(world_size)
        self.pin = bool(pin_memory)
        self.copies = _check_int(copies, "copies", 1)
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
            reader, batch_size=None, sampler=jobs, num_workers=min(self.workers, max(1, len(jobs))),
            prefetch_factor=self.prefetch, pin_memory=self.pin, persistent_workers=False)
        yield from loader

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.epoch(0)



# ------------------------------------------------------------------------------ in memory or streamed

STREAM_ABOVE_BYTES = 1 << 30  # ``stream="auto"``: stream an image folder whose decoded pixels exceed 1 GiB


def estimated_decoded_bytes(path: str | os.PathLike, input_size: int | None, in_channels: int = 3) -> int:
    """Bytes an image folder would take decoded at ``input_size`` (files counted, none decoded).

    Without ``input_size`` the first training image's smaller side is used (its header is read).
    """
    root = Path(path)
    count = 0
    first = None
    for sub in ("train", "val", "test"):
        for dirpath, _, files in os.walk(root / sub):
            for f in files:
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    count += 1
                    if first is None and sub == "train":
                        first = os.path.join(dirpath, f)
    if input_size is None:
        if first is None:
            return 0
        from PIL import Image

        try:
            with Image.open(first) as im:
                input_size = min(im.size)
        except (OSError, ValueError) as exc:
            raise InputError(f"imagefolder: cannot read image {first!r}: {exc}") from exc
    return count * int(input_size) ** 2 * int(in_channels)


def wants_streaming(stream: bool | str, path: str | os.PathLike, input_size: int | None, in_channels: int) -> bool:
    """Resolve ``stream`` (True, False or ``"auto"``: above :data:`STREAM_ABOVE_BYTES` decoded)."""
    if isinstance(stream, bool):
        return stream
    if stream != "auto":
        raise InputError(f"stream must be True, False or 'auto', got {stream!r}")
    return estimated_decoded_bytes(path, input_size, in_channels) > STREAM_ABOVE_BYTES
