"""PLS-VIP: Variable Importance in Projection of a PLS regression on one-hot labels (docs/scorers.md, section 1).

The criterion's parameters and the float64 NumPy reference that every other backend is tested
against. It runs the improved kernel PLS of Dayal & MacGregor (1997): exact (no power
iterations), only X'Y is deflated, and the standardised X is never formed. The small-matrix
algebra lives in :mod:`swnas.scoring._pls_algebra` and is shared with every backend and with the
streaming accumulator (:mod:`swnas.scoring.streaming`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from swnas.errors import InputError
from swnas.scoring._arrays import check_finite_stats, to_numpy
from swnas.scoring._pls_algebra import (  # re-exported for callers of this module
    constant_columns,
    kernel_pls_vip,
    onehot_stats,
    standardised_cross,
    vip_from_components,
)
from swnas.scoring.api import Criterion, register_criterion
from swnas.scoring.backends import register

__all__ = [
    "check_pls_params",
    "pls_vip_reference",
    "pls_vip_regression",
    "pls_from_stats",
    "kernel_pls_vip",
    "onehot_stats",
    "standardised_cross",
    "constant_columns",
    "vip_from_components",
]


def check_pls_params(params: dict, n: int | None = None, p: int | None = None, n_classes: int | None = None) -> dict:
    """Validate PLS-VIP parameters and fill in defaults (``n_components=2, scale=True``).

    ``n`` and ``p`` (samples and features), when known, bound ``n_components``; ``None`` skips
    those checks (validation before any data exists).
    """
    params = dict(params)
    a = params.pop("n_components", 2)
    scale = params.pop("scale", True)
    if params:
        raise InputError(f"pls: unknown parameter(s) {', '.join(sorted(params))}; PLS-VIP takes n_components and scale")
    if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < 1:
        raise InputError(f"n_components: must be a positive integer, got {a!r}")
    a = int(a)
    if p is not None and a > p:
        raise InputError(f"n_components: {a} components need at least {a} features, X has {p}")
    if n is not None and a >= n:
        raise InputError(f"n_components: {a} components need more than {a} samples, X has {n}")
    if not isinstance(scale, (bool, np.bool_)):
        raise InputError(f"scale: must be True or False, got {scale!r}")
    return {"n_components": a, "scale": bool(scale)}


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


def pls_vip_regression(X, y, n_components: int = 2, scale: bool = True) -> np.ndarray:
    """PLS-VIP of a PLS regression on one continuous response column (float64 NumPy).

    VIP's classic use: scikit-learn's ``PLSRegression(n_components, scale)`` fitted on ``(X, y)``
    gives the same VIP. The same kernel PLS as :func:`pls_vip_reference`, with the centred response
    in place of the one-hot class columns (the response's scale does not change VIP).
    """
    X = np.asarray(to_numpy(X), dtype=np.float64)
    y = np.asarray(to_numpy(y), dtype=np.float64).reshape(-1)
    n, p = X.shape
    if y.shape[0] != n:
        raise InputError(f"y: expected {n} values, got {y.shape[0]}")
    if not np.all(np.isfinite(y)):
        raise InputError("y: contains NaN or Inf values")
    yc = y - y.mean()
    if not np.any(yc != 0.0):
        raise InputError("y: the response is constant; PLS-VIP needs it to vary")
    params = check_pls_params({"n_components": n_components, "scale": scale}, n, p)
    with np.errstate(invalid="ignore", over="ignore"):
        colsum = X.sum(axis=0)
        mu = colsum / n
        sq = _sq_chunked(X, mu)
    check_finite_stats(colsum, sq)
    constant = constant_columns(colsum, sq, n)
    if params["scale"]:
        sd = np.sqrt(np.maximum(sq, 0.0) / (n - 1.0))
        sd[(sd == 0) | constant] = 1.0
    else:
        sd = np.ones(p)
    xy = (X.T @ yc / sd)[:, None]  # X_s'y_c: y_c sums to 0, so the column means drop out
    xy[constant] = 0.0

    def project(r):
        v = r / sd
        t = X @ v - float(mu @ v)
        g = (X.T @ t - mu * t.sum()) / sd
        return g, float(t @ t)

    return kernel_pls_vip(xy, params["n_components"], project, constant)


def _sq_chunked(X: np.ndarray, mu: np.ndarray, rows: int = 8192) -> np.ndarray:
    out = np.zeros(X.shape[1])
    for i in range(0, X.shape[0], rows):
        d = X[i : i + rows] - mu
        out += np.einsum("ij,ij->j", d, d)
    return out


register("pls", "numpy")(pls_vip_reference)


def pls_from_stats(st: dict, params: dict) -> np.ndarray:
    """PLS-VIP from streamed statistics (:meth:`swnas.scoring.streaming.StreamingScorer.statistics`).

    The centred scatter X_c'X_c stands in for the passes over X; classes without rows are left out.
    """
    n = st["n"]
    scatter = st["scatter"]
    present = st["counts"] > 0
    colsq = np.diag(scatter).copy()
    zeros = np.zeros(scatter.shape[0])
    # centred sums: the column sums are 0 and the class sums are already relative to the mean
    _, sd, xy = standardised_cross(
        zeros, colsq, st["class_sums_centred"][present], st["counts"][present], n, params["scale"]
    )
    constant = constant_columns(st["mean"] * n, colsq, n)
    xy[constant] = 0.0

    def project(r):
        v = r / sd
        mv = scatter @ v
        return mv / sd, float(v @ mv)

    return kernel_pls_vip(xy, params["n_components"], project, constant)


def _pls_on_dask(X: Any, y: Any, params: dict, split_every: int) -> Any:
    """PLS-VIP over a Dask array's chunks, pass by pass (:mod:`swnas.scoring.dask`)."""
    from swnas.scoring.dask import _pls_dask

    return _pls_dask(X, y, params, split_every=split_every)


register_criterion(
    Criterion(
        name="pls",
        check=check_pls_params,
        min_samples=lambda params: (
            int(params.get("n_components", 2)) + 1
            if isinstance(params.get("n_components", 2), (int, np.integer))
            else 2
        ),
        description="PLS-VIP (partial least squares, variable importance in projection); the paper's best",
        # the cpp backend rescales in its own statistics pass, and float32 sums run in float64
        fit_range=lambda dtype, backend: dtype == np.float64 and backend() != "cpp",
        from_stats=pls_from_stats,
        score_dask=_pls_on_dask,
        regression=pls_vip_regression,
        search_params={"n_components": 2},
    )
)
