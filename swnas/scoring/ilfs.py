"""il-FS: Infinite Latent Feature Selection (Roffo et al., ICCV 2017), multi-class (docs/scorers.md, section 4).

1. Per class c and feature f the class mean mu_cf; for sample s, ``d_sc = (x_sf - mu_cf)^2`` and
   ``pi_sf = (1/d_{s,y_s}) / sum_c (1/d_sc)`` (1/C is chance). Zero distances: when some class means
   are at distance 0 (or so close that 1/d overflows) the zero-distance classes share the
   probability equally, so ``pi = 1/k`` if the sample's own class is one of the k zero-distance
   classes (``1`` when it is the only one) and ``pi = 0`` otherwise (the limit of the formula).
2. Tokens: ``t = min(floor(pi * TT), TT - 1)``, the bin of pi among TT equal bins of [0, 1];
   ``n(t, f)`` counts samples.
3. PLSA with two latent factors (z1 relevant, z2 not), documents = features, words = tokens.
   ``P(t|z1)`` starts as the increasing 1..5000 linear ramp (normalised), ``P(t|z2)`` the decreasing
   one, ``P(z1|f)`` as the share of f's samples in bins lying in the upper half ``[0.5, 1]`` (``t >=
   ceil(TT/2)``). EM updates both P(z|f) and P(t|z) until ``|delta loglik| < tol`` (1e-6) or
   ``max_iter`` (1000) iterations; ``loglik = sum n(t,f) log sum_z P(t|z) P(z|f)`` never decreases.
4. ``v = P(z1|f)``, ``G = v v'``, ``factor = min(ceil(max_i (G1)_i) / p, 0.99)``,
   ``r = factor / lambda_max(G) = factor / v'v`` and by Sherman-Morrison
   ``score = (I - rG)^-1 1 - 1 = r (1'v) / (1 - r v'v) * v``. All-zero v gives all-zero scores.

The functions here are the float64 NumPy reference that the other backends are tested against;
:func:`ilfs_details` also returns the EM log-likelihood history.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from swnas.errors import InputError
from swnas.scoring._arrays import check_finite_stats, to_numpy
from swnas.scoring.api import Criterion, register_criterion
from swnas.scoring.backends import register

__all__ = [
    "ILFSResult",
    "ILFSScores",
    "with_n_iter",
    "check_ilfs_params",
    "token_counts",
    "plsa_relevance",
    "ilfs_from_relevance",
    "ilfs_details",
    "ilfs_reference",
]

RAMP = 5000.0  # the initial P(t|z) ramp runs from 1 to RAMP


def check_ilfs_params(params: dict, n: int | None = 2, p: int | None = 1, n_classes: int | None = 2) -> dict:
    """Validate il-FS parameters and fill in defaults (``TT=4, max_iter=1000, tol=1e-6``)."""
    params = dict(params)
    tt = params.pop("TT", 4)
    max_iter = params.pop("max_iter", 1000)
    tol = params.pop("tol", 1e-6)
    if params:
        raise InputError(f"ilfs: unknown parameter(s) {', '.join(sorted(params))}; il-FS takes TT, max_iter and tol")
    if isinstance(tt, bool) or not isinstance(tt, numbers.Integral) or tt < 2:
        raise InputError(f"TT: the number of token bins must be an integer >= 2, got {tt!r}")
    if int(tt) > 65536:
        raise InputError(f"TT: at most 65536 token bins, got {tt!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise InputError(f"max_iter: must be a positive integer, got {max_iter!r}")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not (float(tol) >= 0.0 and math.isfinite(tol)):
        raise InputError(f"tol: must be a finite number >= 0, got {tol!r}")
    return {"TT": int(tt), "max_iter": int(max_iter), "tol": float(tol)}


register_criterion(
    Criterion(
        name="ilfs",
        check=check_ilfs_params,
        min_samples=lambda params: 2,
        description="il-FS (infinite latent feature selection: PLSA relevance of class-discriminative tokens)",
    )
)


@dataclass(frozen=True)
class ILFSResult:
    """Everything il-FS computes for one problem.

    Attributes
    ----------
    scores : (p,) float64 feature scores
    v : (p,) P(z1 | f), the relevance of each feature
    p_t_z : (TT, 2) P(t | z) after EM
    loglik : (n_iter,) the EM log-likelihood before each M-step (never decreases)
    n_iter : int
    counts : (TT, p) int64 token counts n(t, f)
    factor, r : float, the series parameters
    """

    scores: np.ndarray
    v: np.ndarray
    p_t_z: np.ndarray
    loglik: np.ndarray
    n_iter: int
    counts: np.ndarray
    factor: float
    r: float


class ILFSScores(np.ndarray):
    """Per-feature il-FS scores that also say how many EM iterations ran (``n_iter``).

    Every il-FS backend returns its scores as this array; :func:`swnas.scoring.score` reports the
    count as :attr:`~swnas.scoring.ScoreResult.n_iter` and ``ILFSSelector`` as ``n_iter_``.
    """

    n_iter: int | None

    def __array_finalize__(self, obj) -> None:
        self.n_iter = getattr(obj, "n_iter", None)


def with_n_iter(scores, n_iter: int) -> ILFSScores:
    """``scores`` (float64) as :class:`ILFSScores` carrying ``n_iter``."""
    out = np.asarray(scores, dtype=np.float64).view(ILFSScores)
    out.n_iter = int(n_iter)
    return out


def _class_means(X: np.ndarray, codes: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
    sums = np.zeros((n_classes, X.shape[1]))
    for i in range(0, X.shape[0], 8192):
        Xi = X[i : i + 8192].astype(np.float64)
        oh = np.zeros((Xi.shape[0], n_classes))
        oh[np.arange(Xi.shape[0]), codes[i : i + 8192]] = 1.0
        sums += oh.T @ Xi
    check_finite_stats(sums.sum(axis=0), np.zeros(X.shape[1]))
    return sums / np.maximum(counts, 1.0)[:, None]


def token_counts(X, codes: np.ndarray, n_classes: int, TT: int = 4) -> np.ndarray:
    """The (TT, p) int64 token counts n(t, f) of steps 1-2 (float64 arithmetic)."""
    X = np.asarray(to_numpy(X))
    codes = np.asarray(codes, dtype=np.int64)
    n, p = X.shape
    mu = _class_means(X, codes, n_classes)  # (C, p)
    counts = np.zeros((TT, p), dtype=np.int64)
    rows = max(1, 4_000_000 // max(1, p * n_classes))
    big = np.finfo(np.float64).max
    for i in range(0, n, rows):
        Xi = X[i : i + rows].astype(np.float64)
        ci = codes[i : i + rows]
        d = (Xi[:, None, :] - mu[None, :, :]) ** 2  # (b, C, p)
        with np.errstate(divide="ignore", over="ignore"):
            inv = 1.0 / d
        zero = ~(inv <= big)  # d == 0 or 1/d overflowed: a zero distance
        inv[zero] = 0.0
        nzero = zero.sum(axis=1)  # (b, p)
        b = np.arange(Xi.shape[0])
        own_inv = inv[b, ci, :]
        own_zero = zero[b, ci, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            pi = own_inv / inv.sum(axis=1)
        pi = np.where(nzero > 0, np.where(own_zero, 1.0 / np.maximum(nzero, 1), 0.0), pi)
        t = np.minimum(np.floor(pi * TT), TT - 1).astype(np.int64)
        for tok in range(TT):
            counts[tok] += (t == tok).sum(axis=0)
    return counts


def plsa_relevance(counts: np.ndarray, max_iter: int = 1000, tol: float = 1e-6):
    """Two-factor PLSA on the (TT, p) token counts (step 3).

    Returns
    -------
    v : (p,) P(z1 | f)
    p_t_z : (TT, 2) P(t | z)
    loglik : (n_iter,) log-likelihood of the parameters at the start of each iteration
    """
    n_tf = np.asarray(counts, dtype=np.float64)
    tt, p = n_tf.shape
    ramp = np.linspace(1.0, RAMP, tt)
    ptz = np.stack([ramp / ramp.sum(), ramp[::-1] / ramp.sum()], axis=1)  # (TT, 2)
    n_f = n_tf.sum(axis=0)
    nf_safe = np.where(n_f > 0, n_f, 1.0)
    upper = (tt + 1) // 2  # first bin lying in [0.5, 1]
    pz1 = n_tf[upper:].sum(axis=0) / nf_safe
    pzf = np.stack([pz1, 1.0 - pz1])  # (2, p)
    hist = []
    pos = n_tf > 0
    for _ in range(max_iter):
        a = ptz[:, 0:1] * pzf[0:1, :]  # (TT, p)
        b = ptz[:, 1:2] * pzf[1:2, :]
        s = a + b
        ok = pos & (s > 0)
        ll = float(np.sum(n_tf[ok] * np.log(s[ok])))
        hist.append(ll)
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(ok, n_tf / s, 0.0)
        r1, r2 = a * w, b * w  # expected counts n(t,f) P(z|t,f)
        c1, c2 = r1.sum(axis=1), r2.sum(axis=1)  # (TT,)
        ptz = np.stack([c1 / max(c1.sum(), 1e-300), c2 / max(c2.sum(), 1e-300)], axis=1)
        pzf = np.stack([r1.sum(axis=0) / nf_safe, r2.sum(axis=0) / nf_safe])
        if len(hist) > 1 and abs(hist[-1] - hist[-2]) < tol:
            break
    return pzf[0].copy(), ptz, np.asarray(hist)


def ilfs_from_relevance(v: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Step 4: scores ``(I - r v v')^-1 1 - 1`` by Sherman-Morrison; returns (scores, factor, r)."""
    v = np.asarray(v, dtype=np.float64)
    p = v.shape[0]
    sv = float(v.sum())
    vv = float(v @ v)
    if not vv > 0.0:
        return np.zeros(p), 0.0, 0.0
    factor = min(math.ceil(float(np.max(v * sv))) / p, 0.99)
    r = factor / vv
    return r * sv / (1.0 - factor) * v, factor, r


def ilfs_details(
    X, codes: np.ndarray, n_classes: int, TT: int = 4, max_iter: int = 1000, tol: float = 1e-6
) -> ILFSResult:
    """The full float64 il-FS computation with its intermediate results (EM history included)."""
    counts = token_counts(X, codes, n_classes, TT)
    v, ptz, hist = plsa_relevance(counts, max_iter, tol)
    scores, factor, r = ilfs_from_relevance(v)
    return ILFSResult(
        scores=scores, v=v, p_t_z=ptz, loglik=hist, n_iter=int(hist.size), counts=counts, factor=factor, r=r
    )


def ilfs_reference(
    X, codes: np.ndarray, n_classes: int, TT: int = 4, max_iter: int = 1000, tol: float = 1e-6
) -> np.ndarray:
    """Float64 NumPy reference of il-FS: the per-feature scores."""
    d = ilfs_details(X, codes, n_classes, TT, max_iter, tol)
    return with_n_iter(d.scores, d.n_iter)


register("ilfs", "numpy")(ilfs_reference)
