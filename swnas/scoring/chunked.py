"""PLS-VIP over row chunks that can be read again: the in-memory passes, one chunk at a time.

A feature file too large for memory (a memory-mapped ``.npy``, an HDF5 or Zarr dataset) can be
read more than once, so it needs neither the single-pass Gram form of
:class:`~swnas.scoring.streaming.StreamingScorer` (O(N p^2) work, a p x p matrix) nor Dask. The
scorer here runs the in-memory algorithm of :mod:`swnas.scoring.pls` pass by pass (docs/scale.md):
one statistics pass (column moments and class sums per chunk, combined with the parallel
mean/variance formula), then one pass per component, each chunk through the same compiled kernel
as the ``cpp`` backend. X is read 1 + A times, memory is one chunk plus O(p C), and the result
equals the in-memory score to rounding. The per-chunk functions are shared with
:mod:`swnas.scoring.dask`, which runs them on workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from swnas.errors import BackendUnavailableError, InputError
from swnas.scoring._pls_algebra import PlsAlgebra
from swnas.scoring.registry import ScoreResult, _criterion

__all__ = ["score_pls_chunks", "chunk_moments", "combine_moments", "chunk_project", "sum_projections"]

#: ``(rows, column means, centred sums of squares, class sums (C, p), class counts)``
Moments = tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def compiled_core() -> Any:
    """The compiled core (per-chunk passes at the in-memory ``cpp`` speed), or None if not built."""
    from swnas.scoring.backends import core

    try:
        return core()
    except BackendUnavailableError:
        return None


def host_chunk(xb: Any) -> np.ndarray:
    """A chunk as a C-contiguous float32/float64 NumPy matrix (a memory-mapped slice is not copied)."""
    from swnas.scoring._arrays import as_float_matrix

    x, _ = as_float_matrix(np.asarray(xb), "X")
    return np.ascontiguousarray(x)


def chunk_moments(xb: Any, codes: np.ndarray, n_classes: int, compiled: bool = True) -> Moments:
    """One chunk's rows, column means, centred sums of squares, class sums and class counts."""
    x = host_chunk(xb)
    codes = np.ascontiguousarray(codes, dtype=np.int32)
    b, p = x.shape
    if b == 0:
        return 0, np.zeros(p), np.zeros(p), np.zeros((n_classes, p)), np.zeros(n_classes)
    mod = compiled_core() if compiled else None
    if mod is not None:  # one fused pass: column sums, centred squares, class sums, counts
        colsum, sq, cs, counts = (np.asarray(a, dtype=np.float64) for a in mod.pls_stats(x, codes, n_classes))
        return b, colsum / b, sq, cs, counts
    x = x.astype(np.float64)  # one float64 working copy of the chunk, centred in place
    mean = x.mean(axis=0)
    with np.errstate(over="ignore", invalid="ignore"):
        x -= mean
        m2 = np.einsum("ij,ij->j", x, x)
    counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
    # rows grouped by class once, each class's run summed by one reduceat (np.add.at goes element
    # by element; a one-hot product would be a C x b matrix)
    order = np.argsort(codes, kind="stable")
    present = np.flatnonzero(counts)
    starts = np.concatenate(([0], np.cumsum(counts[present])[:-1])).astype(np.intp)
    cs = np.zeros((n_classes, p))
    cs[present] = np.add.reduceat(x[order], starts, axis=0)
    # class sums of the centred rows (no cancellation), shifted back by the chunk mean
    return b, mean, m2, cs + counts[:, None] * mean[None, :], counts


def combine_moments(*parts: Moments) -> Moments:
    """The moments of the union of row sets (Chan et al.'s parallel mean/variance formula)."""
    n, mean, m2, cs, cnt = parts[0]
    for nb, mb, m2b, csb, cntb in parts[1:]:
        if nb == 0:
            continue
        if n == 0:
            n, mean, m2, cs, cnt = nb, mb, m2b, csb, cntb
            continue
        tot = n + nb
        with np.errstate(over="ignore", invalid="ignore"):
            d = mb - mean
            mean = mean + d * (nb / tot)
            m2 = m2 + m2b + d * d * (n * nb / tot)
        cs, cnt, n = cs + csb, cnt + cntb, tot
    return n, mean, m2, cs, cnt


def chunk_project(xb: Any, v: np.ndarray, c: float, loading: bool = True, compiled: bool = True) -> tuple:
    """One chunk's part of a projection pass: with ``t = X v - c``, ``(X't or None, sum(t), t't)``."""
    x = host_chunk(xb)
    if x.shape[0] == 0:
        return (np.zeros(x.shape[1]) if loading else None), 0.0, 0.0
    mod = compiled_core() if compiled else None
    if mod is not None:
        g, tsum, tt = mod.pls_project(x, np.ascontiguousarray(v, dtype=np.float64), float(c), loading=loading)
        return (np.asarray(g, dtype=np.float64) if loading else None), float(tsum), float(tt)
    t = x.astype(np.float64) @ v - c
    return (x.T.astype(np.float64) @ t if loading else None), float(t.sum()), float(t @ t)


def sum_projections(*parts: tuple) -> tuple:
    """Element-wise sums of chunk projections ``(g or None, sum(t), t't)``."""
    g = None if parts[0][0] is None else sum(p[0] for p in parts)
    return g, sum(p[1] for p in parts), sum(p[2] for p in parts)


def vip_from_moments(
    moments: Moments,
    params: dict,
    project_raw: Callable[[np.ndarray, float, bool], tuple],
    name: str = "X",
    compiled: bool = True,
) -> np.ndarray:
    """Kernel PLS from combined moments and a chunked projection ``project_raw(v, c, loading)``."""
    from swnas.scoring._threads import blas_single_thread

    n, mean, m2, class_sums, counts = moments
    alg = PlsAlgebra.from_stats((mean * n, m2, class_sums, counts), n, params["scale"], name)
    mod = compiled_core() if compiled else None
    gram = mod.pls_gram_matvec if mod is not None else None
    with blas_single_thread():  # the algebra's products must not wake BLAS threads (_threads.py)
        return alg.vip(
            params["n_components"],
            lambda v, c: project_raw(v, c, True),
            lambda v, c: project_raw(v, c, False),
            gram,
        )


def _reader(chunks: Any) -> Callable[[], Iterator[Any]]:
    if callable(chunks):
        return lambda: iter(chunks())
    if isinstance(chunks, Iterator):
        raise InputError(
            "chunks: an iterator or generator can be read only once and PLS-VIP reads the chunks "
            "1 + n_components times; pass a function that returns a fresh iterator, or a list of "
            "arrays (for a single pass use swnas.scoring.streaming.StreamingScorer)"
        )
    if not isinstance(chunks, Iterable):
        raise InputError(
            f"chunks: expected a list of row blocks or a function returning them, got {type(chunks).__name__}"
        )
    return lambda: iter(chunks)


def score_pls_chunks(chunks: Any, y: Any, *, compiled: bool = True, **params: Any) -> ScoreResult:
    """PLS-VIP of the rows of ``chunks`` (read 1 + n_components times) with labels ``y``.

    Parameters
    ----------
    chunks : list of arrays, or callable
        The row blocks of X in order (2-D, the same columns; NumPy arrays, memory-mapped slices or
        anything ``numpy.asarray`` reads), or a function that returns a fresh iterable of them on
        each call. A one-shot iterator is refused: the passes read the chunks again.
    y : array-like
        One class label per row of X, all of them (labels are small; the features are not).
    compiled : bool
        Use the compiled core's passes when it is built (default); False runs NumPy per chunk.
    **params
        PLS-VIP parameters (``n_components``, ``scale``), as for :func:`swnas.scoring.score`.

    Returns
    -------
    ScoreResult
        ``backend`` reads ``"chunks"``.

    Examples
    --------
    >>> X = np.load("features.npy", mmap_mode="r")                     # doctest: +SKIP
    >>> blocks = [X[i : i + 65536] for i in range(0, len(X), 65536)]   # doctest: +SKIP
    >>> score_pls_chunks(blocks, y).features                           # doctest: +SKIP
    """
    from swnas.scoring._arrays import class_labels, encode_labels

    read = _reader(chunks)
    labels = class_labels(y, "y")
    codes, classes = encode_labels(labels, labels.shape[0], "y")
    n_classes = int(classes.size)
    crit = _criterion("pls")

    rows: list[tuple[int, int]] = []  # (start, stop) of every chunk, checked again on each pass
    parts: Moments | None = None
    p = None
    for i, xb in enumerate(read()):
        shape = np.shape(xb)
        if len(shape) != 2:
            raise InputError(f"chunks[{i}]: expected a 2-D block of rows, got shape {shape}")
        if p is None:
            p = shape[1]
        elif shape[1] != p:
            raise InputError(f"chunks[{i}]: has {shape[1]} columns but chunks[0] has {p}; every block needs the same")
        start = rows[-1][1] if rows else 0
        stop = start + shape[0]
        if stop > codes.shape[0]:
            raise InputError(f"chunks: hold more rows than y has labels ({codes.shape[0]})")
        rows.append((start, stop))
        m = chunk_moments(xb, codes[start:stop], n_classes, compiled)
        parts = m if parts is None else combine_moments(parts, m)
    n = rows[-1][1] if rows else 0
    if parts is None or p is None or n == 0:
        raise InputError("chunks: no rows to score")
    if n != codes.shape[0]:
        raise InputError(f"chunks: hold {n} rows but y has {codes.shape[0]} labels; they must agree")
    if n < crit.min_samples(params):
        raise InputError(f"X: has {n} samples; this criterion needs at least {crit.min_samples(params)}")
    full = crit.check(dict(params), n, p, n_classes)

    def project_raw(v: np.ndarray, c: float, loading: bool) -> tuple:
        total = None
        seen = 0
        for xb in read():
            part = chunk_project(xb, v, c, loading, compiled)
            seen += int(np.shape(xb)[0])
            total = part if total is None else sum_projections(total, part)
        if seen != n:
            raise InputError(f"chunks: a later pass read {seen} rows, the first {n}; the source must not change")
        assert total is not None
        return total

    feats = vip_from_moments(parts, full, project_raw, "X", compiled)
    return ScoreResult(features=feats, stage=float(feats.mean()), criterion="pls", backend="chunks", params=full)
