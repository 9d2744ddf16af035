"""Training, evaluation and stage scoring over a :class:`~swnas.diskdata.FolderDataset`.

The trainer takes its batches from a batch source (:mod:`swnas.loader`); :class:`FolderBatchSource`
is the one for image folders: :class:`~swnas.diskdata.DiskBatches` decodes and augments this
rank's share of every global batch in worker processes, and the batch is moved to the device and
normalised there, as the in-memory source does. :func:`evaluate_folder` and
:func:`stage_scores_folder` read the un-augmented evaluation view (resize + centre crop) in the
same streaming way, so no split is ever held in memory.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch

from swnas.augment import normalize
from swnas.diskdata import DiskBatches, FolderDataset, FolderSplit
from swnas.errors import InputError
from swnas.loader import EpochPlan, norm_tensors

__all__ = ["FolderBatchSource", "evaluate_folder", "stage_scores_folder", "is_streaming", "folder_mean_image"]

#: Training images (seeded choice) decoded to estimate a folder's per-pixel mean image.
MEAN_IMAGE_SAMPLE = 256


def is_streaming(data: Any) -> bool:
    """Whether ``data`` is read from disk batch by batch (a :class:`FolderDataset`)."""
    return bool(getattr(data, "streaming", False))


def folder_mean_image(data: FolderDataset, sample: int = MEAN_IMAGE_SAMPLE) -> np.ndarray:
    """Per-pixel mean image ``(H, W, C)`` in [0, 1] units of a seeded sample of ``sample`` training
    images (evaluation view), computed once per data set object and kept on it.

    The sample depends only on the training split, so reopening the folder with the same options
    gives the same image (the ``original`` recipe's normalisation, :func:`swnas.data.input_normalization`).
    """
    from swnas.diskdata import decode_eval

    cached = data.__dict__.get("_mean_image")
    if cached is not None and cached[0] == int(sample):
        return cached[1]
    split = data.train
    rng = np.random.default_rng(len(split))
    idx = np.sort(rng.choice(len(split), size=min(int(sample), len(split)), replace=False))
    total = np.zeros((data.input_size, data.input_size, data.in_channels), np.float64)
    for i in idx:  # one decoded image of memory at a time
        total += decode_eval(split.paths[int(i)], data.input_size, data.in_channels).reshape(total.shape)
    image = (total / (255.0 * len(idx))).astype(np.float32)
    data.__dict__["_mean_image"] = (int(sample), image)
    return image


class FolderBatchSource:
    """A :class:`swnas.loader.BatchSource` over the training split of an image folder."""

    def __init__(self, data: FolderDataset, plan: EpochPlan, device: torch.device, channels_last: bool = False,
                 mean: Any = None, std: Any = None):
        copies = plan.n // max(1, len(data.train))  # the recipe's copies_per_epoch (the original recipe: 3)
        if copies < 1 or plan.n != copies * len(data.train):  # pragma: no cover - the trainer makes n = copies * len
            raise InputError(f"plan: {plan.n} images per epoch is not a whole number of copies of "
                             f"{len(data.train)} training images")
        self.plan = plan
        self.device = device
        self.channels_last = channels_last
        # ``mean``/``std`` default to the folder's channel statistics; a per-pixel mean image is
        # subtracted after the workers' crop (their crops are resized boxes, not shifted windows)
        self.scale, self.shift = norm_tensors(data.mean if mean is None else mean,
                                              data.std if std is None else std, device)
        self.reader = DiskBatches(data.train, input_size=data.input_size, in_channels=data.in_channels,
                                  batch_size=plan.global_batch, train=True, workers=data.workers, seed=plan.seed,
                                  rank=plan.rank, world_size=plan.world_size, pin_memory=device.type == "cuda",
                                  copies=copies)
        if self.reader.steps != plan.steps:  # pragma: no cover - both are len // global batch
            raise InputError(f"streaming source has {self.reader.steps} steps per epoch, the plan {plan.steps}")

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for xb, yb in self.reader.epoch(epoch):
            xb = xb.to(self.device, non_blocking=True)
            yield (normalize(xb, self.scale, self.shift, channels_last=self.channels_last),
                   yb.to(self.device, non_blocking=True))

    def close(self) -> None:
        """Nothing is held between epochs (each epoch's workers exit with it)."""


def _eval_batches(data: FolderDataset, split: FolderSplit, batch_size: int) -> DiskBatches:
    return DiskBatches(split, input_size=data.input_size, in_channels=data.in_channels, batch_size=batch_size,
                       train=False, workers=data.workers)


def evaluate_folder(model: torch.nn.Module, data: FolderDataset, which: str = "test", *, batch_size: int = 256,
                    device: Any = None, amp: Any = "auto", mean: Any = None, std: Any = None) -> dict[str, float]:
    """Top-1, top-5 (fractions) and mean cross-entropy on a split, read batch by batch from disk.

    ``mean``/``std`` default to the folder's channel statistics (:func:`swnas.data.input_normalization`).
    """
    from swnas.train import evaluate

    split = data.split(which)
    totals = {"top1": 0.0, "top5": 0.0, "loss": 0.0}
    n = 0
    for xb, yb in _eval_batches(data, split, batch_size):
        got = evaluate(model, xb, yb, mean=data.mean if mean is None else mean, std=data.std if std is None else std,
                       batch_size=len(yb), device=device, amp=amp)
        for k in totals:
            totals[k] += got[k] * len(yb)
        n += len(yb)
    return {k: v / n for k, v in totals.items()}


def stage_scores_folder(model: torch.nn.Module, data: FolderDataset, criterion: str = "pls", reduce: str = "avgpool8",
                        *, device: Any = None, backend: str = "auto", batch_size: int = 256, rank: int = 0,
                        world_size: int = 1, mean: Any = None, std: Any = None, **params: Any) -> list:
    """Per-stage :class:`~swnas.scoring.ScoreResult` of ``model`` on the un-augmented training split.

    Criteria that stream (PLS; inf-FS with ``corr="pearson"``) accumulate their statistics batch
    by batch; under DDP rank r reads every K-th image and the statistics are summed over ranks
    (``world_size > 1``). Other criteria collect the reduced features (not the images) and score
    them at the end. ``mean``/``std`` default to the folder's channel statistics.
    """
    from swnas.features import iter_stage_batches
    from swnas.scoring import score
    from swnas.scoring.streaming import StreamingScorer, supports_streaming

    split = data.train
    present = np.unique(split.labels)  # code the classes present as 0..C-1, as the in-memory path does
    lut = np.full(data.num_classes, -1, np.int64)
    lut[present] = np.arange(len(present))
    lut_t = torch.from_numpy(lut)
    classes = int(len(present))
    streaming = supports_streaming(criterion, **params)
    if world_size > 1 and streaming:
        split = split.subset(np.arange(rank, len(split), world_size))
    scorers: list | None = None
    parts: list[list[np.ndarray]] | None = None
    labels: list[np.ndarray] = []
    for xb, yb in _eval_batches(data, split, batch_size):
        yb = lut_t[yb]
        for _s, _e, feats in iter_stage_batches(model, xb, reduce, batch_size=len(yb), device=device,
                                                mean=data.mean if mean is None else mean,
                                                std=data.std if std is None else std):
            if streaming:
                if scorers is None:
                    scorers = [StreamingScorer(criterion, n_classes=classes, backend=backend, **params)
                               for _ in feats]
                for sc, f in zip(scorers, feats):
                    sc.update(f, yb.to(f.device))
            else:
                parts = parts if parts is not None else [[] for _ in feats]
                for acc, f in zip(parts, feats):
                    acc.append(f.float().cpu().numpy())
        labels.append(yb.numpy())
    if streaming:
        if world_size > 1:
            return [sc.all_reduce().result() for sc in scorers]
        return [sc.result() for sc in scorers]
    y = np.concatenate(labels)
    return [score(np.concatenate(p), y, criterion=criterion, backend=backend, **params) for p in parts]
