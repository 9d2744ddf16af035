"""The trainer and the evaluators: on-device augmentation, AMP, DDP, resumable checkpoints.

One code path serves CPU and GPU. The batches come from the data source's batch source
(:meth:`swnas.data.DataSource.train_batches`): for data in memory the training images live on the
device as uint8 (CIFAR-10: 150 MB) and each step gathers a batch by index, crops/flips it with one
vectorised gather (:mod:`swnas.data.augment`) and normalises it to float -- no DataLoader, no worker
processes; an image folder is decoded by worker processes; ``batches=`` plugs in another source.
Evaluation reads un-augmented batches of a split (:func:`evaluate_split`) or of arrays
(:func:`evaluate`) through one forward pass. :func:`train` reads as: set up (:func:`_setup`,
:func:`_restore`), then per epoch :func:`_train_epoch`, :func:`_save_checkpoint`,
:func:`_report_epoch`, then :func:`_result`. On CUDA the batch is channels_last and the forward
pass runs under bf16 autocast (fp16
with a GradScaler on request); ``compile=True`` wraps the model in :func:`torch.compile`.

Randomness is derived from ``(seed, epoch)`` (:class:`swnas.data.batches.EpochPlan`): the epoch's sample
order and every image's crop offsets and flip bit are drawn from one generator seeded by those two
numbers, for the *global* batch, on every rank. Hence

- a CPU run is reproducible bit for bit for a given seed,
- a run resumed from an epoch-end checkpoint continues exactly as an uninterrupted one,
- under DDP (``torchrun``) rank r of K trains on slice r of every global batch, and the averaged
  gradient equals the single-process gradient of the same global batch (up to float summation
  order) -- except for BatchNorm, whose batch statistics are per rank unless ``sync_bn=True``.

A global batch of B images is split into K shards of B / K (B must be divisible by K). Every
epoch runs ``N // B`` full batches (the last ``N % B`` images of each epoch's permutation are
left out; they differ from epoch to epoch). When N < B the batch shrinks to N (rounded down to a
multiple of K).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from swnas.training import distributed as D
from swnas.data.augment import normalize
from swnas.data.batches import BatchSource, EpochPlan, mix_seed
from swnas.data.batches import norm_tensors as _norm_tensors
from swnas.data.source import DataSource, eval_batch_size as _eval_batch_size, input_normalization
from swnas.errors import InputError
from swnas.records.logs import EpochLines, use_bars
from swnas.training.recipes import Recipe, crop_padding, get_recipe, make_optimizer, make_scheduler
from swnas.records.atomic import atomic_save

__all__ = [
    "TrainResult",
    "train",
    "evaluate",
    "evaluate_split",
    "predict_logits",
    "predict_split",
    "load_checkpoint",
    "CHECKPOINT_NAME",
]

log = logging.getLogger("swnas.train")

CHECKPOINT_NAME = "last.pt"
_CKPT_FORMAT = "swnas-train-checkpoint"
_CKPT_VERSION = 1


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes
    ----------
    epochs : int
        Epochs completed (including those done before a resume).
    seconds : float
        Wall time of the training epochs (summed over resumed sessions; evaluation excluded).
    images_per_second : float
        Training throughput over all epochs (global, all ranks together).
    history : list of dict
        One entry per epoch: ``epoch`` (1-based), ``loss``, ``acc`` (on the augmented training
        batches), ``lr`` (at the epoch's end), ``seconds``, ``images_per_second``; with a validation
        split also ``val_acc`` and ``val_loss`` (top-1 fraction and mean cross-entropy on it after
        the epoch).
    eval_batch_size : int
        Images per evaluation batch this run used (:func:`swnas.data.eval_batch_size` unless given).
    top1, top5, loss : float
        Test-set accuracy (fractions) and mean cross-entropy after training.
    val_top1, val_top5, val_loss : float or None
        The same on the validation split when the data set has one (select models on these).
    resumed_from : int
        Epochs already done in the checkpoint this run resumed from (0 = fresh start).
    recipe : dict
        The recipe actually used (after overrides).
    device : str
    world_size : int
    """

    epochs: int
    seconds: float
    images_per_second: float
    history: list[dict]
    top1: float
    top5: float
    loss: float = float("nan")
    val_top1: float | None = None
    val_top5: float | None = None
    val_loss: float | None = None
    resumed_from: int = 0
    recipe: dict = field(default_factory=dict)
    device: str = "cpu"
    world_size: int = 1
    eval_batch_size: int = 0


# --------------------------------------------------------------------------- helpers


def _resolve_amp(amp: Any, dev: torch.device) -> str:
    if amp is None or amp is False or amp == "none":
        return "none"
    if amp is True or amp == "auto":
        if dev.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "none"
    if amp in ("bf16", "fp16"):
        if amp == "fp16" and dev.type != "cuda":
            raise InputError("amp='fp16' needs a CUDA device; use 'bf16' or 'none' on the CPU")
        return amp
    raise InputError(f"amp must be 'auto', 'bf16', 'fp16', 'none', True or False, got {amp!r}")


def _autocast(mode: str, dev: torch.device):
    if mode == "none":
        return nullcontext()
    return torch.autocast(dev.type, dtype=torch.bfloat16 if mode == "bf16" else torch.float16)


def _resolve_device(device: Any) -> torch.device:
    dev = D.device_for_rank(device if device is not None else "auto")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device={str(device)!r} asks for CUDA but no CUDA device is available")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"device must be a CPU or CUDA device, got {str(dev)!r}")
    return dev


def _check_source(data: Any) -> DataSource:
    if not isinstance(data, DataSource):
        raise InputError(
            f"data must be a data source such as swnas.data.Dataset (see swnas.data.load_dataset), "
            f"got {type(data).__name__}"
        )
    data.check()
    return data


def _unwrap(model: nn.Module) -> nn.Module:
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = cast(nn.Module, model._orig_mod)  # the module torch.compile wrapped
        else:
            return model


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Read a trainer checkpoint with ``weights_only=True``; a missing or corrupt file is an InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {str(path)!r} does not exist")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, pickle refused by weights_only, ...
        from swnas.records.atomic import load_failure  # never quote torch's advice to set weights_only=False

        raise InputError(
            f"checkpoint {str(path)!r} is corrupt or not a swnas training checkpoint: {load_failure(exc)}"
        ) from None
    if not isinstance(ck, dict) or ck.get("format") != _CKPT_FORMAT:
        raise InputError(f"checkpoint {str(path)!r} is not a swnas training checkpoint")
    if ck.get("version") != _CKPT_VERSION:
        raise InputError(f"checkpoint {str(path)!r} has version {ck.get('version')}, expected {_CKPT_VERSION}")
    return ck


def _as_batch_source(images: Any, labels: Any | None) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """Validate evaluation inputs; returns (images, labels, is_uint8_nhwc)."""
    x = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if not isinstance(x, torch.Tensor):
        raise InputError(f"images must be a NumPy array or torch tensor, got {type(images).__name__}")
    if x.ndim != 4:
        raise InputError(f"images must be 4-D (uint8 NHWC or float NCHW), got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        is_u8 = True
    elif x.dtype.is_floating_point:
        is_u8 = False
    else:
        raise InputError(f"images must be uint8 NHWC or floating NCHW, got dtype {x.dtype}")
    y = None
    if labels is not None:
        y = torch.from_numpy(np.asarray(labels)) if not isinstance(labels, torch.Tensor) else labels
        if y.ndim != 1 or y.dtype.is_floating_point or y.dtype == torch.bool:
            raise InputError(f"labels must be a 1-D integer array, got shape {tuple(y.shape)} dtype {y.dtype}")
        if len(y) != len(x):
            raise InputError(f"labels has {len(y)} entries but images has {len(x)} (they must match)")
        y = y.long()
    return x, y, is_u8


def _check_eval_batch(batch_size: Any, input_size: int | tuple[int, int], train_batch: int | None = None) -> int:
    """``batch_size`` checked; ``None`` sizes it from the input size (:func:`swnas.data.eval_batch_size`)."""
    if batch_size is None:
        return _eval_batch_size(input_size, train_batch)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    return batch_size


def _array_batches(
    x: torch.Tensor, y: torch.Tensor | None, batch_size: int | None, is_u8: bool
) -> Iterator[tuple[torch.Tensor, Any]]:
    hw = (int(x.shape[1]), int(x.shape[2])) if is_u8 else (int(x.shape[2]), int(x.shape[3]))
    batch_size = _check_eval_batch(batch_size, hw)
    return ((x[i : i + batch_size], None if y is None else y[i : i + batch_size]) for i in range(0, len(x), batch_size))


def _iter_logits(
    model: nn.Module, batches: Iterable[tuple[torch.Tensor, Any]], mean, std, device: Any, amp: Any
) -> Iterator[tuple[torch.Tensor, Any]]:
    """``(float logits, labels)`` of every batch ``(uint8 NHWC or normalised float NCHW images, labels)``.

    The one evaluation forward pass: arrays (:func:`evaluate`, :func:`predict_logits`) and data
    sources (:func:`evaluate_split`, :func:`predict_split`) both come here.
    """
    net = _unwrap(model)
    if device is None:
        p = next(iter(net.parameters()), None)
        dev = p.device if p is not None else torch.device("cpu")
    else:
        dev = _resolve_device(device)
    net.to(dev)
    mode = _resolve_amp(amp, dev)
    cl = dev.type == "cuda"
    norm: tuple[torch.Tensor, torch.Tensor] | None = None
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            for xb, yb in batches:
                if xb.dtype == torch.uint8:
                    if norm is None:
                        norm = _uint8_norm(mean, std, dev, tuple(xb.shape))
                    xb = normalize(xb.to(dev, non_blocking=True), norm[0], norm[1], channels_last=cl)
                else:
                    xb = xb.to(dev, non_blocking=True)
                    if cl:
                        xb = xb.contiguous(memory_format=torch.channels_last)
                with _autocast(mode, dev):
                    out = net(xb)
                yield out.float(), yb
    finally:
        net.train(was_training)


def _uint8_norm(mean, std, dev: torch.device, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)`` for uint8 NHWC batches of ``shape``, checked against the images."""
    if mean is None or std is None:
        raise InputError("mean and std are required for uint8 images (per channel, [0, 1] units)")
    scale, shift = _norm_tensors(mean, std, dev)
    if scale.shape[1] != shape[3]:
        raise InputError(f"mean/std have {scale.shape[1]} channels but images have {shape[3]}")
    if shift.shape[2:] != (1, 1) and tuple(shift.shape[2:]) != tuple(shape[1:3]):
        raise InputError(
            f"mean: a per-pixel mean image of {tuple(shift.shape[2:])} does not fit images of {tuple(shape[1:3])}"
        )
    return scale, shift


def _collect_logits(outputs: Iterable[tuple[torch.Tensor, Any]]) -> torch.Tensor:
    parts = [out.cpu() for out, _ in outputs]
    if not parts:
        raise InputError("images holds no samples")
    return torch.cat(parts)


def _accuracy(outputs: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    n1 = n5 = n = 0
    loss = 0.0
    for out, yb in outputs:
        yb = yb.to(out.device).long()
        if int(yb.max()) >= out.shape[1] or int(yb.min()) < 0:
            raise InputError(f"labels must lie in 0..{out.shape[1] - 1} (the model's outputs)")
        loss += float(F.cross_entropy(out, yb, reduction="sum"))
        k = min(5, out.shape[1])
        top = out.topk(k, dim=1).indices
        n1 += int((top[:, 0] == yb).sum())
        n5 += int((top == yb[:, None]).any(1).sum())
        n += len(yb)
    if n == 0:
        raise InputError("images holds no samples")
    return {"top1": n1 / n, "top5": n5 / n, "loss": loss / n}


def predict_logits(
    model: nn.Module,
    images: Any,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    batch_size: int | None = None,
    device: Any = None,
    amp: Any = "auto",
) -> torch.Tensor:
    """Logits of ``model`` for every image, as a float32 CPU tensor of shape ``(N, classes)``.

    ``images``: uint8 NHWC (normalised per batch with ``mean``/``std`` in [0, 1] units: ``mean`` per
    channel or a per-pixel ``(H, W, C)`` mean image, see :func:`swnas.data.input_normalization`) or
    float NCHW already normalised; NumPy or torch. The model runs in eval mode on ``device`` (default:
    where its parameters are), then returns to its previous mode. ``batch_size`` ``None``: sized from
    the image size (:func:`swnas.data.eval_batch_size`: 512 up to 32 px, 10 at 224 px).
    """
    x, _, u8 = _as_batch_source(images, None)
    return _collect_logits(_iter_logits(model, _array_batches(x, None, batch_size, u8), mean, std, device, amp))


def evaluate(
    model: nn.Module,
    images: Any,
    labels: Any,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    batch_size: int | None = None,
    device: Any = None,
    amp: Any = "auto",
) -> dict[str, float]:
    """Top-1 and top-5 accuracy (fractions) and mean cross-entropy of ``model`` on a labelled set.

    Inputs as for :func:`predict_logits`. With fewer than 5 classes top-5 counts the top
    ``classes`` predictions (i.e. it is 1).
    """
    x, y, u8 = _as_batch_source(images, labels)
    if len(x) == 0:
        raise InputError("images holds no samples")
    return _accuracy(_iter_logits(model, _array_batches(x, y, batch_size, u8), mean, std, device, amp))


def predict_split(
    model: nn.Module,
    data: DataSource,
    which: str = "test",
    *,
    mean: Any = None,
    std: Any = None,
    batch_size: int | None = None,
    device: Any = None,
    amp: Any = "auto",
) -> torch.Tensor:
    """:func:`predict_logits` on a split of a data source (its un-augmented evaluation batches).

    ``mean``/``std`` default to the source's channel statistics (:func:`swnas.data.input_normalization`);
    ``batch_size`` ``None`` sizes the batches from the source's input size (:func:`swnas.data.eval_batch_size`).
    """
    mean, std = (data.mean if mean is None else mean), (data.std if std is None else std)
    batches = data.eval_batches(which, _check_eval_batch(batch_size, data.input_size))
    return _collect_logits(_iter_logits(model, batches, mean, std, device, amp))


def evaluate_split(
    model: nn.Module,
    data: DataSource,
    which: str = "test",
    *,
    mean: Any = None,
    std: Any = None,
    batch_size: int | None = None,
    device: Any = None,
    amp: Any = "auto",
) -> dict[str, float]:
    """:func:`evaluate` on a split (``train``, ``val``, ``test``) of a data source, batch by batch.

    ``batch_size`` ``None`` sizes the batches from the source's input size (:func:`swnas.data.eval_batch_size`).
    """
    mean, std = (data.mean if mean is None else mean), (data.std if std is None else std)
    batches = data.eval_batches(which, _check_eval_batch(batch_size, data.input_size))
    return _accuracy(_iter_logits(model, batches, mean, std, device, amp))


# --------------------------------------------------------------------------- training


@dataclass
class _Run:
    """Everything one training run holds: the model and its wrappers, the optimisation state, the plan."""

    model: nn.Module
    net: nn.Module
    opt: Any
    sched: Any
    scaler: Any
    rec: Recipe
    plan: EpochPlan
    dev: torch.device
    amp: str
    config: dict
    ckpt_path: Path | None
    history: list = field(default_factory=list)
    start: int = 0


def _check_args(model: Any, seed: Any, pad: Any, flip: Any, data: DataSource, rec: Recipe) -> tuple[int, bool]:
    if rec.lr > float(np.finfo(np.float32).max):  # the optimizer steps in float32
        raise InputError(
            f"lr: {rec.lr:g} does not fit in float32 (the parameters' type); use a learning rate such as 0.1"
        )
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    if pad is None:
        pad = crop_padding(data.input_size)
    if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
        raise InputError(f"pad must be a non-negative integer, got {pad!r}")
    if flip == "auto":
        flip = data.name != "digits"
    if not isinstance(flip, bool):
        raise InputError(f"flip must be True, False or 'auto', got {flip!r}")
    return pad, flip


def _restore(run: _Run) -> None:
    """Continue from ``run.ckpt_path`` when it holds a checkpoint of this very run."""
    path = run.ckpt_path
    if path is None or not path.exists():
        return
    ck = load_checkpoint(path, map_location=run.dev)
    if ck.get("config") != run.config:
        raise InputError(
            f"checkpoint {str(path)!r} belongs to a different run (its settings "
            f"{ck.get('config')} differ from {run.config}); use another checkpoint_dir"
        )
    try:
        run.model.load_state_dict(ck["model"])
        run.opt.load_state_dict(ck["optimizer"])
        run.sched.load_state_dict(ck["scheduler"])
        if run.scaler is not None and ck.get("scaler"):
            run.scaler.load_state_dict(ck["scaler"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise InputError(f"checkpoint {str(path)!r} does not fit this model: {exc}") from exc
    rng = ck.get("rng", {})
    if "torch" in rng:
        torch.set_rng_state(rng["torch"].cpu())
    if "cuda" in rng and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
    run.start = int(ck["epoch"])
    run.history = list(ck.get("history", []))


def _train_epoch(run: _Run, source: BatchSource, epoch: int, criterion: nn.Module, bar: Any) -> dict:
    """One epoch over ``source``; returns its history entry (loss and accuracy summed over ranks)."""
    t0 = time.perf_counter()
    dev, plan = run.dev, run.plan
    torch.manual_seed(mix_seed(plan.seed, epoch, 1 + plan.rank))  # dropout and other in-model randomness
    run.net.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
    correct = torch.zeros((), dtype=torch.int64, device=dev)
    for xb, yb in source.epoch(epoch):
        with _autocast(run.amp, dev):
            out = run.net(xb)
            loss = criterion(out.float(), yb)
        run.opt.zero_grad(set_to_none=True)
        if run.scaler is not None:
            run.scaler.scale(loss).backward()
            run.scaler.step(run.opt)
            run.scaler.update()
        else:
            loss.backward()
            run.opt.step()
        run.sched.step()
        loss_sum += loss.detach().double() * plan.per_rank
        correct += (out.detach().argmax(1) == yb).sum()
        if bar is not None:
            bar.update(1)
    totals = torch.stack([loss_sum, correct.double()])
    D.all_reduce_sum(totals)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    secs = time.perf_counter() - t0
    seen = plan.images_per_epoch
    stats = {
        "epoch": epoch + 1,
        "loss": float(totals[0]) / seen,
        "acc": float(totals[1]) / seen,
        "lr": float(run.opt.param_groups[0]["lr"]),
        "seconds": secs,
        "images_per_second": seen / secs if secs > 0 else float("inf"),
    }
    if not math.isfinite(stats["loss"]):
        raise FloatingPointError(
            f"training loss became {stats['loss']} at epoch {epoch + 1} (learning rate "
            f"{run.rec.lr:g}); lower the learning rate"
        )
    return stats


def _save_checkpoint(run: _Run, epoch: int) -> None:
    """Write ``last.pt`` atomically on rank 0 (every rank waits for it)."""
    if run.ckpt_path is None:
        return
    if D.is_main():
        rng: dict[str, torch.Tensor | list[torch.Tensor]] = {"torch": torch.get_rng_state()}
        if run.dev.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state_all()
        payload = {
            "format": _CKPT_FORMAT,
            "version": _CKPT_VERSION,
            "epoch": epoch + 1,
            "model": run.model.state_dict(),
            "optimizer": run.opt.state_dict(),
            "scheduler": run.sched.state_dict(),
            "scaler": run.scaler.state_dict() if run.scaler is not None else {},
            "rng": rng,
            "history": run.history,
            "config": run.config,
        }
        atomic_save(lambda p: torch.save(payload, p), run.ckpt_path)
    D.barrier()


def _report_epoch(bar: Any, stats: dict, epochs: int) -> None:
    if bar is not None:
        bar.set_postfix(
            epoch=f"{stats['epoch']}/{epochs}",
            loss=f"{stats['loss']:.4f}",
            acc=f"{stats['acc']:.4f}",
            img_s=f"{stats['images_per_second']:.0f}",
            **({"val_acc": f"{stats['val_acc']:.4f}"} if "val_acc" in stats else {}),
        )
    elif D.is_main():
        EpochLines(epochs, logger=log).epoch(stats)


def _setup(
    model: nn.Module,
    data: DataSource,
    rec: Recipe,
    seed: int,
    pad: int,
    flip: bool,
    device: Any,
    amp: Any,
    compile: bool,
    sync_bn: bool,
    checkpoint_dir: Any,
) -> _Run:
    ws, rk = D.world_size(), D.rank()
    dev = _resolve_device(device)
    amp_mode = _resolve_amp(amp, dev)
    # an epoch of ``copies_per_epoch`` independently augmented copies (the original recipe: 3)
    plan = EpochPlan.make(data.size("train") * rec.copies_per_epoch, rec.batch_size, ws, rk, pad, flip, seed)
    if ws > 1 and sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(dev)
    if dev.type == "cuda":
        model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, rec)
    run = _Run(
        model=model,
        net=model,
        opt=opt,
        sched=make_scheduler(opt, rec, plan.steps),
        scaler=torch.amp.GradScaler("cuda") if amp_mode == "fp16" else None,
        rec=rec,
        plan=plan,
        dev=dev,
        amp=amp_mode,
        config={"recipe": rec.to_dict(), "seed": int(seed), **plan.config()},
        ckpt_path=Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None,
    )
    _restore(run)
    if ws > 1:
        run.net = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    if compile:
        run.net = cast(nn.Module, torch.compile(run.net))  # an OptimizedModule (typed as a function)
    return run


def _validate_epoch(run: _Run, data: DataSource, stats: dict, eval_batch_size: int, norm: tuple) -> None:
    """Add the validation split's accuracy and loss after this epoch (``val_acc``, ``val_loss``) to ``stats``.

    Runs only when the data set holds a validation split; its time is not in ``stats["seconds"]``
    (training time). The evaluation draws no random numbers and leaves the model's state as it was.
    """
    if not data.has_split("val"):
        return
    val = evaluate_split(
        run.model, data, "val", mean=norm[0], std=norm[1], batch_size=eval_batch_size, device=run.dev, amp=run.amp
    )
    stats["val_acc"], stats["val_loss"] = val["top1"], val["loss"]


def _result(run: _Run, data: DataSource, eval_batch_size: int, norm: tuple) -> TrainResult:
    ev = dict(mean=norm[0], std=norm[1], batch_size=eval_batch_size, device=run.dev, amp=run.amp)
    test = evaluate_split(run.model, data, "test", **ev)
    val = evaluate_split(run.model, data, "val", **ev) if data.has_split("val") else None
    return _result_from(run, test, val, eval_batch_size)


def _result_from(run: _Run, test: dict, val: dict | None, eval_batch_size: int = 0) -> TrainResult:
    history = run.history
    seconds = float(sum(h["seconds"] for h in history))
    images = float(sum(h["images_per_second"] * h["seconds"] for h in history))
    return TrainResult(
        epochs=len(history),
        seconds=seconds,
        images_per_second=images / seconds if seconds > 0 else 0.0,
        history=history,
        top1=test["top1"],
        top5=test["top5"],
        loss=test["loss"],
        val_top1=None if val is None else val["top1"],
        val_top5=None if val is None else val["top5"],
        val_loss=None if val is None else val["loss"],
        resumed_from=run.start,
        recipe=run.rec.to_dict(),
        device=str(run.dev),
        world_size=run.plan.world_size,
        eval_batch_size=eval_batch_size,
    )


def train(
    model: nn.Module,
    data: DataSource,
    *,
    recipe: str | Recipe = "paper",
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    device: Any = "auto",
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = True,
    amp: Any = "auto",
    compile: bool = False,
    callbacks: Sequence[Callable[[int, dict], None]] = (),
    flip: bool | str = "auto",
    pad: int | None = None,
    sync_bn: bool = False,
    eval_batch_size: int | None = None,
    batches: Callable[[EpochPlan, torch.device], BatchSource] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``data``'s training split and evaluate it on the validation and test sets.

    Parameters
    ----------
    model : nn.Module
        Maps normalised float NCHW images to logits.
    data : DataSource
        From :func:`swnas.data.load_dataset` (in memory or an image folder streamed from disk).
    recipe : {"paper", "original", "fast"} or Recipe
        See :mod:`swnas.training.recipes`. ``epochs``, ``batch_size`` (global) and ``lr`` override it;
        the ``paper`` milestones stay at 50% and 75% of the epochs. Its ``normalize`` decides how
        training, validation and test images are normalised
        (:func:`swnas.data.input_normalization`): per channel, or minus the training mean image.
    device : "auto", "cpu", "cuda", "cuda:k" or torch.device
        ``auto``: ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU.
    seed : int
        Seeds the per-epoch sample order, augmentation and the global torch RNG (dropout). The
        model's initial weights are the caller's.
    checkpoint_dir : path, optional
        Where ``last.pt`` is written atomically at every epoch end (model, optimizer, scheduler,
        epoch, RNG states, history). If it already holds a checkpoint of the same run (same recipe,
        seed and data size) training resumes after its last epoch; a different run is an error.
    progress : bool
        A tqdm bar with per-epoch loss, accuracy, images/s and ETA on rank 0; ``False`` logs one
        line per epoch to the ``swnas.train`` logger instead.
    amp : "auto", "bf16", "fp16", "none", True or False
        ``auto``: bf16 autocast on CUDA (fp16 + GradScaler where bf16 is unsupported), none on CPU.
    compile : bool
        Wrap the model with :func:`torch.compile`.
    callbacks : sequence of callables
        ``cb(epoch, stats)`` after each epoch's checkpoint is written (``epoch`` 1-based, ``stats``
        the history entry). An exception raised here stops training; the checkpoint is kept.
    flip : bool or "auto"
        Horizontal flips; ``auto`` = on, except for ``digits`` (mirrored digits are other glyphs).
    pad : int, optional
        Random-crop padding; default :func:`swnas.training.recipes.crop_padding` (4 px at 32 px, 1 px at 8 px).
    sync_bn : bool
        Under DDP, convert BatchNorm layers to SyncBatchNorm.
    eval_batch_size : int, optional
        Images per batch of the validation and test evaluations. Default: sized from the input
        size and the training batch (:func:`swnas.data.eval_batch_size`: 512 up to 32 px; at
        224 px the training batch per process), so that evaluation never needs more memory than
        the training batch the caller chose.
    batches : callable, optional
        ``batches(plan, device) -> BatchSource``: where the training batches come from (see
        :mod:`swnas.data.batches`); default ``data.train_batches(plan, device, ...)``.

    Returns
    -------
    TrainResult

    Raises
    ------
    FloatingPointError
        The training loss became NaN or infinite (its message names the epoch).
    """
    D.init_from_env()
    rec = get_recipe(recipe, epochs=epochs, batch_size=batch_size, lr=lr)
    data = _check_source(data)
    pad, flip = _check_args(model, seed, pad, flip, data, rec)
    run = _setup(model, data, rec, seed, pad, flip, device, amp, compile, sync_bn, checkpoint_dir)
    eval_bs = _check_eval_batch(eval_batch_size, data.input_size, run.plan.per_rank)
    norm = input_normalization(data, rec.normalize)  # per channel, or the training mean image (``original``)
    if batches is None:  # in memory on the device, or decoded from disk by workers
        source: BatchSource = data.train_batches(
            run.plan, run.dev, mean=norm[0], std=norm[1], channels_last=run.dev.type == "cuda"
        )
    else:
        source = batches(run.plan, run.dev)
    criterion = nn.CrossEntropyLoss(label_smoothing=rec.label_smoothing)
    bar = None
    if progress and D.is_main() and run.start < rec.epochs and use_bars():  # one log line per epoch otherwise
        from tqdm.auto import tqdm

        bar = tqdm(
            total=(rec.epochs - run.start) * run.plan.steps, unit="batch", desc="train", leave=True, dynamic_ncols=True
        )
    try:
        for epoch in range(run.start, rec.epochs):
            stats = _train_epoch(run, source, epoch, criterion, bar)
            _validate_epoch(run, data, stats, eval_bs, norm)  # the validation curve beside the training one
            run.history.append(stats)
            _save_checkpoint(run, epoch)
            _report_epoch(bar, stats, rec.epochs)
            for cb in callbacks:
                cb(epoch + 1, stats)
    finally:
        if bar is not None:
            bar.close()
        source.close()
    return _result(run, data, eval_bs, norm)
