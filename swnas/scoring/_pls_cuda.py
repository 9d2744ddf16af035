"""PLS-VIP on the ``cuda`` backend: the passes over X as CUDA kernels (``swnas._cuda``).

The same scheme as :mod:`swnas.scoring._pls_cpp` (docs/scorers.md, section 1): one statistics pass,
then per component one projection pass; 1 + 2A reads of X from device memory. GPU data stays where
it is (borrowed zero-copy); host data is uploaded once, to the current CUDA device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from swnas.errors import InputError
from swnas.scoring._arrays import array_info
from swnas.scoring._host import host_codes, host_matrix
from swnas.scoring._pls_algebra import PlsAlgebra, run_lockstep
from swnas.scoring.backends import cuda_module, register

__all__ = ["cuda_matrix", "current_cuda_device", "pls_vip_cuda", "pls_vip_cuda_many"]


def current_cuda_device() -> int:
    """The CUDA device host data is uploaded to: torch's current device (each torchrun rank sets its
    own), 0 when torch has no CUDA."""
    try:
        import torch

        if torch.cuda.is_available():
            return int(torch.cuda.current_device())
    except Exception:  # pragma: no cover - torch without CUDA support
        pass
    return 0


def cuda_matrix(mod: Any, X: Any, device: int | None = None):
    """A ``PlsMatrix`` for ``X``: borrowed zero-copy for CUDA torch/CuPy data, else uploaded once.

    A non-contiguous GPU array is made contiguous once (on the GPU) first, because the kernels
    read whole rows.
    """
    info = array_info(X)
    n, p = info.shape
    if info.dtype not in (np.float32, np.float64):  # the kernels read float32 or float64, nothing else
        raise InputError(f"X: dtype {info.dtype} has no CUDA kernel (float32 or float64)")
    is_double = info.dtype == np.float64
    if info.device == "cuda" and info.kind == "torch":
        import torch

        if not X.is_contiguous():
            X = X.contiguous()
        dev = int(X.device.index or 0)
        # the passes wait (on the GPU) for torch's pending work on its current stream, nothing else
        stream = int(torch.cuda.current_stream(dev).cuda_stream)
        return mod.pls_matrix_from_device(int(X.data_ptr()), n, p, is_double, dev, X, stream)
    if info.device == "cuda":  # CuPy (or anything with __cuda_array_interface__)
        cai = X.__cuda_array_interface__
        itemsize = 8 if is_double else 4
        strides = cai.get("strides")
        if strides is not None and tuple(strides) != (p * itemsize, itemsize) and n > 1:
            import cupy

            X = cupy.ascontiguousarray(X)
            cai = X.__cuda_array_interface__
        stream = cai.get("stream") or 0  # the producer's stream when the exporter names one (1, 2: default streams)
        return mod.pls_matrix_from_device(int(cai["data"][0]), n, p, is_double, int(X.device.id), X, int(stream))
    return mod.pls_matrix_from_host(host_matrix(X), current_cuda_device() if device is None else device)


@register("pls", "cuda")
def pls_vip_cuda(X: Any, codes: np.ndarray, n_classes: int, n_components: int = 2, scale: bool = True) -> np.ndarray:
    """PLS-VIP with the CUDA passes; GPU data stays where it is, host data is uploaded once."""
    mod = cuda_module()
    M = cuda_matrix(mod, X)
    stats = M.stats(host_codes(codes), int(n_classes))
    alg = PlsAlgebra.from_stats(stats, M.shape[0], scale, "X")
    return alg.vip(n_components, lambda v, c: M.project(v, c), lambda v, c: M.project(v, c, loading=False))


@register("pls", "cuda", batched=True)
def pls_vip_cuda_many(
    problems: Sequence[tuple[Any, np.ndarray, int]], n_components: int = 2, scale: bool = True
) -> list[np.ndarray]:
    """PLS-VIP of many problems on the GPU: the statistics passes are one C++ call (a loop over the
    problems) and each round of projections is one C++ call over all of them, each problem on its
    own stream."""
    mod = cuda_module()
    mats = [cuda_matrix(mod, X) for X, _, _ in problems]
    stats = mod.pls_stats_many(mats, [host_codes(c) for _, c, _ in problems], [int(C) for _, _, C in problems])
    algs = [
        PlsAlgebra.from_stats(s, M.shape[0], scale, f"problems[{i}].X") for i, (s, M) in enumerate(zip(stats, mats))
    ]

    def project_many(batch: dict[int, tuple]) -> dict[int, Any]:
        # args (v, c) or (v, c, False): the last component's projection without the X't kernel
        answers: dict[int, Any] = {}
        for loading in (True, False):
            idx = sorted(i for i, args in batch.items() if (len(args) < 3 or args[2]) == loading)
            if idx:
                outs = mod.pls_project_many(
                    [mats[i] for i in idx], [batch[i][0] for i in idx], [batch[i][1] for i in idx], loading=loading
                )
                answers.update(zip(idx, outs))
        return answers

    tasks = [
        (lambda project, alg=alg: alg.vip(n_components, project, lambda v, c: project(v, c, False))) for alg in algs
    ]
    return run_lockstep(tasks, project_many)
