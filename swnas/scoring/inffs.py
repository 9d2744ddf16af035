"""inf-FS: Infinite Feature Selection (Roffo et al., ICCV 2015), docs/scorers.md, section 3.

The affinity of features i and j mixes spread and (non-)redundancy::

    A_ij = alpha * sigma_ij + (1 - alpha) * (1 - |corr_ij|)
    sigma_ij = max(std_i, std_j)            (ddof=1), min-max normalised over the matrix to [0, 1]

``corr`` is the Spearman rank correlation (default; the Pearson correlation of per-column average
ranks) or the Pearson correlation (``corr="pearson"``, streamable from X'X). NaN/Inf entries of A
are set to 0: in particular a constant column has an undefined correlation, so its whole row and
column of A are 0 and its score is exactly 0. When every column has the same std the min-max range
is 0 and sigma is taken as 0 (the official code's NaN -> 0 rule applied to sigma).

With ``r = factor / lambda_max(A)`` the score of feature i is the i-th row sum of
``(I - rA)^-1 - I``, i.e. ``x - 1`` where ``(I - rA) x = 1`` (one Cholesky solve; I - rA is SPD with
eigenvalues >= 1 - factor). When A is all zero (lambda_max <= 0) every score is 0.

The functions here are the float64 NumPy/SciPy reference every other backend is tested against.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.linalg

from swnas.errors import InputError
from swnas.scoring._arrays import check_finite_stats, to_numpy
from swnas.scoring.api import Criterion, register_criterion
from swnas.scoring.backends import register

__all__ = [
    "CORRELATIONS",
    "check_inffs_params",
    "average_ranks",
    "centred_ranks",
    "correlation_from_gram",
    "affinity",
    "inffs_from_affinity",
    "inffs_from_stats",
    "inffs_from_streamed",
    "inffs_reference",
    "check_finite_std",
]

#: the correlation measures inf-FS accepts
CORRELATIONS = ("spearman", "pearson")


def check_inffs_params(params: dict, n: int | None = 2, p: int | None = 1, n_classes: int | None = 2) -> dict:
    """Validate inf-FS parameters and fill in defaults (``alpha=0.5, factor=0.9, corr="spearman"``)."""
    params = dict(params)
    alpha = params.pop("alpha", 0.5)
    factor = params.pop("factor", 0.9)
    corr = params.pop("corr", "spearman")
    if params:
        raise InputError(
            f"inffs: unknown parameter(s) {', '.join(sorted(params))}; inf-FS takes alpha, factor and corr"
        )
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 <= float(alpha) <= 1.0:
        raise InputError(f"alpha: must be a number in [0, 1], got {alpha!r}")
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not 0.0 < float(factor) < 1.0:
        raise InputError(f"factor: must be a number in the open interval (0, 1), got {factor!r}")
    if not isinstance(corr, str) or corr not in CORRELATIONS:
        raise InputError(f"corr: must be one of {', '.join(map(repr, CORRELATIONS))}, got {corr!r}")
    return {"alpha": float(alpha), "factor": float(factor), "corr": corr}


def average_ranks(X: np.ndarray) -> np.ndarray:
    """1-based per-column ranks of ``X`` with ties given their average rank (float64)."""
    X = np.asarray(X)
    n, p = X.shape
    out = np.empty((n, p), dtype=np.float64)
    pos = np.arange(n)
    for j in range(p):
        col = X[:, j]
        order = np.argsort(col, kind="stable")
        s = col[order]
        new = np.empty(n, dtype=bool)
        new[0] = True
        np.not_equal(s[1:], s[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        ends = np.append(starts[1:], n)
        gid = np.cumsum(new) - 1
        avg = (starts + ends + 1) / 2.0  # positions starts..ends-1 hold ranks starts+1..ends
        out[order, j] = avg[gid] if starts.size < n else pos + 1.0
    return out


def centred_ranks(X: np.ndarray) -> np.ndarray:
    """Average ranks minus their mean (N + 1) / 2: the columns whose Gram matrix gives Spearman."""
    R = average_ranks(X)
    R -= (X.shape[0] + 1) / 2.0
    return R


def correlation_from_gram(G: np.ndarray) -> np.ndarray:
    """Correlation ``G_ij / sqrt(G_ii G_jj)`` of centred columns; NaN where a column is constant."""
    d = np.sqrt(np.maximum(np.diag(G), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        C = G / d[:, None] / d[None, :]
    C[d == 0, :] = np.nan
    C[:, d == 0] = np.nan
    return C


def affinity(std: np.ndarray, corr: np.ndarray, alpha: float) -> np.ndarray:
    """The inf-FS affinity matrix A (p x p float64), NaN/Inf entries set to 0."""
    std = np.asarray(std, dtype=np.float64)
    corr = np.asarray(corr, dtype=np.float64)
    lo, hi = float(np.min(std)), float(np.max(std))
    if hi > lo and np.isfinite(hi - lo):
        s = (std - lo) / (hi - lo)
        sigma = np.maximum(s[:, None], s[None, :])  # min-max of max(std_i, std_j) over the matrix
    else:
        sigma = np.zeros((std.size, std.size))
    with np.errstate(invalid="ignore"):
        A = alpha * sigma + (1.0 - alpha) * (1.0 - np.abs(corr))
    A[~np.isfinite(A)] = 0.0
    return A


def inffs_from_affinity(A: np.ndarray, factor: float = 0.9) -> np.ndarray:
    """Scores ``x - 1`` with ``(I - rA) x = 1``, ``r = factor / lambda_max(A)`` (eigvalsh + Cholesky)."""
    p = A.shape[0]
    lam = float(np.linalg.eigvalsh(A)[-1])
    if not lam > 0.0:
        return np.zeros(p)
    M = -(factor / lam) * A
    M[np.diag_indices(p)] += 1.0
    cf = scipy.linalg.cho_factor(M, lower=True, check_finite=False)
    x = scipy.linalg.cho_solve(cf, np.ones(p), check_finite=False)
    return x - 1.0


def inffs_from_stats(std, corr, alpha: float = 0.5, factor: float = 0.9) -> np.ndarray:
    """inf-FS scores from per-feature statistics (used by the streaming accumulator).

    Parameters
    ----------
    std : array (p,)
        Column standard deviations (ddof=1).
    corr : array (p, p)
        Correlation matrix (Pearson from X'X statistics, or Spearman). NaN entries (constant
        columns: 0/0) are legal and give A entries of 0.
    alpha, factor : float
        As in :func:`score` (``alpha`` in [0, 1], ``factor`` in (0, 1)).

    Returns
    -------
    numpy.ndarray
        float64 scores, length p.
    """
    params = check_inffs_params({"alpha": alpha, "factor": factor})
    std = np.asarray(to_numpy(std), dtype=np.float64).reshape(-1)
    corr = np.asarray(to_numpy(corr), dtype=np.float64)
    p = std.shape[0]
    if corr.shape != (p, p):
        raise InputError(f"corr: expected shape ({p}, {p}) to match std, got {corr.shape}")
    if not np.all(np.isfinite(std)):
        raise InputError("std: contains NaN or Inf values")
    return inffs_from_affinity(affinity(std, corr, params["alpha"]), params["factor"])


def check_finite_std(std: np.ndarray, name: str = "X") -> None:
    """Raise :class:`InputError` naming the columns whose std came out NaN/Inf (NaN/Inf in X)."""
    bad = ~np.isfinite(std)
    if np.any(bad):
        cols = np.flatnonzero(bad)
        shown = ", ".join(map(str, cols[:8])) + (" ..." if cols.size > 8 else "")
        raise InputError(f"{name}: contains NaN or Inf values (in columns {shown})")


def column_stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column mean, ddof=1 std (float64) and the mask of constant columns; checks finiteness.

    A column is constant when its min equals its max; its std is then exactly 0 (no rounding noise
    from the mean), and its correlation with anything is undefined.
    """
    X = np.asarray(X)
    n = X.shape[0]
    mu = X.mean(axis=0, dtype=np.float64)
    sq = np.zeros(X.shape[1])
    for i in range(0, n, 8192):
        d = X[i : i + 8192].astype(np.float64) - mu
        sq += np.einsum("ij,ij->j", d, d)
    check_finite_stats(mu, sq)
    const = X.max(axis=0) == X.min(axis=0)
    std = np.sqrt(sq / (n - 1.0))
    std[const] = 0.0
    return mu, std, const


def inffs_reference(
    X, codes: np.ndarray, n_classes: int, alpha: float = 0.5, factor: float = 0.9, corr: str = "spearman"
) -> np.ndarray:
    """Float64 NumPy/SciPy reference of inf-FS (labels are not used: inf-FS is unsupervised)."""
    X = np.asarray(to_numpy(X))
    mu, std, const = column_stats(X)
    if corr == "spearman":
        Z = centred_ranks(X)  # a constant column has all-equal ranks: exactly 0 once centred
    else:
        Z = X.astype(np.float64) - mu
        Z[:, const] = 0.0
    C = correlation_from_gram(Z.T @ Z)
    return inffs_from_affinity(affinity(std, C, alpha), factor)


register("inffs", "numpy")(inffs_reference)


def inffs_from_streamed(st: dict, params: dict) -> np.ndarray:
    """Pearson inf-FS from streamed statistics: the ddof=1 std and the correlation matrix.

    ``st`` is :meth:`swnas.scoring.streaming.StreamingScorer.statistics` (the centred scatter).
    """
    scatter, n = st["scatter"], st["n"]
    var = np.maximum(np.diag(scatter), 0.0)
    std = np.sqrt(var / (n - 1.0))
    denom = np.sqrt(np.outer(var, var))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = scatter / denom
    rest = {k: v for k, v in params.items() if k != "corr"}
    return np.asarray(inffs_from_stats(std, corr, **rest), dtype=np.float64)


def _stream_refusal(params: dict) -> str:
    """Spearman ranks each column over all rows: only Pearson correlation streams."""
    if params.get("corr", "spearman") == "pearson":
        return ""
    return "inf-FS with Spearman correlation ranks each column over all rows"


register_criterion(
    Criterion(
        name="inffs",
        check=check_inffs_params,
        min_samples=lambda params: 2,
        description="inf-FS (infinite feature selection: paths over a spread/correlation feature graph); "
        "unsupervised, labels are ignored",
        needs_labels=False,
        from_stats=inffs_from_streamed,
        stream_refusal=_stream_refusal,
        stream_hint="corr='pearson'",
    )
)
