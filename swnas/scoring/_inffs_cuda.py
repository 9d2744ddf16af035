"""inf-FS on the ``cuda`` backend (docs/scorers.md, section 3): ranking (a device-wide CUB radix sort
of packed (column, value) keys per block of columns + tie averaging) and the split-K rank Gram matrix
run in ``swnas._cuda``; A, lambda_max and the Cholesky solve run in torch on the same GPU."""

from __future__ import annotations

import numpy as np

from swnas.scoring._torch_cuda import as_cuda_tensor, dtype_code
from swnas.scoring.backends import cuda_module, register
from swnas.scoring.inffs import check_finite_std

__all__ = ["solve_torch", "inffs_cuda", "inffs_cuda_many"]


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


def _release_cache(corr: str) -> None:
    """The ranking sizes its column blocks from cudaMemGetInfo, which counts the blocks PyTorch's
    caching allocator holds (after training: most of the GPU) as used: hand them back first, or
    the blocks shrink to a few columns and the sort runs many times."""
    if corr == "spearman":
        import torch

        torch.cuda.empty_cache()


def _gram_buffers(t):
    import torch

    n, p = t.shape
    G = torch.empty((p, p), dtype=torch.float64, device=t.device)
    std = torch.empty(p, dtype=torch.float64, device=t.device)
    Z = torch.empty_like(t)
    return Z, G, std


def inffs_cuda(X, codes, n_classes, alpha: float = 0.5, factor: float = 0.9, corr: str = "spearman") -> np.ndarray:
    import torch

    mod = cuda_module()
    t = as_cuda_tensor(X)
    with torch.cuda.device(t.device):
        n, p = t.shape
        Z, G, std = _gram_buffers(t)
        _release_cache(corr)
        stream = torch.cuda.current_stream(t.device).cuda_stream
        mod.inffs_rank_gram(
            t.data_ptr(), dtype_code(t), n, p, corr == "spearman", Z.data_ptr(), G.data_ptr(), std.data_ptr(), stream
        )
        del Z
        check_finite_std(std.cpu().numpy())
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
        _release_cache(corr)
        stream = torch.cuda.current_stream(ts[0].device).cuda_stream
        mod.inffs_rank_gram_many(
            [
                (t.data_ptr(), dtype_code(t), t.shape[0], t.shape[1], Z.data_ptr(), G.data_ptr(), s.data_ptr())
                for t, (Z, G, s) in zip(ts, bufs)
            ],
            corr == "spearman",
            stream,
        )
        out = []
        for i, (_Z, G, s) in enumerate(bufs):
            check_finite_std(s.cpu().numpy(), f"problems[{i}].X")
            out.append(solve_torch(G, s, float(alpha), float(factor)))
        return out


register("inffs", "cuda")(inffs_cuda)
register("inffs", "cuda", batched=True)(inffs_cuda_many)
