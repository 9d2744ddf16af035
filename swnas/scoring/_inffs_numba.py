"""inf-FS on the ``numba`` backend: parallel per-column average ranking and the affinity matrix
in numba; the rank Gram matrix is one BLAS product; lambda_max and the Cholesky solve use LAPACK."""

from __future__ import annotations

import numpy as np

from swnas.scoring._arrays import to_numpy
from swnas.scoring.backends import register

__all__ = ["inffs_numba"]

_KERNELS = None


def _kernels():
    global _KERNELS
    if _KERNELS is None:
        import numba

        @numba.njit(parallel=True, cache=True)
        def transform(X, spearman, Z, std):
            n, p = X.shape
            for j in numba.prange(p):
                col = np.empty(n, dtype=np.float64)
                for i in range(n):
                    col[i] = X[i, j]
                s = 0.0
                lo = col[0]
                hi = col[0]
                for i in range(n):
                    s += col[i]
                    lo = min(lo, col[i])
                    hi = max(hi, col[i])
                mu = s / n
                sq = 0.0
                for i in range(n):
                    sq += (col[i] - mu) * (col[i] - mu)
                finite = np.isfinite(s) and np.isfinite(sq)
                if not finite:
                    std[j] = np.nan
                elif lo == hi:
                    std[j] = 0.0
                else:
                    std[j] = np.sqrt(sq / (n - 1.0))
                if (not finite) or lo == hi:
                    for i in range(n):
                        Z[i, j] = 0.0
                    continue
                if not spearman:
                    for i in range(n):
                        Z[i, j] = col[i] - mu
                    continue
                order = np.argsort(col, kind="mergesort")
                start = 0
                while start < n:
                    end = start + 1
                    v = col[order[start]]
                    while end < n and col[order[end]] == v:
                        end += 1
                    r = 0.5 * (start + end - n)  # centred average rank
                    for k in range(start, end):
                        Z[order[k], j] = r
                    start = end

        @numba.njit(parallel=True, cache=True)
        def affinity(G, std, alpha):
            p = std.shape[0]
            d = np.empty(p)
            for i in range(p):
                d[i] = np.sqrt(max(G[i, i], 0.0))
            lo = std.min()
            hi = std.max()
            rng = hi - lo
            use = rng > 0.0 and np.isfinite(rng)
            A = np.zeros((p, p))
            for i in numba.prange(p):
                si = (std[i] - lo) / rng if use else 0.0
                for j in range(p):
                    if d[i] > 0.0 and d[j] > 0.0:
                        sj = (std[j] - lo) / rng if use else 0.0
                        c = G[i, j] / d[i] / d[j]
                        a = alpha * max(si, sj) + (1.0 - alpha) * (1.0 - abs(c))
                        A[i, j] = a if np.isfinite(a) else 0.0
            return A

        _KERNELS = (transform, affinity)
    return _KERNELS


def inffs_numba(X, codes, n_classes, alpha: float = 0.5, factor: float = 0.9, corr: str = "spearman") -> np.ndarray:
    from swnas.scoring.inffs import check_finite_std
    from swnas.scoring.inffs import inffs_from_affinity

    transform, affinity = _kernels()
    Xn = np.ascontiguousarray(to_numpy(X))
    Z = np.empty(Xn.shape, dtype=np.float64)
    std = np.empty(Xn.shape[1])
    transform(Xn, corr == "spearman", Z, std)
    check_finite_std(std)
    G = Z.T @ Z
    return inffs_from_affinity(affinity(G, std, float(alpha)), float(factor))


register("inffs", "numba")(inffs_numba)
