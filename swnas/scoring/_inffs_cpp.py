"""inf-FS on the ``cpp`` backend (``swnas._core``; docs/scorers.md, section 3).

The C++ kernel ranks every column (parallel LSD radix sort, average ranks for ties) and returns
the centred ranks in the input's precision plus the column std (float32 spearman: transposed,
p x n, one contiguous row per column, written straight from the sort); the rank Gram matrix Z'Z is
one BLAS ``?syrk``/``?gemm`` through NumPy (OpenBLAS beats a hand-written kernel on this CPU;
float32 ranks are exact up to 2^24 rows); the C++ kernel then builds A, finds lambda_max by Lanczos
and solves (I - rA) x = 1 with a blocked Cholesky. A batch is a loop over the problems (each
problem already uses every thread).
"""
from __future__ import annotations

import numpy as np

from swnas.scoring._arrays import to_numpy
from swnas.scoring.backends import core, register
from swnas.scoring.inffs import check_finite_std

__all__ = ["rank_gram_cpp", "inffs_cpp", "inffs_cpp_many"]


def rank_gram_cpp(X, corr: str = "spearman") -> tuple[np.ndarray, np.ndarray]:
    """Gram matrix of the centred ranks (or centred values) of X, and the column std (float64)."""
    mod = core()
    Xn = np.ascontiguousarray(to_numpy(X))
    if Xn.dtype == np.float32 and corr == "spearman" and Xn.ndim == 2 and Xn.shape[0] >= 2 and Xn.shape[1] >= 1:
        # ranks come back transposed (p x n): each column's ranks are one contiguous row
        Zt, std = mod.inffs_transform_t_f32(Xn)
        check_finite_std(std)
        return Zt @ Zt.T, std  # NumPy hands a self-product with its transpose to BLAS syrk
    Z, std = mod.inffs_transform(Xn, corr == "spearman")
    check_finite_std(std)
    G = Z.T @ Z  # NumPy hands a transposed self-product to BLAS syrk
    return G, std


def inffs_cpp(X, codes, n_classes, alpha: float = 0.5, factor: float = 0.9, corr: str = "spearman") -> np.ndarray:
    mod = core()
    G, std = rank_gram_cpp(X, corr)
    return mod.inffs_solve(np.ascontiguousarray(G), std, float(alpha), float(factor))


def inffs_cpp_many(problems, alpha: float = 0.5, factor: float = 0.9, corr: str = "spearman") -> list:
    return [inffs_cpp(X, c, k, alpha, factor, corr) for X, c, k in problems]


register("inffs", "cpp")(inffs_cpp)
register("inffs", "cpp", batched=True)(inffs_cpp_many)
