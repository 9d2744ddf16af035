"""The criterion registry and its records: ``Criterion``, ``ScoreResult`` and the functions over them.

It imports nothing from the rest of :mod:`swnas.scoring`, so every scoring module can read it
(docs/CONTRACTS.md); :mod:`swnas.scoring.api` re-exports its public names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swnas.errors import InputError

__all__ = [
    "ScoreResult",
    "Criterion",
    "register_criterion",
    "unregister_criterion",
    "criteria",
    "get_criterion",
    "check_params",
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
