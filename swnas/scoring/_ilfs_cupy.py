"""il-FS on the ``cupy`` backend (docs/scorers.md, section 4): the token counts run on the device in
row chunks written against an array module ``xp`` (CuPy on the GPU; NumPy or a NumPy stand-in for
CuPy in the tests); the tiny PLSA EM runs on the host (reference code).

Chunks are sized in bytes: the largest intermediate is the (rows x C x p) float64 distance block,
kept within :data:`CHUNK_BYTES`, with a floor of :data:`MIN_CHUNK_ROWS` rows so that wide problems
(p = 2048, C = 1000) do not fall to a handful of rows per chunk and ~10^5 Python iterations.
"""

from __future__ import annotations

import numpy as np

from swnas.errors import InputError
from swnas.scoring._cupy_util import as_cupy, cupy, on_device_of, to_host
from swnas.scoring.backends import register

__all__ = ["CHUNK_BYTES", "MIN_CHUNK_ROWS", "chunk_rows", "token_counts_xp", "ilfs_xp", "ilfs_cupy"]

#: bytes of the largest per-chunk intermediate (the float64 rows x C x p distance block)
CHUNK_BYTES = 512 << 20
#: fewest rows per chunk, whatever p and C
MIN_CHUNK_ROWS = 32


def chunk_rows(p: int, n_classes: int, budget: int | None = None) -> int:
    """Rows per chunk: the (rows x C x p) float64 distance block within ``budget`` bytes, but never
    fewer than :data:`MIN_CHUNK_ROWS` rows (each chunk costs ~20 kernel launches)."""
    budget = CHUNK_BYTES if budget is None else budget
    return max(MIN_CHUNK_ROWS, budget // (8 * max(1, p * n_classes)))


def token_counts_xp(xp, X, codes, n_classes: int, TT: int, budget: int | None = None):
    """(TT, p) token counts on the device; the arithmetic of :func:`swnas.scoring.ilfs.token_counts`."""
    n, p = X.shape
    y = xp.asarray(codes, dtype=xp.int64)
    cnt = xp.bincount(y, minlength=n_classes).astype(xp.float64)
    sums = xp.zeros((n_classes, p))
    rows = chunk_rows(p, n_classes, budget)
    for i in range(0, n, rows):
        Xi = X[i : i + rows].astype(xp.float64)
        oh = xp.zeros((Xi.shape[0], n_classes))
        oh[xp.arange(Xi.shape[0]), y[i : i + rows]] = 1.0
        sums += oh.T @ Xi
    mu = sums / xp.maximum(cnt, 1.0)[:, None]
    if not bool(xp.all(xp.isfinite(mu))):
        raise InputError("X: contains NaN or Inf values")
    counts = xp.zeros(TT * p, dtype=xp.int64)
    big = np.finfo(np.float64).max
    fidx = xp.arange(p)
    for i in range(0, n, rows):
        Xi = X[i : i + rows].astype(xp.float64)
        ci = y[i : i + rows]
        d = (Xi[:, None, :] - mu[None, :, :]) ** 2
        if xp is np:
            with np.errstate(divide="ignore", over="ignore"):
                inv = 1.0 / d
        else:
            inv = 1.0 / d
        zero = ~(inv <= big)
        inv = xp.where(zero, 0.0, inv)
        nzero = zero.sum(axis=1)
        b = xp.arange(Xi.shape[0])
        own_inv = inv[b, ci, :]
        own_zero = zero[b, ci, :]
        tot = inv.sum(axis=1)
        pi = own_inv / xp.where(tot > 0, tot, 1.0)
        pi = xp.where(nzero > 0, xp.where(own_zero, 1.0 / xp.maximum(nzero, 1), 0.0), pi)
        t = xp.minimum(xp.floor(pi * TT), TT - 1).astype(xp.int64)
        counts += xp.bincount((t * p + fidx[None, :]).ravel(), minlength=TT * p)
    return counts.reshape(TT, p)


def ilfs_xp(xp, X, codes, n_classes, TT: int = 4, max_iter: int = 1000, tol: float = 1e-6):
    from swnas.scoring.ilfs import ilfs_from_relevance, plsa_relevance, with_n_iter

    counts = to_host(token_counts_xp(xp, X, codes, n_classes, TT))
    v, _, hist = plsa_relevance(counts, max_iter, tol)
    return with_n_iter(ilfs_from_relevance(v)[0], hist.size)


@register("ilfs", "cupy")
def ilfs_cupy(X, codes, n_classes, TT: int = 4, max_iter: int = 1000, tol: float = 1e-6):
    """il-FS with the token counts computed by CuPy on the GPU that holds X."""
    Xc = as_cupy(X)
    with on_device_of(Xc):
        return ilfs_xp(cupy(), Xc, codes, n_classes, TT, max_iter, tol)
