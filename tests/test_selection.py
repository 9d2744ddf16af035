"""scikit-learn selectors: estimator checks, pipelines, frames, labels, pickling, streaming, no copies."""

from __future__ import annotations

import pickle
import tracemalloc

import numpy as np
import pytest
from sklearn.base import clone

from conftest import planted
from swnas.errors import InputError
from swnas.scoring import score
from swnas.selection import ILFSSelector, InfFSSelector, VIPSelector

SELECTORS = [VIPSelector(k=2), InfFSSelector(k=2), InfFSSelector(k=2, corr="pearson"), ILFSSelector(k=2)]

#: checks expected to fail, and why (none: ILFSSelector reports n_iter_)
EXPECTED_FAILED: dict[str, dict[str, str]] = {}
#: checks scikit-learn skips itself, and why that is fine
SKIPPED_BY_SKLEARN = {"check_array_api_input"}  # runs only with SCIPY_ARRAY_API=1; no Array API claim


@pytest.mark.parametrize("est", SELECTORS, ids=lambda e: f"{type(e).__name__}-{getattr(e, 'corr', '')}")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
def test_check_estimator(est):
    from sklearn.utils.estimator_checks import check_estimator

    expected = EXPECTED_FAILED.get(type(est).__name__, {})
    results = check_estimator(est, expected_failed_checks=expected, on_fail=None)
    status = {}
    for r in results:
        status.setdefault(r["status"], set()).add(r["check_name"])
        assert r["status"] in ("passed", "xfail", "skipped"), (r["check_name"], r["exception"])
    assert status.get("xfail", set()) == set(expected)  # listed failures still fail (the list is not stale)
    assert status.get("skipped", set()) <= SKIPPED_BY_SKLEARN
    assert len(status["passed"]) > 30


@pytest.mark.slow
def test_pipeline_grid_search_tunes_k_on_digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline

    X, y = load_digits(return_X_y=True)
    pipe = Pipeline([("select", VIPSelector()), ("knn", KNeighborsClassifier(n_neighbors=3))])
    grid = GridSearchCV(pipe, {"select__k": [2, 8, 40]}, cv=3).fit(X, y)
    means = grid.cv_results_["mean_test_score"]
    assert grid.best_params_["select__k"] == 40 and grid.best_score_ > 0.9
    assert means[0] < means[1] < means[2]  # more of the best features help on digits
    # the fitted selector inside keeps the 40 best VIPs
    sel = grid.best_estimator_.named_steps["select"]
    np.testing.assert_allclose(sel.scores_, score(X, y, backend="numpy").features, atol=1e-9)
    assert sel.get_support().sum() == 40


def test_selects_top_k_and_threshold_and_ranks():
    X, y = planted(300, 12, 3, seed=5)
    sel = VIPSelector(k=3, backend="numpy").fit(X, y)
    ref = score(X, y, backend="numpy").features
    np.testing.assert_allclose(sel.scores_, ref, atol=1e-12)
    top = np.argsort(-ref)[:3]
    assert set(np.flatnonzero(sel.get_support())) == set(top)
    assert sel.ranking_[top[0]] == 1 and sorted(sel.ranking_) == list(range(1, 13))
    np.testing.assert_array_equal(sel.transform(X), X[:, np.sort(top)])
    thr = VIPSelector(k=None, threshold=1.0).fit(X, y)
    np.testing.assert_array_equal(thr.get_support(), thr.scores_ >= 1.0)
    assert 0 < thr.get_support().sum() < 12
    assert VIPSelector(k="all").fit(X, y).get_support().all()
    with pytest.warns(UserWarning, match="k=50 is greater than n_features=12"):
        assert VIPSelector(k=50).fit(X, y).get_support().all()  # more than there are: all of them
    with pytest.raises(InputError, match="k or threshold, not both"):
        VIPSelector(k=3, threshold=1.0).fit(X, y)
    with pytest.raises(InputError, match="k: must be"):
        VIPSelector(k=-1).fit(X, y)
    with pytest.raises(InputError, match="n_components"):
        VIPSelector(n_components=0).fit(X, y)


@pytest.mark.parametrize("cls, kw", [(VIPSelector, {}), (InfFSSelector, {"alpha": 0.3}), (ILFSSelector, {"TT": 6})])
def test_criterion_parameters_reach_the_scorer(cls, kw):
    X, y = planted(200, 8, 3, seed=6)
    sel = cls(k=2, backend="numpy", **kw).fit(X, y)
    ref = score(X, y, criterion=sel._criterion, backend="numpy", **kw).features
    np.testing.assert_allclose(sel.scores_, ref, atol=1e-12)


def test_dataframe_keeps_feature_names_and_string_labels_work():
    pd = pytest.importorskip("pandas")
    X, y = planted(240, 6, 3, seed=7)
    cols = [f"f_{c}" for c in "abcdef"]
    df = pd.DataFrame(X, columns=cols)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    sel = VIPSelector(k=2).fit(df, pd.Series(labels))
    np.testing.assert_allclose(sel.scores_, VIPSelector(k=2).fit(X, y).scores_, atol=1e-12)
    assert list(sel.classes_) == ["setosa", "versicolor", "virginica"]
    assert list(sel.feature_names_in_) == cols
    best = [cols[i] for i in np.sort(np.argsort(-sel.scores_)[:2])]
    assert list(sel.get_feature_names_out()) == best
    out = sel.set_output(transform="pandas").transform(df)
    assert list(out.columns) == best
    np.testing.assert_array_equal(out.to_numpy(), df[best].to_numpy())


def test_negative_and_sparse_integer_labels():
    X, y = planted(200, 6, 4, seed=8)
    sparse = np.array([-3, 0, 17, 1000])[y]
    sel = ILFSSelector(k=2, backend="numpy").fit(X, sparse)
    np.testing.assert_array_equal(sel.classes_, [-3, 0, 17, 1000])
    np.testing.assert_allclose(sel.scores_, score(X, y, criterion="ilfs", backend="numpy").features, atol=1e-12)


@pytest.mark.parametrize("est", SELECTORS, ids=lambda e: type(e).__name__)
def test_pickle_round_trip(est):
    X, y = planted(150, 7, 3, seed=9)
    fitted = clone(est).fit(X, y)
    back = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(back.scores_, fitted.scores_)
    np.testing.assert_array_equal(back.transform(X), fitted.transform(X))
    assert back.get_params() == fitted.get_params()


def test_no_copy_of_float32_input(monkeypatch):
    """The selector hands the caller's C-contiguous float32 array itself to the scorer."""
    import swnas.selection as selection

    X, y = planted(20000, 256, 5, seed=10, dtype=np.float32)  # 20 MB
    seen = []

    def spy(Xs, ys, **kw):
        seen.append(Xs)
        return score(Xs, ys, **kw)

    monkeypatch.setattr(selection, "score", spy)
    VIPSelector(k=5, backend="cpp").fit(X, y)
    assert seen[0] is X or np.shares_memory(seen[0], X)
    monkeypatch.undo()
    sel = VIPSelector(k=5, backend="cpp")
    sel.fit(X[:100], y[:100])  # warm-up: imports and first-call allocations
    tracemalloc.start()
    sel.fit(X, y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # the labels cost O(N) (codes, sorting); a copy of X would cost X.nbytes
    assert peak < 0.2 * X.nbytes, f"fit allocated {peak} bytes for a {X.nbytes}-byte X"


def test_torch_input_scored_where_it_lives():
    torch = pytest.importorskip("torch")  # the search extra
    X, y = planted(200, 9, 3, seed=11)
    sel = VIPSelector(k=3).fit(torch.from_numpy(X), torch.from_numpy(y))
    np.testing.assert_allclose(sel.scores_, VIPSelector(k=3).fit(X, y).scores_, atol=1e-12)
    assert sel.n_features_in_ == 9 and not hasattr(sel, "feature_names_in_")
    np.testing.assert_array_equal(sel.transform(X), X[:, sel.get_support()])


@pytest.mark.parametrize(
    "sel", [VIPSelector(k=3, n_components=3), InfFSSelector(k=3, corr="pearson", alpha=0.7)], ids=["vip", "inffs"]
)
def test_partial_fit_equals_fit(sel):
    X, y = planted(900, 10, 3, seed=12, mean=40.0)
    labels = np.array(["x", "y", "z"])[y]
    full = clone(sel).fit(X, labels)
    part = clone(sel)
    order = np.argsort(y, kind="stable")  # the first chunks hold one class only
    for i in range(0, 900, 100):
        part.partial_fit(X[order[i : i + 100]], labels[order[i : i + 100]])
        if i == 0:
            assert not hasattr(part, "scores_")  # one class so far: nothing to score yet
    np.testing.assert_allclose(part.scores_, full.scores_, atol=1e-9)
    assert list(part.classes_) == ["x", "y", "z"]
    with pytest.raises(InputError, match="labels must lie in"):
        clone(sel).partial_fit(X[:10], y[:10], classes=[0, 1]).partial_fit(X[:3], [2, 2, 2])


def test_partial_fit_only_where_the_criterion_streams():
    assert not hasattr(ILFSSelector(), "partial_fit")
    assert not hasattr(InfFSSelector(), "partial_fit")
    with pytest.raises(AttributeError, match="partial_fit") as err:
        InfFSSelector().partial_fit(np.zeros((4, 2)), [0, 1, 0, 1])
    assert "corr='pearson'" in str(err.value) + str(err.value.__cause__)  # the reason travels along
    assert hasattr(InfFSSelector(corr="pearson"), "partial_fit")


# ------------------------------------------------------------------------------- k / threshold, y
def test_threshold_alone_and_the_default_k():
    X, y = planted(300, 12, 3, seed=5)
    ref = score(X, y, backend="numpy").features
    for cls in (VIPSelector, InfFSSelector, ILFSSelector):
        sel = cls(threshold=1.0).fit(X, y)  # no k=None needed
        assert sel.k is None
        np.testing.assert_array_equal(sel.get_support(), sel.scores_ >= 1.0)
    assert VIPSelector().fit(X, y).get_support().sum() == 10  # the default k
    assert set(np.flatnonzero(VIPSelector().fit(X, y).get_support())) == set(np.argsort(-ref)[:10])
    thr = VIPSelector(threshold=1.0).fit(X, y)
    assert 0 < thr.get_support().sum() < 12
    with pytest.raises(InputError, match="k or threshold, not both"):
        VIPSelector(k=10, threshold=1.0).fit(X, y)


def test_k_above_n_features_warns_as_select_k_best():
    import warnings

    from sklearn.feature_selection import SelectKBest, f_classif

    X, y = planted(100, 4, 2, seed=2)
    with pytest.warns(UserWarning) as sk:
        SelectKBest(f_classif, k=5).fit(X, y)
    for sel in (VIPSelector(k=5), InfFSSelector(k=5), ILFSSelector(k=5)):
        with pytest.warns(UserWarning, match="k=5 is greater than n_features=4") as ours:
            assert sel.fit(X, y).get_support().all()
        assert len(ours) == 1 and ours[0].filename == __file__  # points at the caller
    assert "k=5 is greater than n_features=4" in str(sk[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        VIPSelector(k=4).fit(X, y)  # exactly n_features: no warning
        VIPSelector(k="all").fit(X, y)
        VIPSelector(threshold=0.5).fit(X, y)
    with pytest.warns(UserWarning, match="k=5 is greater"):
        VIPSelector(k=5).partial_fit(X, y)


def test_inffs_fits_without_y():
    X, y = planted(200, 8, 3, seed=8)
    for kw in ({}, {"corr": "pearson"}):
        with_y = InfFSSelector(k=3, **kw).fit(X, y)
        without = InfFSSelector(k=3, **kw).fit(X)
        np.testing.assert_array_equal(without.scores_, with_y.scores_)
        assert not hasattr(without, "classes_") and list(with_y.classes_) == [0, 1, 2]
        np.testing.assert_array_equal(without.transform(X), with_y.transform(X))
        np.testing.assert_array_equal(InfFSSelector(k=3, **kw).fit_transform(X), with_y.transform(X))
    part = InfFSSelector(k=3, corr="pearson")
    for i in range(0, 200, 50):
        part.partial_fit(X[i : i + 50])
    np.testing.assert_allclose(part.scores_, InfFSSelector(k=3, corr="pearson").fit(X).scores_, atol=1e-9)
    assert InfFSSelector().__sklearn_tags__().target_tags.required is False
    with pytest.raises(InputError, match="requires y"):
        VIPSelector().fit(X)
    with pytest.raises(InputError, match="requires y"):
        ILFSSelector().fit(X)


def _sklearn_regression_vip(X, y, n_components, scale):
    from sklearn.cross_decomposition import PLSRegression

    m = PLSRegression(n_components=n_components, scale=scale, tol=1e-14, max_iter=5000).fit(X, y)
    W, T, Q = m.x_weights_, m.x_scores_, m.y_loadings_
    ss = (T * T).sum(0) * (Q * Q).sum(0)
    Wn = W / np.linalg.norm(W, axis=0)
    return np.sqrt(X.shape[1] * (Wn**2) @ ss / ss.sum())


@pytest.mark.parametrize("n_components, scale", [(1, True), (2, True), (3, False)])
def test_vip_selector_takes_a_continuous_response(n_components, scale):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(150, 9)) * rng.uniform(0.8, 1.2, 9) + 5.0
    X[:, 6] = 2.0  # constant: scores 0
    y = 1.5 * X[:, 2] - 0.7 * X[:, 5] + rng.normal(size=150) * 0.2
    sel = VIPSelector(k=2, n_components=n_components, scale=scale).fit(X, y)
    ref = _sklearn_regression_vip(X, y, n_components, scale)
    ref[6] = 0.0
    np.testing.assert_allclose(sel.scores_, ref, atol=1e-9)
    assert set(np.flatnonzero(sel.get_support())) == {2, 5}
    assert not hasattr(sel, "classes_")
    assert VIPSelector(k=2).fit(X.astype(np.float32), y).get_support(indices=True).tolist() == [2, 5]
    with pytest.raises(InputError, match="continuous"):
        ILFSSelector(k=2).fit(X, y)
    with pytest.raises(ValueError, match="1d array"):  # one response column
        VIPSelector(k=2).fit(X, np.c_[y, y])
    with pytest.raises(InputError, match="constant"):
        VIPSelector(k=2).fit(X, np.full(150, 0.5) + 0.25 * (np.arange(150) == -1))
    with pytest.raises(InputError, match="partial_fit takes class labels"):
        VIPSelector(k=2).partial_fit(X, y)
    # integer-valued floats stay class labels
    labels = (X[:, 2] > X[:, 2].mean()).astype(np.float64)
    np.testing.assert_allclose(
        VIPSelector(k=2).fit(X, labels).scores_, score(X, labels.astype(int), backend="numpy").features, atol=1e-9
    )


def test_ilfs_selector_reports_n_iter():
    X, y = planted(200, 8, 3, seed=9)
    sel = ILFSSelector(k=3).fit(X, y)
    from swnas.scoring.ilfs import ilfs_details

    codes = np.unique(y, return_inverse=True)[1]
    assert sel.n_iter_ == ilfs_details(X, codes, 3).n_iter > 1
    assert ILFSSelector(k=3, max_iter=2).fit(X, y).n_iter_ == 2
    for backend in ("numpy", "numba", "cpp"):
        assert score(X, y, criterion="ilfs", backend=backend).n_iter == sel.n_iter_
    assert score(X, y, criterion="pls").n_iter is None
