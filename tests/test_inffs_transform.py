"""The compiled inf-FS Pearson transform (csrc/cpu/inffs_cpu.cpp, center_rows) against float64 NumPy.

It streams whole rows in fixed row groups (the column-block walk it replaced read 256 bytes of each
row per pass); the column means, the ddof=1 std and the zeroed constant or non-finite columns must
come out as NumPy's.
"""

from __future__ import annotations

import numpy as np
import pytest

from swnas.scoring.backends import core


@pytest.mark.parametrize("n", [2, 63, 1000, 5003])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_centred_values_and_std_equal_numpy(n, dtype):
    rng = np.random.default_rng(n)
    X = (rng.standard_normal((n, 37)) * rng.uniform(0.1, 5.0, 37) + rng.uniform(-50, 50, 37)).astype(dtype)
    X[:, 3] = 7.25  # constant: std exactly 0, centred column exactly 0
    X[:, 5] = np.maximum(X[:, 5], 0)
    Z, std = core().inffs_transform(np.ascontiguousarray(X), False)
    Xd = X.astype(np.float64)
    expect = Xd - Xd.mean(axis=0)
    expect[:, 3] = 0.0
    # measured: |Z - expect| within one rounding of the output dtype at these magnitudes
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(Z, expect.astype(dtype), rtol=0, atol=tol * 64)
    assert Z.dtype == dtype and not Z[:, 3].any()
    sd = Xd.std(axis=0, ddof=1)
    sd[3] = 0.0
    np.testing.assert_allclose(std, sd, rtol=1e-11, atol=0)
    assert std[3] == 0.0


def test_a_non_finite_column_reports_nan_and_is_zeroed():
    X = np.random.default_rng(1).standard_normal((500, 6)).astype(np.float32)
    X[123, 2] = np.inf
    X[7, 4] = np.nan
    Z, std = core().inffs_transform(X, False)
    assert np.isnan(std[2]) and np.isnan(std[4])
    assert not Z[:, 2].any() and not Z[:, 4].any()
    assert np.isfinite(std[[0, 1, 3, 5]]).all()
