"""PLS-VIP with ImageNet's class count (C = 1,000) at CI size, against the float64 NumPy reference.

C = 1,000 takes paths that small class counts never reach: the class-major statistics pass of the
``cpp`` backend (the C x p accumulators no longer fit in cache, csrc/cpu/pls_cpu.cpp) and the
Lanczos eigensolver of the shared algebra (:func:`swnas.scoring._pls_algebra.dominant_direction`).
The data: post-ReLU Gaussian features with a class signal planted in 16 columns, 1,000 classes of
about 24 rows each (so classes are cut by the pass's row groups), two classes empty.
"""

from __future__ import annotations

import numpy as np
import pytest

from swnas.scoring import _pls_algebra
from swnas.scoring._pls_cpp import pls_vip_cpp, pls_vip_cpp_many
from swnas.scoring.backends import core
from swnas.scoring.pls import pls_vip_reference

N, P, C, A = 24_000, 320, 1000, 2
#: measured largest |VIP - reference| on this data: 2.6e-12 (float32 X) and 1.7e-12 (float64 X), the
#: reference's plain float64 sums against the pass's shifted ones (VIP values up to 7); the
#: reference's Lanczos and full-eigh paths agree to 7e-14. The bound leaves a factor of ~40.
TOL = 1e-10


def _problem(dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(25)
    y = rng.integers(0, C, N).astype(np.int32)
    y[np.isin(y, [3, 999])] = 4  # empty classes, one of them the last
    cols = rng.choice(P, 16, replace=False)
    X = rng.standard_normal((N, P))
    X[:, cols] += rng.standard_normal((C, 16))[y]
    X = np.maximum(X, 0.0) + 10.0  # a large mean against the spread: the shifted sums matter
    return X.astype(dtype), y, cols


@pytest.fixture(scope="module", params=[np.float32, np.float64], ids=["f32", "f64"])
def problem(request):
    X, y, cols = _problem(request.param)
    return X, y, cols, pls_vip_reference(X.astype(np.float64), y, C, A)


def test_stats_pass_equals_float64_sums(problem):
    X, y, _, _ = problem
    colsum, sq, class_sums, counts = core().pls_stats(X, y, C)
    Xd = X.astype(np.float64)
    order = np.argsort(y, kind="stable")
    bounds = np.searchsorted(y[order], np.arange(C + 1))
    expect = np.stack([Xd[order[bounds[c] : bounds[c + 1]]].sum(axis=0) for c in range(C)])
    np.testing.assert_array_equal(counts, np.bincount(y, minlength=C))
    np.testing.assert_allclose(class_sums, expect, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(colsum, Xd.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sq, ((Xd - Xd.mean(axis=0)) ** 2).sum(axis=0), rtol=1e-9)
    assert not class_sums[[3, 999]].any()


def test_vip_equals_reference(problem):
    X, y, cols, ref = problem
    vip = pls_vip_cpp(X, y, C, n_components=A)
    assert np.max(np.abs(vip - ref)) < TOL
    assert set(np.argsort(vip)[-16:]) == set(cols)  # the planted columns rank on top


def test_lanczos_direction_equals_full_eigh(problem, monkeypatch):
    X, y, _, _ = problem
    vip = pls_vip_cpp(X, y, C, n_components=A)
    monkeypatch.setattr(_pls_algebra, "ITERATIVE_MIN_SIDE", 10**9)  # every eigenproblem by eigh
    exact = pls_vip_reference(X.astype(np.float64), y, C, A)
    assert np.max(np.abs(vip - exact)) < TOL


def test_batched_equals_single_bit_for_bit(problem):
    X, y, _, _ = problem
    single = pls_vip_cpp(X, y, C, n_components=A)
    for parallel in ("rows", "problems"):
        many = pls_vip_cpp_many([(X, y, C), (X[:5000], y[:5000], C)], n_components=A, parallel=parallel)
        np.testing.assert_array_equal(many[0], single)


@pytest.mark.parametrize("p,c", [(300, 400), (400, 300)])
def test_dominant_direction_both_orientations(p, c):
    s = np.random.default_rng(p).standard_normal((p, c))
    w = _pls_algebra.dominant_direction(s)
    evals, evecs = np.linalg.eigh(s.T @ s)
    exact = s @ evecs[:, -1]
    assert abs(abs(w @ exact) - np.linalg.norm(w) * np.linalg.norm(exact)) < 1e-12 * np.linalg.norm(exact) ** 2
    np.testing.assert_allclose(np.linalg.norm(w), np.sqrt(evals[-1]), rtol=1e-12)
    assert not _pls_algebra.dominant_direction(np.zeros((p, c))).any()


@pytest.mark.parametrize("p,c", [(203, 97), (97, 203), (64, 64), (5, 3), (1, 1)])
def test_compiled_gram_product_equals_numpy(p, c):
    # the cpp backend's Lanczos products (csrc/cpu/pls_cpu.cpp, gram_right / gram_left): one read of s
    # per product, rows in fixed groups; against NumPy's two GEMVs in float64
    rng = np.random.default_rng(p * 1000 + c)
    s = rng.standard_normal((p, c))
    xr, xl = rng.standard_normal(c), rng.standard_normal(p)
    right = core().pls_gram_matvec(s, xr, True)
    left = core().pls_gram_matvec(s, xl, False)
    np.testing.assert_allclose(right, s.T @ (s @ xr), rtol=1e-12, atol=1e-12 * np.abs(right).max())
    np.testing.assert_allclose(left, s @ (s.T @ xl), rtol=1e-12, atol=1e-12 * np.abs(left).max())
    with pytest.raises(ValueError, match="one entry per column of s"):
        core().pls_gram_matvec(s, xl if p != c else xl[:-1], True)
    with pytest.raises(ValueError, match="one entry per row of s"):
        core().pls_gram_matvec(s, np.zeros(p + 1), False)


@pytest.mark.parametrize("p,c", [(300, 400), (400, 300)])
def test_dominant_direction_with_the_compiled_gram_product(p, c):
    s = np.random.default_rng(p).standard_normal((p, c))
    plain = _pls_algebra.dominant_direction(s)
    compiled = _pls_algebra.dominant_direction(s, core().pls_gram_matvec)
    assert abs(abs(plain @ compiled) - np.linalg.norm(plain) * np.linalg.norm(compiled)) < 1e-12 * plain @ plain
    np.testing.assert_allclose(np.linalg.norm(compiled), np.linalg.norm(plain), rtol=1e-12)


def test_cpp_backend_hands_its_gram_product_to_the_eigensolver(problem, monkeypatch):
    X, y, _, ref = problem
    seen = []
    plain = _pls_algebra.dominant_direction

    def spy(s, gram=None):
        seen.append(gram)
        return plain(s, gram)

    monkeypatch.setattr(_pls_algebra, "dominant_direction", spy)
    vip = pls_vip_cpp(X, y, C, n_components=A)
    assert seen and all(g is core().pls_gram_matvec for g in seen)
    assert np.max(np.abs(vip - ref)) < TOL
