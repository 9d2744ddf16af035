"""PLS-VIP on the ``cpp`` backend: the passes over X in C++/OpenMP (``swnas._core``).

Only the passes over X are compiled: one statistics pass (column sums, centred sums of squares,
per-class sums), then per component one fused pass that gives ``t = X v - c`` and ``X't``. The
small-matrix algebra is the shared float64 code of :mod:`swnas.scoring._pls_algebra`, so every
backend runs exactly the same algorithm (docs/scorers.md, section 1): 1 + A reads of X from memory
(the fused pass re-reads each row from cache), peak extra memory O(p*C + N), X never copied when
it is C-contiguous float32/float64. Batched calls run the algebra of every problem in lock-step
(:func:`~swnas.scoring._pls_algebra.run_lockstep`) so that each round of passes over all problems is
one compiled call.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from swnas.scoring._host import host_codes, host_matrix
from swnas.scoring._pls_algebra import PlsAlgebra, run_lockstep
from swnas.scoring.backends import core, register

__all__ = ["pls_vip_cpp", "pls_vip_cpp_many"]


def _vip_cpp_setup(X: Any, codes: np.ndarray, n_classes: int, scale: bool, name: str):
    A = host_matrix(X)
    codes = host_codes(codes)
    stats = core().pls_stats(A, codes, int(n_classes))
    return A, PlsAlgebra.from_stats(stats, A.shape[0], scale, name)


@register("pls", "cpp")
def pls_vip_cpp(X: Any, codes: np.ndarray, n_classes: int, n_components: int = 2, scale: bool = True) -> np.ndarray:
    """PLS-VIP with the C++/OpenMP passes (float32 or float64 X, read in place)."""
    A, alg = _vip_cpp_setup(X, codes, n_classes, scale, "X")
    mod = core()
    return alg.vip(n_components, lambda v, c: mod.pls_project(A, v, c))


@register("pls", "cpp", batched=True)
def pls_vip_cpp_many(problems: Sequence[tuple[Any, np.ndarray, int]], n_components: int = 2,
                     scale: bool = True, parallel: str = "auto") -> list[np.ndarray]:
    """PLS-VIP of many problems: one compiled call per round of passes over all of them.

    ``parallel="rows"`` splits each problem's rows over the threads and runs the problems in turn;
    ``"problems"`` runs one problem per thread (faster on 2 cores for six stage-sized problems:
    210 ms against 345 ms); ``"auto"`` picks ``problems`` when there are at least as many problems
    as threads. All three give bit-identical results.
    """
    mod = core()
    mats = [host_matrix(X) for X, _, _ in problems]
    codes = [host_codes(c) for _, c, _ in problems]
    ncls = [int(C) for _, _, C in problems]
    stats = mod.pls_stats_many(mats, codes, ncls, parallel)
    algs = [PlsAlgebra.from_stats(s, A.shape[0], scale, f"problems[{i}].X")
            for i, (s, A) in enumerate(zip(stats, mats))]

    def project_many(batch: dict[int, tuple]) -> dict[int, Any]:
        idx = sorted(batch)
        outs = mod.pls_project_many([mats[i] for i in idx], [batch[i][0] for i in idx],
                                    [batch[i][1] for i in idx], parallel)
        return dict(zip(idx, outs))

    tasks = [(lambda project, alg=alg: alg.vip(n_components, project)) for alg in algs]
    return run_lockstep(tasks, project_many)
