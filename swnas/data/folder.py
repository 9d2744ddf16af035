"""Image folders streamed from disk: :class:`FolderDataset`, the second data source.

:func:`open_imagefolder` lists ``root/train/<class>/*`` and ``root/val/<class>/*`` (or ``test/``;
Tiny ImageNet's ``val/images`` + ``val_annotations.txt`` layout too) and returns a
:class:`FolderDataset` that holds file names and labels only. Opening ImageNet (1.28 M files) this
way costs the directory walk and ~100 MB of packed path bytes, never the 190 GB of decoded pixels.
Its batches come from :class:`~swnas.data.decode.DiskBatches` (decoded and augmented in worker
processes); training batches are moved to the device and normalised there, as the in-memory
source does (:class:`FolderBatchSource`); evaluation and stage-scoring batches are the
un-augmented evaluation view (resize + centre crop), so no split is ever held in memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from swnas.data.augment import normalize
from swnas.data.batches import EpochPlan, norm_tensors
from swnas.data.decode import DiskBatches, FolderSplit, PathTable, check_int, decode_eval
from swnas.data.files import IMAGE_EXTENSIONS, scan_annotated_val
from swnas.data.source import check_rank, check_split
from swnas.data.splits import balanced_subset, stratified_split
from swnas.errors import InputError

__all__ = [
    "FolderDataset",
    "FolderBatchSource",
    "open_imagefolder",
    "STREAM_ABOVE_BYTES",
    "estimated_decoded_bytes",
    "wants_streaming",
    "MEAN_IMAGE_SAMPLE",
]

#: Training images (seeded choice) decoded to estimate a folder's per-pixel mean image.
MEAN_IMAGE_SAMPLE = 256


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

    @property
    def y_train(self) -> np.ndarray:
        return self.train.labels

    @property
    def y_test(self) -> np.ndarray:
        return self.test.labels

    @property
    def y_val(self) -> np.ndarray | None:
        return None if self.val is None else self.val.labels

    def split(self, which: str) -> FolderSplit:
        """``"train"``, ``"val"`` or ``"test"``."""
        got = {"train": self.train, "val": self.val, "test": self.test}.get(which) if isinstance(which, str) else None
        check_split(which, got is not None and len(got) > 0)
        return cast(FolderSplit, got)

    # ------------------------------------------------------------------ the DataSource members

    def check(self) -> None:
        """InputError unless the statistics have one value per channel and the training split holds images."""
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise InputError(f"data.mean/std must have one value per channel ({self.in_channels})")
        if len(self.train) == 0:
            raise InputError("data: the training split holds no images")

    def has_split(self, split: str) -> bool:
        """Whether ``split`` holds images (``val`` only with a validation split)."""
        try:
            self.split(split)
        except InputError:
            return False
        return True

    def labels(self, split: str = "train") -> np.ndarray:
        """int64 labels of ``split``."""
        return self.split(split).labels

    def size(self, split: str = "train") -> int:
        """Images in ``split``."""
        return len(self.split(split))

    def head(self, k: int) -> np.ndarray:
        """The first ``k`` training images in the evaluation view, uint8 NHWC (for probing shapes)."""
        k = min(int(k), len(self.train))
        return np.stack([decode_eval(self.train.paths[i], self.input_size, self.in_channels) for i in range(k)])

    def pixel_mean(self, sample: int = MEAN_IMAGE_SAMPLE) -> np.ndarray:
        """Per-pixel mean image ``(H, W, C)`` in [0, 1] units of a seeded sample of ``sample`` training
        images (evaluation view), computed once and kept.

        The sample depends only on the training split, so reopening the folder with the same
        options gives the same image (the ``original`` recipe's normalisation,
        :func:`swnas.data.input_normalization`).
        """
        cached = self.__dict__.get("_mean_image")
        if cached is not None and cached[0] == int(sample):
            return cached[1]
        split = self.train
        rng = np.random.default_rng(len(split))
        idx = np.sort(rng.choice(len(split), size=min(int(sample), len(split)), replace=False))
        total = np.zeros((self.input_size, self.input_size, self.in_channels), np.float64)
        for i in idx:  # one decoded image of memory at a time
            total += decode_eval(split.paths[int(i)], self.input_size, self.in_channels).reshape(total.shape)
        image = (total / (255.0 * len(idx))).astype(np.float32)
        self.__dict__["_mean_image"] = (int(sample), image)
        return image

    def train_batches(
        self, plan: EpochPlan, device: torch.device, *, mean: Any, std: Any, channels_last: bool = False
    ) -> FolderBatchSource:
        """Training batches decoded and augmented by :attr:`workers` worker processes."""
        return FolderBatchSource(self, plan, device, channels_last=channels_last, mean=mean, std=std)

    def eval_batches(
        self, split: str, batch_size: int, *, rank: int = 0, world_size: int = 1
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The evaluation view of ``split`` (of rank ``rank``'s every ``world_size``-th image), in order."""
        part = self.split(split)
        rank, world_size = check_rank(rank, world_size)
        if world_size > 1:
            part = part.subset(np.arange(rank, len(part), world_size))
        return iter(
            DiskBatches(
                part,
                input_size=self.input_size,
                in_channels=self.in_channels,
                batch_size=batch_size,
                train=False,
                workers=self.workers,
            )
        )

    def __repr__(self) -> str:
        val = 0 if self.val is None else len(self.val)
        return (
            f"FolderDataset(root={str(self.root)!r}, train={len(self.train)}, val={val}, "
            f"test={len(self.test)}, input_size={self.input_size}, num_classes={self.num_classes})"
        )


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


def open_imagefolder(
    path: str | os.PathLike,
    *,
    input_size: int = 224,
    in_channels: int = 3,
    val_split: float = 0.0,
    subset: int | None = None,
    seed: int = 0,
    stats_sample: int = 256,
    workers: int = 4,
) -> FolderDataset:
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
    input_size = check_int(input_size, "input_size", 8)
    if in_channels not in (1, 3):
        raise InputError(f"in_channels must be 1 or 3, got {in_channels!r}")
    stats_sample = check_int(stats_sample, "stats_sample", 1)
    workers = check_int(workers, "workers", 0)
    train_dir = root / "train"
    test_dir = next((root / n for n in ("val", "test") if (root / n).is_dir()), None)
    if not train_dir.is_dir() or test_dir is None:
        raise InputError(f"imagefolder: {str(root)!r} must contain train/ and val/ (or test/) sub-directories")
    classes, tr_paths, tr_labels = _scan_classes(train_dir)
    annotated = scan_annotated_val(test_dir, classes)
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
        train = train.subset(balanced_subset(train.labels, check_int(subset, "subset", 2), seed=seed))
    val = None
    if val_split:
        tr, va = stratified_split(train.labels, val_split, seed=seed)
        train, val = train.subset(tr), train.subset(va)
    mean, std = _sample_stats(train, input_size, in_channels, stats_sample, seed)
    return FolderDataset(
        name="imagefolder",
        root=root,
        train=train,
        test=test,
        val=val,
        num_classes=len(classes),
        input_size=input_size,
        in_channels=in_channels,
        mean=mean,
        std=std,
        classes=classes,
        workers=workers,
    )


def _sample_stats(
    split: FolderSplit, size: int, channels: int, k: int, seed: int
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


class FolderBatchSource:
    """A :class:`swnas.data.batches.BatchSource` over the training split of an image folder.

    :class:`~swnas.data.decode.DiskBatches` decodes and augments this rank's share of every
    global batch in worker processes; the batch is moved to the device and normalised there.
    """

    def __init__(
        self,
        data: FolderDataset,
        plan: EpochPlan,
        device: torch.device,
        channels_last: bool = False,
        mean: Any = None,
        std: Any = None,
    ):
        copies = plan.n // max(1, len(data.train))  # the recipe's copies_per_epoch (the original recipe: 3)
        if copies < 1 or plan.n != copies * len(data.train):  # pragma: no cover - the trainer makes n = copies * len
            raise InputError(
                f"plan: {plan.n} images per epoch is not a whole number of copies of {len(data.train)} training images"
            )
        self.plan = plan
        self.device = device
        self.channels_last = channels_last
        # ``mean``/``std`` default to the folder's channel statistics; a per-pixel mean image is
        # subtracted after the workers' crop (their crops are resized boxes, not shifted windows)
        self.scale, self.shift = norm_tensors(
            data.mean if mean is None else mean, data.std if std is None else std, device
        )
        self.reader = DiskBatches(
            data.train,
            input_size=data.input_size,
            in_channels=data.in_channels,
            batch_size=plan.global_batch,
            train=True,
            workers=data.workers,
            seed=plan.seed,
            rank=plan.rank,
            world_size=plan.world_size,
            pin_memory=device.type == "cuda",
            copies=copies,
        )
        if self.reader.steps != plan.steps:  # pragma: no cover - both are len // global batch
            raise InputError(f"streaming source has {self.reader.steps} steps per epoch, the plan {plan.steps}")

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for xb, yb in self.reader.epoch(epoch):
            xb = xb.to(self.device, non_blocking=True)
            yield (
                normalize(xb, self.scale, self.shift, channels_last=self.channels_last),
                yb.to(self.device, non_blocking=True),
            )

    def close(self) -> None:
        """Nothing is held between epochs (each epoch's workers exit with it)."""
