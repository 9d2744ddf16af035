"""Scoring Dask arrays: per-chunk statistics on the workers, combined by tree reductions.

X is never gathered: each row chunk is reduced on the worker that holds it, the partial results
are combined ``split_every`` at a time in a tree, and only small vectors (or, for inf-FS, the
p x p statistics) reach the client. On a ``distributed`` cluster the chunks may span machines.

* PLS-VIP runs the in-memory algorithm pass by pass (see :mod:`swnas.scoring.pls`): one pass for
  the column moments and class sums (combined with the parallel mean/variance formula), then one
  pass per component for the product with the centred X (``X_c'(X_c v)``, per chunk). So it reads
  X 1 + A times and moves O(p C) numbers per pass, never the O(p^2) Gram matrix. On a distributed
  cluster X is persisted on the workers for the passes.
* inf-FS with Pearson correlation needs X'X: each chunk becomes a
  :class:`~swnas.scoring.streaming.StreamingScorer` (Gram form) and the accumulators are merged.
  :func:`stream_dask` does the same for PLS (used by the selectors' ``partial_fit``).

Dask is optional (``pip install swnas[dask]``); this module imports it only when a Dask array
is actually scored. Criteria that need every row at once (il-FS, inf-FS with Spearman ranks)
are refused with the streaming alternative named.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from swnas.errors import InputError
from swnas.scoring.registry import ScoreResult, _criterion
from swnas.scoring.chunked import chunk_moments, chunk_project, combine_moments, sum_projections, vip_from_moments
from swnas.scoring.streaming import StreamingScorer, streamable

__all__ = ["is_dask_array", "dask_classes", "stream_dask", "score_dask", "from_npy"]


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
    crit = _criterion(criterion)
    if crit.streams(params):
        return
    if crit.from_stats is not None:  # it streams, but not with these parameters
        raise InputError(
            f"criterion: {crit.stream_refusal(params)} and cannot run chunk by chunk on a Dask array; "
            f"pass {crit.stream_hint} (streamed exactly), or compute X into memory first"
        )
    raise InputError(
        f"criterion: {crit.name!r} needs every row at once and cannot run chunk by chunk on a Dask "
        f"array; stream {streamable('criterion=')}, or compute X into memory first"
    )


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
    criterion : str
        One whose record streams (:meth:`~swnas.scoring.api.Criterion.streams`): ``pls``, or
        ``inffs`` with ``corr="pearson"``.
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
        level = [merge(*level[i : i + split_every]) for i in range(0, len(level), split_every)]
    return level[0].compute()


# ---------------------------------------------------------------------------------- PLS, pass by pass
def _tree(dask, parts: list, combine, split_every: int):
    """Delayed tree reduction of ``parts`` with ``combine(*some) -> one``."""
    node = dask.delayed(combine, pure=True)
    while len(parts) > 1:
        parts = [node(*parts[i : i + split_every]) for i in range(0, len(parts), split_every)]
    return parts[0]


#: memory maps of .npy files by (path, size, mtime), kept per process so that the pages a pass maps
#: stay mapped for the next pass (a fresh map per chunk and pass faults every page in again)
_NPY_MAPS: dict[tuple, np.ndarray] = {}


def _npy_rows(path: str, start: int, stop: int, stamp: tuple = ()) -> np.ndarray:
    """Runs on a worker: rows ``start:stop`` of a ``.npy`` file, memory-mapped (read as the pass goes)."""
    key = (path, *stamp)
    mm = _NPY_MAPS.get(key)
    if mm is None:
        for old in [k for k in _NPY_MAPS if k[0] == path]:  # the file changed: drop its old map
            del _NPY_MAPS[old]
        while len(_NPY_MAPS) >= 8:  # a few files at a time; the oldest map goes first
            del _NPY_MAPS[next(iter(_NPY_MAPS))]
        mm = _NPY_MAPS[key] = np.load(path, mmap_mode="r")
    return mm[start:stop]


def from_npy(path: Any, chunk_rows: int = 65536) -> Any:
    """A Dask array of a 2-D ``.npy`` file's rows, ``chunk_rows`` at a time, memory-mapped per chunk.

    ``dask.array.from_array(np.load(path, mmap_mode="r"))`` hashes every byte of the file to name
    the array and (Dask 2024 and later) copies it into memory first; this builds the array from the
    file's name, size and modification time and reads each chunk only when a pass needs it, so
    scoring a 10 GB file holds one chunk per worker thread (docs/scale.md).
    """
    import os

    dask, da = _dask()
    path = os.path.abspath(os.fspath(path))
    if chunk_rows < 1:
        raise InputError(f"chunk_rows: must be a positive number of rows, got {chunk_rows}")
    try:
        head = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise InputError(f"path: cannot memory-map {path!r} as a .npy file ({exc})") from None
    if head.ndim != 2:
        raise InputError(f"path: {path!r} holds an array of shape {head.shape}; expected samples x features")
    n, p = head.shape
    st = os.stat(path)
    name = "swnas-npy-" + dask.base.tokenize(path, st.st_size, st.st_mtime_ns, chunk_rows)
    read = dask.delayed(_npy_rows, pure=True)
    blocks = [
        da.from_delayed(
            read(path, a, min(n, a + chunk_rows), (st.st_size, st.st_mtime_ns), dask_key_name=f"{name}-{a}"),
            shape=(min(n, a + chunk_rows) - a, p),
            dtype=head.dtype,
        )
        for a in range(0, n, chunk_rows)
    ]
    return da.concatenate(blocks, axis=0) if blocks else da.zeros((0, p), dtype=head.dtype)


def _chunk_moments(xb: np.ndarray, yb: np.ndarray, classes: np.ndarray, compiled: bool = True) -> tuple:
    """Runs on a worker: (rows, column means, centred sums of squares, class sums, class counts)."""
    codes = np.searchsorted(classes, np.asarray(yb)).astype(np.int32)
    return chunk_moments(xb, codes, int(classes.size), compiled)


def _persisted(dask, X: Any) -> Any:
    """X kept on the workers of the active distributed client (several passes follow), else X."""
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        return X
    if dask.base.get_scheduler() != client.get:  # a local scheduler was chosen explicitly
        return X
    return client.persist(X)


def dask_classes(y: Any) -> np.ndarray:
    """The sorted distinct labels of ``y``: found on the workers for a Dask vector (one small compute)."""
    if is_dask_array(y):
        _, da = _dask()
        return np.asarray(da.unique(y).compute())
    from swnas.scoring._arrays import class_labels

    return np.unique(class_labels(y, "y"))


def _pls_dask(X: Any, y: Any, params: dict, split_every: int, compiled: bool = True) -> ScoreResult:
    dask, da = _dask()
    if not is_dask_array(y):
        from swnas.scoring._arrays import class_labels

        y = class_labels(y, "y")
    classes = dask_classes(y)
    X, y = _row_chunked(X, y)
    n, p = int(X.shape[0]), int(X.shape[1])
    if classes.size < 2:
        raise InputError(f"y: needs at least 2 classes to score features, found {classes.size}")
    crit = _criterion("pls")
    if n < crit.min_samples(params):
        raise InputError(f"X: has {n} samples; this criterion needs at least {crit.min_samples(params)}")
    full = crit.check(dict(params), n, p, int(classes.size))
    X = _persisted(dask, X)
    xs, ys = X.to_delayed().ravel(), y.to_delayed().ravel()
    moments = dask.delayed(_chunk_moments, pure=True)
    parts = _tree(
        dask, [moments(xb, yb, classes, compiled) for xb, yb in zip(xs, ys)], combine_moments, split_every
    ).compute()
    proj = dask.delayed(chunk_project, pure=True)

    def project_raw(v: np.ndarray, c: float, loading: bool) -> tuple:
        return _tree(dask, [proj(xb, v, c, loading, compiled) for xb in xs], sum_projections, split_every).compute()

    feats = vip_from_moments(parts, full, project_raw, "X", compiled)
    return ScoreResult(features=feats, stage=float(feats.mean()), criterion="pls", backend="dask", params=full)


def score_dask(X: Any, y: Any, criterion: str = "pls", backend: str = "auto", **params: Any) -> ScoreResult:
    """:func:`swnas.scoring.score` for a Dask array (what ``score`` calls when given one).

    ``backend`` is accepted for symmetry: the workers accumulate with torch on the CPU, and the
    final small solve runs in float64 NumPy on the client. The result equals the in-memory score
    up to rounding; its ``backend`` reads ``"dask"``.
    """
    from swnas.scoring.backends import BACKENDS

    if backend != "auto" and backend not in BACKENDS:
        raise InputError(f"backend: unknown backend {backend!r}; choose auto or one of {', '.join(BACKENDS)}")
    _refuse(criterion, params)
    crit = _criterion(criterion)
    if crit.score_dask is not None:  # its own passes over the chunks (PLS-VIP)
        return crit.score_dask(X, y, params, 8)
    res = stream_dask(X, y, criterion, **params).result()
    return dataclasses.replace(res, backend="dask")
