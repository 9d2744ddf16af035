"""Ensemble of the search's candidates: the average of their softmax outputs (the paper's 95.68% row)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from swnas.errors import InputError

__all__ = [
    "EnsembleResult",
    "ENSEMBLE_FILE",
    "softmax",
    "topk_accuracy",
    "evaluate_ensemble",
    "evaluate_ensemble_on",
    "ensemble_search",
]

ENSEMBLE_FILE = "ensemble.json"


@dataclass
class EnsembleResult:
    """Accuracy of the averaged softmax of several networks.

    Attributes
    ----------
    members : list of int
        Network indices (into ``search.json``'s ``networks``) or positions in the model list.
    top1, top5 : float
        Fractions of the test set for the ensemble (top-k uses min(5, classes)).
    n_test : int
    member_top1, member_top5 : list of float
        The same for each member alone (same order as ``members``).
    """

    members: list
    top1: float
    top5: float
    n_test: int
    member_top1: list
    member_top5: list

    def to_dict(self) -> dict:
        return asdict(self)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, stable for large logits."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose label is among the ``k`` highest scores (k capped at the classes)."""
    scores = np.asarray(scores)
    labels = np.asarray(labels).reshape(-1)
    if scores.ndim != 2 or scores.shape[0] != labels.shape[0]:
        raise InputError(f"scores: expected shape (N, C) with N = {labels.shape[0]} labels, got {scores.shape}")
    if scores.shape[0] == 0:
        raise InputError("labels: empty test set")
    k = max(1, min(int(k), scores.shape[1]))
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def _default_logits_fn(mean, std, batch_size: int | None, device: str) -> Callable[[Any, np.ndarray], np.ndarray]:
    from swnas.training.trainer import predict_logits

    def fn(model, images):
        out = predict_logits(model, images, mean=mean, std=std, batch_size=batch_size, device=device)
        return out.detach().float().cpu().numpy() if hasattr(out, "detach") else np.asarray(out)

    return fn


def _combine(
    models: Sequence[Any], logits_of: Callable[[Any], Any], labels: np.ndarray, members: Sequence[int] | None
) -> EnsembleResult:
    """Mean softmax of ``logits_of(model)`` over ``models``, scored against ``labels``."""
    if len(models) == 0:
        raise InputError("models: the ensemble needs at least one network")
    labels = np.asarray(labels).reshape(-1)
    total: np.ndarray | None = None
    m1, m5 = [], []
    for i, model in enumerate(models):
        p = softmax(np.asarray(logits_of(model)))
        if p.shape[0] != labels.shape[0]:
            raise InputError(f"models[{i}]: produced {p.shape[0]} predictions for {labels.shape[0]} labels")
        if total is not None and p.shape != total.shape:
            raise InputError(f"models[{i}]: predicts {p.shape[1]} classes, the others {total.shape[1]}")
        m1.append(topk_accuracy(p, labels, 1))
        m5.append(topk_accuracy(p, labels, 5))
        total = p if total is None else total + p
    assert total is not None  # models is not empty (checked above)
    avg = total / len(models)
    return EnsembleResult(
        members=list(members) if members is not None else list(range(len(models))),
        top1=topk_accuracy(avg, labels, 1),
        top5=topk_accuracy(avg, labels, 5),
        n_test=int(labels.shape[0]),
        member_top1=m1,
        member_top5=m5,
    )


def evaluate_ensemble(
    models: Sequence[Any],
    images: np.ndarray,
    labels: np.ndarray,
    *,
    mean=None,
    std=None,
    batch_size: int | None = None,
    device: str = "auto",
    logits_fn: Callable[[Any, np.ndarray], Any] | None = None,
    members: Sequence[int] | None = None,
) -> EnsembleResult:
    """Top-1/top-5 of the mean softmax of ``models`` on ``(images, labels)``.

    Parameters
    ----------
    models : sequence of torch.nn.Module (or anything ``logits_fn`` accepts)
    images, labels : test set (uint8 NHWC images as :func:`swnas.training.trainer.predict_logits` takes them)
    logits_fn : callable, optional
        ``(model, images) -> (N, C) logits``; default ``swnas.training.trainer.predict_logits``.
    members : sequence of int, optional
        Labels for the members in the result (default 0..len-1).
    batch_size : int, optional
        Images per forward pass; default sized from the image size (:func:`swnas.data.eval_batch_size`).
    """
    fn = logits_fn or _default_logits_fn(mean, std, batch_size, device)
    return _combine(models, lambda model: fn(model, images), labels, members)


def evaluate_ensemble_on(
    models: Sequence[Any],
    data: Any,
    split: str = "test",
    *,
    mean=None,
    std=None,
    batch_size: int | None = None,
    device: str = "auto",
    members: Sequence[int] | None = None,
) -> EnsembleResult:
    """:func:`evaluate_ensemble` on a split of a data source (:class:`swnas.data.DataSource`), read
    batch by batch, so an image folder streamed from disk works as arrays in memory do.

    ``mean``/``std`` default to the source's channel statistics.
    """
    from swnas.training.trainer import predict_split

    def logits_of(model):
        return predict_split(model, data, split, mean=mean, std=std, batch_size=batch_size, device=device).numpy()

    return _combine(models, logits_of, data.labels(split), members)


def ensemble_search(
    out_dir: str | Path,
    *,
    device: str = "auto",
    members: Sequence[int] | None = None,
    dataset: Any = None,
    write: bool = True,
) -> EnsembleResult:
    """Evaluate the ensemble of a search's candidate set on its dataset's test set.

    Loads every candidate checkpoint of ``OUT/search.json`` (or the network indices ``members``),
    after the candidate's final epochs when they ran, reopens the search's data set with its
    options (:func:`swnas.data.reopen_dataset`: validation split, image size, in memory or
    streamed) and normalisation (or uses ``dataset``, a data source) and writes ``OUT/ensemble.json``.
    """
    from swnas.search import checkpoint_path, final_record, load_recorded, load_state
    from swnas.records.atomic import atomic_write_json, refuse_links

    out = Path(out_dir)
    state = load_state(out)
    if write:
        refuse_links(out, (ENSEMBLE_FILE,))
    idx = list(state["candidates"] if members is None else members)
    if not idx:
        raise InputError(f"{out}: the search has no trained candidate yet")
    nets = state["networks"]
    for i in idx:
        if not (isinstance(i, int) and 0 <= i < len(nets)):
            raise InputError(f"members: {i!r} is not a network index of {out} (0..{len(nets) - 1})")
        checkpoint_path(out, final_record(nets[i]))  # inside OUT, present, the recorded file (before loading data)
    from swnas.data import input_normalization, reopen_dataset
    from swnas.training.recipes import get_recipe

    cfg = state["config"]
    if dataset is None:  # the training split the networks saw, so the statistics are theirs
        dataset = reopen_dataset(cfg)
    mean, std = input_normalization(dataset, get_recipe(cfg.get("recipe", "paper")).normalize)
    models = [load_recorded(out, final_record(nets[i])) for i in idx]  # after their final epochs when they ran
    res = evaluate_ensemble_on(models, dataset, "test", mean=mean, std=std, device=device, members=idx)
    if write:
        atomic_write_json(out / ENSEMBLE_FILE, res.to_dict())
    return res
