"""PLS-VIP on the ``numba`` backend: the passes over X as parallel ``@njit`` functions.

Same scheme as the C++ core (:mod:`swnas.scoring._pls_cpp`, docs/scorers.md section 1): one
statistics pass shifted by the first row and accumulated in float64, then per component one fused
pass (``t = X v - c`` and ``X't`` over the same rows; the last component's pass takes only ``t``);
the kernel-PLS algebra is the shared NumPy code. Rows are split into a fixed number of groups
summed in order, so results do not depend on the thread count.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from swnas.scoring._host import host_codes, host_matrix
from swnas.scoring._pls_algebra import PlsAlgebra, ShiftedSums
from swnas.scoring._threads import blas_single_thread
from swnas.scoring.backends import register

__all__ = ["pls_vip_numba", "pls_stats_numba", "pls_project_numba"]

_MAX_GROUPS = 16
_ACC_BUDGET = 64 << 20  # bytes of per-group accumulators at most


def _n_groups(n: int, acc_bytes: int) -> int:
    k = min(_MAX_GROUPS, max(1, n // 64))
    return max(1, min(k, _ACC_BUDGET // max(acc_bytes, 1)))


_kernels: dict[str, Any] = {}


def _compiled() -> dict[str, Any]:
    """Compile (or load from numba's cache) the kernels on first use."""
    if _kernels:
        return _kernels
    import numba
    from numba import njit, prange

    @njit(parallel=True, cache=True)
    def stats_groups(X, codes, n_classes, n_groups):  # pragma: no cover - compiled
        n, p = X.shape
        x0 = np.empty(p)
        for j in range(p):
            x0[j] = X[0, j]
        cls = np.zeros((n_groups, n_classes, p))
        s2 = np.zeros((n_groups, p))
        counts = np.zeros((n_groups, n_classes))
        for g in prange(n_groups):
            r0 = n * g // n_groups
            r1 = n * (g + 1) // n_groups
            for i in range(r0, r1):
                c = codes[i]
                counts[g, c] += 1.0
                for j in range(p):
                    d = np.float64(X[i, j]) - x0[j]
                    cls[g, c, j] += d
                    s2[g, j] += d * d
        return x0, cls, s2, counts

    @njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
    def project_groups(X, v, c, n_groups, loading):  # pragma: no cover - compiled
        n, p = X.shape
        g = np.zeros((n_groups, p if loading else 0))
        tsum = np.zeros(n_groups)
        tt = np.zeros(n_groups)
        for k in prange(n_groups):
            r0 = n * k // n_groups
            r1 = n * (k + 1) // n_groups
            for i in range(r0, r1):
                a = 0.0
                for j in range(p):
                    a += np.float64(X[i, j]) * v[j]
                t = a - c
                tsum[k] += t
                tt[k] += t * t
                if loading:  # without it (the last component) only the dot products
                    for j in range(p):
                        g[k, j] += t * np.float64(X[i, j])
        return g, tsum, tt

    _kernels.update(stats=stats_groups, project=project_groups, version=numba.__version__)
    return _kernels


def pls_stats_numba(X: np.ndarray, codes: np.ndarray, n_classes: int):
    """``(colsum, centred sum of squares, class_sums (C, p), counts)`` in one parallel pass."""
    n, p = X.shape
    k = _n_groups(n, (n_classes + 1) * p * 8)
    x0, cls, s2, counts = _compiled()["stats"](X, codes, np.int64(n_classes), np.int64(k))
    cls_sh = cls.sum(axis=0)
    return ShiftedSums(n, x0, cls_sh.sum(axis=0), s2.sum(axis=0), cls_sh, counts.sum(axis=0)).pls_stats()


def pls_project_numba(X: np.ndarray, v: np.ndarray, c: float, loading: bool = True):
    """With ``t = X v - c``: ``(X't, sum(t), t't)`` in one fused parallel pass.

    ``loading=False`` takes only the dot products (X't is returned as None): the last component.
    """
    n, p = X.shape
    g, tsum, tt = _compiled()["project"](X, v, float(c), np.int64(_n_groups(n, p * 8)), bool(loading))
    return (g.sum(axis=0) if loading else None), float(tsum.sum()), float(tt.sum())


@register("pls", "numba")
def pls_vip_numba(X: Any, codes: np.ndarray, n_classes: int, n_components: int = 2, scale: bool = True) -> np.ndarray:
    """PLS-VIP with numba-compiled passes (float32 or float64 X, read in place when C-contiguous)."""
    A = host_matrix(X)
    codes = host_codes(codes)
    with blas_single_thread():  # the algebra's tiny products must not wake BLAS threads (_threads.py)
        alg = PlsAlgebra.from_stats(pls_stats_numba(A, codes, int(n_classes)), A.shape[0], scale, "X")
        return alg.vip(
            n_components,
            lambda v, c: pls_project_numba(A, v, c),
            lambda v, c: pls_project_numba(A, v, c, loading=False),
        )
