"""Stage features: hook every stage's output in one forward pass, reduce it, and score it.

Which output: the last module of each stage — for residual blocks the residual sum *before* the
block's final ReLU (the blocks' ``preact`` identity), for NASNet the last normal cell's output.
This is what the original code scores (docs/scorers.md, section 5). The forward pass runs in eval mode under
``torch.no_grad``, with TF32 off, on un-augmented images: arrays (:func:`stage_scores`) or a data
source's evaluation batches (:func:`stage_scores_of`), both through :func:`score_stage_batches`.

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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from swnas.errors import InputError

__all__ = [
    "REDUCTIONS",
    "parse_reduce",
    "reduce_map",
    "stage_features",
    "stage_scores",
    "stage_scores_of",
    "score_stage_batches",
    "iter_stage_batches",
    "full_precision_matmuls",
]

REDUCTIONS = ("avgpool8", "gap", "gmp", "grid:K")


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


def _mean_stats(v: Any, c: int, hw: tuple[int, int], device: torch.device) -> torch.Tensor | None:
    """``mean`` per channel (``(1, C, 1, 1)``) or a per-pixel mean image ``(H, W, C)`` (``(1, C, H, W)``)."""
    a = None if v is None else np.asarray(v, dtype=np.float32)
    if a is None or a.ndim != 3:
        return _channel_stats(v, "mean", c, device)
    if a.shape != (hw[0], hw[1], c):
        raise InputError(
            f"mean: a per-pixel mean image must have shape {(hw[0], hw[1], c)} (H, W, C) like the images, got {a.shape}"
        )
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].to(device)


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
            raise InputError(
                f"images: uint8 images must be NHWC with {in_channels} channels, got shape {tuple(images.shape)}"
            )
    else:
        is_float = (
            images.is_floating_point() if isinstance(images, torch.Tensor) else np.issubdtype(images.dtype, np.floating)
        )
        if not is_float:
            raise InputError(f"images: dtype must be uint8 (NHWC) or floating (NCHW), got {images.dtype}")
        if in_channels is not None and images.shape[1] != in_channels:
            raise InputError(
                f"images: float images must be NCHW with {in_channels} channels, got shape {tuple(images.shape)}"
            )
    return images, is_u8


@contextmanager
def full_precision_matmuls() -> Iterator[None]:
    """TF32 off for cuDNN convolutions and CUDA matmuls inside the block; the previous flags after.

    Stage features are scored in float32 as on the CPU: with TF32 (PyTorch's default for cuDNN
    convolutions) GPU features differ from CPU ones by about 1e-3. Training may keep TF32.
    """
    cudnn, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = cudnn
        torch.backends.cuda.matmul.allow_tf32 = matmul


def _forward_stages(
    model: nn.Module,
    batches: Iterable[tuple[Any, Any]],
    reduce: str | Reduction = "avgpool8",
    *,
    device: str | torch.device | None = None,
    mean: Any = None,
    std: Any = None,
    reducer: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Iterator[tuple[list[torch.Tensor], Any]]:
    """``([reduced (b, p_i) tensor per stage], labels)`` for every ``(images, labels)`` batch.

    The one stage-feature forward pass: eval mode, no autograd, TF32 off
    (:func:`full_precision_matmuls`), hooks on every stage at once; each hook reduces its map
    immediately (before the block's in-place ReLU), so only reduced features live on. The model's
    training flag and device are restored afterwards.
    """
    red = parse_reduce(reduce)
    in_channels = getattr(getattr(model, "spec", None), "in_channels", None)
    dev = torch.device(device) if device is not None else _model_device(model)
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
    stats = None
    try:
        for xb, yb in batches:
            xb, is_u8 = _check_images(xb, in_channels)
            if stats is None:
                c = xb.shape[3] if is_u8 else xb.shape[1]
                hw = tuple(xb.shape[1:3]) if is_u8 else tuple(xb.shape[2:4])
                stats = (_mean_stats(mean, c, hw, dev), _channel_stats(std, "std", c, dev))
            mean_t, std_t = stats
            with torch.no_grad(), full_precision_matmuls():
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
            yield cast("list[torch.Tensor]", feats), yb
    finally:
        for h in handles:
            h.remove()
        if orig_device != dev:
            model.to(orig_device)
        model.train(was_training)


def _check_batch_size(batch_size: Any) -> int:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InputError(f"batch_size: must be a positive integer, got {batch_size!r}")
    return batch_size


def iter_stage_batches(
    model: nn.Module,
    images: Any,
    reduce: str | Reduction = "avgpool8",
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    mean: Any = None,
    std: Any = None,
    reducer: Callable[[torch.Tensor], torch.Tensor] | None = None,
):
    """Yield ``(start, stop, [reduced (b, p_i) tensor per stage])`` over ``images`` in batches.

    One forward pass per batch in eval mode (no autograd, no TF32) with hooks on every stage at
    once; each hook reduces its map immediately (before the block's in-place ReLU), so only
    reduced features live on. The model's training flag is restored afterwards.
    """
    parse_reduce(reduce)
    _check_batch_size(batch_size)
    images, _ = _check_images(images, getattr(getattr(model, "spec", None), "in_channels", None))
    n = int(images.shape[0])
    spans = [(start, min(n, start + batch_size)) for start in range(0, n, batch_size)]
    batches = ((images[a:b], (a, b)) for a, b in spans)
    for feats, (a, b) in _forward_stages(model, batches, reduce, device=device, mean=mean, std=std, reducer=reducer):
        yield a, b, feats


def stage_features(
    model: nn.Module,
    images: Any,
    reduce: str = "avgpool8",
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    mean: Any = None,
    std: Any = None,
) -> list[np.ndarray]:
    """The reduced output features of every stage as host float32 matrices (one (N, p_i) per stage).

    ``images``: uint8 NHWC (scaled to [0, 1], then ``(x - mean) / std`` per channel when given) or
    float NCHW (``mean``/``std`` applied if given, else used as is). ``mean`` may also be a
    per-pixel mean image ``(H, W, C)`` (the ``original`` recipe, :func:`swnas.data.input_normalization`).
    """
    parts: list[list[np.ndarray]] = []
    for _s, _e, feats in iter_stage_batches(
        model, images, reduce, batch_size=batch_size, device=device, mean=mean, std=std
    ):
        if not parts:
            parts = [[] for _ in feats]
        for i, f in enumerate(feats):
            parts[i].append(f.float().cpu().numpy())
    return [np.concatenate(p, axis=0) for p in parts]


def _use_streaming(streaming: bool | str, criterion: str, params: dict) -> bool:
    from swnas.scoring.streaming import supports_streaming

    if streaming == "auto":
        return supports_streaming(criterion, **params)
    if isinstance(streaming, bool):
        if streaming and not supports_streaming(criterion, **params):
            raise InputError(f"streaming: criterion {criterion!r} with these parameters needs the whole feature matrix")
        return streaming
    raise InputError(f"streaming: expected 'auto', True or False, got {streaming!r}")


def score_stage_batches(
    model: nn.Module,
    batches: Iterable[tuple[Any, torch.Tensor]],
    n_classes: int,
    criterion: str = "pls",
    reduce: str = "avgpool8",
    *,
    device: str | torch.device | None = None,
    backend: str = "auto",
    mean: Any = None,
    std: Any = None,
    streaming: bool = True,
    all_reduce: bool = False,
    **params: Any,
) -> list:
    """Score every stage over ``(images, codes)`` batches: the one stage-scoring path.

    ``codes`` are int64 class codes ``0 .. n_classes - 1``. ``streaming``: every batch's reduced
    features go straight into one :class:`~swnas.scoring.streaming.StreamingScorer` per stage, on
    the forward pass's device (memory bounded by the batch, not N); ``all_reduce`` then sums the
    statistics over the process group (each rank saw its shard). Otherwise the features are
    collected and scored with one :func:`~swnas.scoring.score_many` call.
    """
    from swnas.scoring import score_many
    from swnas.scoring.streaming import StreamingScorer

    forward = _forward_stages(model, batches, reduce, device=device, mean=mean, std=std)
    if streaming:
        scorers: list[StreamingScorer] = []
        for feats, yb in forward:
            if not scorers:
                scorers = [StreamingScorer(criterion, n_classes=n_classes, backend=backend, **params) for _ in feats]
            yb = yb.to(feats[0].device)
            for sc, f in zip(scorers, feats):
                sc.update(f, yb)
        if not scorers:
            raise InputError("images: is empty")
        return [(sc.all_reduce() if all_reduce else sc).result() for sc in scorers]
    parts: list[list[torch.Tensor]] = []
    codes: list[torch.Tensor] = []
    for feats, yb in forward:
        if not parts:
            parts = [[] for _ in feats]
        for i, f in enumerate(feats):
            parts[i].append(f.float())
        codes.append(yb)
    if not parts:
        raise InputError("images: is empty")
    y = torch.cat(codes).numpy()
    mats: list[Any] = [torch.cat(p, dim=0) for p in parts]
    mats = [m.numpy() if m.device.type == "cpu" else m for m in mats]
    return score_many([(m, y) for m in mats], criterion=criterion, backend=backend, **params)


def stage_scores(
    model: nn.Module,
    images: Any,
    labels: Any,
    criterion: str = "pls",
    reduce: str = "avgpool8",
    batch_size: int = 256,
    device: str | torch.device | None = None,
    backend: str = "auto",
    mean: Any = None,
    std: Any = None,
    streaming: bool | str = "auto",
    **params: Any,
):
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
    from swnas.scoring._arrays import encode_labels

    if not isinstance(images, (np.ndarray, torch.Tensor)) or images.ndim != 4:
        raise InputError("images: expected a 4-D uint8 NHWC or float NCHW array")
    n = int(images.shape[0])
    codes, classes = encode_labels(labels, n, "labels")
    codes_t = torch.from_numpy(np.asarray(codes, dtype=np.int64))
    use_stream = _use_streaming(streaming, criterion, params)
    parse_reduce(reduce)
    _check_batch_size(batch_size)
    images, _ = _check_images(images, getattr(getattr(model, "spec", None), "in_channels", None))
    batches = ((images[i : i + batch_size], codes_t[i : i + batch_size]) for i in range(0, n, batch_size))
    return score_stage_batches(
        model,
        batches,
        int(classes.shape[0]),
        criterion,
        reduce,
        device=device,
        backend=backend,
        mean=mean,
        std=std,
        streaming=use_stream,
        **params,
    )


def stage_scores_of(
    model: nn.Module,
    data: Any,
    criterion: str = "pls",
    reduce: str = "avgpool8",
    *,
    split: str = "train",
    batch_size: int = 256,
    device: str | torch.device | None = None,
    backend: str = "auto",
    mean: Any = None,
    std: Any = None,
    rank: int = 0,
    world_size: int = 1,
    **params: Any,
) -> list:
    """Per-stage scores of ``model`` on a split of a data source (:class:`swnas.data.DataSource`).

    Reads the source's un-augmented batches (:meth:`~swnas.data.DataSource.eval_batches`); the
    classes present in the split are coded ``0 .. C-1`` as :func:`stage_scores` codes them. With
    ``world_size > 1`` and a criterion that streams (PLS; inf-FS with ``corr="pearson"``), rank r
    reads every K-th image and the statistics are summed over ranks, so every rank gets the
    single-process result; other criteria score the whole split on every rank. ``mean``/``std``
    default to the source's channel statistics.
    """
    labels = np.asarray(data.labels(split), np.int64)
    present = np.unique(labels)
    lut = np.full(int(present.max()) + 1 if len(present) else 0, -1, np.int64)
    lut[present] = np.arange(len(present))
    lut_t = torch.from_numpy(lut)
    use_stream = _use_streaming("auto", criterion, params)
    shard = dict(rank=rank, world_size=world_size) if use_stream and world_size > 1 else {}
    batches = ((xb, lut_t[yb]) for xb, yb in data.eval_batches(split, _check_batch_size(batch_size), **shard))
    return score_stage_batches(
        model,
        batches,
        int(len(present)),
        criterion,
        reduce,
        device=device,
        backend=backend,
        mean=data.mean if mean is None else mean,
        std=data.std if std is None else std,
        streaming=use_stream,
        all_reduce=bool(shard),
        **params,
    )
