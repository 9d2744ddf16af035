"""Training batches: an epoch plan (order, crops, flips from ``(seed, epoch)``) and a batch source.

:class:`EpochPlan` fixes how one epoch is cut into batches: ``N // B`` global batches of ``B``
images (the last ``N % B`` of each epoch's permutation are left out), each split into ``K`` rank
shards of ``B / K``. Its :meth:`EpochPlan.draw` derives the epoch's permutation and every image's
crop offsets and flip bit from one generator seeded by ``(seed, epoch)`` for the *global* batch,
identical on every rank, so a resumed or distributed run sees the batches an uninterrupted
single-process run would.

A batch source turns a plan into batches; a data source makes one with
:meth:`~swnas.data.source.DataSource.train_batches`. :class:`InMemoryBatches` keeps the training
set on the device as uint8 and crops, flips and normalises each batch with one vectorised gather
(:mod:`swnas.data.augment`); :class:`swnas.data.folder.FolderBatchSource` decodes an image folder in
worker processes. Any source needs the same three members: ``plan``, ``epoch(e)`` and ``close()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from swnas.data.augment import crop_flip_normalize, random_params
from swnas.errors import InputError

__all__ = ["EpochPlan", "BatchSource", "InMemoryBatches", "mix_seed", "norm_tensors"]


def mix_seed(*numbers: int) -> int:
    """A 63-bit seed derived from a tuple of non-negative integers."""
    state = np.random.SeedSequence([int(n) & 0xFFFFFFFF for n in numbers]).generate_state(2)
    return int((int(state[0]) << 31) ^ int(state[1])) & 0x7FFFFFFFFFFFFFFF


def norm_tensors(mean, std, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)`` such that ``uint8 * scale + shift`` is the normalised image (NCHW broadcast).

    ``mean`` is per channel (``C`` values, [0, 1] units) or a per-pixel mean image ``(H, W, C)``
    (:func:`swnas.data.input_normalization`); ``std`` is per channel. ``scale`` has shape
    ``(1, C, 1, 1)``, ``shift`` ``(1, C, 1, 1)`` or ``(1, C, H, W)``.
    """
    m = torch.as_tensor(np.asarray(mean, np.float64), dtype=torch.float64)
    s = torch.as_tensor(np.asarray(std, np.float64), dtype=torch.float64)
    per_pixel = m.ndim == 3 and s.ndim == 1 and m.shape[2] == s.shape[0]
    if not (per_pixel or (m.ndim == 1 and s.shape == m.shape)) or not bool(torch.all(s > 0)):
        raise InputError(
            f"mean and std must be per-channel sequences of equal length with std > 0 (or mean a "
            f"per-pixel (H, W, C) image), got mean of shape {tuple(m.shape)}, std={s.tolist()}"
        )
    scale = (1.0 / (255.0 * s)).float().view(1, -1, 1, 1).to(dev)
    if per_pixel:
        shift = (-m.permute(2, 0, 1) / s.view(-1, 1, 1)).float().unsqueeze(0).to(dev)
    else:
        shift = (-m / s).float().view(1, -1, 1, 1).to(dev)
    return scale, shift


@dataclass(frozen=True)
class EpochPlan:
    """How every epoch is cut into batches, and its random draws (see the module docstring)."""

    n: int
    global_batch: int
    steps: int
    world_size: int
    rank: int
    pad: int
    flip: bool
    seed: int

    @classmethod
    def make(cls, n: int, batch_size: int, world_size: int, rank: int, pad: int, flip: bool, seed: int) -> EpochPlan:
        """Check the sizes; a batch larger than the data shrinks to N (rounded down to a multiple of K)."""
        if batch_size % world_size:
            raise InputError(f"batch_size={batch_size} must be divisible by the world size {world_size}")
        if n < batch_size:
            batch_size = (n // world_size) * world_size
            if batch_size == 0:
                raise InputError(f"{n} training images cannot be split over {world_size} ranks")
        return cls(
            n=n,
            global_batch=batch_size,
            steps=n // batch_size,
            world_size=world_size,
            rank=rank,
            pad=pad,
            flip=flip,
            seed=int(seed),
        )

    @property
    def per_rank(self) -> int:
        return self.global_batch // self.world_size

    @property
    def images_per_epoch(self) -> int:
        return self.steps * self.global_batch

    def draw(self, epoch: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        """``(indices, oy, ox, flip)``, each ``(steps, per_rank)``: this rank's share of the epoch."""
        gen = torch.Generator(device=device)
        gen.manual_seed(mix_seed(self.seed, epoch, 0))  # identical on every rank
        steps, gb = self.steps, self.global_batch
        perm = torch.randperm(self.n, generator=gen, device=device)[: steps * gb].view(steps, gb)
        oy, ox, fl = random_params(steps * gb, self.pad, self.flip, generator=gen, device=device)
        shard = slice(self.rank * self.per_rank, (self.rank + 1) * self.per_rank)
        return tuple(t.view(steps, gb)[:, shard] for t in (perm, oy, ox, fl))

    def config(self) -> dict:
        """What a checkpoint records to recognise the same run."""
        return {
            "n_train": int(self.n),
            "batch": int(self.global_batch),
            "steps_per_epoch": int(self.steps),
            "pad": int(self.pad),
            "flip": bool(self.flip),
        }


class BatchSource(Protocol):
    """What the trainer asks of a batch source."""

    plan: EpochPlan

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``plan.steps`` batches ``(normalised float NCHW images, int64 labels)`` of this rank."""
        ...

    def close(self) -> None:
        """Free what the source holds."""
        ...


class InMemoryBatches:
    """The training set resident on ``device`` as uint8; batches cropped, flipped and normalised there.

    ``mean``/``std`` as for :func:`norm_tensors`; a per-pixel mean image is subtracted before the
    crop, as the released code does (:func:`swnas.data.augment.crop_flip_normalize`).
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        mean,
        std,
        plan: EpochPlan,
        device: torch.device,
        channels_last: bool = False,
    ):
        self.plan = plan
        self.device = device
        self.channels_last = channels_last
        self.x = torch.from_numpy(x).to(device)
        self.y = torch.from_numpy(y.astype(np.int64, copy=False)).to(device)
        self.scale, self.shift = norm_tensors(mean, std, device)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        idx, oy, ox, fl = self.plan.draw(epoch, self.device)
        if self.plan.n > self.x.shape[0]:  # several augmented copies per epoch: plan index -> image
            idx = idx % self.x.shape[0]
        for s in range(self.plan.steps):
            xb = crop_flip_normalize(
                self.x[idx[s]],
                oy[s],
                ox[s],
                fl[s],
                self.plan.pad,
                self.scale,
                self.shift,
                channels_last=self.channels_last,
            )
            yield xb, self.y[idx[s]]

    def close(self) -> None:
        self.x = self.y = None  # type: ignore[assignment]
