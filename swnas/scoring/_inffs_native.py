"""inf-FS on the compiled backends: ``cpp`` (swnas._core) and ``cuda`` (swnas._cuda + torch linalg).

cpp: the C++ kernel ranks every column (parallel LSD radix sort, average ranks for ties) and
returns the centred ranks in the input's precision plus the column std (float32 spearman: transposed,
p x n, one contiguous row per column, written straight from the sort); the rank Gram matrix
Z'Z is one BLAS ``?syrk``/``?gemm`` through NumPy (OpenBLAS beats a hand-written kernel on this
CPU; float32 ranks are exact up to 2^24 rows); the C++ kernel then builds A, finds lambda_max by
Lanczos and solves (I - rA) x = 1 with a blocked Cholesky.

cuda: ranking (CUB segmented radix sort + tie averaging) and the split-K rank Gram matrix run in
swnas._cuda; A, lambda_max and the Cholesky solve run in torch on the same GPU.
"""
from __future__ import annotations

import numpy as np

from swnas.errors import InputError
from swnas.scoring._arrays import to_numpy
from swnas.scoring.backends import core, cuda_module, register

__all__ = ["inffs_cpp", "inffs_cpp_many", "rank_gram_cpp", "as_cuda_tensor", "solve_torch", "inffs_cuda",
           "inffs_cuda_many"]


def _nonfinite(std: np.ndarray, name: str = "X") -> None:
    bad = ~np.isfinite(std)
    if np.any(bad):
        cols = np.flatnonzero(bad)
        shown = ", ".join(map(str, cols[:8])) + (" ..." if cols.size > 8 else "")
        raise InputError(f"{name}: contains NaN or Inf values (in columns {shown})")


def rank_gram_cpp(X, corr: str = "spearman") -> tuple[np.ndarray, np.ndarray]:
    """Gram matrix of the centred ranks (or centred values) of X, and the column std (float64)."""
    mod = core()
    Xn = np.ascontiguousarray(to_numpy(X))
    if Xn.dtype == np.float32 and corr == "spearman" and Xn.ndim == 2 and Xn.shape[0] >= 2 and Xn.shape[1] >= 1:
        # ranks come back transposed (p x n): each column's ranks are one contiguous row
        Zt, std = mod.inffs_transform_t_f32(Xn)
        _nonfinite(std)
        return Zt @ Zt.T, std  # NumPy hands a self-product with its transpose to BLAS syrk
    fn = mod.inffs_transform_f32 if Xn.dtype == np.float32 else mod.inffs_transform_f64
    Z, std = fn(Xn, corr == "spearman")
    _nonfinite(std)
    G = Z.T @ Z  # NumPy hands a transposed self-product to BLAS syrk
    return G, std


def inffs_cpp(X, codes, n_classes, alpha: float = 0.5, factor: float = 0.9, corr: str = "spearman") -> np.ndarray:
    mod = core()
    G, std = rank_gram_cpp(X, corr)
    solve = mod.inffs_solve_f32 if G.dtype == np.float32 else mod.inffs_solve_f64
    return solve(np.ascontiguousarray(G), std, float(alpha), float(factor))


def inffs_cpp_many(problems, alpha: float = 0.5, factor: float = 0.9, corr: str = "spearman") -> list:
    return [inffs_cpp(X, c, k, alpha, factor, corr) for X, c, k in problems]


register("inffs", "cpp")(inffs_cpp)
register("inffs", "cpp", batched=True)(inffs_cpp_many)


# ---- cuda ----------------------------------------------------------------------------------------

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


def solve_torch(G, std, alpha: float, factor: float) -> np.ndarray:
    """inf-FS scores from a float64 torch Gram matrix of centred columns and the std (any device)."""
    import torch

    p = std.shape[0]
    d = torch.sqrt(torch.clamp(torch.diagonal(G), min=0.0))
    lo, hi = float(std.min()), float(std.max())
    if hi > lo and np.isfinite(hi - lo):
        s = (std - lo) / (hi - lo)
        sigma = torch.maximum(s[:, None], s[None, :])
    else:
        sigma = torch.zeros((p, p), dtype=G.dtype, device=G.device)
    C = G / d[:, None] / d[None, :]
    A = alpha * sigma + (1.0 - alpha) * (1.0 - C.abs())
    A = torch.where(torch.isfinite(A), A, torch.zeros((), dtype=A.dtype, device=A.device))
    lam = float(torch.linalg.eigvalsh(A)[-1])
    if not lam > 0.0:
        return np.zeros(p)
    M = -(factor / lam) * A
    M.diagonal().add_(1.0)
    L = torch.linalg.cholesky(M)
    x = torch.cholesky_solve(torch.ones((p, 1), dtype=M.dtype, device=M.device), L)
    return x[:, 0].cpu().numpy() - 1.0


def _gram_buffers(t):
    import torch

    n, p = t.shape
    G = torch.empty((p, p), dtype=torch.float64, device=t.device)
    std = torch.empty(p, dtype=torch.float64, device=t.device)
    Z = torch.empty_like(t)
    return Z, G, std


def _dtype_code(t) -> int:
    import torch

    return 0 if t.dtype == torch.float32 else 1


def inffs_cuda(X, codes, n_classes, alpha: float = 0.5, factor: float = 0.9, corr: str = "spearman") -> np.ndarray:
    import torch

    mod = cuda_module()
    t = as_cuda_tensor(X)
    with torch.cuda.device(t.device):
        n, p = t.shape
        Z, G, std = _gram_buffers(t)
        stream = torch.cuda.current_stream(t.device).cuda_stream
        mod.inffs_rank_gram(t.data_ptr(), _dtype_code(t), n, p, corr == "spearman", Z.data_ptr(), G.data_ptr(),
                            std.data_ptr(), stream)
        del Z
        _nonfinite(std.cpu().numpy())
        return solve_torch(G, std, float(alpha), float(factor))


def inffs_cuda_many(problems, alpha: float = 0.5, factor: float = 0.9, corr: str = "spearman") -> list:
    """All ranks and Gram matrices in one compiled call, then one small solve per problem."""
    import torch

    mod = cuda_module()
    ts = [as_cuda_tensor(X) for X, _, _ in problems]
    devs = {t.device for t in ts}
    if len(devs) != 1:
        return [inffs_cuda(t, c, k, alpha, factor, corr) for t, (_, c, k) in zip(ts, problems)]
    with torch.cuda.device(ts[0].device):
        bufs = [_gram_buffers(t) for t in ts]
        stream = torch.cuda.current_stream(ts[0].device).cuda_stream
        mod.inffs_rank_gram_many(
            [(t.data_ptr(), _dtype_code(t), t.shape[0], t.shape[1], Z.data_ptr(), G.data_ptr(), s.data_ptr())
             for t, (Z, G, s) in zip(ts, bufs)], corr == "spearman", stream)
        out = []
        for i, (Z, G, s) in enumerate(bufs):
            _nonfinite(s.cpu().numpy(), f"problems[{i}].X")
            out.append(solve_torch(G, s, float(alpha), float(factor)))
        return out


register("inffs", "cuda")(inffs_cuda)
register("inffs", "cuda", batched=True)(inffs_cuda_many)
