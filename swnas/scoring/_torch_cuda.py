"""Torch helpers shared by the ``cuda`` backend modules: a contiguous CUDA view of the input and the
dtype code the compiled kernels take."""
from __future__ import annotations

import numpy as np

__all__ = ["as_cuda_tensor", "dtype_code"]


def as_cuda_tensor(X):
    """A contiguous torch CUDA view of X (zero-copy for CUDA torch tensors and CuPy arrays)."""
    import torch

    if isinstance(X, torch.Tensor):
        t = X.detach()
    elif type(X).__module__.startswith("cupy"):
        t = torch.from_dlpack(X)
    else:
        t = torch.from_numpy(np.ascontiguousarray(X))
    if not t.is_cuda:
        t = t.to("cuda")
    return t.contiguous()


def dtype_code(t) -> int:
    """0 for float32, 1 for float64 (the kernels' dtype switch)."""
    import torch

    return 0 if t.dtype == torch.float32 else 1
