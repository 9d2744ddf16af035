"""inf-FS: the float64 reference against a brute-force SciPy/NumPy version, and every backend against it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats

from swnas.errors import BackendUnavailableError, InputError
from swnas.scoring import available_backends, backend_status, score, score_many
from swnas.scoring.inffs import average_ranks, inffs_from_stats

from helpers import on_real_gpu, planted


def brute_inffs(X, alpha=0.5, factor=0.9, corr="spearman"):
    """inf-FS the textbook way: spearmanr / corrcoef, eigvals and an explicit inverse."""
    X = np.asarray(X, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant columns: scipy warns and returns NaN
        with np.errstate(invalid="ignore", divide="ignore"):
            C = scipy.stats.spearmanr(X).statistic if corr == "spearman" else np.corrcoef(X, rowvar=False)
    std = X.std(axis=0, ddof=1)
    std[X.max(0) == X.min(0)] = 0.0
    sig = np.maximum.outer(std, std)
    sig = (sig - sig.min()) / (sig.max() - sig.min())
    A = alpha * sig + (1 - alpha) * (1 - np.abs(C))
    A[~np.isfinite(A)] = 0.0
    r = factor / np.max(np.linalg.eigvals(A).real)
    eye = np.eye(A.shape[0])
    return (np.linalg.inv(eye - r * A) - eye).sum(axis=1)


def with_quirks(X):
    """A constant column, a tied column and a column with -0.0/+0.0 (equal values)."""
    X = X.copy()
    X[:, 2] = 1.75
    X[:, 4] = np.round(X[:, 4])
    X[::2, 5] = 0.0
    X[1::4, 5] = -0.0
    return X


def rel_err(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("n,p", [(200, 12), (400, 90), (120, 160)])
@pytest.mark.parametrize("corr", ["spearman", "pearson"])
def test_reference_matches_brute_force(n, p, corr):
    X, y = planted(n, p, 3, seed=p)
    X = with_quirks(X)
    ref = brute_inffs(X, 0.3, 0.8, corr)
    got = score(X, y, "inffs", backend="numpy", alpha=0.3, factor=0.8, corr=corr).features
    assert rel_err(got, ref) < 1e-8
    assert got[2] == 0.0  # constant column: undefined correlation -> its A row is 0 -> score 0


def test_default_params_and_stage():
    X, y = planted(120, 10, 2, seed=1)
    res = score(X, y, "inffs", backend="numpy")
    assert res.params == {"alpha": 0.5, "factor": 0.9, "corr": "spearman"}
    assert rel_err(res.features, brute_inffs(X)) < 1e-8
    assert res.stage == pytest.approx(res.features.mean())


def test_average_ranks_match_scipy_with_ties():
    rng = np.random.default_rng(3)
    X = rng.integers(0, 5, size=(60, 4)).astype(np.float64)
    np.testing.assert_array_equal(average_ranks(X), scipy.stats.rankdata(X, axis=0))


def test_ranking_is_invariant_to_row_permutation():
    X, y = planted(300, 20, 3, seed=5)
    X = with_quirks(X)
    perm = np.random.default_rng(0).permutation(300)
    for b in ["numpy"] + [b for b in ("numba", "cpp") if b in available_backends()]:
        a = score(X, y, "inffs", backend=b).features
        c = score(X[perm], y[perm], "inffs", backend=b).features
        np.testing.assert_allclose(c, a, rtol=1e-12, atol=1e-14)


def test_monotone_transform_leaves_spearman_scores_unchanged():
    X, y = planted(200, 15, 2, seed=7)
    a = score(X, y, "inffs", backend="numpy", alpha=0.0).features  # alpha=0: correlation only
    b = score(np.exp(X / 4), y, "inffs", backend="numpy", alpha=0.0).features
    np.testing.assert_allclose(b, a, rtol=1e-10)


def test_equal_stds_and_all_constant():
    rng = np.random.default_rng(2)
    base = np.tile(np.arange(-2.0, 3.0), 20)  # integers: every column sum below is exact
    X = np.stack([rng.permutation(base) for _ in range(6)], axis=1)  # identical stds: sigma := 0
    y = np.arange(100) % 2
    got = score(X, y, "inffs", backend="numpy", alpha=0.5).features
    ref = score(X, y, "inffs", backend="numpy", alpha=0.0).features  # A = 0.5 (1 - |c|) vs (1 - |c|)
    np.testing.assert_allclose(got, ref, rtol=1e-10)  # r absorbs the scale of A
    flat = np.ones((20, 3))
    assert np.all(score(flat, np.arange(20) % 2, "inffs", backend="numpy").features == 0.0)


def test_from_stats_matches_pearson():
    X, y = planted(250, 30, 3, seed=11)
    ref = score(X, y, "inffs", backend="numpy", corr="pearson", alpha=0.4).features
    Xc = X - X.mean(0)
    S = Xc.T @ Xc
    d = np.sqrt(np.diag(S))
    got = inffs_from_stats(X.std(0, ddof=1), S / np.outer(d, d), alpha=0.4)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
    with pytest.raises(InputError, match="corr"):
        inffs_from_stats(np.ones(3), np.eye(4))


@pytest.mark.parametrize(
    "params,match",
    [
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": "x"}, "alpha"),
        ({"factor": 1.0}, "factor"),
        ({"factor": 0}, "factor"),
        ({"corr": "kendall"}, "corr"),
        ({"beta": 1}, "beta"),
    ],
)
def test_bad_params(params, match):
    X, y = planted(30, 4, 2)
    with pytest.raises(InputError, match=match):
        score(X, y, "inffs", backend="numpy", **params)


def test_nan_input_is_rejected_on_every_cpu_backend():
    X, y = planted(30, 4, 2)
    X[3, 1] = np.nan
    for b in ["numpy"] + [b for b in ("numba", "cpp") if b in available_backends()]:
        with pytest.raises(InputError, match="NaN"):
            score(X, y, "inffs", backend=b)


def _need(backend):
    ok, why = backend_status(backend)
    if not ok:
        pytest.skip(f"backend {backend} unavailable: {why}")


@pytest.mark.parametrize("corr", ["spearman", "pearson"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_backends_match_reference(backend, corr, dtype):
    """Relative to the largest score: 1e-8 for float64. float32: the rank Gram matrix is a float32
    product (ranks are exact integers), measured ~1e-8 off on the CPU; 1e-7 still fails a float32
    accumulation bug elsewhere (~3e-7 and up). On a GPU the float32 Gram sums 16-row float32 tiles in
    float64 (tests/test_inffs_gram_emulation.py): 1e-6, the device check's bound."""
    tol = 1e-8 if dtype == np.float64 else (1e-6 if on_real_gpu(backend) else 1e-7)
    X, y = planted(700, 130, 4, seed=21, dtype=dtype)
    X = with_quirks(X)
    ref = score(X, y, "inffs", backend="numpy", corr=corr, alpha=0.6).features
    got = score(X, y, "inffs", backend=backend, corr=corr, alpha=0.6).features
    assert rel_err(got, ref) < tol
    assert got[2] == 0.0


def test_torch_input_and_score_many(backend):
    torch = pytest.importorskip("torch")

    probs = [planted(200, 25, 3, seed=s) for s in range(3)]
    refs = [score(X, y, "inffs", backend="numpy").features for X, y in probs]
    many = score_many([(torch.from_numpy(X), torch.from_numpy(y)) for X, y in probs], "inffs", backend=backend)
    for r, ref in zip(many, refs):
        assert r.backend == backend
        assert rel_err(r.features, ref) < 1e-8


def test_cpp_lambda_max_matches_eigvalsh():
    _need("cpp")
    from swnas.scoring.backends import core

    rng = np.random.default_rng(4)
    for p in (1, 3, 50, 257):
        A = rng.uniform(size=(p, p))
        A = (A + A.T) / 2
        assert core().inffs_lambda_max(A) == pytest.approx(np.linalg.eigvalsh(A)[-1], rel=1e-12)
    B = np.array([[0.0, 1.0], [1.0, 0.0]])  # -1 and 1: equal magnitudes
    assert core().inffs_lambda_max(B) == pytest.approx(1.0, rel=1e-12)


GPU_BACKENDS = ["cuda", "cupy"]


@pytest.mark.gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("corr", ["spearman", "pearson"])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-8), (np.float32, 1e-6)])
def test_gpu_backends_match_reference(backend, corr, dtype, tol, on_device):
    """cupy without CuPy: its code through the NumPy stand-in (tests/conftest.py ``on_device``)."""
    X, y = planted(3000, 200, 10, seed=8, dtype=dtype)
    X = with_quirks(X)
    Xt = on_device(backend, X)
    ref = score(X, y, "inffs", backend="numpy", corr=corr).features
    got = score(X, y, "inffs", backend=backend, corr=corr).features
    assert rel_err(got, ref) < tol
    if Xt is not X:  # a device array picks a GPU backend by itself
        res = score(Xt, y, "inffs", corr=corr)
        assert res.backend in GPU_BACKENDS and rel_err(res.features, ref) < tol
    many = score_many([(Xt, y), (Xt[:1000], y[:1000])], "inffs", backend=backend, corr=corr)
    assert rel_err(many[0].features, ref) < tol
    ref1 = score(X[:1000], y[:1000], "inffs", backend="numpy", corr=corr).features
    assert rel_err(many[1].features, ref1) < tol


def test_unavailable_gpu_backend_says_why():
    for b in GPU_BACKENDS:
        ok, why = backend_status(b)
        if not ok:
            X, y = planted(30, 4, 2)
            with pytest.raises(BackendUnavailableError, match=b):
                score(X, y, "inffs", backend=b)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_gpu_algorithms_run_with_numpy_and_cpu_torch(dtype, tol):
    """The cupy backend's code (array module = NumPy here) and the cuda backend's torch solve (on the
    CPU here) agree with the reference, so a GPU run only adds the device kernels."""
    torch = pytest.importorskip("torch")

    from swnas.scoring._inffs_cupy import centred_ranks_xp, inffs_xp
    from swnas.scoring._inffs_cpp import rank_gram_cpp
    from swnas.scoring._inffs_cuda import solve_torch
    from swnas.scoring.inffs import centred_ranks

    X, y = planted(400, 70, 3, seed=12, dtype=dtype)
    X = with_quirks(X)
    np.testing.assert_array_equal(centred_ranks_xp(np, X, chunk_elems=4000).T, centred_ranks(X))
    for corr in ("spearman", "pearson"):
        ref = score(X, y, "inffs", backend="numpy", corr=corr).features
        assert rel_err(inffs_xp(np, X, corr=corr), ref) < tol
        if backend_status("cpp")[0]:
            G, sd = rank_gram_cpp(X, corr)
            got = solve_torch(torch.from_numpy(G.astype(np.float64)), torch.from_numpy(sd), 0.5, 0.9)
            assert rel_err(got, ref) < tol


@pytest.mark.parametrize("corr", ["spearman", "pearson"])
def test_cupy_backend_through_the_standin(cupy_standin, corr):
    """The cupy module's own entry point (upload, device guard, device solve) against the reference."""
    X, y = planted(300, 40, 3, seed=5)
    X = with_quirks(X)
    ref = score(X, y, "inffs", backend="numpy", corr=corr, alpha=0.3).features
    res = score(X, y, "inffs", backend="cupy", corr=corr, alpha=0.3)
    assert res.backend == "cupy"
    assert rel_err(res.features, ref) < 1e-10
