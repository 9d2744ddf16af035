"""il-FS on the compiled backends: ``cpp`` (swnas._core) and ``cuda`` (swnas._cuda).

Both compute the class means and the token counts n(t, f) in compiled code (OpenMP over feature
blocks on the CPU; one thread per (sample, feature) on the GPU) and run the PLSA EM and the
Sherman-Morrison closed form in C++ (csrc/include/swnas/ilfs_math.h), the same arithmetic as
the NumPy reference. ``score_many`` is one compiled call for the whole batch.
"""
from __future__ import annotations

import numpy as np

from swnas.errors import InputError
from swnas.scoring._arrays import to_numpy
from swnas.scoring.backends import core, cuda_module, register

__all__ = ["ilfs_cpp", "ilfs_cpp_many", "ilfs_cuda", "ilfs_cuda_many"]


def _unpack(res, name: str = "X") -> np.ndarray:
    scores, v, loglik, counts, ok = res
    if not ok:
        raise InputError(f"{name}: contains NaN or Inf values")
    return scores


def _host(X):
    return np.ascontiguousarray(to_numpy(X))


def ilfs_cpp(X, codes, n_classes, TT: int = 4, max_iter: int = 1000, tol: float = 1e-6) -> np.ndarray:
    res = core().ilfs_run(_host(X), np.ascontiguousarray(codes, dtype=np.int32), int(n_classes), int(TT),
                          int(max_iter), float(tol))
    return _unpack(res)


def ilfs_cpp_many(problems, TT: int = 4, max_iter: int = 1000, tol: float = 1e-6) -> list:
    batch = [(_host(X), np.ascontiguousarray(c, dtype=np.int32), int(k)) for X, c, k in problems]
    outs = core().ilfs_many(batch, int(TT), int(max_iter), float(tol))
    return [_unpack(r, f"problems[{i}].X") for i, r in enumerate(outs)]


register("ilfs", "cpp")(ilfs_cpp)
register("ilfs", "cpp", batched=True)(ilfs_cpp_many)


# ---- cuda ----------------------------------------------------------------------------------------

def _cuda_problem(X, codes, n_classes):
    import torch

    from swnas.scoring._inffs_native import _dtype_code, as_cuda_tensor

    t = as_cuda_tensor(X)
    y = torch.as_tensor(np.asarray(codes, dtype=np.int32), device=t.device)
    return t, y, (t.data_ptr(), _dtype_code(t), t.shape[0], t.shape[1], y.data_ptr(), int(n_classes))


def ilfs_cuda(X, codes, n_classes, TT: int = 4, max_iter: int = 1000, tol: float = 1e-6) -> np.ndarray:
    import torch

    mod = cuda_module()
    t, y, args = _cuda_problem(X, codes, n_classes)
    with torch.cuda.device(t.device):
        stream = torch.cuda.current_stream(t.device).cuda_stream
        return _unpack(mod.ilfs_run(*args, int(TT), int(max_iter), float(tol), stream))


def ilfs_cuda_many(problems, TT: int = 4, max_iter: int = 1000, tol: float = 1e-6) -> list:
    import torch

    mod = cuda_module()
    held = [_cuda_problem(X, c, k) for X, c, k in problems]  # keeps the device tensors alive
    if len({t.device for t, _, _ in held}) != 1:
        return [ilfs_cuda(t, c, k, TT, max_iter, tol) for (t, _, _), (_, c, k) in zip(held, problems)]
    dev = held[0][0].device
    with torch.cuda.device(dev):
        stream = torch.cuda.current_stream(dev).cuda_stream
        outs = mod.ilfs_many([a for _, _, a in held], int(TT), int(max_iter), float(tol), stream)
    return [_unpack(r, f"problems[{i}].X") for i, r in enumerate(outs)]


register("ilfs", "cuda")(ilfs_cuda)
register("ilfs", "cuda", batched=True)(ilfs_cuda_many)
