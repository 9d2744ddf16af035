"""il-FS on the ``numba`` backend: class means and token counts in parallel numba loops (one
feature per task), then the reference PLSA EM and closed form (cheap: TT x p numbers)."""

from __future__ import annotations

import numpy as np

from swnas.errors import InputError
from swnas.scoring._arrays import to_numpy
from swnas.scoring.backends import register

__all__ = ["ilfs_numba", "token_counts_numba"]

_KERNEL = None


def _kernel():
    global _KERNEL
    if _KERNEL is None:
        import numba

        big = np.finfo(np.float64).max

        @numba.njit(parallel=True, cache=True)
        def counts_kernel(X, y, nc, tt, counts):
            n, p = X.shape
            ccount = np.zeros(nc)
            for s in range(n):
                ccount[y[s]] += 1.0
            ok = np.ones(p, dtype=np.bool_)
            for f in numba.prange(p):
                mu = np.zeros(nc)
                for s in range(n):
                    mu[y[s]] += X[s, f]
                for c in range(nc):
                    mu[c] /= max(ccount[c], 1.0)
                    if not np.isfinite(mu[c]):
                        ok[f] = False
                if not ok[f]:
                    continue
                for s in range(n):
                    x = np.float64(X[s, f])
                    inv_sum = 0.0
                    nz = 0
                    own = 0.0
                    own_zero = False
                    for c in range(nc):
                        d = (x - mu[c]) * (x - mu[c])
                        inv = 1.0 / d if d > 0.0 else np.inf
                        z = not (inv <= big)
                        if z:
                            inv = 0.0
                            nz += 1
                        inv_sum += inv
                        if c == y[s]:
                            own = inv
                            own_zero = z
                    if nz > 0:
                        pi = 1.0 / nz if own_zero else 0.0
                    else:
                        pi = own / inv_sum
                    t = int(np.floor(pi * tt))
                    t = min(max(t, 0), tt - 1)
                    counts[t, f] += 1
            return ok

        _KERNEL = counts_kernel
    return _KERNEL


def token_counts_numba(X, codes, n_classes: int, TT: int) -> np.ndarray:
    """(TT, p) token counts, as :func:`swnas.scoring.ilfs.token_counts`."""
    Xn = np.ascontiguousarray(to_numpy(X))
    counts = np.zeros((TT, Xn.shape[1]), dtype=np.int64)
    ok = _kernel()(Xn, np.asarray(codes, dtype=np.int64), int(n_classes), int(TT), counts)
    if not np.all(ok):
        raise InputError(f"X: contains NaN or Inf values (in columns {', '.join(map(str, np.flatnonzero(~ok)[:8]))})")
    return counts


def ilfs_numba(X, codes, n_classes, TT: int = 4, max_iter: int = 1000, tol: float = 1e-6) -> np.ndarray:
    from swnas.scoring.ilfs import ilfs_from_relevance, plsa_relevance, with_n_iter

    counts = token_counts_numba(X, codes, n_classes, TT)
    v, _, hist = plsa_relevance(counts, max_iter, tol)
    return with_n_iter(ilfs_from_relevance(v)[0], hist.size)


register("ilfs", "numba")(ilfs_numba)
