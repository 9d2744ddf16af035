"""PLS-VIP on the ``cupy`` backend: the passes over X as CuPy reductions and matrix products.

X stays on its GPU (a CuPy array, or a CUDA torch tensor viewed zero-copy through DLPack; host data
is uploaded once), and that GPU is made current while scoring. The standardised X is never formed
(docs/scorers.md, section 1): float64 X is multiplied in place; float32 X is read in row blocks
cast to float64, so that columns with a large mean do not cancel in float32. The statistics are
shifted by the first row (docs/scorers.md, section 2), as in the compiled backends. Row blocks
are sized so that the float64 block *and* its one-hot label block together stay within
``_BLOCK_BYTES`` for any number of classes. CuPy is imported lazily.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from swnas.scoring._cupy_util import as_cupy, cupy, on_device_of
from swnas.scoring._host import host_codes
from swnas.scoring._pls_algebra import PlsAlgebra, ShiftedSums
from swnas.scoring.backends import register

__all__ = ["pls_vip_cupy", "block_rows"]

_BLOCK_BYTES = 256 << 20  # float64 workspace per row block (data block + one-hot block)


def block_rows(p: int, n_classes: int = 0, budget: int | None = None) -> int:
    """Rows per block so that a float64 (rows x p) block plus its (rows x C) one-hot fit ``budget``
    bytes (default ``_BLOCK_BYTES``)."""
    budget = _BLOCK_BYTES if budget is None else budget
    return max(1, budget // (8 * (p + n_classes)))


def _row_blocks(n: int, rows: int) -> Iterator[tuple[int, int]]:
    for r0 in range(0, n, rows):
        yield r0, min(n, r0 + rows)


def _block64(X, r0: int, r1: int):
    cp = cupy()
    B = X[r0:r1]
    return B if B.dtype == cp.float64 else B.astype(cp.float64)


def _stats(X, codes: np.ndarray, n_classes: int):
    cp = cupy()
    n, p = X.shape
    x0 = X[0].astype(cp.float64)
    cls = cp.zeros((n_classes, p))
    s2 = cp.zeros(p)
    codes_d = cp.asarray(codes)
    for r0, r1 in _row_blocks(n, block_rows(p, n_classes)):
        D = _block64(X, r0, r1) - x0
        s2 += cp.einsum("ij,ij->j", D, D)
        onehot = cp.zeros((r1 - r0, n_classes))
        onehot[cp.arange(r1 - r0), codes_d[r0:r1]] = 1.0
        cls += onehot.T @ D
        del D, onehot
    counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
    cls_h = cp.asnumpy(cls)
    sums = ShiftedSums(n, cp.asnumpy(x0), cls_h.sum(axis=0), cp.asnumpy(s2), cls_h, counts)
    return sums.pls_stats()


def _project(X, v: np.ndarray, c: float, loading: bool = True):
    """``(X't, sum(t), t't)`` with ``t = X v - c``; without ``loading`` X't is skipped (None)."""
    cp = cupy()
    n, p = X.shape
    v_d = cp.asarray(v)
    if X.dtype == cp.float64:
        t = X @ v_d - c
        g = cp.asnumpy(X.T @ t) if loading else None
        return g, float(t.sum()), float(t @ t)
    g = cp.zeros(p) if loading else None
    tsum = 0.0
    tt = 0.0
    for r0, r1 in _row_blocks(n, block_rows(p)):
        B = _block64(X, r0, r1)
        t = B @ v_d - c
        if loading:
            g += B.T @ t
        tsum += float(t.sum())
        tt += float(t @ t)
        del B
    return (cp.asnumpy(g) if loading else None), tsum, tt


@register("pls", "cupy")
def pls_vip_cupy(X: Any, codes: np.ndarray, n_classes: int, n_components: int = 2, scale: bool = True) -> np.ndarray:
    """PLS-VIP with CuPy passes over X on the GPU that holds it."""
    Xc = as_cupy(X)
    codes = host_codes(codes)
    with on_device_of(Xc):
        alg = PlsAlgebra.from_stats(_stats(Xc, codes, int(n_classes)), Xc.shape[0], scale, "X")
        return alg.vip(n_components, lambda v, c: _project(Xc, v, c), lambda v, c: _project(Xc, v, c, loading=False))
