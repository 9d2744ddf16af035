"""Stage features: hook every stage's output in one forward pass, reduce it, and score it.

Which output: the last module of each stage — for residual blocks the residual sum *before* the
block's final ReLU (the blocks' ``preact`` identity), for NASNet the last normal cell's output.
This is what the original code scores (DESIGN 3.4). The forward pass runs in eval mode under
``torch.no_grad`` on un-augmented images.

Reductions (``reduce=``):

- ``"avgpool8"`` (default, the original's): 8x8 average pooling, stride 8, no padding, then
  flatten. 32x32x16 -> 256 features, 16x16x32 -> 128, 8x8x64 -> 64. When a map is smaller than 8
  (the 8x8 ``digits`` images give 8x8, 4x4, 2x2 stages) the window is ``min(8, H)`` x
  ``min(8, W)``, which makes it a global average there.
- ``"gap"`` global average, ``"gmp"`` global max (C features each).
- ``"grid:K"`` adaptive average pooling to a K x K grid (C*K*K features; for 224 px inputs).

Flatten order: NCHW, channel-major (feature = c*Ho*Wo + i*Wo + j). Keras flattens NHWC
(position-major); the per-feature scores are then a permutation of the Keras ones and the stage
score (their mean) is the same.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from swnas.errors import InputError

__all__ = [
    "REDUCTIONS",
    "parse_reduce",
    "reduce_map",
    "avgpool_stats",
    "stage_features",
    "stage_scores",
    "iter_stage_batches",
]

REDUCTIONS = ("avgpool8", "gap", "gmp", "grid:K")

# stage_scores reduces with torch ops on every device. The compiled CPU kernel
# (csrc/cpu/features_cpu.cpp) pools no faster than torch's avg_pool2d on the 2-core development
# CPU (25 vs 26 ms, 23 vs 16 ms, 18 vs 16 ms for 256-image batches of 32x32x16, 16x16x32, 8x8x64
# maps), so it is not wired in; its fused column/class sums are ~2-6x faster than the torch
# equivalent and are exposed through avgpool_stats for statistics-only consumers.


@dataclass(frozen=True)
class Reduction:
    """A parsed ``reduce=`` value: ``kind`` in {avgpool, gap, gmp, grid} and its size."""

    kind: str
    size: int = 0

    def __call__(self, fmap: torch.Tensor) -> torch.Tensor:
        return reduce_map(fmap, self)


def parse_reduce(reduce: str | Reduction) -> Reduction:
    """Parse ``"avgpool8"``, ``"avgpoolK"``, ``"gap"``, ``"gmp"`` or ``"grid:K"``."""
    if isinstance(reduce, Reduction):
        return reduce
    if not isinstance(reduce, str):
        raise InputError(f"reduce: expected a string such as 'avgpool8', got {type(reduce).__name__}")
    r = reduce.strip().lower()
    if r in ("gap", "gmp"):
        return Reduction(r)
    m = re.fullmatch(r"avgpool(\d+)", r)
    if m and int(m.group(1)) >= 1:
        return Reduction("avgpool", int(m.group(1)))
    m = re.fullmatch(r"grid:(\d+)", r)
    if m and int(m.group(1)) >= 1:
        return Reduction("grid", int(m.group(1)))
    raise InputError(f"reduce: unknown reduction {reduce!r}; use avgpool8 (or avgpoolK), gap, gmp or grid:K")


def pool_window(h: int, w: int, size: int) -> tuple[int, int]:
    """The avgpool window used on an h x w map: (min(size, h), min(size, w))."""
    return min(size, h), min(size, w)


def reduce_map(fmap: torch.Tensor, reduce: str | Reduction = "avgpool8") -> torch.Tensor:
    """Reduce a stage's (N, C, H, W) map to an (N, p) matrix with torch ops (on fmap's device)."""
    red = parse_reduce(reduce)
    if fmap.ndim != 4:
        raise InputError(f"fmap: expected an (N, C, H, W) map, got shape {tuple(fmap.shape)}")
    if red.kind == "avgpool":
        kh, kw = pool_window(fmap.shape[2], fmap.shape[3], red.size)
        out = F.avg_pool2d(fmap, (kh, kw), (kh, kw))
    elif red.kind == "gap":
        out = fmap.mean(dim=(2, 3))
    elif red.kind == "gmp":
        out = fmap.amax(dim=(2, 3))
    else:
        out = F.adaptive_avg_pool2d(fmap, red.size)
    return out.flatten(1)


# ------------------------------------------------------------------------ fused pooling + sums
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


def avgpool_stats(x: Any, k: int, labels: Any = None, n_classes: int | None = None, backend: str = "auto"):
    """k x k average pooling (stride k, valid, flattened NCHW) fused with column statistics.

    Parameters
    ----------
    x : torch.Tensor (CPU or CUDA), NumPy array or CuPy array, (N, C, H, W) float32
    k : int
    labels : array (N,) of ints in 0..n_classes-1, optional
    n_classes : int, optional
    backend : {"auto", "torch", "cpp", "cuda", "cupy"}
        ``auto``: ``cuda`` for CUDA tensors when the CUDA module is built, ``cpp`` for host data.

    Returns
    -------
    pooled : (N, p) float32, same library/device as x (NumPy for the ``cpp`` backend on NumPy)
    colsum : (p,) float64 or None when no labels
    clssum : (n_classes, p) float64 or None when no labels
    """
    _check_pool_input(x, k)
    n = int(x.shape[0])
    if labels is not None:
        if not isinstance(n_classes, int) or n_classes < 1:
            raise InputError(f"n_classes: must be a positive integer with labels, got {n_classes!r}")
    is_torch = isinstance(x, torch.Tensor)
    is_cuda = is_torch and x.is_cuda
    is_cupy = type(x).__module__.startswith("cupy")
    if backend == "auto":
        backend = "cuda" if is_cuda and _cuda_module() is not None else ("cupy" if is_cupy else ("torch" if is_cuda else "cpp"))
    if backend == "torch":
        t = x if is_torch else torch.as_tensor(np.asarray(x))
        pooled = F.avg_pool2d(t.float(), k, k).flatten(1)
        if labels is None:
            return pooled, None, None
        lab = torch.as_tensor(_labels_host(labels, n, n_classes), device=pooled.device, dtype=torch.long)
        p64 = pooled.double()
        cls = torch.zeros(n_classes, pooled.shape[1], dtype=torch.float64, device=pooled.device)
        cls.index_add_(0, lab, p64)
        return pooled, p64.sum(0), cls
    if backend == "cpp":
        from swnas import _core

        if is_cuda or is_cupy:
            raise InputError("backend: 'cpp' needs host data; x is on a GPU")
        arr = x.detach().contiguous().numpy() if is_torch else np.ascontiguousarray(x)
        if arr.dtype != np.float32:
            raise InputError(f"x: backend 'cpp' needs float32, got {arr.dtype}")
        if labels is None:
            pooled = _core.features_avgpool(arr, k)
            return (torch.from_numpy(pooled) if is_torch else pooled), None, None
        pooled, cs, ks = _core.features_avgpool_stats(arr, k, _labels_host(labels, n, n_classes), n_classes)
        if is_torch:
            return torch.from_numpy(pooled), torch.from_numpy(cs), torch.from_numpy(ks)
        return pooled, cs, ks
    if backend == "cuda":
        return _avgpool_stats_cuda(x, k, labels, n_classes)
    if backend == "cupy":
        return _avgpool_stats_cupy(x, k, labels, n_classes)
    raise InputError(f"backend: unknown pooling backend {backend!r}; use auto, torch, cpp, cuda or cupy")


def _cuda_module():
    try:
        from swnas import _cuda  # type: ignore[attr-defined]
    except ImportError:
        return None
    try:
        return _cuda if _cuda.device_count() > 0 else None
    except Exception:  # pragma: no cover
        return None


def _avgpool_stats_cuda(x: Any, k: int, labels: Any, n_classes: int | None):
    from swnas.errors import BackendUnavailableError

    mod = _cuda_module()
    if mod is None:
        raise BackendUnavailableError("backend: 'cuda' pooling needs the built _cuda module and a visible GPU")
    if not (isinstance(x, torch.Tensor) and x.is_cuda):
        raise InputError("x: backend 'cuda' needs a CUDA torch tensor")
    if x.dtype != torch.float32:
        raise InputError(f"x: backend 'cuda' needs float32, got {x.dtype}")
    x = x.contiguous()
    n, c, h, w = (int(s) for s in x.shape)
    p = c * (h // k) * (w // k)
    out = torch.empty(n, p, dtype=torch.float32, device=x.device)
    stream = torch.cuda.current_stream(x.device).cuda_stream
    with torch.cuda.device(x.device):
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
_CUPY_KERNELS: dict[str, Any] = {}


def _avgpool_stats_cupy(x: Any, k: int, labels: Any, n_classes: int | None):
    """The CuPy (RawKernel) version of the fused pooling; CuPy is imported only here."""
    from swnas.errors import BackendUnavailableError

    try:
        import cupy as cp  # type: ignore[import-not-found]
    except ImportError:
        raise BackendUnavailableError("backend: 'cupy' pooling needs CuPy (pip install cupy-cuda13x)") from None
    if not _CUPY_KERNELS:
        mod = cp.RawModule(code=_CUPY_SOURCE)
        _CUPY_KERNELS["pool"] = mod.get_function("swnas_pool")
        _CUPY_KERNELS["sums"] = mod.get_function("swnas_sums")
    was_torch = isinstance(x, torch.Tensor)
    xa = cp.from_dlpack(x.contiguous()) if was_torch else cp.ascontiguousarray(x)
    if xa.dtype != cp.float32:
        raise InputError(f"x: backend 'cupy' needs float32, got {xa.dtype}")
    n, c, h, w = (int(s) for s in xa.shape)
    ho, wo = h // k, w // k
    p = c * ho * wo
    out = cp.empty((n, p), dtype=cp.float32)
    threads = 256
    blocks = max(1, min((n * p + threads - 1) // threads, 65535 * 16))
    _CUPY_KERNELS["pool"]((blocks,), (threads,), (xa, out, cp.int64(n), cp.int64(c), cp.int64(h), cp.int64(w),
                                                   cp.int64(k), cp.int64(ho), cp.int64(wo)))
    conv = (lambda a: torch.from_dlpack(a)) if was_torch else (lambda a: a)
    if labels is None:
        return conv(out), None, None
    lab = cp.asarray(_labels_host(labels, n, n_classes))
    colsum = cp.zeros(p, dtype=cp.float64)
    clssum = cp.zeros((n_classes, p), dtype=cp.float64)
    rows = 64
    grid = ((p + threads - 1) // threads, (n + rows - 1) // rows)
    _CUPY_KERNELS["sums"](grid, (threads,), (out, lab, colsum, clssum, cp.int64(n), cp.int64(p), cp.int64(rows)))
    return conv(out), conv(colsum), conv(clssum)


# ------------------------------------------------------------------------------ forward pass
def _stage_points(model: nn.Module) -> list[nn.Module]:
    from swnas.models import stage_output_modules

    return stage_output_modules(model)


def _model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    return torch.device("cpu")


def _channel_stats(v: Any, name: str, c: int, device: torch.device) -> torch.Tensor | None:
    if v is None:
        return None
    t = torch.as_tensor(np.asarray(v, dtype=np.float32).reshape(-1))
    if t.numel() == 1:
        t = t.repeat(c)
    if t.numel() != c:
        raise InputError(f"{name}: expected {c} per-channel values, got {t.numel()}")
    if name == "std" and bool((t <= 0).any()):
        raise InputError("std: every channel's std must be positive")
    return t.view(1, c, 1, 1).to(device)


def _check_images(images: Any, in_channels: int | None) -> tuple[Any, bool]:
    """(images, is_uint8_nhwc)."""
    if not isinstance(images, (np.ndarray, torch.Tensor)):
        raise InputError(f"images: expected a NumPy array or torch tensor, got {type(images).__name__}")
    if images.ndim != 4:
        raise InputError(f"images: expected 4-D uint8 NHWC or float NCHW, got shape {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise InputError("images: is empty")
    is_u8 = images.dtype == torch.uint8 if isinstance(images, torch.Tensor) else images.dtype == np.uint8
    if is_u8:
        if in_channels is not None and images.shape[3] != in_channels:
            raise InputError(f"images: uint8 images must be NHWC with {in_channels} channels, got shape {tuple(images.shape)}")
    else:
        is_float = images.is_floating_point() if isinstance(images, torch.Tensor) else np.issubdtype(images.dtype, np.floating)
        if not is_float:
            raise InputError(f"images: dtype must be uint8 (NHWC) or floating (NCHW), got {images.dtype}")
        if in_channels is not None and images.shape[1] != in_channels:
            raise InputError(f"images: float images must be NCHW with {in_channels} channels, got shape {tuple(images.shape)}")
    return images, is_u8


def iter_stage_batches(model: nn.Module, images: Any, reduce: str | Reduction = "avgpool8", *, batch_size: int = 256,
                       device: str | torch.device | None = None, mean: Any = None, std: Any = None,
                       reducer: Callable[[torch.Tensor], torch.Tensor] | None = None):
    """Yield ``(start, stop, [reduced (b, p_i) tensor per stage])`` over ``images`` in batches.

    One forward pass per batch in eval mode (no autograd) with hooks on every stage at once; each hook reduces
    its map immediately (before the block's in-place ReLU), so only reduced features live on.
    The model's training flag is restored afterwards.
    """
    red = parse_reduce(reduce)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InputError(f"batch_size: must be a positive integer, got {batch_size!r}")
    spec = getattr(model, "spec", None)
    images, is_u8 = _check_images(images, getattr(spec, "in_channels", None))
    dev = torch.device(device) if device is not None else _model_device(model)
    c = images.shape[3] if is_u8 else images.shape[1]
    mean_t = _channel_stats(mean, "mean", c, dev)
    std_t = _channel_stats(std, "std", c, dev)
    fn = reducer if reducer is not None else red
    points = _stage_points(model)
    current: list[torch.Tensor | None] = [None] * len(points)

    def make_hook(i: int):
        def hook(_m, _inp, out):
            current[i] = fn(out)

        return hook

    handles = [pt.register_forward_hook(make_hook(i)) for i, pt in enumerate(points)]
    was_training = model.training
    orig_device = _model_device(model)
    model.eval()
    if orig_device != dev:
        model.to(dev)
    n = int(images.shape[0])
    try:
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            with torch.no_grad():
                xb = images[start:stop]
                xb = torch.from_numpy(np.ascontiguousarray(xb)) if isinstance(xb, np.ndarray) else xb
                xb = xb.to(dev, non_blocking=True)
                if is_u8:
                    xb = xb.permute(0, 3, 1, 2).float().div_(255.0)
                else:
                    xb = xb.float()
                if mean_t is not None:
                    xb = xb - mean_t
                if std_t is not None:
                    xb = xb / std_t
                for i in range(len(current)):
                    current[i] = None
                model(xb)
                feats = list(current)
            if any(f is None for f in feats):  # pragma: no cover - hooks always fire
                raise RuntimeError("a stage hook did not fire")
            yield start, stop, feats
    finally:
        for h in handles:
            h.remove()
        if orig_device != dev:
            model.to(orig_device)
        model.train(was_training)


def stage_features(model: nn.Module, images: Any, reduce: str = "avgpool8", *, batch_size: int = 256,
                   device: str | torch.device | None = None, mean: Any = None, std: Any = None) -> list[np.ndarray]:
    """The reduced output features of every stage as host float32 matrices (one (N, p_i) per stage).

    ``images``: uint8 NHWC (scaled to [0, 1], then ``(x - mean) / std`` per channel when given) or
    float NCHW (``mean``/``std`` applied if given, else used as is).
    """
    parts: list[list[np.ndarray]] = []
    for _s, _e, feats in iter_stage_batches(model, images, reduce, batch_size=batch_size, device=device,
                                            mean=mean, std=std):
        if not parts:
            parts = [[] for _ in feats]
        for i, f in enumerate(feats):
            parts[i].append(f.float().cpu().numpy())
    return [np.concatenate(p, axis=0) for p in parts]


def stage_scores(model: nn.Module, images: Any, labels: Any, criterion: str = "pls", reduce: str = "avgpool8",
                 batch_size: int = 256, device: str | torch.device | None = None, backend: str = "auto",
                 mean: Any = None, std: Any = None, streaming: bool | str = "auto", **params: Any):
    """Score every stage's output features of ``model`` on ``images`` (one forward pass).

    Parameters
    ----------
    model : nn.Module
        Built by :func:`swnas.models.build` (it has ``.stages``).
    images, labels : arrays
        uint8 NHWC (NumPy or torch; normalised per batch with ``mean``/``std`` in [0, 1] units) or
        float NCHW already normalised; labels (N,) integers.
    criterion, backend, **params
        As :func:`swnas.scoring.score`.
    reduce : str
        ``avgpool8`` (default), ``gap``, ``gmp``, ``grid:K``.
    streaming : {"auto", True, False}
        True: every batch's reduced features go straight into one
        :class:`~swnas.scoring.streaming.StreamingScorer` per stage, on the forward pass's device
        (memory bounded by the batch, not N). False: the features are collected and scored with
        one :func:`~swnas.scoring.score_many` call. ``auto``: streaming when the criterion allows it.

    Returns
    -------
    list of ScoreResult, one per stage (``.stage`` is the stage score).
    """
    from swnas.scoring import score_many
    from swnas.scoring._arrays import encode_labels
    from swnas.scoring.streaming import StreamingScorer, supports_streaming

    if not isinstance(images, (np.ndarray, torch.Tensor)) or images.ndim != 4:
        raise InputError("images: expected a 4-D uint8 NHWC or float NCHW array")
    n = int(images.shape[0])
    codes, classes = encode_labels(labels, n, "labels")
    codes = np.asarray(codes, dtype=np.int64)
    n_classes = int(classes.shape[0])
    if streaming == "auto":
        use_stream = supports_streaming(criterion, **params)
    elif isinstance(streaming, bool):
        use_stream = streaming
        if use_stream and not supports_streaming(criterion, **params):
            raise InputError(f"streaming: criterion {criterion!r} with these parameters needs the whole feature matrix")
    else:
        raise InputError(f"streaming: expected 'auto', True or False, got {streaming!r}")

    batches = iter_stage_batches(model, images, reduce, batch_size=batch_size, device=device, mean=mean, std=std)
    if use_stream:
        scorers: list[StreamingScorer] = []
        codes_t = torch.from_numpy(codes)
        for start, stop, feats in batches:
            if not scorers:
                scorers = [StreamingScorer(criterion, n_classes=n_classes, backend=backend, **params) for _ in feats]
            yb = codes_t[start:stop].to(feats[0].device)
            for sc, f in zip(scorers, feats):
                sc.update(f, yb)
        return [sc.result() for sc in scorers]
    parts: list[list[torch.Tensor]] = []
    for _s, _e, feats in batches:
        if not parts:
            parts = [[] for _ in feats]
        for i, f in enumerate(feats):
            parts[i].append(f.float())
    mats: list[Any] = [torch.cat(p, dim=0) for p in parts]
    mats = [m.numpy() if m.device.type == "cpu" else m for m in mats]
    return score_many([(m, codes) for m in mats], criterion=criterion, backend=backend, **params)
