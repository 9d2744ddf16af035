"""inf-FS on the ``cupy`` backend: the NumPy reference's algorithm (docs/scorers.md, section 3)
written against an array module ``xp`` (CuPy on the GPU; the tests run the identical code with
NumPy and with a NumPy stand-in for CuPy).

Columns are ranked in chunks (one batched ``argsort`` per chunk, ties averaged with a
cumulative-sum group index), the rank Gram matrix is accumulated from float64 row-chunk products
(cuBLAS DGEMM on chunks cast from the input precision), and ``eigvalsh`` + Cholesky + two triangular solves run
on the device.
"""

from __future__ import annotations

import numpy as np

from swnas.errors import InputError
from swnas.scoring._cupy_util import as_cupy, cupy, on_device_of
from swnas.scoring.backends import register

__all__ = ["centred_ranks_xp", "rank_gram_xp", "solve_xp", "inffs_xp", "inffs_cupy"]


def centred_ranks_xp(xp, X, chunk_elems: int = 1 << 25):
    """(p, n) centred average ranks of the columns of X (n, p), in X's floating precision."""
    n, p = X.shape
    out = xp.empty((p, n), dtype=X.dtype)
    cb = max(1, min(p, chunk_elems // max(n, 1)))
    for j0 in range(0, p, cb):
        Xt = xp.ascontiguousarray(X[:, j0 : j0 + cb].T)  # (b, n)
        Xt = xp.where(Xt == 0, xp.zeros((), dtype=Xt.dtype), Xt)  # -0.0 ties with +0.0
        b = Xt.shape[0]
        order = xp.argsort(Xt, axis=1)
        s = xp.take_along_axis(Xt, order, axis=1).ravel()
        total = b * n
        new = xp.ones(total, dtype=bool)
        new[1:] = s[1:] != s[:-1]
        new[::n] = True  # every column starts a group
        gid = xp.cumsum(new) - 1
        starts = xp.flatnonzero(new)
        ends = xp.concatenate([starts[1:], xp.asarray([total], dtype=starts.dtype)])
        seg = (starts // n) * n
        avg = 0.5 * ((starts - seg) + (ends - seg) - n)  # centred average rank of each group
        ranks = avg[gid].reshape(b, n).astype(X.dtype)
        rows = xp.arange(b)[:, None]
        blk = xp.empty((b, n), dtype=X.dtype)
        blk[rows, order] = ranks
        out[j0 : j0 + b] = blk
    return out


def rank_gram_xp(xp, X, corr: str = "spearman", rows: int = 8192):
    """float64 Gram matrix of the centred ranks (or values) of X, and the ddof=1 column std."""
    n, p = X.shape
    mu = X.mean(axis=0, dtype=xp.float64)
    sq = xp.zeros(p)
    for i in range(0, n, rows):
        d = X[i : i + rows].astype(xp.float64) - mu
        sq += (d * d).sum(axis=0)
    if not bool(xp.all(xp.isfinite(mu)) & xp.all(xp.isfinite(sq))):
        bad = np.flatnonzero(~np.isfinite(_host(xp, mu + sq)))
        raise InputError(f"X: contains NaN or Inf values (in columns {', '.join(map(str, bad[:8]))})")
    const = X.max(axis=0) == X.min(axis=0)
    std = xp.sqrt(sq / (n - 1.0))
    std[const] = 0.0
    if corr == "spearman":
        Zt = centred_ranks_xp(xp, X)
    else:
        Zt = xp.ascontiguousarray((X - mu.astype(X.dtype)).T)
        Zt[const] = 0
    G = xp.zeros((p, p))
    for i in range(0, n, rows):
        # float64 GEMM: a float32 product would sum each chunk's rows in float32, and tied ranks
        # (the zeros of ReLU features) repeat one product so often that rounding builds a bias
        # (docs/backends.md, "Precision of the GPU Gram matrix")
        Zk = Zt[:, i : i + rows].astype(xp.float64)
        G += Zk @ Zk.T
    return G, std


def _host(xp, a):
    return a.get() if hasattr(a, "get") and xp is not np else np.asarray(a)


def _solve_triangular(xp, L, b, lower: bool, trans: bool):
    if xp is np:
        import scipy.linalg

        return scipy.linalg.solve_triangular(L, b, lower=lower, trans="T" if trans else "N")
    from cupyx.scipy.linalg import solve_triangular

    return solve_triangular(L, b, lower=lower, trans="T" if trans else "N")


def solve_xp(xp, G, std, alpha: float, factor: float):
    """inf-FS scores (host float64) from the Gram matrix of centred columns and the column std."""
    p = std.shape[0]
    d = xp.sqrt(xp.maximum(xp.diagonal(G), 0.0))
    lo, hi = float(std.min()), float(std.max())
    if hi > lo and np.isfinite(hi - lo):
        s = (std - lo) / (hi - lo)
        sigma = xp.maximum(s[:, None], s[None, :])
    else:
        sigma = xp.zeros((p, p))
    if xp is np:
        with np.errstate(divide="ignore", invalid="ignore"):
            C = G / d[:, None] / d[None, :]
            A = alpha * sigma + (1.0 - alpha) * (1.0 - np.abs(C))
    else:  # the GPU raises no floating-point warnings
        C = G / d[:, None] / d[None, :]
        A = alpha * sigma + (1.0 - alpha) * (1.0 - xp.abs(C))
    A = xp.where(xp.isfinite(A), A, 0.0)
    lam = float(xp.linalg.eigvalsh(A)[-1])
    if not lam > 0.0:
        return np.zeros(p)
    M = -(factor / lam) * A
    M[xp.arange(p), xp.arange(p)] += 1.0
    L = xp.linalg.cholesky(M)
    yv = _solve_triangular(xp, L, xp.ones(p), lower=True, trans=False)
    x = _solve_triangular(xp, L, yv, lower=True, trans=True)
    return _host(xp, x) - 1.0


def inffs_xp(xp, X, alpha: float = 0.5, factor: float = 0.9, corr: str = "spearman"):
    G, std = rank_gram_xp(xp, X, corr)
    return solve_xp(xp, G, std, alpha, factor)


@register("inffs", "cupy")
def inffs_cupy(X, codes, n_classes, alpha: float = 0.5, factor: float = 0.9, corr: str = "spearman"):
    """inf-FS with CuPy on the GPU that holds X (labels unused: inf-FS is unsupervised)."""
    Xc = as_cupy(X)
    with on_device_of(Xc):
        return inffs_xp(cupy(), Xc, alpha, factor, corr)
