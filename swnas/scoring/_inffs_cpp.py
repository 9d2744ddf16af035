"""inf-FS on the ``cpp`` backend (``swnas._core``; docs/scorers.md, section 3).

The C++ kernel ranks every column (parallel LSD radix sort, average ranks for ties) and returns
the centred ranks in the input's precision plus the column std (float32 spearman: transposed,
p x n, one contiguous row per column, written straight from the sort); the rank Gram matrix Z'Z is
BLAS ``?syrk`` through NumPy (OpenBLAS beats a hand-written kernel on this CPU; float32 ranks are
exact up to 2^24 rows). For float32 Z it is summed in tiles of :data:`GRAM_TILE_ROWS` rows: each
tile's product in float32 by BLAS, the tiles added in float64 (:func:`tiled_gram`), so the float32
rounding does not grow with N (one float32 product over 1.28 M rows adds ~3,000 BLAS blocks into
float32 sums). The C++ kernel then builds A, finds lambda_max by Lanczos and solves
(I - rA) x = 1 with a blocked Cholesky. A batch is a loop over the problems (each problem already
uses every thread).
"""

from __future__ import annotations

import numpy as np

from swnas.scoring._arrays import to_numpy
from swnas.scoring.backends import core, register
from swnas.scoring.inffs import check_finite_std

__all__ = ["GRAM_TILE_ROWS", "tiled_gram", "rank_gram_cpp", "inffs_cpp", "inffs_cpp_many"]

#: rows per float32 tile of the Gram matrix. Each tile is one BLAS syrk (16,384 x 2,048 float32:
#: ~7e10 multiply-adds, against 4 M float64 additions to fold it in, well under 1% of the time);
#: OpenBLAS sums a tile in blocks of a few hundred rows, so a tile adds only tens of partial sums in
#: float32, whatever N is.
GRAM_TILE_ROWS = 16_384


def tiled_gram(Z: np.ndarray, transposed: bool = False) -> np.ndarray:
    """``Z'Z`` (or ``Zt Zt'`` when ``transposed``) in float64, from float32 tiles of rows.

    float64 ``Z`` is one BLAS product. float32 ``Z``: every :data:`GRAM_TILE_ROWS` rows (columns of
    ``Zt``) are multiplied in float32 and added into a float64 sum, so the float32 error is that of
    one tile (measured on 65,536 x 512 centred ranks: correlations within 1.2e-6, inf-FS scores within
    4e-9 relative, of the float64 product) and does not grow with the number of rows.
    """
    n = Z.shape[1] if transposed else Z.shape[0]
    if Z.dtype != np.float32:
        return Z @ Z.T if transposed else Z.T @ Z
    p = Z.shape[0] if transposed else Z.shape[1]
    G = np.zeros((p, p))
    for b in range(0, n, GRAM_TILE_ROWS):
        if transposed:
            Zb = Z[:, b : b + GRAM_TILE_ROWS]
            G += Zb @ Zb.T  # a self-product with its transpose: BLAS syrk
        else:
            Zb = Z[b : b + GRAM_TILE_ROWS]
            G += Zb.T @ Zb
    return G


def rank_gram_cpp(X, corr: str = "spearman") -> tuple[np.ndarray, np.ndarray]:
    """Gram matrix of the centred ranks (or centred values) of X, and the column std (float64)."""
    mod = core()
    Xn = np.ascontiguousarray(to_numpy(X))
    if Xn.dtype == np.float32 and corr == "spearman" and Xn.ndim == 2 and Xn.shape[0] >= 2 and Xn.shape[1] >= 1:
        # ranks come back transposed (p x n): each column's ranks are one contiguous row
        Zt, std = mod.inffs_transform_t_f32(Xn)
        check_finite_std(std)
        return tiled_gram(Zt, transposed=True), std
    Z, std = mod.inffs_transform(Xn, corr == "spearman")
    check_finite_std(std)
    return tiled_gram(Z), std


def inffs_cpp(X, codes, n_classes, alpha: float = 0.5, factor: float = 0.9, corr: str = "spearman") -> np.ndarray:
    mod = core()
    G, std = rank_gram_cpp(X, corr)
    return mod.inffs_solve(np.ascontiguousarray(G), std, float(alpha), float(factor))


def inffs_cpp_many(problems, alpha: float = 0.5, factor: float = 0.9, corr: str = "spearman") -> list:
    return [inffs_cpp(X, c, k, alpha, factor, corr) for X, c, k in problems]


register("inffs", "cpp")(inffs_cpp)
register("inffs", "cpp", batched=True)(inffs_cpp_many)
