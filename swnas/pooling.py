"""Fused k x k average pooling and column/class sums of stage feature maps, on four backends.

``avgpool_stats`` pools an (N, C, H, W) float32 map (stride k, valid, flattened channel-major as in
:mod:`swnas.features`) and, given labels, sums the pooled columns overall and per class in float64
in the same pass: the statistics a streaming scorer needs (docs/scorers.md, section 5).

Backends: ``torch`` (any device), ``cpp`` (``swnas._core``, host data), ``cuda`` (``swnas._cuda``,
CUDA tensors) and ``cupy`` (CuPy RawKernels, CuPy arrays or CUDA tensors). Availability comes from
the scorers' backend table (:func:`swnas.scoring.backends.backend_status`), so ``SWNAS_DISABLE_CUDA``
and a missing GPU turn the GPU backends off here exactly as for scoring.

stage_scores reduces with torch ops on every device. The compiled CPU kernel
(csrc/cpu/features_cpu.cpp) pools no faster than torch's avg_pool2d on the 2-core development CPU
(25 vs 26 ms, 23 vs 16 ms, 18 vs 16 ms for 256-image batches of 32x32x16, 16x16x32, 8x8x64 maps),
so it is not wired in; its fused column/class sums are ~2-6x faster than the torch equivalent and
are exposed here for statistics-only consumers.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from swnas.errors import BackendUnavailableError, InputError

__all__ = ["POOLING_BACKENDS", "avgpool_stats", "pooling_backend", "MAX_GRID_Y"]

#: pooling backends; all but ``torch`` are rows of the scorers' backend table
POOLING_BACKENDS = ("torch", "cpp", "cuda", "cupy")
#: CUDA's limit on a grid's y dimension
MAX_GRID_Y = 65535


def _check_pool_input(x: Any, k: int) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InputError(f"k: pooling size must be a positive integer, got {k!r}")
    if getattr(x, "ndim", None) != 4:
        raise InputError(f"x: expected an (N, C, H, W) float32 map, got shape {tuple(getattr(x, 'shape', ()))}")
    if x.shape[2] < k or x.shape[3] < k:
        raise InputError(f"k: window {k} is larger than the {x.shape[2]}x{x.shape[3]} map")


def _labels_host(labels: Any, n: int, n_classes: int) -> np.ndarray:
    lab = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != n:
        raise InputError(f"labels: expected {n} labels, got shape {lab.shape}")
    if not np.issubdtype(lab.dtype, np.integer):
        raise InputError(f"labels: must be integers, got {lab.dtype}")
    if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
        raise InputError(f"labels: must lie in 0..{n_classes - 1}")
    return np.ascontiguousarray(lab, dtype=np.int32)


def _available(name: str) -> tuple[bool, str]:
    from swnas.scoring.backends import backend_status

    return backend_status(name)


def pooling_backend(x: Any, backend: str = "auto") -> str:
    """The pooling backend that runs for ``x``: ``auto`` picks ``cuda`` (else ``torch``) for CUDA
    tensors, ``cupy`` for CuPy arrays and ``cpp`` (else ``torch``) for host data."""
    if backend not in ("auto",) + POOLING_BACKENDS:
        raise InputError(f"backend: unknown pooling backend {backend!r}; use auto, torch, cpp, cuda or cupy")
    if backend != "auto":
        if backend != "torch":
            ok, why = _available(backend)
            if not ok:
                raise BackendUnavailableError(f"backend: {backend!r} pooling is not available: {why}")
        return backend
    if isinstance(x, torch.Tensor) and x.is_cuda:
        return "cuda" if _available("cuda")[0] else "torch"
    if type(x).__module__.startswith("cupy"):
        return "cupy"
    return "cpp" if _available("cpp")[0] else "torch"


def avgpool_stats(x: Any, k: int, labels: Any = None, n_classes: int | None = None, backend: str = "auto"):
    """k x k average pooling (stride k, valid, flattened NCHW) fused with column statistics.

    Parameters
    ----------
    x : torch.Tensor (CPU or CUDA), NumPy array or CuPy array, (N, C, H, W) float32
    k : int
    labels : array (N,) of ints in 0..n_classes-1, optional
    n_classes : int, optional
    backend : {"auto", "torch", "cpp", "cuda", "cupy"}
        See :func:`pooling_backend`.

    Returns
    -------
    pooled : (N, p) float32, same library/device as x (NumPy for the ``cpp`` backend on NumPy)
    colsum : (p,) float64 or None when no labels
    clssum : (n_classes, p) float64 or None when no labels
    """
    _check_pool_input(x, k)
    if labels is not None:
        if not isinstance(n_classes, int) or n_classes < 1:
            raise InputError(f"n_classes: must be a positive integer with labels, got {n_classes!r}")
    impl = {"torch": _pool_torch, "cpp": _pool_cpp, "cuda": _pool_cuda, "cupy": _pool_cupy}
    return impl[pooling_backend(x, backend)](x, k, labels, n_classes)


def _pool_torch(x: Any, k: int, labels: Any, n_classes: int | None):
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    pooled = F.avg_pool2d(t.float(), k, k).flatten(1)
    if labels is None:
        return pooled, None, None
    lab = torch.as_tensor(_labels_host(labels, int(x.shape[0]), n_classes), device=pooled.device, dtype=torch.long)
    p64 = pooled.double()
    cls = torch.zeros(n_classes, pooled.shape[1], dtype=torch.float64, device=pooled.device)
    cls.index_add_(0, lab, p64)
    return pooled, p64.sum(0), cls


def _pool_cpp(x: Any, k: int, labels: Any, n_classes: int | None):
    from swnas.scoring.backends import core

    is_torch = isinstance(x, torch.Tensor)
    if (is_torch and x.is_cuda) or type(x).__module__.startswith("cupy"):
        raise InputError("backend: 'cpp' needs host data; x is on a GPU")
    arr = x.detach().contiguous().numpy() if is_torch else np.ascontiguousarray(x)
    if arr.dtype != np.float32:
        raise InputError(f"x: backend 'cpp' needs float32, got {arr.dtype}")
    mod = core()
    if labels is None:
        pooled = mod.features_avgpool(arr, k)
        return (torch.from_numpy(pooled) if is_torch else pooled), None, None
    pooled, cs, ks = mod.features_avgpool_stats(arr, k, _labels_host(labels, int(x.shape[0]), n_classes), n_classes)
    if is_torch:
        return torch.from_numpy(pooled), torch.from_numpy(cs), torch.from_numpy(ks)
    return pooled, cs, ks


def _pool_cuda(x: Any, k: int, labels: Any, n_classes: int | None):
    from swnas.scoring.backends import cuda_module

    mod = cuda_module()
    if not (isinstance(x, torch.Tensor) and x.is_cuda):
        raise InputError("x: backend 'cuda' needs a CUDA torch tensor")
    if x.dtype != torch.float32:
        raise InputError(f"x: backend 'cuda' needs float32, got {x.dtype}")
    x = x.contiguous()
    n, c, h, w = (int(s) for s in x.shape)
    p = c * (h // k) * (w // k)
    with torch.cuda.device(x.device):
        out = torch.empty(n, p, dtype=torch.float32, device=x.device)
        stream = torch.cuda.current_stream(x.device).cuda_stream
        if labels is None:
            mod.features_avgpool(x.data_ptr(), out.data_ptr(), n, c, h, w, k, stream)
            return out, None, None
        lab = torch.as_tensor(_labels_host(labels, n, n_classes), device=x.device)
        colsum = torch.zeros(p, dtype=torch.float64, device=x.device)
        clssum = torch.zeros(n_classes, p, dtype=torch.float64, device=x.device)
        mod.features_avgpool_stats(x.data_ptr(), lab.data_ptr(), out.data_ptr(), colsum.data_ptr(),
                                   clssum.data_ptr(), n, c, h, w, k, n_classes, stream)
    return out, colsum, clssum


_CUPY_SOURCE = r"""
extern "C" __global__ void swnas_pool(const float* x, float* out, long long n, long long c, long long h,
                                      long long w, long long k, long long ho, long long wo) {
  long long p = c * ho * wo;
  long long total = n * p;
  float inv = 1.0f / (float)(k * k);
  for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (long long)gridDim.x * blockDim.x) {
    long long i = e / p, f = e - i * p;
    long long ch = f / (ho * wo), rem = f - ch * ho * wo;
    long long oi = rem / wo, oj = rem - oi * wo;
    const float* src = x + ((i * c + ch) * h + oi * k) * w + oj * k;
    float s = 0.0f;
    for (long long r = 0; r < k; ++r)
      for (long long q = 0; q < k; ++q) s += src[r * w + q];
    out[e] = s * inv;
  }
}
extern "C" __global__ void swnas_sums(const float* feats, const int* labels, double* colsum, double* clssum,
                                      long long n, long long p, long long rows) {
  long long f = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (f >= p) return;
  long long r0 = (long long)blockIdx.y * rows;
  long long r1 = r0 + rows < n ? r0 + rows : n;
  double acc = 0.0;
  for (long long i = r0; i < r1; ++i) {
    double v = (double)feats[i * p + f];
    acc += v;
    atomicAdd(clssum + (long long)labels[i] * p + f, v);
  }
  atomicAdd(colsum + f, acc);
}
"""
_CUPY_KERNELS: dict[tuple[int, int], dict[str, Any]] = {}


def _pool_cupy(x: Any, k: int, labels: Any, n_classes: int | None):
    """The CuPy (RawKernel) version of the fused pooling, on the GPU that holds x."""
    from swnas.scoring._cupy_util import as_cupy, cupy, on_device_of

    cp = cupy()
    was_torch = isinstance(x, torch.Tensor)
    xa = cp.ascontiguousarray(as_cupy(x.contiguous() if was_torch else x))
    with on_device_of(xa):
        return _pool_cupy_on_device(cp, xa, k, labels, n_classes, was_torch)


def _pool_cupy_on_device(cp: Any, xa: Any, k: int, labels: Any, n_classes: int | None, was_torch: bool):
    key = (id(cp), xa.device.id)  # a compiled module per device (and per cupy module: tests swap it)
    if key not in _CUPY_KERNELS:
        mod = cp.RawModule(code=_CUPY_SOURCE)
        _CUPY_KERNELS[key] = {"pool": mod.get_function("swnas_pool"), "sums": mod.get_function("swnas_sums")}
    kern = _CUPY_KERNELS[key]
    if xa.dtype != cp.float32:
        raise InputError(f"x: backend 'cupy' needs float32, got {xa.dtype}")
    n, c, h, w = (int(s) for s in xa.shape)
    ho, wo = h // k, w // k
    p = c * ho * wo
    out = cp.empty((n, p), dtype=cp.float32)
    threads = 256
    blocks = max(1, min((n * p + threads - 1) // threads, 65535 * 16))
    kern["pool"]((blocks,), (threads,), (xa, out, cp.int64(n), cp.int64(c), cp.int64(h), cp.int64(w),
                                                   cp.int64(k), cp.int64(ho), cp.int64(wo)))
    conv = (lambda a: torch.from_dlpack(a)) if was_torch else (lambda a: a)
    if labels is None:
        return conv(out), None, None
    lab = cp.asarray(_labels_host(labels, n, n_classes))
    colsum = cp.zeros(p, dtype=cp.float64)
    clssum = cp.zeros((n_classes, p), dtype=cp.float64)
    # one launch per slab of at most MAX_GRID_Y * rows rows: the grid's y size stays legal for any n
    rows = 64
    slab = MAX_GRID_Y * rows
    for r0 in range(0, n, slab):
        m = min(slab, n - r0)
        grid = ((p + threads - 1) // threads, (m + rows - 1) // rows)
        kern["sums"](grid, (threads,), (out[r0:r0 + m], lab[r0:r0 + m], colsum, clssum, cp.int64(m),
                                                 cp.int64(p), cp.int64(rows)))
    return conv(out), conv(colsum), conv(clssum)
