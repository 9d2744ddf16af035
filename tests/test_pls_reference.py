"""The PLS-VIP NumPy reference against scikit-learn and against an explicit-deflation formula."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.cross_decomposition import PLSRegression

from swnas.scoring import score

from helpers import planted


def sklearn_vip(X, y, n_components=2, scale=True):
    """VIP from scikit-learn's NIPALS at a tight tolerance (the parity target of docs/scorers.md, section 1)."""
    classes = np.unique(y)
    Y = (y[:, None] == classes[None, :]).astype(np.float64)
    m = PLSRegression(n_components=n_components, scale=scale, tol=1e-14, max_iter=5000).fit(X, Y)
    W, T, Q = m.x_weights_, m.x_scores_, m.y_loadings_
    ss = (T * T).sum(0) * (Q * Q).sum(0)
    Wn = W / np.linalg.norm(W, axis=0)
    return np.sqrt(X.shape[1] * (Wn**2) @ ss / ss.sum())


def deflation_vip(X, y, n_components=2, scale=True):
    """Textbook PLS2 with explicit X and Y deflation and exact SVD weights (no iterations)."""
    X = np.asarray(X, np.float64)
    classes = np.unique(y)
    Y = (y[:, None] == classes[None, :]).astype(np.float64)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    if scale:
        sx, sy = X.std(0, ddof=1), Y.std(0, ddof=1)
        sx[sx == 0] = 1
        sy[sy == 0] = 1
        Xc, Yc = Xc / sx, Yc / sy
    p = X.shape[1]
    W, ss = [], []
    for _ in range(n_components):
        u, s, vt = np.linalg.svd(Xc.T @ Yc, full_matrices=False)
        w = u[:, 0]
        t = Xc @ w
        tt = t @ t
        pl = Xc.T @ t / tt
        q = Yc.T @ t / tt
        Xc = Xc - np.outer(t, pl)
        Yc = Yc - np.outer(t, q)
        W.append(w)
        ss.append(tt * (q @ q))
    W, ss = np.array(W).T, np.array(ss)
    return np.sqrt(p * (W**2) @ ss / ss.sum())


CASES = [
    # n, p, classes, components
    (300, 20, 3, 2),
    (500, 64, 10, 2),
    (200, 50, 2, 3),
    (120, 40, 5, 4),
    (60, 150, 4, 2),  # p > N
]


@pytest.mark.parametrize("n,p,c,a", CASES)
def test_reference_matches_sklearn(n, p, c, a):
    X, y = planted(n, p, c, seed=n + p)
    X[:, 7] = 3.25  # a zero-variance column is legal
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn may warn about the constant column
        ref = sklearn_vip(X, y, a)
    got = score(X, y, backend="numpy", n_components=a).features
    np.testing.assert_allclose(got, ref, atol=1e-6, rtol=0)
    assert got[7] == 0.0


@pytest.mark.parametrize("n,p,c,a", CASES)
@pytest.mark.parametrize("scale", [True, False])
def test_reference_matches_exact_deflation(n, p, c, a, scale):
    X, y = planted(n, p, c, seed=3 * n + p, signal=1, strength=0.2)  # weak signal: close singular values
    got = score(X, y, backend="numpy", n_components=a, scale=scale).features
    np.testing.assert_allclose(got, deflation_vip(X, y, a, scale), atol=1e-9, rtol=0)


def test_float32_input_matches_sklearn_to_1e6():
    X, y = planted(400, 30, 4, seed=5, dtype=np.float32)
    ref = sklearn_vip(X.astype(np.float64), y)
    got = score(X, y, backend="numpy").features
    np.testing.assert_allclose(got, ref, atol=1e-6, rtol=0)  # measured 1.35e-7


@pytest.mark.parametrize("a", [1, 2, 5])
def test_vip_squares_sum_to_p(a):
    X, y = planted(250, 33, 6, seed=a)
    vip = score(X, y, backend="numpy", n_components=a).features
    assert vip.shape == (33,) and vip.dtype == np.float64
    assert np.sum(vip**2) == pytest.approx(33, rel=1e-12)


def test_planted_columns_rank_first():
    X, y = planted(600, 40, 5, seed=11, signal=3, strength=2.0)
    vip = score(X, y, backend="numpy").features
    assert set(np.argsort(vip)[-3:]) == {0, 1, 2}
    assert vip[:3].min() > 1.0 > np.median(vip[3:])


def test_stage_score_is_mean_and_labels_are_arbitrary_integers():
    X, y = planted(200, 12, 3, seed=2)
    r1 = score(X, y, backend="numpy")
    r2 = score(X, np.array([10, -4, 99])[y], backend="numpy")
    np.testing.assert_allclose(r1.features, r2.features, rtol=1e-12)
    assert r1.stage == pytest.approx(r1.features.mean())
    assert r1.criterion == "pls" and r1.backend == "numpy"
    assert r1.params == {"n_components": 2, "scale": True}


def test_invariant_to_feature_scale_when_scaled():
    X, y = planted(300, 15, 3, seed=4)
    base = score(X, y, backend="numpy").features
    scaled = score(X * np.linspace(0.01, 100, 15) + 50, y, backend="numpy").features
    np.testing.assert_allclose(base, scaled, atol=1e-9)
