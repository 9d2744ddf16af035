"""The criterion registry: behaviour outside a criterion's module is read from its record, never from
its name, so a toy criterion registered here (``spread``, with a NumPy backend) scores, validates,
selects, streams or is refused, and is searchable without an edit anywhere else."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.utils.metaestimators import available_if

from swnas.errors import InputError
from swnas.scoring import check_params, criteria, score, score_many
from swnas.scoring.api import Criterion, get_criterion, register_criterion, unregister_criterion
from swnas.scoring.backends import _IMPLS, check_backend, register
from swnas.scoring.streaming import StreamingScorer, streamable, supports_streaming
from swnas.selection import _ScoreSelector, _streams

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("pls", "inffs", "ilfs")


# ------------------------------------------------------------------------ no name checks elsewhere
def _decision_pattern(names) -> re.Pattern:
    """``x == "pls"``, ``"pls" != x``, ``x in ("inffs", ...)``, ``x not in ["ilfs"]``."""
    lit = "|".join(re.escape(n) for n in names)
    return re.compile(
        rf"""(==|!=)\s*["']({lit})["']|["']({lit})["']\s*(==|!=)"""
        rf"""|\bin\s*[(\[{{][^)\]}}]*["']({lit})["']"""
    )


def _owned(path: Path, names) -> bool:
    """A criterion's own files, and the modules that use the names as data (paper tables, studies)."""
    rel = path.relative_to(ROOT / "swnas").as_posix()
    if rel.startswith("paper/") or rel == "study.py":
        return True
    return any(rel == f"scoring/{n}.py" or rel.startswith(f"scoring/_{n}_") for n in names)


def test_no_criterion_name_is_compared_with_a_literal_outside_its_module():
    """Range fitting, streaming, Dask, labels and search defaults read the record (docs/CONTRACTS.md)."""
    names = sorted(set(criteria()) | set(NAMES))
    pattern = _decision_pattern(names)
    offenders = []
    for path in sorted((ROOT / "swnas").rglob("*.py")):
        if _owned(path, names):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line.split("#")[0]):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "criterion names compared outside their modules:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "line",
    [
        'if crit.name == "pls":',
        'if "inffs" != criterion:',
        'if crit.name in ("inffs", "ilfs") or x:',
        'ok = c not in ["ilfs"]',
        'if selector._criterion == "inffs" and selector.corr != "pearson":',
    ],
)
def test_the_guard_pattern_finds_a_literal_comparison(line):
    assert _decision_pattern(NAMES).search(line)


@pytest.mark.parametrize("line", ['def score(X, y, criterion: str = "pls"):', 'register("ilfs", "cpp")(f)'])
def test_the_guard_pattern_leaves_defaults_and_registrations_alone(line):
    assert not _decision_pattern(NAMES).search(line)


# ------------------------------------------------------------------------ the records of the three
def test_records_say_what_the_code_used_to_decide_by_name():
    pls, inffs, ilfs = (get_criterion(n) for n in NAMES)
    assert [c.needs_labels for c in (pls, inffs, ilfs)] == [True, False, True]
    assert pls.streams({}) and inffs.streams({"corr": "pearson"})
    assert not inffs.streams({}) and not ilfs.streams({})
    assert "Spearman" in inffs.stream_refusal({}) and inffs.stream_refusal({"corr": "pearson"}) == ""
    assert not supports_streaming("fisher")  # unknown: scoring it names the known criteria
    # float64 data far from 1 is brought into range before the criteria that square raw values;
    # PLS on cpp rescales in its own pass, and float32 squares always fit
    f64, f32 = np.dtype(np.float64), np.dtype(np.float32)
    assert pls.fit_range(f64, lambda: "numpy") and not pls.fit_range(f64, lambda: "cpp")
    assert not pls.fit_range(f32, lambda: "numpy")
    assert inffs.fit_range(f32, lambda: "cpp") and ilfs.fit_range(f64, lambda: "cpp")
    assert pls.score_dask is not None and inffs.score_dask is None and ilfs.score_dask is None
    assert pls.regression is not None and inffs.regression is None and ilfs.regression is None
    assert dict(pls.search_params) == {"n_components": 2} and not inffs.search_params and not ilfs.search_params
    assert streamable() == "'pls' or 'inffs' with corr='pearson'"
    assert inffs.title == "inf-FS" and pls.title == "PLS-VIP"


def test_unknown_criterion_names_the_registered_ones():
    with pytest.raises(InputError, match="unknown criterion 'fisher'; choose one of ilfs, inffs, pls"):
        get_criterion("fisher")


# ------------------------------------------------------------------------ a toy criterion
def check_spread_params(params: dict, n=None, p=None, n_classes=None) -> dict:
    params = dict(params)
    ddof = params.pop("ddof", 1)
    if params:
        raise InputError(f"spread: unknown parameter(s) {', '.join(sorted(params))}; spread takes ddof")
    if ddof not in (0, 1) or isinstance(ddof, bool):
        raise InputError(f"ddof: must be 0 or 1, got {ddof!r}")
    return {"ddof": int(ddof)}


def spread_reference(X, codes, n_classes, ddof: int = 1) -> np.ndarray:
    """Each column's variance over the mean variance: unchanged when X is scaled."""
    var = np.var(np.asarray(X, dtype=np.float64), axis=0, ddof=ddof)
    return var / var.mean()


def spread_from_stats(st: dict, params: dict) -> np.ndarray:
    var = np.diag(st["scatter"]) / (st["n"] - params["ddof"])
    return var / var.mean()


SPREAD = Criterion(
    name="spread",
    check=check_spread_params,
    min_samples=lambda params: 2,
    description="spread (relative column variance; unsupervised)",
    needs_labels=False,
    from_stats=spread_from_stats,
    search_params={"ddof": 1},
)


@pytest.fixture
def spread():
    """Register the toy criterion and its NumPy backend; forget both after the test."""
    register_criterion(SPREAD)
    register("spread", "numpy")(spread_reference)
    yield SPREAD
    unregister_criterion("spread")
    _IMPLS.pop(("spread", "numpy", False), None)
    assert "spread" not in criteria()


@pytest.fixture
def whole_matrix_spread(spread):
    """The toy criterion as a supervised one that needs every row at once (no streamed statistics)."""
    register_criterion(dataclasses.replace(SPREAD, from_stats=None, needs_labels=True))
    yield


class SpreadSelector(_ScoreSelector):
    """What a new criterion's selector is: its name, its parameters, nothing else."""

    _criterion = "spread"
    _param_names = ("ddof",)

    def __init__(self, k=None, threshold=None, ddof: int = 1, backend: str = "auto"):
        self.k = k
        self.threshold = threshold
        self.ddof = ddof
        self.backend = backend

    @available_if(_streams)
    def partial_fit(self, X, y=None, classes=None):
        return self._stream_update(X, y, classes)


def _data(n: int = 120, p: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * np.arange(1, p + 1)
    return X, np.arange(n) % 3


def test_a_registered_criterion_scores_and_checks_its_parameters(spread):
    X, y = _data()
    res = score(X, y, criterion="spread")
    np.testing.assert_allclose(res.features, spread_reference(X, y, 3), rtol=1e-12)
    assert (res.criterion, res.backend, res.params) == ("spread", "numpy", {"ddof": 1})
    assert [r.params for r in score_many([(X, y), (X[:50], y[:50])], criterion="spread", ddof=0)] == [{"ddof": 0}] * 2
    assert "spread" in criteria() and check_params("spread") == {"ddof": 1}
    assert check_backend("auto", "spread") == "numpy"
    with pytest.raises(InputError, match="ddof: must be 0 or 1"):
        check_params("spread", ddof=2)
    with pytest.raises(InputError, match="spread: unknown parameter"):
        score(X, y, criterion="spread", n_components=2)


def test_its_record_decides_the_float64_range_fitting(spread):
    """Squares of 1e200 overflow: the record's default fits the range first, so the scores are finite."""
    X, y = _data()
    np.testing.assert_allclose(score(X * 1e200, y, criterion="spread").features, spread_reference(X, y, 3), rtol=1e-9)
    register_criterion(dataclasses.replace(SPREAD, fit_range=lambda dtype, backend: False))
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.isfinite(score(X * 1e200, y, criterion="spread").features).all()


def test_a_streaming_record_streams_and_merges(spread):
    X, y = _data(300, 5, seed=1)
    assert supports_streaming("spread") and "'spread'" in streamable()
    acc = StreamingScorer("spread")
    for i in range(0, 300, 70):
        acc.update(X[i : i + 70], y[i : i + 70])
    res = acc.result()
    np.testing.assert_allclose(res.features, score(X, y, criterion="spread").features, rtol=1e-9)
    assert (res.criterion, res.backend, res.params) == ("spread", "streaming", {"ddof": 1})


def test_an_unsupervised_record_gives_a_selector_that_needs_no_labels(spread):
    X, y = _data(200, 8, seed=2)
    sel = SpreadSelector(k=3).fit(X)
    np.testing.assert_allclose(sel.scores_, spread_reference(X, y, 3), rtol=1e-12)
    assert not hasattr(sel, "classes_") and sel.get_support().sum() == 3
    assert sel.__sklearn_tags__().target_tags.required is False
    part = SpreadSelector(k=3).partial_fit(X[:90]).partial_fit(X[90:])
    np.testing.assert_allclose(part.scores_, sel.scores_, rtol=1e-9)


def test_a_supervised_whole_matrix_record_is_refused_by_streaming_dask_and_partial_fit(whole_matrix_spread):
    X, y = _data()
    assert SpreadSelector(k=3).fit(X, y).__sklearn_tags__().target_tags.required is True
    with pytest.raises(InputError, match="SpreadSelector requires y to be passed"):
        SpreadSelector(k=3).fit(X)
    with pytest.raises(InputError, match="SpreadSelector needs class labels, got a continuous response"):
        SpreadSelector(k=3).fit(X, np.linspace(0.0, 1.0, X.shape[0]))
    assert score(X, y, criterion="spread").backend == "numpy"
    assert not supports_streaming("spread") and "spread" not in streamable()
    with pytest.raises(InputError, match="needs the whole feature matrix; stream only 'pls' or 'inffs'"):
        StreamingScorer("spread")
    assert not hasattr(SpreadSelector(), "partial_fit")
    with pytest.raises(AttributeError, match="partial_fit: spread needs every row at once; use fit$"):
        _streams(SpreadSelector())
    da = pytest.importorskip("dask.array")
    with pytest.raises(InputError, match="'spread' needs every row at once and cannot run chunk by chunk"):
        score(da.from_array(X, chunks=40), y, criterion="spread")


def test_a_streaming_record_is_scored_on_dask_by_merged_statistics(spread):
    da = pytest.importorskip("dask.array")
    X, y = _data(300, 5, seed=3)
    res = score(da.from_array(X, chunks=70), y, criterion="spread")
    np.testing.assert_allclose(res.features, score(X, y, criterion="spread").features, rtol=1e-9)
    assert res.backend == "dask"


def test_a_registered_criterion_is_searchable_with_its_recorded_parameters(spread):
    from swnas.search import SearchConfig

    cfg = SearchConfig(criterion="spread", dataset="digits").resolved()
    assert cfg.score_params == {"ddof": 1}
    assert SearchConfig(criterion="inffs", dataset="digits").resolved().score_params == {}
    assert SearchConfig(criterion="pls", dataset="digits").resolved().score_params == {"n_components": 2}
    # a default fills in what the user left out, never what they chose
    assert SearchConfig(criterion="spread", dataset="digits", score_params={"ddof": 0}).resolved().score_params == {
        "ddof": 0
    }
    kept = SearchConfig(criterion="pls", dataset="digits", score_params={"n_components": 3, "scale": False})
    assert kept.resolved().score_params == {"n_components": 3, "scale": False}


def test_the_score_command_takes_an_unsupervised_criterion_without_labels(spread, tmp_path, capsys):
    from swnas.cli import main

    X, _ = _data(60, 4, seed=4)
    np.save(tmp_path / "f.npy", X)
    assert main(["score", str(tmp_path / "f.npy"), "--criterion", "spread", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"criterion": "spread"' in out and "spread is unsupervised: it ignores the labels" in out
    assert main(["score", str(tmp_path / "f.npy"), "--criterion", "pls"]) != 0  # it reads labels
    assert "only --criterion inffs or spread" in capsys.readouterr().err
