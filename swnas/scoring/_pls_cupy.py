"""PLS-VIP on the ``cupy`` backend: the passes over X as CuPy reductions and matrix products.

X stays on the GPU (a CuPy array or CUDA torch tensor is viewed zero-copy through
``__cuda_array_interface__``; host data is uploaded once). The standardised X is never formed:
float64 X is multiplied in place; float32 X is read in row blocks cast to float64 (a bounded
workspace of ``_BLOCK_BYTES``), so that columns with a large mean do not cancel in float32. The
statistics are shifted by the first row, as in the compiled backends. CuPy is imported lazily.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from swnas.scoring._arrays import array_info
from swnas.scoring.backends import register

__all__ = ["pls_vip_cupy"]

_BLOCK_BYTES = 256 << 20  # float64 workspace per row block


def _as_cupy(X: Any):
    import cupy as cp

    info = array_info(X)
    if info.kind == "cupy":
        return X
    if info.kind == "torch" and info.device == "cuda":
        return cp.asarray(X.detach())  # zero-copy through __cuda_array_interface__
    from swnas.scoring._arrays import to_numpy

    return cp.asarray(np.ascontiguousarray(to_numpy(X)))


def _row_blocks(n: int, p: int):
    rows = max(1, _BLOCK_BYTES // (8 * p))
    for r0 in range(0, n, rows):
        yield r0, min(n, r0 + rows)


def _block64(X, r0: int, r1: int):
    import cupy as cp

    B = X[r0:r1]
    return B if B.dtype == cp.float64 else B.astype(cp.float64)


def _stats(X, codes, n_classes: int):
    import cupy as cp

    n, p = X.shape
    x0 = X[0].astype(cp.float64)
    cls = cp.zeros((n_classes, p))
    s2 = cp.zeros(p)
    codes_d = cp.asarray(codes)
    for r0, r1 in _row_blocks(n, p):
        D = _block64(X, r0, r1) - x0
        s2 += cp.einsum("ij,ij->j", D, D)
        onehot = cp.zeros((r1 - r0, n_classes))
        onehot[cp.arange(r1 - r0), codes_d[r0:r1]] = 1.0
        cls += onehot.T @ D
        del D, onehot
    counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
    cls_h, s2_h, x0_h = cp.asnumpy(cls), cp.asnumpy(s2), cp.asnumpy(x0)
    s1 = cls_h.sum(axis=0)
    colsum = s1 + n * x0_h
    with np.errstate(invalid="ignore", over="ignore"):
        sq = s2_h - s1 * (s1 / n)
    sq = np.where(np.isfinite(sq), np.maximum(sq, 0.0), sq)
    class_sums = cls_h + counts[:, None] * x0_h[None, :]
    return colsum, sq, class_sums, counts


def _project(X, v: np.ndarray, c: float):
    import cupy as cp

    n, p = X.shape
    v_d = cp.asarray(v)
    g = cp.zeros(p)
    tsum = 0.0
    tt = 0.0
    if X.dtype == cp.float64:
        t = X @ v_d - c
        g = X.T @ t
        return cp.asnumpy(g), float(t.sum()), float(t @ t)
    for r0, r1 in _row_blocks(n, p):
        B = _block64(X, r0, r1)
        t = B @ v_d - c
        g += B.T @ t
        tsum += float(t.sum())
        tt += float(t @ t)
        del B
    return cp.asnumpy(g), tsum, tt


@register("pls", "cupy")
def pls_vip_cupy(X: Any, codes: np.ndarray, n_classes: int, n_components: int = 2, scale: bool = True) -> np.ndarray:
    """PLS-VIP with CuPy passes over X on the GPU."""
    from swnas.scoring._pls_native import PlsAlgebra

    Xc = _as_cupy(X)
    codes = np.ascontiguousarray(codes, dtype=np.int32)
    alg = PlsAlgebra.from_stats(_stats(Xc, codes, int(n_classes)), Xc.shape[0], scale, "X")
    return alg.vip(n_components, lambda v, c: _project(Xc, v, c))
