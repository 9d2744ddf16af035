"""PLS-VIP: Variable Importance in Projection of a PLS regression on one-hot labels (DESIGN 3.1).

The float64 NumPy reference here is what every other backend is tested against. It runs the
improved kernel PLS of Dayal & MacGregor (1997): exact (no power iterations), only X'Y is deflated,
and the standardised X is never formed. The same small-matrix algebra serves the Gram form used by
the streaming accumulator (:mod:`swnas.scoring.streaming`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from swnas.errors import InputError
from swnas.scoring._arrays import check_finite_stats, to_numpy
from swnas.scoring.api import Criterion, register_criterion
from swnas.scoring.backends import register

__all__ = [
    "pls_vip_reference",
    "kernel_pls_vip",
    "onehot_stats",
    "standardised_cross",
    "constant_columns",
    "vip_from_components",
]


def _check(params: dict, n: int, p: int, n_classes: int) -> dict:
    a = params.pop("n_components", 2)
    scale = params.pop("scale", True)
    if params:
        raise InputError(f"pls: unknown parameter(s) {', '.join(sorted(params))}; "
                         "PLS-VIP takes n_components and scale")
    if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < 1:
        raise InputError(f"n_components: must be a positive integer, got {a!r}")
    a = int(a)
    if a > p:
        raise InputError(f"n_components: {a} components need at least {a} features, X has {p}")
    if a >= n:
        raise InputError(f"n_components: {a} components need more than {a} samples, X has {n}")
    if not isinstance(scale, (bool, np.bool_)):
        raise InputError(f"scale: must be True or False, got {scale!r}")
    return {"n_components": a, "scale": bool(scale)}


register_criterion(
    Criterion(
        name="pls",
        check=_check,
        min_samples=lambda params: int(params.get("n_components", 2)) + 1
        if isinstance(params.get("n_components", 2), (int, np.integer)) else 2,
        description="PLS-VIP (partial least squares, variable importance in projection); the paper's best",
    )
)


def onehot_stats(counts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and ddof=1 std of each column of the one-hot label matrix, from the class counts."""
    counts = np.asarray(counts, dtype=np.float64)
    ymean = counts / n
    yvar = counts * (n - counts) / (n * (n - 1.0))
    ystd = np.sqrt(yvar)
    ystd[ystd == 0] = 1.0
    return ymean, ystd


def standardised_cross(
    colsum: np.ndarray, colsq_centred: np.ndarray, class_sums: np.ndarray, counts: np.ndarray, n: int,
    scale: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From one pass of statistics, the column means, the column scales and X_s'Y_s (p x C).

    ``class_sums[c, j]`` is the sum of column j over the rows of class c; ``colsq_centred`` the sum
    of squared deviations from the column mean.
    """
    mu = colsum / n
    constant = constant_columns(colsum, colsq_centred, n)
    if scale:
        sd = np.sqrt(np.maximum(colsq_centred, 0.0) / (n - 1.0))
        sd[(sd == 0) | constant] = 1.0
    else:
        sd = np.ones_like(mu)
    ymean, ystd = onehot_stats(counts, n)
    # X_s'Y_s[:, c] = D^-1 (X'y_c - colsum * ymean_c) / ystd_c   (Y_s is centred, so mu drops out)
    xy = class_sums.T - np.outer(colsum, ymean)
    xy[constant] = 0.0
    if scale:
        xy = xy / ystd[None, :] / sd[:, None]
    return mu, sd, xy


def constant_columns(colsum: np.ndarray, colsq_centred: np.ndarray, n: int) -> np.ndarray:
    """Mask of zero-variance columns (legal, as in scikit-learn; they score exactly 0)."""
    mu = colsum / n
    # a spread below 1e-12 of the mean is rounding in the mean itself, not information
    return colsq_centred <= n * (1e-12 * np.abs(mu)) ** 2


def vip_from_components(W: np.ndarray, ss: np.ndarray) -> np.ndarray:
    """VIP_j = sqrt(p * sum_a SS_a (w_ja/||w_a||)^2 / sum_a SS_a)."""
    p = W.shape[0]
    total = float(ss.sum())
    if total <= 0.0 or not np.isfinite(total):
        return np.zeros(p)
    norms = np.sqrt((W * W).sum(axis=0))
    norms[norms == 0] = 1.0
    Wn = W / norms
    return np.sqrt(p * (Wn * Wn) @ ss / total)


def kernel_pls_vip(
    xy: np.ndarray,
    n_components: int,
    project: Callable[[np.ndarray], tuple[np.ndarray, float]],
    constant: np.ndarray | None = None,
) -> np.ndarray:
    """Improved kernel PLS on the standardised cross-product ``xy`` = X_s'Y_s, returning VIP.

    Parameters
    ----------
    xy : (p, C) float64
    n_components : int
    project : callable
        ``project(r) -> (X_s'X_s r, r'X_s'X_s r)``: one product with the standardised data's Gram
        operator. The batch form computes it with two passes over X (t = X_s r, then X_s't); the
        Gram form multiplies by the accumulated X'X.
    constant : (p,) bool, optional
        Zero-variance columns: their loadings are set to exactly 0 (rounding would leave ~1e-17).
    """
    p, c = xy.shape
    s = xy.copy()
    W = np.zeros((p, n_components))
    R = np.zeros((p, n_components))
    P = np.zeros((p, n_components))
    ss = np.zeros(n_components)
    s0_norm = np.linalg.norm(xy)
    for a in range(n_components):
        if c == 1:
            w = s[:, 0].copy()
        else:
            evals, evecs = np.linalg.eigh(s.T @ s)
            w = s @ evecs[:, -1]
        wn = np.linalg.norm(w)
        if wn <= 1e-12 * max(s0_norm, 1e-300):
            break  # X'Y exhausted: the remaining components explain nothing (sklearn stops too)
        w = w / wn
        r = w - R[:, :a] @ (P[:, :a].T @ w)
        g, tt = project(r)
        if not tt > 0.0:
            break
        pa = g / tt
        if constant is not None:
            pa[constant] = 0.0
        q = (xy.T @ r) / tt  # y-loadings: Y_s't / t't; r'(deflated X'Y) equals r'X'Y
        s -= np.outer(pa, q) * tt
        W[:, a], R[:, a], P[:, a] = w, r, pa
        ss[a] = tt * float(q @ q)
    return vip_from_components(W, ss)


def pls_vip_reference(X, codes: np.ndarray, n_classes: int, n_components: int = 2, scale: bool = True) -> np.ndarray:
    """Float64 NumPy reference of PLS-VIP (two passes over X per component, X never copied beyond float64)."""
    X = np.asarray(to_numpy(X), dtype=np.float64)
    n, p = X.shape
    with np.errstate(invalid="ignore", over="ignore"):
        colsum = X.sum(axis=0)
        mu = colsum / n
        sq = _sq_chunked(X, mu)
    check_finite_stats(colsum, sq)
    onehot = np.zeros((n, n_classes))
    onehot[np.arange(n), codes] = 1.0
    class_sums = onehot.T @ X
    counts = onehot.sum(axis=0)
    mu, sd, xy = standardised_cross(colsum, sq, class_sums, counts, n, scale)

    def project(r):
        v = r / sd
        t = X @ v - float(mu @ v)
        g = (X.T @ t - mu * t.sum()) / sd
        return g, float(t @ t)

    return kernel_pls_vip(xy, n_components, project, constant_columns(colsum, sq, n))


def _sq_chunked(X: np.ndarray, mu: np.ndarray, rows: int = 8192) -> np.ndarray:
    out = np.zeros(X.shape[1])
    for i in range(0, X.shape[0], rows):
        d = X[i:i + rows] - mu
        out += np.einsum("ij,ij->j", d, d)
    return out


register("pls", "numpy")(pls_vip_reference)
