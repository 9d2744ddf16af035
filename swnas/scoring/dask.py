"""Scoring Dask arrays: per-chunk streaming statistics on the workers, merged by a tree reduction.

PLS-VIP and inf-FS with Pearson correlation need only sums over rows (X'X, the class sums, the
column sums; see ``docs/scoring.md``), so each row chunk of a Dask array is reduced on the worker
that holds it to a :class:`~swnas.scoring.streaming.StreamingScorer`, the accumulators are merged
pairwise (``split_every`` at a time) in a tree, and only the final p x p statistics reach the
client. X is never gathered; on a ``distributed`` cluster the chunks may live on many machines.

Dask is optional (``pip install swnas[dask]``); this module imports it only when a Dask array
is actually scored. Criteria that need every row at once (il-FS, inf-FS with Spearman ranks)
are refused with the streaming alternative named.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from swnas.errors import InputError
from swnas.scoring.api import ScoreResult, _criterion
from swnas.scoring.streaming import StreamingScorer, supports_streaming

__all__ = ["is_dask_array", "stream_dask", "score_dask"]


def is_dask_array(X: Any) -> bool:
    """Whether ``X`` is a ``dask.array.Array`` (checked without importing Dask)."""
    cls = type(X)
    return cls.__module__.startswith("dask.array") and cls.__name__ == "Array"


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - a Dask array implies Dask is installed
        raise InputError(f"X: scoring a Dask array needs dask ({exc}); pip install swnas[dask]") from None
    return dask, da


def _refuse(criterion: str, params: dict) -> None:
    name = _criterion(criterion).name
    if supports_streaming(name, **params):
        return
    if name == "inffs":
        raise InputError("criterion: inf-FS with Spearman correlation ranks each column over all rows and "
                         "cannot run chunk by chunk on a Dask array; pass corr='pearson' (streamed exactly), "
                         "or compute X into memory first")
    raise InputError(f"criterion: {name!r} needs every row at once and cannot run chunk by chunk on a Dask "
                     "array; stream criterion='pls' or criterion='inffs' with corr='pearson', or compute X "
                     "into memory first")


def _row_chunked(X: Any, y: Any):
    """X with one chunk across the columns, and y as a Dask vector chunked like X's rows."""
    _, da = _dask()
    if X.ndim != 2:
        raise InputError(f"X: expected a 2-D Dask array (samples x features), got shape {X.shape}")
    if X.dtype.kind not in "fiu" or X.dtype.kind == "b":
        raise InputError(f"X: dtype {X.dtype} is not a real number type (use float32 or float64)")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise InputError("X: the Dask array's row chunk sizes are unknown; call X.compute_chunk_sizes() first")
    if X.numblocks[1] != 1:  # whole rows per chunk: a rechunk on the workers, not on the client
        X = X.rechunk({1: -1})
    n = X.shape[0]
    if is_dask_array(y):
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or y.shape[0] != n:
            raise InputError(f"y: expected {n} labels to match X, got shape {y.shape}")
        y = y.rechunk((X.chunks[0],))
    else:
        from swnas.scoring._arrays import class_labels

        labels = class_labels(y, "y")
        if labels.shape[0] != n:
            raise InputError(f"y: has {labels.shape[0]} labels but X has {n} samples; they must agree")
        y = da.from_array(labels, chunks=(X.chunks[0],))
    return X, y


def _chunk_scorer(xb: np.ndarray, yb: np.ndarray, criterion: str, params: dict) -> StreamingScorer:
    """Runs on a worker: the streaming statistics of one row chunk."""
    acc = StreamingScorer(criterion, **params)
    return acc.update(np.asarray(xb), np.asarray(yb))


def _merge_all(*parts: StreamingScorer) -> StreamingScorer:
    """Runs on a worker: one node of the tree reduction."""
    acc = parts[0]
    for other in parts[1:]:
        acc = acc.merge(other)
    return acc


def stream_dask(X: Any, y: Any, criterion: str = "pls", *, split_every: int = 8, **params: Any) -> StreamingScorer:
    """Merged streaming statistics of a row-chunked Dask array, computed on the Dask workers.

    Parameters
    ----------
    X : dask.array.Array (N, p)
        Chunked by rows (chunks across columns are joined on the workers first).
    y : array (N,)
        Class labels of any values: a NumPy-like vector or a Dask array.
    criterion : {"pls", "inffs"}
        ``inffs`` needs ``corr="pearson"``.
    split_every : int
        Fan-in of the tree reduction (accumulators merged per task).
    **params
        Criterion parameters.

    Returns
    -------
    StreamingScorer
        Holding every row's statistics (O(p^2) memory); ``.result()`` scores them.
    """
    _refuse(criterion, params)
    if isinstance(split_every, bool) or not isinstance(split_every, (int, np.integer)) or split_every < 2:
        raise InputError(f"split_every: must be an integer >= 2, got {split_every!r}")
    dask, _ = _dask()
    StreamingScorer(criterion, **params)  # parameter errors on the client, before any task runs
    X, y = _row_chunked(X, y)
    if X.shape[0] == 0:
        raise InputError("X: has no rows")
    chunk = dask.delayed(_chunk_scorer, pure=True)
    level = [chunk(xb, yb, criterion, params) for xb, yb in zip(X.to_delayed().ravel(), y.to_delayed().ravel())]
    merge = dask.delayed(_merge_all, pure=True)
    while len(level) > 1:
        level = [merge(*level[i:i + split_every]) for i in range(0, len(level), split_every)]
    return level[0].compute()


def score_dask(X: Any, y: Any, criterion: str = "pls", backend: str = "auto", **params: Any) -> ScoreResult:
    """:func:`swnas.scoring.score` for a Dask array (what ``score`` calls when given one).

    ``backend`` is accepted for symmetry: the workers accumulate with torch on the CPU, and the
    final small solve runs in float64 NumPy on the client. The result equals the in-memory score
    up to rounding; its ``backend`` reads ``"dask"``.
    """
    from swnas.scoring.backends import BACKENDS

    if backend != "auto" and backend not in BACKENDS:
        raise InputError(f"backend: unknown backend {backend!r}; choose auto or one of {', '.join(BACKENDS)}")
    res = stream_dask(X, y, criterion, **params).result()
    return dataclasses.replace(res, backend="dask")
