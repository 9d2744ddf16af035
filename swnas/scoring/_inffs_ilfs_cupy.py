"""inf-FS and il-FS on the ``cupy`` backend: the same algorithms as the NumPy reference written
against an array module ``xp`` (CuPy on the GPU; the tests run the identical code with NumPy).

inf-FS: columns are ranked in chunks (one batched ``argsort`` per chunk, ties averaged with a
cumulative-sum group index), the rank Gram matrix is accumulated in float64 from row-chunk
products in the input precision (cuBLAS), and ``eigvalsh`` + Cholesky + two triangular solves run
on the device. il-FS: the token counts run on the device in row chunks; the tiny PLSA EM runs on
the host (reference code).
"""
from __future__ import annotations

import numpy as np

from swnas.errors import InputError
from swnas.scoring.backends import register

__all__ = ["centred_ranks_xp", "rank_gram_xp", "solve_xp", "inffs_xp", "inffs_cupy", "ilfs_cupy"]


def _cupy():
    import cupy

    return cupy


def _as_cupy(X):
    cp = _cupy()
    if isinstance(X, cp.ndarray):
        return X
    if type(X).__module__.startswith("torch"):
        t = X.detach()
        return cp.from_dlpack(t.contiguous()) if t.is_cuda else cp.asarray(t.numpy())
    return cp.asarray(X)


def centred_ranks_xp(xp, X, chunk_elems: int = 1 << 25):
    """(p, n) centred average ranks of the columns of X (n, p), in X's floating precision."""
    n, p = X.shape
    out = xp.empty((p, n), dtype=X.dtype)
    cb = max(1, min(p, chunk_elems // max(n, 1)))
    for j0 in range(0, p, cb):
        Xt = xp.ascontiguousarray(X[:, j0:j0 + cb].T)  # (b, n)
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
        out[j0:j0 + b] = blk
    return out


def rank_gram_xp(xp, X, corr: str = "spearman", rows: int = 8192):
    """float64 Gram matrix of the centred ranks (or values) of X, and the ddof=1 column std."""
    n, p = X.shape
    mu = X.mean(axis=0, dtype=xp.float64)
    sq = xp.zeros(p)
    for i in range(0, n, rows):
        d = X[i:i + rows].astype(xp.float64) - mu
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
        Zk = Zt[:, i:i + rows]
        G += (Zk @ Zk.T).astype(xp.float64)
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


def inffs_cupy(X, codes, n_classes, alpha: float = 0.5, factor: float = 0.9, corr: str = "spearman"):
    cp = _cupy()
    Xc = _as_cupy(X)
    with cp.cuda.Device(Xc.device.id):
        return inffs_xp(cp, Xc, alpha, factor, corr)


def token_counts_xp(xp, X, codes, n_classes: int, TT: int, budget: int = 1 << 24):
    """(TT, p) token counts on the device; the arithmetic of :func:`swnas.scoring.ilfs.token_counts`."""
    n, p = X.shape
    y = xp.asarray(codes, dtype=xp.int64)
    cnt = xp.bincount(y, minlength=n_classes).astype(xp.float64)
    sums = xp.zeros((n_classes, p))
    rows = max(1, budget // max(1, p * n_classes))
    for i in range(0, n, rows):
        Xi = X[i:i + rows].astype(xp.float64)
        oh = xp.zeros((Xi.shape[0], n_classes))
        oh[xp.arange(Xi.shape[0]), y[i:i + rows]] = 1.0
        sums += oh.T @ Xi
    mu = sums / xp.maximum(cnt, 1.0)[:, None]
    if not bool(xp.all(xp.isfinite(mu))):
        raise InputError("X: contains NaN or Inf values")
    counts = xp.zeros(TT * p, dtype=xp.int64)
    big = np.finfo(np.float64).max
    fidx = xp.arange(p)
    for i in range(0, n, rows):
        Xi = X[i:i + rows].astype(xp.float64)
        ci = y[i:i + rows]
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
    from swnas.scoring.ilfs import ilfs_from_relevance, plsa_relevance

    counts = _host(xp, token_counts_xp(xp, X, codes, n_classes, TT))
    v, _, _ = plsa_relevance(counts, max_iter, tol)
    return ilfs_from_relevance(v)[0]


def ilfs_cupy(X, codes, n_classes, TT: int = 4, max_iter: int = 1000, tol: float = 1e-6):
    cp = _cupy()
    Xc = _as_cupy(X)
    with cp.cuda.Device(Xc.device.id):
        return ilfs_xp(cp, Xc, codes, n_classes, TT, max_iter, tol)


register("inffs", "cupy")(inffs_cupy)
register("ilfs", "cupy")(ilfs_cupy)
