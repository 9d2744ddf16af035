"""The public scoring API: ``score``, ``score_many`` and the criterion registry behind them.

The registry itself (``Criterion``, ``ScoreResult``, ``register_criterion``, ...) lives in
:mod:`swnas.scoring.registry`, below every other scoring module; it is re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from swnas.errors import InputError
from swnas.scoring._arrays import check_problem, fit_float64_range
from swnas.scoring.backends import get_impl, resolve_backend
from swnas.scoring.registry import (
    Criterion,
    ScoreResult,
    _criterion,
    check_params,
    criteria,
    get_criterion,
    register_criterion,
    unregister_criterion,
)

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
