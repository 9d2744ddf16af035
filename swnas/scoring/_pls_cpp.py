"""PLS-VIP on the ``cpp`` backend: the passes over X in C++/OpenMP (``swnas._core``).

Only the passes over X are compiled: one statistics pass (column sums, centred sums of squares,
per-class sums), then per component one fused pass that gives ``t = X v - c`` and ``X't``. The
small-matrix algebra is the shared float64 code of :mod:`swnas.scoring._pls_algebra`, so every
backend runs exactly the same algorithm (docs/scorers.md, section 1): 1 + A reads of X from memory
(the fused pass re-reads each row from cache; the last component's pass takes only the dot
products, since its loading X't is never used), peak extra memory O(p*C + N), X never copied when
it is C-contiguous float32/float64. float64 data whose squares would overflow or underflow is
scored as X * 2**k inside the passes (no copy; every criterion is invariant to a global scale).
Batched calls run the algebra of every problem in lock-step
(:func:`~swnas.scoring._pls_algebra.run_lockstep`) so that each round of passes over all problems is
one compiled call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from swnas.scoring._arrays import float64_range_shift
from swnas.scoring._host import host_codes, host_matrix
from swnas.scoring._pls_algebra import PlsAlgebra, run_lockstep
from swnas.scoring._threads import blas_single_thread
from swnas.scoring.backends import core, register

__all__ = ["pls_vip_cpp", "pls_vip_cpp_many"]


def _range_scale(mod: Any, A: np.ndarray, codes: np.ndarray, n_classes: int, stats: tuple) -> tuple[tuple, float]:
    """Redo the statistics pass of float64 X scaled by 2**k when its squares left float64's range.

    ``stats`` ends with max |X| (-1 for float32). Every PLS-VIP quantity is unchanged by a global
    scale and a power of two changes no digit, so X * 2**k is scored instead of X (docs/scorers.md,
    section 2), without a copy: the kernel multiplies each value as it reads it, and the
    projections pass ``v * 2**k`` and scale ``X't`` back (:func:`_scaled_projection`). Costs a
    second statistics pass only for such data; returns the statistics and the scale (1 if none).
    """
    k = float64_range_shift(float(stats[4]), A.shape[0])
    if k == 0:
        return stats[:4], 1.0
    s = float(np.ldexp(1.0, k))
    return mod.pls_stats(A, codes, int(n_classes), scale=s), s


def _scaled_projection(project_raw: Any, A: np.ndarray, s: float, loading: bool = True):
    """``project(v, c)`` on ``X * s`` by the compiled pass on X: X s v = X (s v), (X s)'t = s X't.

    ``loading=False``: the pass without X't (returned as None), for the last component.
    """
    if s == 1.0:
        return lambda v, c: project_raw(A, v, c, loading=loading)

    def project(v: np.ndarray, c: float):
        g, tsum, tt = project_raw(A, np.ascontiguousarray(v * s), c, loading=loading)
        return (np.asarray(g) * s if loading else None), tsum, tt

    return project


def _vip_cpp_setup(X: Any, codes: np.ndarray, n_classes: int, scale: bool, name: str):
    mod = core()
    A = host_matrix(X)
    codes = host_codes(codes)
    stats, s = _range_scale(mod, A, codes, n_classes, mod.pls_stats(A, codes, int(n_classes), with_absmax=True))
    return A, s, PlsAlgebra.from_stats(stats, A.shape[0], scale, name)


@register("pls", "cpp")
def pls_vip_cpp(X: Any, codes: np.ndarray, n_classes: int, n_components: int = 2, scale: bool = True) -> np.ndarray:
    """PLS-VIP with the C++/OpenMP passes (float32 or float64 X, read in place)."""
    with blas_single_thread():  # the algebra's tiny products must not wake BLAS threads (_threads.py)
        A, s, alg = _vip_cpp_setup(X, codes, n_classes, scale, "X")
        mod = core()
        project = mod.pls_project
        return alg.vip(
            n_components,
            _scaled_projection(project, A, s),
            _scaled_projection(project, A, s, False),
            mod.pls_gram_matvec,
        )


@register("pls", "cpp", batched=True)
def pls_vip_cpp_many(
    problems: Sequence[tuple[Any, np.ndarray, int]], n_components: int = 2, scale: bool = True, parallel: str = "auto"
) -> list[np.ndarray]:
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
    fitted = [
        _range_scale(mod, A, c, C, st)
        for A, c, C, st in zip(mats, codes, ncls, mod.pls_stats_many(mats, codes, ncls, parallel, with_absmax=True))
    ]
    algs = [
        PlsAlgebra.from_stats(st, A.shape[0], scale, f"problems[{i}].X")
        for i, ((st, _), A) in enumerate(zip(fitted, mats))
    ]
    scales = [s for _, s in fitted]

    def project_many(batch: dict[int, tuple]) -> dict[int, Any]:
        # args (v, c) or (v, c, False): the last component's pass without X't; one call per kind
        answers: dict[int, Any] = {}
        for loading in (True, False):
            idx = sorted(i for i, args in batch.items() if (len(args) < 3 or args[2]) == loading)
            if not idx:
                continue
            outs = mod.pls_project_many(
                [mats[i] for i in idx],
                [np.ascontiguousarray(batch[i][0] * scales[i]) for i in idx],
                [batch[i][1] for i in idx],
                parallel,
                loading=loading,
            )
            answers.update(
                {i: ((np.asarray(g) * scales[i] if loading else None), tsum, tt) for i, (g, tsum, tt) in zip(idx, outs)}
            )
        return answers

    tasks = [
        (
            lambda project, alg=alg: alg.vip(
                n_components, project, lambda v, c: project(v, c, False), mod.pls_gram_matvec
            )
        )
        for alg in algs
    ]
    with blas_single_thread():
        return run_lockstep(tasks, project_many)
