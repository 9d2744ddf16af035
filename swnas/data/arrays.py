"""Data sets held in memory as uint8 NHWC arrays: :class:`Dataset`, one of the two data sources.

Keeping images as uint8 is what lets the trainer hold a whole data set on the GPU (CIFAR-10:
150 MB) and do augmentation there. Memory cost: ``N * S * S * C`` bytes for N images of S x S x C
(CIFAR-10 180 MB, ImageNet 32x32 3.9 GB; full-resolution ImageNet streams instead,
:mod:`swnas.data.folder`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch

from swnas.data.batches import EpochPlan, InMemoryBatches
from swnas.data.source import check_rank, check_split
from swnas.data.splits import balanced_subset, stratified_split
from swnas.errors import InputError

__all__ = ["Dataset", "make_dataset", "channel_stats", "mean_image"]


@dataclass
class Dataset:
    """An image-classification data set held in memory.

    Attributes
    ----------
    name : str
        Loader name (``"digits"``, ``"cifar10"``, ``"imagefolder"``, ``"imagenet32"``).
    x_train, x_test, x_val : np.ndarray
        uint8 images, shape ``(N, H, W, C)``. ``x_val`` is ``None`` unless ``val_split > 0``.
    y_train, y_test, y_val : np.ndarray
        int64 labels in ``0 .. num_classes - 1``, shape ``(N,)``.
    num_classes, input_size, in_channels : int
        Number of classes, image side (H == W) and channels.
    mean, std : tuple of float
        Per-channel mean and standard deviation of the training images in [0, 1] units, used to
        normalise inputs (``(x / 255 - mean) / std``).
    classes : list of str or None
        Class names when the source has them (ImageFolder).

    The training images' per-pixel mean image (the ``original`` recipe's normalisation) is
    :attr:`train_mean_image`, computed on first use and kept.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    input_size: int
    in_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    classes: list[str] | None = None

    @property
    def train_mean_image(self) -> np.ndarray:
        """Per-pixel mean of ``x_train`` (after the validation split), float32 ``(H, W, C)`` in [0, 1] units."""
        cached = self.__dict__.get("_train_mean_image")
        if cached is None or cached[0] is not self.x_train:  # recomputed if x_train is replaced
            cached = (self.x_train, mean_image(self.x_train))
            self.__dict__["_train_mean_image"] = cached
        return cached[1]

    @property
    def nbytes(self) -> int:
        """Bytes held by all image and label arrays."""
        arrays = [self.x_train, self.y_train, self.x_test, self.y_test, self.x_val, self.y_val]
        return int(sum(a.nbytes for a in arrays if a is not None))

    def __repr__(self) -> str:  # the default repr would print whole arrays
        val = 0 if self.x_val is None else len(self.x_val)
        return (
            f"Dataset(name={self.name!r}, train={len(self.x_train)}, val={val}, "
            f"test={len(self.x_test)}, shape={self.x_train.shape[1:]}, "
            f"num_classes={self.num_classes})"
        )

    # ------------------------------------------------------------------ the DataSource members

    def _arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        got = (
            {
                "train": (self.x_train, self.y_train),
                "val": (self.x_val, self.y_val),
                "test": (self.x_test, self.y_test),
            }.get(split)
            if isinstance(split, str)
            else None
        )
        check_split(split, got is not None and got[0] is not None and got[1] is not None and len(got[0]) > 0)
        return cast("tuple[np.ndarray, np.ndarray]", got)

    def check(self) -> None:
        """InputError unless the training arrays are uint8 NHWC with matching labels and statistics."""
        x, y = self.x_train, self.y_train
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4:
            raise InputError("data.x_train must be a uint8 NHWC NumPy array")
        if not isinstance(y, np.ndarray) or y.ndim != 1 or len(y) != len(x) or y.dtype.kind not in "iu":
            raise InputError(f"data.y_train must be {len(x)} integer labels, got {getattr(y, 'shape', None)}")
        if len(self.mean) != x.shape[3] or len(self.std) != x.shape[3]:
            raise InputError(f"data.mean/std must have one value per channel ({x.shape[3]})")

    def has_split(self, split: str) -> bool:
        """Whether ``split`` holds images (``val`` only with a validation split)."""
        try:
            self._arrays(split)
        except InputError:
            return False
        return True

    def labels(self, split: str = "train") -> np.ndarray:
        """int64 labels of ``split``."""
        return np.asarray(self._arrays(split)[1], np.int64)

    def size(self, split: str = "train") -> int:
        """Images in ``split``."""
        return int(len(self._arrays(split)[1]))

    def head(self, k: int) -> np.ndarray:
        """The first ``k`` training images (uint8 NHWC)."""
        return self.x_train[: int(k)]

    def pixel_mean(self) -> np.ndarray:
        """:attr:`train_mean_image`."""
        return self.train_mean_image

    def train_batches(
        self, plan: EpochPlan, device: torch.device, *, mean: Any, std: Any, channels_last: bool = False
    ) -> InMemoryBatches:
        """The training set resident on ``device``; batches cropped, flipped and normalised there."""
        return InMemoryBatches(self.x_train, self.y_train, mean, std, plan, device, channels_last=channels_last)

    def eval_batches(
        self, split: str, batch_size: int, *, rank: int = 0, world_size: int = 1
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(uint8 NHWC, int64)`` CPU tensors of ``batch_size`` consecutive images of ``split``
        (of rank ``rank``'s every ``world_size``-th image)."""
        x, y = self._arrays(split)
        rank, world_size = check_rank(rank, world_size)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        if world_size > 1:
            x, y = x[rank::world_size], y[rank::world_size]
        return _array_batches(x, np.asarray(y, np.int64), int(batch_size))


def _array_batches(x: np.ndarray, y: np.ndarray, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for i in range(0, len(x), batch_size):
        yield (
            torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size])),
            torch.from_numpy(np.ascontiguousarray(y[i : i + batch_size])),
        )


# --------------------------------------------------------------------------- validation helpers


def _check_images(x: Any, what: str, source: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise InputError(f"{source}: {what} must be a NumPy array, got {type(x).__name__}")
    if x.dtype != np.uint8:
        raise InputError(f"{source}: {what} must have dtype uint8 (0..255), got {x.dtype}")
    if x.ndim != 4 or x.shape[1] != x.shape[2] or x.shape[3] not in (1, 3):
        raise InputError(
            f"{source}: {what} must have shape (N, H, W, C) with H == W and C in (1, 3) (uint8 NHWC), got {x.shape}"
        )
    if x.shape[0] == 0:
        raise InputError(f"{source}: {what} holds no images")
    return x


def _check_labels(y: Any, n: int, what: str, source: str) -> np.ndarray:
    if not isinstance(y, np.ndarray):
        raise InputError(f"{source}: {what} must be a NumPy array, got {type(y).__name__}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise InputError(f"{source}: {what} must have shape (N,), got {y.shape}")
    if y.dtype.kind not in "iu":
        raise InputError(f"{source}: {what} must be integer class labels, got dtype {y.dtype}")
    if len(y) != n:
        raise InputError(f"{source}: {what} has {len(y)} labels but the images number {n} (they must match)")
    if len(y) and y.min() < 0:
        raise InputError(f"{source}: {what} has negative labels (min {int(y.min())})")
    return y.astype(np.int64, copy=False)


def make_dataset(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    source: str,
    *,
    val_split: float,
    subset: int | None,
    seed: int,
    num_classes: int | None = None,
    classes: list[str] | None = None,
) -> Dataset:
    """Validate arrays, apply subset and validation split, compute statistics."""
    x_train = _check_images(x_train, "x_train", source)
    x_test = _check_images(x_test, "x_test", source)
    y_train = _check_labels(y_train, len(x_train), "y_train", source)
    y_test = _check_labels(y_test, len(x_test), "y_test", source)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise InputError(
            f"{source}: x_train images are {x_train.shape[1:]} but x_test images are "
            f"{x_test.shape[1:]} (they must match)"
        )
    if num_classes is None:
        num_classes = int(max(y_train.max(), y_test.max())) + 1
    for y, what in ((y_train, "y_train"), (y_test, "y_test")):
        if int(y.max()) >= num_classes:
            raise InputError(f"{source}: {what} has label {int(y.max())} but there are {num_classes} classes")
    if len(np.unique(y_train)) < 2:
        raise InputError(f"{source}: y_train holds a single class; need at least 2")
    if subset is not None:
        idx = balanced_subset(y_train, subset, seed=seed)
        x_train, y_train = x_train[idx], y_train[idx]
    x_val = y_val = None
    if val_split:
        tr, va = stratified_split(y_train, val_split, seed=seed)
        x_val, y_val = x_train[va], y_train[va]
        x_train, y_train = x_train[tr], y_train[tr]
    mean, std = channel_stats(x_train)
    return Dataset(
        name=name,
        x_train=np.ascontiguousarray(x_train),
        y_train=np.ascontiguousarray(y_train),
        x_test=np.ascontiguousarray(x_test),
        y_test=np.ascontiguousarray(y_test),
        x_val=None if x_val is None else np.ascontiguousarray(x_val),
        y_val=None if y_val is None else np.ascontiguousarray(y_val),
        num_classes=int(num_classes),
        input_size=int(x_train.shape[1]),
        in_channels=int(x_train.shape[3]),
        mean=mean,
        std=std,
        classes=classes,
    )


def channel_stats(images: np.ndarray, chunk: int = 8192) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (population) of uint8 NHWC images, in [0, 1] units.

    Sums are accumulated in float64 chunk by chunk, so the memory cost stays small for large sets.
    """
    c = images.shape[-1]
    s = np.zeros(c)
    ss = np.zeros(c)
    n = 0
    for i in range(0, len(images), chunk):
        block = images[i : i + chunk].reshape(-1, c).astype(np.float64)
        s += block.sum(0)
        ss += np.square(block).sum(0)
        n += block.shape[0]
    mean = s / n
    var = np.maximum(ss / n - mean**2, 0.0)
    std = np.sqrt(var)
    std[std == 0] = 255.0  # a constant channel: leave it unscaled rather than divide by zero
    return tuple(float(v) for v in mean / 255.0), tuple(float(v) for v in std / 255.0)


def mean_image(images: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Per-pixel mean image of uint8 NHWC images: float32 ``(H, W, C)`` in [0, 1] units.

    Accumulated in float64 chunk by chunk, like :func:`channel_stats`.
    """
    if not isinstance(images, np.ndarray) or images.ndim != 4 or len(images) == 0:
        raise InputError(f"images: expected a non-empty uint8 NHWC array, got {getattr(images, 'shape', None)}")
    total = np.zeros(images.shape[1:], np.float64)
    for i in range(0, len(images), chunk):
        total += images[i : i + chunk].sum(axis=0, dtype=np.float64)
    return (total / (255.0 * len(images))).astype(np.float32)
