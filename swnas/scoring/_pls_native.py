"""PLS-VIP on the compiled backends: ``cpp`` (C++/OpenMP, ``swnas._core``) and ``cuda`` (``swnas._cuda``).

Only the passes over X are compiled: one statistics pass (column sums, centred sums of squares,
per-class sums), then per component one fused pass that gives ``t = X v - c`` and ``X't``. The
small-matrix algebra of improved kernel PLS is the NumPy float64 code of :mod:`swnas.scoring.pls`
(``standardised_cross`` / ``kernel_pls_vip``), so every backend runs exactly the same algorithm:
1 + A reads of X from memory on the CPU (the fused pass re-reads each row from cache), 1 + 2A on
the GPU, peak extra memory O(p*C + N), X never copied when it is C-contiguous float32/float64.

Batched calls run the algebra of every problem in lock-step (:func:`run_lockstep`) so that each
round of passes over all problems is one compiled call.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from swnas.scoring._arrays import array_info, check_finite_stats, to_numpy
from swnas.scoring.backends import core, cuda_module, register
from swnas.scoring.pls import constant_columns, kernel_pls_vip, standardised_cross

__all__ = ["PlsAlgebra", "run_lockstep", "pls_vip_cpp", "pls_vip_cpp_many", "pls_vip_cuda", "pls_vip_cuda_many",
           "host_matrix"]

#: ``project_raw(v, c) -> (X't, sum(t), t't)`` with ``t = X v - c``: one compiled projection pass
ProjectRaw = Callable[[np.ndarray, float], tuple[np.ndarray, float, float]]


@dataclass(frozen=True)
class PlsAlgebra:
    """The standardisation of one problem, from its statistics pass.

    Attributes
    ----------
    mu, sd : (p,) float64
        Column means and scales (ddof=1 std, 1 where it is 0 or ``scale=False``).
    xy : (p, C) float64
        X_s'Y_s, the standardised cross-product that kernel PLS deflates.
    """

    mu: np.ndarray
    sd: np.ndarray
    xy: np.ndarray
    constant: np.ndarray | None = None

    @classmethod
    def from_stats(cls, stats: Sequence[np.ndarray], n: int, scale: bool, name: str = "X") -> "PlsAlgebra":
        """``stats = (colsum, centred sum of squares, class_sums (C, p), counts)``; raises on NaN/Inf."""
        colsum, sq, class_sums, counts = (np.asarray(s, dtype=np.float64) for s in stats)
        check_finite_stats(colsum, sq, name)
        mu, sd, xy = standardised_cross(colsum, sq, class_sums, counts, n, scale)
        return cls(mu, sd, xy, constant_columns(colsum, sq, n))

    def vip(self, n_components: int, project_raw: ProjectRaw) -> np.ndarray:
        """VIP by kernel PLS; the Gram product of the standardised X comes from ``project_raw``."""
        mu, sd = self.mu, self.sd

        def project(r: np.ndarray) -> tuple[np.ndarray, float]:
            v = r / sd
            g_raw, tsum, tt = project_raw(np.ascontiguousarray(v), float(mu @ v))
            return (np.asarray(g_raw) - mu * tsum) / sd, float(tt)

        return kernel_pls_vip(self.xy, n_components, project, self.constant)


class _Failure:
    """An exception raised by a batched projection, handed to every waiting problem."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def run_lockstep(tasks: Sequence[Callable[[Callable[..., Any]], Any]],
                 project_many: Callable[[dict[int, tuple]], dict[int, Any]]) -> list[Any]:
    """Run ``tasks[i](project)`` side by side, batching their ``project`` calls.

    Each task runs in its own thread; its ``project(*args)`` blocks until every unfinished task is
    also waiting in ``project``, then the main thread answers all of them with one
    ``project_many({i: args})`` call (one compiled call over all problems). Tasks that stop early
    (kernel PLS stops when X'Y is exhausted) simply drop out. Exceptions propagate.
    """
    k = len(tasks)
    cond = threading.Condition()
    pending: dict[int, tuple] = {}
    answers: dict[int, Any] = {}
    results: dict[int, Any] = {}
    errors: dict[int, BaseException] = {}

    def make_project(i: int) -> Callable[..., Any]:
        def project(*args: Any) -> Any:
            with cond:
                pending[i] = args
                cond.notify_all()
                cond.wait_for(lambda: i in answers)
                ans = answers.pop(i)
            if isinstance(ans, _Failure):
                raise ans.exc
            return ans

        return project

    def worker(i: int) -> None:
        try:
            out = tasks[i](make_project(i))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors[i] = exc
            out = None
        with cond:
            results[i] = out
            cond.notify_all()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True, name=f"swnas-pls-{i}") for i in range(k)]
    for t in threads:
        t.start()
    while True:
        with cond:
            cond.wait_for(lambda: len(pending) + len(results) == k)
            if not pending:
                break
            batch = dict(pending)
            pending.clear()
        try:
            out = project_many(batch)
        except BaseException as exc:  # noqa: BLE001 - delivered to the tasks, then re-raised
            out = {i: _Failure(exc) for i in batch}
        with cond:
            answers.update(out)
            cond.notify_all()
    for t in threads:
        t.join()
    if errors:
        raise errors[min(errors)]
    return [results[i] for i in range(k)]


# --------------------------------------------------------------------------------------------
# cpp


def host_matrix(X: Any) -> np.ndarray:
    """Host NumPy view of ``X`` for the compiled CPU passes.

    Zero-copy for C-contiguous NumPy arrays and CPU torch tensors. Anything else is copied ONCE
    into a C-contiguous array, because the compiled passes stream whole rows and need them
    contiguous (a Fortran-ordered or strided X would otherwise be read with a stride per element).
    GPU data given to the ``cpp`` backend is copied to the host (use ``cuda`` to keep it there).
    """
    A = to_numpy(X)
    if not A.flags.c_contiguous:
        A = np.ascontiguousarray(A)
    return A


def _vip_cpp_setup(X: Any, codes: np.ndarray, n_classes: int, scale: bool, name: str):
    A = host_matrix(X)
    codes = np.ascontiguousarray(codes, dtype=np.int32)
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
    codes = [np.ascontiguousarray(c, dtype=np.int32) for _, c, _ in problems]
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


# --------------------------------------------------------------------------------------------
# cuda


def cuda_matrix(mod: Any, X: Any, device: int | None = None):
    """A ``PlsMatrix`` for ``X``: borrowed zero-copy for CUDA torch/CuPy data, else uploaded once.

    A non-contiguous GPU array is made contiguous once (on the GPU) first, because the kernels
    read whole rows.
    """
    info = array_info(X)
    n, p = info.shape
    is_double = info.dtype == np.float64
    if info.device == "cuda" and info.kind == "torch":
        if not X.is_contiguous():
            X = X.contiguous()
        return mod.pls_matrix_from_device(int(X.data_ptr()), n, p, is_double, int(X.device.index or 0), X)
    if info.device == "cuda":  # CuPy (or anything with __cuda_array_interface__)
        cai = X.__cuda_array_interface__
        itemsize = 8 if is_double else 4
        strides = cai.get("strides")
        if strides is not None and tuple(strides) != (p * itemsize, itemsize) and n > 1:
            import cupy

            X = cupy.ascontiguousarray(X)
            cai = X.__cuda_array_interface__
        return mod.pls_matrix_from_device(int(cai["data"][0]), n, p, is_double, int(X.device.id), X)
    return mod.pls_matrix_from_host(host_matrix(X), 0 if device is None else device)


@register("pls", "cuda")
def pls_vip_cuda(X: Any, codes: np.ndarray, n_classes: int, n_components: int = 2, scale: bool = True) -> np.ndarray:
    """PLS-VIP with the CUDA passes; GPU data stays where it is, host data is uploaded once."""
    mod = cuda_module()
    M = cuda_matrix(mod, X)
    stats = M.stats(np.ascontiguousarray(codes, dtype=np.int32), int(n_classes))
    alg = PlsAlgebra.from_stats(stats, M.shape[0], scale, "X")
    return alg.vip(n_components, lambda v, c: M.project(v, c))


@register("pls", "cuda", batched=True)
def pls_vip_cuda_many(problems: Sequence[tuple[Any, np.ndarray, int]], n_components: int = 2,
                      scale: bool = True) -> list[np.ndarray]:
    """PLS-VIP of many problems on the GPU: the statistics passes are one C++ call (a loop over the
    problems) and each round of projections is one C++ call over all of them, each problem on its
    own stream."""
    mod = cuda_module()
    mats = [cuda_matrix(mod, X) for X, _, _ in problems]
    stats = mod.pls_stats_many(mats, [np.ascontiguousarray(c, dtype=np.int32) for _, c, _ in problems],
                               [int(C) for _, _, C in problems])
    algs = [PlsAlgebra.from_stats(s, M.shape[0], scale, f"problems[{i}].X")
            for i, (s, M) in enumerate(zip(stats, mats))]

    def project_many(batch: dict[int, tuple]) -> dict[int, Any]:
        idx = sorted(batch)
        outs = mod.pls_project_many([mats[i] for i in idx], [batch[i][0] for i in idx], [batch[i][1] for i in idx])
        return dict(zip(idx, outs))

    tasks = [(lambda project, alg=alg: alg.vip(n_components, project)) for alg in algs]
    return run_lockstep(tasks, project_many)
