"""The public scoring API: ``score``, ``score_many`` and the criterion registry behind them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swnas.errors import InputError
from swnas.scoring._arrays import check_problem, fit_float64_range
from swnas.scoring.backends import get_impl, resolve_backend

__all__ = [
    "ScoreResult",
    "Criterion",
    "register_criterion",
    "unregister_criterion",
    "criteria",
    "get_criterion",
    "check_params",
    "score",
    "score_many",
]


@dataclass(frozen=True)
class ScoreResult:
    """Feature importances of one problem.

    Attributes
    ----------
    features : numpy.ndarray
        float64 per-feature scores, length p.
    stage : float
        The stage score: the mean of ``features`` (the paper's aggregation).
    criterion : str
    backend : str
        The backend that computed it (``auto`` resolved).
    params : dict
        The criterion parameters used, defaults filled in.
    n_iter : int or None
        Iterations an iterative criterion ran (il-FS's EM, capped by ``max_iter``); ``None`` for the
        others.
    """

    features: np.ndarray
    stage: float
    criterion: str
    backend: str
    params: dict = field(default_factory=dict)
    n_iter: int | None = None


def _always(dtype: Any, backend: Callable[[], str]) -> bool:
    return True


def _streams_if_it_can(params: dict) -> str:
    return ""


@dataclass(frozen=True)
class Criterion:
    """A feature-importance criterion: everything the rest of swnas asks about it.

    Code outside the criterion's own module reads these fields, never the criterion's name
    (``tests/test_criteria_registry.py`` checks), so a new criterion is its own module plus its
    backends (docs/backends.md, "Walk-through: add a criterion").

    Attributes
    ----------
    name : str
    check : callable
        ``check(params, n_samples, n_features, n_classes)`` returns the full parameter dict
        (defaults filled in) or raises :class:`InputError`; the sizes may be ``None`` (not known
        yet: validation before any data exists) and then only the parameters themselves are checked.
    min_samples : callable
        ``min_samples(params)``: the fewest rows it accepts.
    description : str
    needs_labels : bool
        Whether it reads the class labels (inf-FS does not: its selector and ``swnas score`` then
        need no ``y``).
    fit_range : callable
        ``fit_range(dtype, backend)``: whether :func:`score` first brings float64 data far from 1
        into range (criteria that square raw values); ``backend()`` resolves the backend on demand.
    from_stats : callable or None
        ``from_stats(statistics, params)``: the feature scores from the streamed statistics of
        :meth:`swnas.scoring.streaming.StreamingScorer.statistics` (``n``, ``mean``, ``scatter``,
        ``class_sums_centred``, ``counts``); ``None``: it needs every row at once (no streaming,
        no Dask).
    stream_refusal : callable
        ``stream_refusal(params)``: why these parameters cannot stream although the criterion can
        (inf-FS's Spearman ranks), or ``""``.
    stream_hint : str
        The parameters that make it stream (``"corr='pearson'"``), named in refusals.
    score_dask : callable or None
        ``score_dask(X, y, params, split_every)``: its own algorithm over a Dask array's chunks
        (PLS-VIP's passes); ``None``: the chunks' streamed statistics, merged in a tree.
    regression : callable or None
        ``regression(X, y, **params)``: scores for a continuous response (PLS regression), used by
        its selector; ``None``: class labels only.
    search_params : dict
        Parameters a search records explicitly in its configuration (``n_components`` for PLS).
    """

    name: str
    check: Callable[[dict, int | None, int | None, int | None], dict]
    min_samples: Callable[[dict], int] = lambda params: 2
    description: str = ""
    needs_labels: bool = True
    fit_range: Callable[[Any, Callable[[], str]], bool] = _always
    from_stats: Callable[[dict, dict], np.ndarray] | None = None
    stream_refusal: Callable[[dict], str] = _streams_if_it_can
    stream_hint: str = ""
    score_dask: Callable[[Any, Any, dict, int], ScoreResult] | None = None
    regression: Callable[..., np.ndarray] | None = None
    search_params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """Its short name for messages: the description up to its first parenthesis (``inf-FS``)."""
        return self.description.split(" (")[0].strip() or self.name

    def streams(self, params: dict) -> bool:
        """Whether it can be computed from streamed statistics with these parameters."""
        return self.from_stats is not None and not self.stream_refusal(params)


_CRITERIA: dict[str, Criterion] = {}


def register_criterion(c: Criterion) -> Criterion:
    """Make ``c`` known to :func:`score`, the selectors, streaming, Dask, the CLI and the search."""
    _CRITERIA[c.name] = c
    return c


def unregister_criterion(name: str) -> None:
    """Forget a criterion (tests that register a toy one remove it again)."""
    _CRITERIA.pop(name, None)


def criteria() -> list[str]:
    """Names of the known criteria."""
    return sorted(_CRITERIA)


def check_params(criterion: str, **params: Any) -> dict:
    """Validate a criterion's name and parameters before any data exists.

    Parameters
    ----------
    criterion : str
        One of :func:`criteria`.
    **params
        The criterion's parameters (e.g. ``n_components=2`` for ``pls``).

    Returns
    -------
    dict
        The full parameter dict, defaults filled in (what :class:`ScoreResult` will report).

    Raises
    ------
    InputError
        Unknown criterion, unknown parameter or a value out of range, naming the argument.
        Checks that need the data's size (``n_components`` against the number of features) run
        later, in :func:`score`.
    """
    crit = _criterion(criterion)
    return crit.check(dict(params), None, None, None)


def get_criterion(name: Any) -> Criterion:
    """The record of a registered criterion; :class:`InputError` naming the known ones otherwise."""
    return _criterion(name)


def _criterion(name: Any) -> Criterion:
    if not isinstance(name, str) or name not in _CRITERIA:
        raise InputError(f"criterion: unknown criterion {name!r}; choose one of {', '.join(criteria())}")
    return _CRITERIA[name]


def _prepare(X, y, crit: Criterion, params: dict, xname="X", yname="y", backend: str = "auto"):
    min_n = crit.min_samples(params)
    X, info, codes, n_classes = check_problem(X, y, min_samples=min_n, xname=xname, yname=yname)
    # criteria that square raw values: one min/max pass is cheap beside them (Criterion.fit_range)
    if crit.fit_range(info.dtype, lambda: resolve_backend(backend, crit.name, info.device)):
        X = fit_float64_range(X, info)
    full = crit.check(dict(params), info.shape[0], info.shape[1], n_classes)
    return X, info, codes, n_classes, full


def _is_dask(X: Any) -> bool:
    return type(X).__module__.startswith("dask.array")


def score(X, y, criterion: str = "pls", backend: str = "auto", **params) -> ScoreResult:
    """Score every feature of ``X`` for predicting the class labels ``y``.

    Parameters
    ----------
    X : array (N, p)
        NumPy array, torch tensor (CPU or CUDA) or CuPy array, float32 or float64. Never copied on
        the compiled backends; GPU data stays on the GPU with ``backend="auto"``.
    y : array (N,)
        Integer class labels (any values; at least two distinct).
    criterion : {"pls", "inffs", "ilfs"}
    backend : {"auto", "numpy", "numba", "cpp", "cuda", "cupy"}
        ``numpy`` is the float64 reference; ``auto`` picks by where X lives: ``cuda``, ``cupy`` for
        GPU data, then ``cpp``, ``numba``, ``numpy`` (docs/backends.md, "The auto rule").
    **params
        Criterion parameters, e.g. ``n_components=2, scale=True`` for PLS-VIP.

    Returns
    -------
    ScoreResult
    """
    if _is_dask(X):  # scored on the Dask workers (swnas.scoring.dask)
        from swnas.scoring.dask import score_dask

        return score_dask(X, y, criterion, backend, **params)
    crit = _criterion(criterion)
    X, info, codes, n_classes, full = _prepare(X, y, crit, params, backend=backend)
    b = resolve_backend(backend, crit.name, info.device)
    out = get_impl(crit.name, b)(X, codes, n_classes, **full)
    feats = np.asarray(out, dtype=np.float64)
    return ScoreResult(
        features=feats,
        stage=float(feats.mean()),
        criterion=crit.name,
        backend=b,
        params=full,
        n_iter=getattr(out, "n_iter", None),
    )


def score_many(
    problems: Sequence[tuple[Any, Any]], criterion: str = "pls", backend: str = "auto", **params
) -> list[ScoreResult]:
    """Score many ``(X, y)`` problems (e.g. every stage of A and of T) in one call.

    PLS-VIP on ``cpp``/``cuda`` makes one compiled call per round of passes over all problems,
    il-FS on ``cpp``/``cuda`` one compiled call for the batch, inf-FS on ``cuda`` one compiled call
    for every ranking and Gram matrix then a small solve per problem; inf-FS on ``cpp`` and every
    other backend loop over the problems (docs/backends.md, "Batched calls"). Dask arrays are
    scored one problem after another on the Dask workers, as :func:`score` does; a list must not mix
    Dask and in-memory problems.
    """
    crit = _criterion(criterion)
    if not isinstance(problems, (list, tuple)) or len(problems) == 0:
        raise InputError("problems: expected a non-empty list of (X, y) pairs")
    on_dask = [isinstance(pr, (list, tuple)) and len(pr) == 2 and _is_dask(pr[0]) for pr in problems]
    if any(on_dask):  # each scored on the Dask workers (swnas.scoring.dask), like score()
        if not all(on_dask):
            mixed = on_dask.index(False)
            raise InputError(
                f"problems[{mixed}]: is not an (X, y) pair with a Dask array X while problems"
                f"[{on_dask.index(True)}] is; score Dask and in-memory problems in separate calls"
            )
        from swnas.scoring.dask import score_dask

        return [score_dask(X, y, crit.name, backend, **params) for X, y in problems]
    prepared = []
    devices = set()
    for i, pr in enumerate(problems):
        if not isinstance(pr, (list, tuple)) or len(pr) != 2:
            raise InputError(f"problems[{i}]: expected an (X, y) pair")
        X, info, codes, n_classes, full = _prepare(
            pr[0], pr[1], crit, params, f"problems[{i}].X", f"problems[{i}].y", backend
        )
        prepared.append((X, codes, n_classes))
        devices.add(info.device)
    device = "cuda" if devices == {"cuda"} else "cpu"
    b = resolve_backend(backend, crit.name, device)
    batched = get_impl(crit.name, b, batched=True)
    if batched is not None:
        outs = batched(prepared, **full)
    else:
        impl = get_impl(crit.name, b)
        outs = [impl(X, codes, n_classes, **full) for X, codes, n_classes in prepared]
    results = []
    for out in outs:
        f = np.asarray(out, dtype=np.float64)
        results.append(
            ScoreResult(
                features=f,
                stage=float(f.mean()),
                criterion=crit.name,
                backend=b,
                params=full,
                n_iter=getattr(out, "n_iter", None),
            )
        )
    return results
