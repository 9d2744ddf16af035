"""The inf-FS Gram matrix of float32 data on the CPU: float32 tiles of rows, added in float64.

One float32 BLAS product over all N rows adds thousands of BLAS blocks into float32 sums, so its
error grows with N (the bias the CUDA kernel had at ImageNet size); ``tiled_gram`` bounds it by one
tile (swnas/scoring/_inffs_cpp.py). The ``numba`` backend ranks into float64 and multiplies in
float64 throughout.
"""

from __future__ import annotations

import numpy as np
import pytest

from swnas.scoring import backend_status, score
from swnas.scoring import _inffs_cpp
from swnas.scoring.inffs import centred_ranks

pytestmark = pytest.mark.skipif(not backend_status("cpp")[0], reason="the compiled core is not built")


@pytest.mark.parametrize("transposed", [False, True], ids=["Z", "Zt"])
def test_tiles_are_float32_products_summed_in_float64(monkeypatch, transposed):
    monkeypatch.setattr(_inffs_cpp, "GRAM_TILE_ROWS", 1000)
    Z = np.random.default_rng(3).standard_normal((4500, 40)).astype(np.float32) * 1e3  # 4 tiles + a part
    expect = np.zeros((40, 40))
    for b in range(0, 4500, 1000):
        Zb = Z[b : b + 1000]
        expect += (Zb.T @ Zb).astype(np.float64)
    G = _inffs_cpp.tiled_gram(np.ascontiguousarray(Z.T) if transposed else Z, transposed=transposed)
    assert G.dtype == np.float64
    np.testing.assert_allclose(G, expect, rtol=1e-6)  # syrk and gemm may round a tile differently
    Z64 = Z.astype(np.float64)
    np.testing.assert_array_equal(_inffs_cpp.tiled_gram(Z64), Z64.T @ Z64)  # float64: one product


#: measured on this data (60,000 x 48 float32, 2 tiles of ranks up to +-30,000): correlations from
#: the tiled Gram within 7.3e-7 of float64 (one float32 product: 6.6e-7; the two part only at far
#: larger N), inf-FS scores within 9e-9 (cpp) and 6e-13 (numba) relative; the target is 1e-6.
@pytest.mark.parametrize("corr", ["spearman", "pearson"])
def test_float32_scores_match_the_float64_reference(monkeypatch, corr):
    monkeypatch.setattr(_inffs_cpp, "GRAM_TILE_ROWS", 32_768)
    rng = np.random.default_rng(7)
    X = np.maximum(rng.standard_normal((60_000, 48)), 0.0)
    X[:, :24] += 0.5 * X[:, 24:]  # correlated pairs
    X = (X + 100.0).astype(np.float32)
    y = rng.integers(0, 2, len(X))  # inf-FS ignores the labels
    ref = score(X.astype(np.float64), y, "inffs", backend="numpy", corr=corr).features
    for backend in ("cpp", "numba"):
        if not backend_status(backend)[0]:
            continue
        got = score(X, y, "inffs", backend=backend, corr=corr).features
        assert np.max(np.abs(got - ref)) / np.max(np.abs(ref)) < 1e-6, backend
    if corr == "spearman":
        Z = centred_ranks(X.astype(np.float64))
        G = _inffs_cpp.rank_gram_cpp(X, corr)[0]
        exact = Z.T @ Z
        d, e = np.sqrt(np.diag(G)), np.sqrt(np.diag(exact))
        assert np.max(np.abs(G / np.outer(d, d) - exact / np.outer(e, e))) < 2e-6
