"""Torch helpers shared by the ``cuda`` backend modules: a contiguous CUDA view of the input and the
dtype code the compiled kernels take."""

from __future__ import annotations

import numpy as np

from swnas.errors import InputError

__all__ = ["as_cuda_tensor", "kernel_dtype", "dtype_code"]


def kernel_dtype(t, name: str = "X"):
    """``t`` in a dtype the kernels take: float32/float64 as they are, float16 and bfloat16 (AMP
    features) promoted to float32; anything else (integers, bool, complex) is refused."""
    import torch

    if t.dtype in (torch.float32, torch.float64):
        return t
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.float()
    raise InputError(
        f"{name}: dtype {t.dtype} is not a floating-point type the CUDA kernels take "
        "(float32, float64; float16 and bfloat16 are promoted to float32)"
    )


def as_cuda_tensor(X):
    """A contiguous torch CUDA view of X (zero-copy for CUDA torch tensors and CuPy arrays)."""
    import torch

    if isinstance(X, torch.Tensor):
        t = X.detach()
    elif type(X).__module__.startswith("cupy"):
        t = torch.from_dlpack(X)
    else:
        t = torch.from_numpy(np.ascontiguousarray(X))
    kernel_dtype(t)  # refuse before any copy to the device
    if not t.is_cuda:
        t = t.to("cuda")
    return kernel_dtype(t).contiguous()


def dtype_code(t) -> int:
    """0 for float32, 1 for float64 (the kernels' dtype switch); any other dtype is an error, never
    silently read as float64."""
    import torch

    codes = {torch.float32: 0, torch.float64: 1}
    if t.dtype not in codes:
        raise InputError(f"X: dtype {t.dtype} has no CUDA kernel (float32 or float64; convert with kernel_dtype)")
    return codes[t.dtype]
