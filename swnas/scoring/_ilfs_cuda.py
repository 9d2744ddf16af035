"""il-FS on the ``cuda`` backend (``swnas._cuda``; docs/scorers.md, section 4): one thread per
(sample, feature) computes the tokens, the PLSA EM and the closed form run in C++; ``score_many``
is one compiled call for the whole batch."""

from __future__ import annotations

import numpy as np

from swnas.scoring._ilfs_cpp import _unpack
from swnas.scoring._torch_cuda import as_cuda_tensor, dtype_code
from swnas.scoring.backends import cuda_module, register

__all__ = ["ilfs_cuda", "ilfs_cuda_many"]


def _cuda_problem(X, codes, n_classes):
    import torch

    t = as_cuda_tensor(X)
    y = torch.as_tensor(np.asarray(codes, dtype=np.int32), device=t.device)
    return t, y, (t.data_ptr(), dtype_code(t), t.shape[0], t.shape[1], y.data_ptr(), int(n_classes))


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
