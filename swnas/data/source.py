"""The :class:`DataSource` protocol: what training, evaluation and stage scoring ask of a data set.

Two implementations: :class:`swnas.data.Dataset` (uint8 arrays in memory) and
:class:`swnas.data.FolderDataset` (an image folder decoded batch by batch). Everything above the
data layer (trainer, evaluation, stage scoring, ensemble, option checks) reads a data set through
these members only, so it never needs to know which kind it holds (docs/CONTRACTS.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch

from swnas.errors import InputError

if TYPE_CHECKING:  # pragma: no cover - type names only
    from swnas.data.batches import BatchSource, EpochPlan

__all__ = [
    "DataSource",
    "SPLITS",
    "input_normalization",
    "check_split",
    "check_rank",
    "eval_batch_size",
    "EVAL_BATCH_PIXELS",
    "EVAL_BATCH_MAX",
]

#: The split names a data source answers to (``val`` only when a validation fraction was held out).
SPLITS = ("train", "val", "test")

#: Evaluation batches hold at most this many images ...
EVAL_BATCH_MAX = 512
#: ... and, unless the training batch is larger, at most this many pixels: 512 images of 32 x 32
#: (a forward pass's activations grow with the pixels of the batch; docs/scale.md)
EVAL_BATCH_PIXELS = 512 * 32 * 32


def eval_batch_size(
    input_size: int | tuple[int, int], train_batch: int | None = None, *, cap: int = EVAL_BATCH_MAX
) -> int:
    """Images per evaluation batch for inputs of ``input_size`` (a side, or ``(H, W)``).

    An evaluation batch holds :data:`EVAL_BATCH_PIXELS` pixels (512 images at 32 px, 10 at 224 px),
    or the training batch ``train_batch`` (images per process) when that is larger: a forward pass
    without gradients needs less memory per image than a training step, so a run's peak memory
    follows the training batch the user chose. Never more than ``cap`` images, never fewer than 1.

    Examples: 512 at 8 and 32 px (as before the budget), 128 at 64 px, 25 at 224 px with a
    training batch of 25 (at 224 px a ResNet's evaluation pass takes about 13 MB per image on the
    CPU: 512 images were 7.8 GB).
    """
    h, w = (input_size, input_size) if isinstance(input_size, (int, np.integer)) else input_size
    pixels = max(1, int(h) * int(w))
    n = max(1, EVAL_BATCH_PIXELS // pixels)
    if train_batch is not None:
        n = max(n, int(train_batch))
    return max(1, min(int(cap), n))


@runtime_checkable
class DataSource(Protocol):
    """An image-classification data set, read in batches.

    Attributes
    ----------
    name : str
        Loader name (``digits``, ``cifar10``, ``imagefolder``, ``imagenet32``).
    num_classes, input_size, in_channels : int
    mean, std : tuple of float
        Per-channel statistics of the training split in [0, 1] units.
    classes : list of str or None
    """

    name: str
    num_classes: int
    input_size: int
    in_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def check(self) -> None:
        """Raise :class:`~swnas.errors.InputError` when the source's contents are inconsistent."""
        ...

    def has_split(self, split: str) -> bool:
        """Whether ``split`` (``train``, ``val``, ``test``) holds images."""
        ...

    def labels(self, split: str = "train") -> np.ndarray:
        """int64 labels of ``split`` in ``0 .. num_classes - 1``, in the order its batches come."""
        ...

    def size(self, split: str = "train") -> int:
        """Images in ``split``."""
        ...

    def head(self, k: int) -> np.ndarray:
        """The first ``k`` training images, un-augmented, uint8 NHWC (for probing shapes)."""
        ...

    def pixel_mean(self) -> np.ndarray:
        """Per-pixel mean image of the training split, float32 ``(H, W, C)`` in [0, 1] units."""
        ...

    def train_batches(
        self, plan: EpochPlan, device: torch.device, *, mean: Any, std: Any, channels_last: bool = False
    ) -> BatchSource:
        """A :class:`~swnas.data.batches.BatchSource` of augmented, normalised training batches for ``plan``."""
        ...

    def eval_batches(
        self, split: str, batch_size: int, *, rank: int = 0, world_size: int = 1
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Un-augmented ``(uint8 NHWC images, int64 labels)`` CPU batches of ``split``, in order.

        With ``world_size > 1`` rank ``r`` reads images ``r, r + K, r + 2K, ...`` (every K-th).
        """
        ...


def check_split(split: str, present: bool) -> None:
    """InputError unless ``split`` is a split name that this source holds."""
    if split not in SPLITS or not present:
        raise InputError(f"split must be 'train', 'test' or (with a val_split) 'val', got {split!r}")


def check_rank(rank: int, world_size: int) -> tuple[int, int]:
    """``(rank, world_size)`` checked: integers with ``0 <= rank < world_size``."""
    for v, what in ((rank, "rank"), (world_size, "world_size")):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise InputError(f"{what} must be an integer, got {v!r}")
    if not 0 <= rank < world_size:
        raise InputError(f"rank must lie in 0..world_size-1, got rank={rank}, world_size={world_size}")
    return int(rank), int(world_size)


def input_normalization(data: DataSource, normalize: str = "channel") -> tuple[Any, tuple[float, ...]]:
    """``(mean, std)`` that the trainer, the evaluators and the stage scorer normalise inputs with.

    ``normalize`` is a recipe's :attr:`~swnas.training.recipes.Recipe.normalize`: ``"channel"`` gives the
    per-channel ``(data.mean, data.std)``; ``"pixel_mean"`` gives the training split's mean image
    ``(H, W, C)`` (:meth:`DataSource.pixel_mean`) and a std of 1 per channel, i.e.
    ``x / 255 - mean_image`` (the released code's normalisation, ``docs/protocol.md``).
    Everything computed from the same data set options gets the same values, so a search's
    networks are evaluated later (ensemble, report) exactly as they were trained.
    """
    if normalize == "channel":
        return data.mean, data.std
    if normalize != "pixel_mean":
        raise InputError(f"normalize must be 'channel' or 'pixel_mean', got {normalize!r}")
    return data.pixel_mean(), tuple(1.0 for _ in data.mean)
