"""il-FS: the closed form, the EM, discriminative features, and every backend against the reference."""

from __future__ import annotations

import numpy as np
import pytest

from swnas.errors import InputError
from swnas.scoring import backend_status, score, score_many
from swnas.scoring.ilfs import ilfs_details, ilfs_from_relevance, plsa_relevance, token_counts

from helpers import planted


def _need(backend):
    ok, why = backend_status(backend)
    if not ok:
        pytest.skip(f"backend {backend} unavailable: {why}")


def test_closed_form_equals_series_and_inverse():
    rng = np.random.default_rng(0)
    for p in (1, 5, 40):
        v = rng.uniform(size=p)
        got, factor, r = ilfs_from_relevance(v)
        G = np.outer(v, v)
        assert r == pytest.approx(factor / np.linalg.eigvalsh(G)[-1], rel=1e-12)
        assert factor == min(np.ceil(np.max(G.sum(1))) / p, 0.99)
        inv = np.linalg.inv(np.eye(p) - r * G) @ np.ones(p) - 1.0
        series, term = np.zeros(p), np.ones(p)
        for _ in range(20000):  # sum_{k>=1} (rG)^k 1; r * lambda = factor < 1
            term = r * (G @ term)
            series += term
            if np.max(np.abs(term)) < 1e-18:
                break
        np.testing.assert_allclose(got, inv, rtol=1e-10, atol=0)
        np.testing.assert_allclose(got, series, rtol=1e-10, atol=0)
    zeros, factor, r = ilfs_from_relevance(np.zeros(4))
    assert np.all(zeros == 0.0)


@pytest.mark.parametrize("c", [2, 3, 10])
def test_em_loglik_never_decreases_and_discriminative_feature_wins(c):
    rng = np.random.default_rng(c)
    n, p = 60 * c, 12
    y = np.repeat(np.arange(c), 60)
    X = rng.normal(size=(n, p))
    X[:, 5] += 6.0 * y  # well-separated class means: samples sit nearest their own class mean
    d = ilfs_details(X, y, c)
    assert d.loglik.size == d.n_iter >= 2
    assert np.all(np.diff(d.loglik) >= -1e-9 * np.abs(d.loglik[:-1]))
    assert np.argmax(d.scores) == 5
    assert d.scores[5] > 1.5 * np.max(np.delete(d.scores, 5))
    assert d.counts.sum(axis=0).tolist() == [n] * p
    assert np.allclose(d.p_t_z.sum(axis=0), 1.0)
    assert 0 < d.factor <= 0.99


def test_token_rule_two_classes_and_zero_distance():
    # class means 0 and 4; samples at 1 (pi = 9/10 for class 0), 2 (1/2) and exactly 4 (own mean)
    X = np.array([[1.0], [-1.0], [2.0], [-2.0], [4.0], [4.0], [6.0], [2.0]])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    mu0, mu1 = X[y == 0].mean(), X[y == 1].mean()
    assert (mu0, mu1) == (0.0, 4.0)
    counts = token_counts(X, y, 2, TT=4)[:, 0]
    # pi: 0.9 -> t3; -1: d0=1,d1=25 -> 25/26 -> t3; 2: 0.5 -> t2; -2: d0=4, d1=36 -> 0.9 -> t3;
    # 4 and 4: zero own distance -> 1 -> t3; 6: d1=4, d0=36 -> 0.9 -> t3; 2 (class 1): 0.5 -> t2
    assert counts.tolist() == [0, 0, 2, 6]
    # a constant feature: every class mean is at distance 0 -> shared equally: pi = 1/C
    Xc = np.full((9, 1), 3.0)
    yc = np.arange(9) % 3
    assert token_counts(Xc, yc, 3, TT=4)[:, 0].tolist() == [0, 9, 0, 0]  # 1/3 -> bin 1


def test_em_updates_token_distributions():
    counts = np.array([[50, 10, 30], [30, 20, 30], [15, 30, 20], [5, 40, 20]])
    v, ptz, hist = plsa_relevance(counts, 1000, 1e-10)
    ramp = np.linspace(1, 5000, 4)
    assert not np.allclose(ptz[:, 0], ramp / ramp.sum())  # P(t|z) moved from its start
    assert v[1] > v[2] > v[0]
    assert np.all(np.diff(hist) >= -1e-9)


@pytest.mark.parametrize(
    "params,match",
    [
        ({"TT": 1}, "TT"),
        ({"TT": 2.5}, "TT"),
        ({"TT": True}, "TT"),
        ({"max_iter": 0}, "max_iter"),
        ({"tol": -1.0}, "tol"),
        ({"alpha": 0.5}, "alpha"),
    ],
)
def test_bad_params(params, match):
    X, y = planted(30, 4, 2)
    with pytest.raises(InputError, match=match):
        score(X, y, "ilfs", backend="numpy", **params)


@pytest.mark.parametrize("c", [2, 3, 10])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_backends_match_reference(backend, c, dtype):
    """Same token counts (float64 arithmetic on every backend), scores to 1e-10 relative."""
    X, y = planted(800, 60, c, seed=c, dtype=dtype)
    X[:, 7] = 2.5  # constant feature
    ref = score(X, y, "ilfs", backend="numpy", TT=5).features
    got = score(X, y, "ilfs", backend=backend, TT=5).features
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-13)


def test_torch_input_score_many_and_nan(backend):
    torch = pytest.importorskip("torch")

    probs = [planted(300, 20, c, seed=c) for c in (2, 3, 4)]
    refs = [score(X, y, "ilfs", backend="numpy").features for X, y in probs]
    many = score_many([(torch.from_numpy(X), y) for X, y in probs], "ilfs", backend=backend)
    for r, ref in zip(many, refs):
        assert r.backend == backend
        np.testing.assert_allclose(r.features, ref, rtol=1e-10, atol=1e-13)
    X, y = probs[0]
    X = X.copy()
    X[4, 3] = np.inf
    with pytest.raises(InputError, match="NaN or Inf"):
        score(X, y, "ilfs", backend=backend)


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["cuda", "cupy"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gpu_backends_match_reference(backend, dtype, on_device):
    """GPU token counts equal the reference's; scores to 1e-10 relative. cupy without CuPy: its code
    through the NumPy stand-in (tests/conftest.py ``on_device``)."""
    X, y = planted(5000, 300, 10, seed=3, dtype=dtype)
    X[:, 7] = 2.5
    Xt = on_device(backend, X)
    ref = score(X, y, "ilfs", backend="numpy").features
    got = score(X, y, "ilfs", backend=backend).features
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-13)
    many = score_many([(Xt, y), (Xt[:2000], y[:2000])], "ilfs", backend=backend)
    np.testing.assert_allclose(many[0].features, ref, rtol=1e-10, atol=1e-13)
    ref1 = score(X[:2000], y[:2000], "ilfs", backend="numpy").features
    np.testing.assert_allclose(many[1].features, ref1, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gpu_token_counts_code_runs_with_numpy(dtype):
    """The cupy backend's device code, run with NumPy as the array module, gives the reference counts."""
    from swnas.scoring._ilfs_cupy import ilfs_xp, token_counts_xp

    X, y = planted(500, 30, 4, seed=2, dtype=dtype)
    X[:, 3] = 1.0
    np.testing.assert_array_equal(token_counts_xp(np, X, y, 4, 5, budget=3000), token_counts(X, y, 4, 5))
    np.testing.assert_allclose(ilfs_xp(np, X, y, 4), score(X, y, "ilfs", backend="numpy").features, rtol=1e-12)


def test_cupy_backend_through_the_standin(cupy_standin):
    X, y = planted(400, 25, 5, seed=6)
    X[:, 4] = 0.5
    ref = score(X, y, "ilfs", backend="numpy").features
    res = score(X, y, "ilfs", backend="cupy")
    assert res.backend == "cupy"
    np.testing.assert_allclose(res.features, ref, rtol=1e-12, atol=1e-15)


def test_cupy_chunks_are_sized_in_bytes_with_a_floor():
    """p = 2048, C = 1000 used to give 8-row chunks (~160k Python iterations at 1.28M rows)."""
    from swnas.scoring._ilfs_cupy import CHUNK_BYTES, MIN_CHUNK_ROWS, chunk_rows

    assert chunk_rows(2048, 1000) >= MIN_CHUNK_ROWS >= 32
    assert -(-1_280_000 // chunk_rows(2048, 1000)) <= 1_280_000 // 32
    assert chunk_rows(64, 10) * 64 * 10 * 8 <= CHUNK_BYTES  # small problems: the byte budget rules
    assert chunk_rows(64, 10) > 100_000
