"""The public scoring API: backend resolution, input handling and clear errors (docs/backends.md)."""

from __future__ import annotations

import numpy as np
import pytest

from swnas.errors import BackendUnavailableError, InputError
from swnas.scoring import BACKENDS, available_backends, backend_status, criteria, score, score_many

from helpers import planted


def test_available_backends_and_reasons():
    avail = available_backends()
    assert "numpy" in avail
    assert set(avail) <= set(BACKENDS)
    for b in BACKENDS:
        ok, why = backend_status(b)
        assert ok == (b in avail)
        assert (why == "") == ok
    assert "pls" in criteria()


def test_unavailable_backend_says_why():
    for b in BACKENDS:
        ok, why = backend_status(b)
        if not ok:
            X, y = planted(50, 5, 2)
            with pytest.raises(BackendUnavailableError, match=b):
                score(X, y, backend=b)


def test_auto_picks_an_available_cpu_backend():
    X, y = planted(80, 6, 3)
    res = score(X, y)
    assert res.backend in available_backends() and res.backend not in ("cuda", "cupy")


def test_torch_and_list_inputs_agree_with_numpy():
    X, y = planted(120, 8, 3, seed=1)
    ref = score(X, y, backend="numpy").features
    np.testing.assert_allclose(score(X.tolist(), y.tolist(), backend="numpy").features, ref)
    torch = pytest.importorskip("torch")  # the search extra
    np.testing.assert_allclose(score(torch.from_numpy(X), torch.from_numpy(y), backend="numpy").features, ref)
    # integer features are promoted, not rejected
    Xi = np.round(X * 10).astype(np.int32)
    np.testing.assert_allclose(
        score(Xi, y, backend="numpy").features, score(Xi.astype(np.float64), y, backend="numpy").features
    )


def test_score_many_equals_score():
    probs = [planted(100 + 10 * i, 5 + i, 2 + i, seed=i) for i in range(3)]
    many = score_many(probs, backend="numpy", n_components=2)
    for (X, y), r in zip(probs, many):
        np.testing.assert_allclose(r.features, score(X, y, backend="numpy").features, atol=1e-12)


@pytest.mark.parametrize(
    "X, y, kwargs, match",
    [
        (np.zeros((10, 3)), np.arange(9) % 2, {}, "9 labels but X has 10 samples"),
        (np.zeros(10), np.arange(10) % 2, {}, "2-D matrix"),
        (np.zeros((10, 0)), np.arange(10) % 2, {}, "no features"),
        (np.zeros((10, 3), dtype=complex), np.arange(10) % 2, {}, "not a real number type"),
        (np.array([["a", "b"], ["c", "d"]]), np.array([0, 1]), {}, "not a real number type"),
        (np.ones((10, 3)), np.zeros(10, dtype=int), {}, "at least 2 classes"),
        (np.ones((10, 3)), np.linspace(0, 1, 10), {}, "non-integral"),
        (np.ones((3, 5)), np.array([0, 1, 0]), {"n_components": 3}, "has 3 samples; this criterion needs at least 4"),
        (np.ones((30, 2)), np.arange(30) % 2, {"n_components": 3}, "at least 3 features"),
        (np.ones((30, 4)), np.arange(30) % 2, {"n_components": 0}, "positive integer"),
        (np.ones((30, 4)), np.arange(30) % 2, {"n_components": 1.5}, "positive integer"),
        (np.ones((30, 4)), np.arange(30) % 2, {"scale": "yes"}, "scale"),
        (np.ones((30, 4)), np.arange(30) % 2, {"n_comp": 2}, "unknown parameter"),
        ("X.npy", np.arange(3), {}, "expected a NumPy array"),
    ],
)
def test_bad_input_is_a_clear_error(X, y, kwargs, match):
    with pytest.raises(InputError, match=match):
        score(X, y, backend="numpy", **kwargs)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_named(bad):
    X, y = planted(40, 6, 2)
    X[7, 4] = bad
    with pytest.raises(InputError, match=r"NaN or Inf.*columns 4"):
        score(X, y, backend="numpy")


def test_unknown_names():
    X, y = planted(40, 6, 2)
    with pytest.raises(InputError, match="unknown criterion 'vip'"):
        score(X, y, criterion="vip")
    with pytest.raises(InputError, match="unknown backend 'gpu'"):
        score(X, y, backend="gpu")
    with pytest.raises(InputError, match="non-empty list"):
        score_many([])
    with pytest.raises(InputError, match=r"problems\[1\]"):
        score_many([(X, y), (X, y[:-1])], backend="numpy")


def test_input_not_modified():
    X, y = planted(60, 7, 3)
    X0, y0 = X.copy(), y.copy()
    score(X, y, backend="numpy")
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_compiled_core_is_installed():
    # `pip install .` always builds swnas._core; if this fails, the tests are importing a source
    # tree without the extension (run `pytest` from the repo root, not `python -m pytest`).
    ok, why = backend_status("cpp")
    assert ok, why


def test_auto_never_picks_the_reference_when_a_compiled_backend_works():
    X, y = planted(80, 6, 3)
    for crit in criteria():
        res = score(X, y, crit)
        if "cpp" in available_backends():
            assert res.backend == "cpp"
        assert res.backend != "numpy" or available_backends() == ["numpy"]


def test_auto_order_is_the_documented_rule():
    from swnas.scoring.backends import BACKEND_TABLE, auto_order

    for crit in criteria():
        assert auto_order(crit, "cpu") == ["cpp", "numba", "numpy"]
        assert auto_order(crit, "cuda") == ["cuda", "cupy", "cpp", "numba", "numpy"]
    assert BACKENDS == tuple(r.name for r in BACKEND_TABLE)


def test_auto_falls_back_in_order_when_backends_are_missing(monkeypatch):
    import swnas.scoring.backends as bk

    down = {"cpp"}
    monkeypatch.setattr(bk, "backend_status", lambda name: (name not in down, "down" if name in down else ""))
    assert bk.resolve_backend("auto", "pls") == "numba"
    down.add("numba")
    assert bk.resolve_backend("auto", "pls") == "numpy"
    down.clear()
    assert bk.resolve_backend("auto", "pls", "cuda") == "cuda"


def test_check_params_validates_without_data():
    from swnas.scoring import check_params

    assert check_params("pls") == {"n_components": 2, "scale": True}
    assert check_params("inffs", corr="pearson")["corr"] == "pearson"
    assert check_params("ilfs", TT=6)["TT"] == 6
    with pytest.raises(InputError, match="criterion"):
        check_params("vip")
    with pytest.raises(InputError, match="n_components"):
        check_params("pls", n_components=0)
    with pytest.raises(InputError, match="alpha"):
        check_params("inffs", alpha=2.0)
    with pytest.raises(InputError, match="unknown parameter"):
        check_params("ilfs", n_components=2)


def test_check_backend_names_the_problem():
    from swnas.scoring import check_backend

    assert check_backend("auto", "pls") in available_backends()
    assert check_backend("numpy", "ilfs") == "numpy"
    with pytest.raises(InputError, match="backend"):
        check_backend("fortran", "pls")
    with pytest.raises(InputError, match="criterion"):
        check_backend("auto", "nope")
    with pytest.raises(InputError, match="device"):
        check_backend("auto", "pls", "tpu")
    for b in BACKENDS:
        if not backend_status(b)[0]:
            with pytest.raises(BackendUnavailableError, match=b):
                check_backend(b, "pls")


def test_implementations_live_in_modules_named_by_criterion_and_backend():
    """docs/backends.md: a backend is one table record plus modules ``_<criterion>_<backend>.py``."""
    from swnas.scoring.backends import _IMPLS

    assert {c for c, _, _ in _IMPLS} == set(criteria())
    for (crit, backend, _batched), fn in _IMPLS.items():
        expected = f"swnas.scoring.{crit}" if backend == "numpy" else f"swnas.scoring._{crit}_{backend}"
        assert fn.__module__ == expected, (crit, backend, fn.__module__)
