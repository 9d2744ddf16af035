"""Arbitrary label values (strings, negative or sparse integers) and extreme finite magnitudes."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import planted
from swnas.errors import InputError
from swnas.scoring import score, score_many
from swnas.scoring._arrays import check_finite_stats, encode_labels, fit_float64_range, array_info


@pytest.mark.parametrize(
    "mapping",
    [
        np.array(["cat", "dog", "emu"]),
        np.array([-7, 3, 1000]),
        np.array([b"x", b"y", b"z"]),
        np.array(["b", "a", "c"], dtype=object),
    ],
)
@pytest.mark.parametrize("criterion", ["pls", "inffs", "ilfs"])
def test_any_label_values_score_like_codes(mapping, criterion):
    X, y = planted(150, 8, 3, seed=4)
    ref = score(X, y, criterion=criterion, backend="numpy").features
    got = score(X, mapping[y], criterion=criterion, backend="numpy").features
    # a relabelling permutes the classes only: PLS-VIP, inf-FS and il-FS do not depend on the order
    np.testing.assert_allclose(got, ref, atol=1e-12, rtol=0)


def test_encode_labels_sorted_like_label_encoder():
    from sklearn.preprocessing import LabelEncoder

    y = np.array(["b", "a", "c", "a", "b"])
    codes, classes = encode_labels(y, 5)
    enc = LabelEncoder().fit(y)
    assert list(classes) == list(enc.classes_)
    np.testing.assert_array_equal(codes, enc.transform(y))
    assert codes.dtype == np.int32
    codes, classes = encode_labels([5.0, -2.0, 5.0], 3)  # integral floats read as integers
    assert list(classes) == [-2, 5] and list(codes) == [1, 0, 1]
    torch = pytest.importorskip("torch")  # the search extra
    codes, classes = encode_labels(torch.tensor([3, 9, 3]), 3)
    assert list(classes) == [3, 9]


def test_pandas_series_labels():
    pd = pytest.importorskip("pandas")
    X, y = planted(90, 5, 3, seed=1)
    ref = score(X, y, backend="numpy").features
    got = score(X, pd.Series(np.array(["u", "v", "w"])[y]), backend="numpy").features
    np.testing.assert_allclose(got, ref, atol=1e-12)


@pytest.mark.parametrize(
    "y, msg",
    [
        (np.array([0.5, 1.0, 2.0]), "non-integral"),
        (np.array(["a", 1, "b"], dtype=object), "a mix of int, str"),
        (np.array(["a", None, "b"], dtype=object), "must not be missing"),
        (np.array([1.0, np.nan, 0.0]), "non-finite"),
        (np.array([1 + 2j, 0, 1]), "integers or strings"),
        (np.array(["a", "a", "a"]), "at least 2 classes"),
        (np.zeros((3, 2)), "1-D vector"),
    ],
)
def test_bad_labels_named(y, msg):
    with pytest.raises(InputError, match=msg) as err:
        score(np.random.default_rng(0).normal(size=(3, 4)), y)
    assert str(err.value).startswith("y:")


def test_score_many_with_string_labels():
    X, y = planted(120, 6, 4, seed=9)
    names = np.array(["w", "x", "y", "z"])
    out = score_many([(X, names[y]), (X[:60], names[y[:60]])], backend="numpy")
    np.testing.assert_allclose(out[0].features, score(X, y, backend="numpy").features, atol=1e-12)


# --------------------------------------------------------------------------- extreme magnitudes
@pytest.mark.parametrize("criterion", ["inffs", "ilfs"])
@pytest.mark.parametrize("backend", ["numpy", "numba", "cpp"])
@pytest.mark.parametrize("scale", [1e200, 1e-200])
def test_huge_and_tiny_values_rescaled_exactly(criterion, backend, scale):
    X, y = planted(200, 6, 3, seed=2)
    ref = score(X, y, criterion=criterion, backend=backend).features
    got = score(X * scale, y, criterion=criterion, backend=backend).features
    assert np.any(ref != 0.0)
    np.testing.assert_allclose(got, ref, atol=1e-10, rtol=0)


@pytest.mark.parametrize("backend", ["numpy", "numba", "cpp"])
def test_pls_huge_values_scored_and_nan_still_reported(backend):
    X, y = planted(200, 6, 3, seed=2)
    # squares of 1e200 overflow float64: scored as X * 2**k (PLS-VIP is invariant to a global scale)
    np.testing.assert_allclose(
        score(X * 1e200, y, backend=backend).features, score(X, y, backend="numpy").features, atol=1e-9, rtol=0
    )
    X[3, 2] = np.nan  # a real NaN is still called one
    with pytest.raises(InputError, match="NaN or Inf"):
        score(X, y, backend=backend)


def test_check_finite_stats_reads_columns_when_given_x():
    X = np.ones((4, 3))
    X[:, 1] = [1e300, -1e300, 1e300, 1e300]  # finite, but its sum of squares overflows
    X[2, 2] = np.inf
    with np.errstate(over="ignore", invalid="ignore"):
        colsum, sq = X.sum(axis=0), ((X - X.mean(axis=0)) ** 2).sum(axis=0)
    with pytest.raises(InputError, match=r"contains NaN or Inf values \(in columns 2\)"):
        check_finite_stats(colsum, sq, X=X)
    with pytest.raises(InputError, match="squares overflow float64 \\(in columns 1\\)"):
        check_finite_stats(colsum[:2], sq[:2], X=X[:, :2])


def test_fit_float64_range_copies_only_when_needed():
    X = np.random.default_rng(0).normal(size=(50, 4))
    assert fit_float64_range(X, array_info(X)) is X
    X32 = (X * 1e30).astype(np.float32)
    assert fit_float64_range(X32, array_info(X32)) is X32
    big = X * 2.0**700
    out = fit_float64_range(big, array_info(big))
    assert out is not big and 0.5 <= np.abs(out).max() < 1.0
    np.testing.assert_array_equal(out / np.abs(out).max(), X / np.abs(X).max())  # no digit changed
    torch = pytest.importorskip("torch")  # the search extra
    t = torch.from_numpy(big)
    np.testing.assert_array_equal(fit_float64_range(t, array_info(t)).numpy(), out)
    Xn = X.copy()
    Xn[0, 0] = np.nan  # left for the scorer to report, uncopied
    Xn *= 1e200
    assert fit_float64_range(Xn, array_info(Xn)) is Xn


def test_unpickled_float_arrays_reach_the_compiled_core_without_copy():
    import pickle

    from swnas.scoring._arrays import as_float_matrix

    X, y = planted(60, 5, 3, seed=3)
    X2 = pickle.loads(pickle.dumps(X))  # equal dtype, distinct dtype object
    view, _ = as_float_matrix(X2)
    assert np.shares_memory(view, X2)
    np.testing.assert_allclose(score(X2, y, backend="cpp").features, score(X, y, backend="cpp").features, atol=0)


@pytest.mark.parametrize(
    "y",
    [
        np.arange(50) % 7,  # 0..C-1, every class present: counted
        (np.arange(50) % 7).astype(np.uint8),
        np.array([3, 7, 7, 65535, 3], dtype=np.uint16),  # sparse values below 2**16: counted, remapped
        np.array([5, 2, 2, 9], dtype=np.int32),
        np.array([70000, 1, 1]),  # beyond the counting range: sorted
        np.array([-1, 2, 2]),  # negative: sorted
        np.array([True, False, True]),
    ],
)
def test_encode_labels_fast_path_equals_unique(y):
    codes, classes = encode_labels(y, y.size)
    ref_classes, ref_codes = np.unique(y, return_inverse=True)
    np.testing.assert_array_equal(classes, ref_classes)
    assert classes.dtype == ref_classes.dtype
    np.testing.assert_array_equal(codes, ref_codes.reshape(-1))
    assert codes.dtype == np.int32
    assert not np.shares_memory(codes, y)  # a backend may write its codes; the caller's labels stay
