"""The trainer: in-memory data on the device, on-device augmentation, AMP, DDP, resumable checkpoints.

One code path serves CPU and GPU. The training images live on the device as uint8 (CIFAR-10:
150 MB); each step gathers a batch by index, crops/flips it with one vectorised gather
(:mod:`swnas.augment`), normalises it to float and runs the model -- no DataLoader, no worker
processes. On CUDA the batch is channels_last and the forward pass runs under bf16 autocast (fp16
with a GradScaler on request); ``compile=True`` wraps the model in :func:`torch.compile`.

Randomness is derived from ``(seed, epoch)``: the epoch's sample order and every image's crop
offsets and flip bit are drawn from one generator seeded by those two numbers, for the *global*
batch, on every rank. Hence

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
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from swnas import distributed as D
from swnas.augment import crop_flip, normalize, random_params
from swnas.data import Dataset
from swnas.errors import InputError
from swnas.recipes import Recipe, crop_padding, get_recipe, make_optimizer, make_scheduler

__all__ = ["TrainResult", "train", "evaluate", "predict_logits", "load_checkpoint",
           "CHECKPOINT_NAME"]

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
        batches), ``lr`` (at the epoch's end), ``seconds``, ``images_per_second``.
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


# --------------------------------------------------------------------------- helpers


def _mix(*numbers: int) -> int:
    """A 63-bit seed derived from a tuple of non-negative integers."""
    state = np.random.SeedSequence([int(n) & 0xFFFFFFFF for n in numbers]).generate_state(2)
    return int((int(state[0]) << 31) ^ int(state[1])) & 0x7FFFFFFFFFFFFFFF


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


def _check_dataset(data: Any) -> Dataset:
    if not isinstance(data, Dataset):
        raise InputError(f"data must be a swnas.data.Dataset (see load_dataset), got {type(data).__name__}")
    x, y = data.x_train, data.y_train
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4:
        raise InputError("data.x_train must be a uint8 NHWC NumPy array")
    if not isinstance(y, np.ndarray) or y.ndim != 1 or len(y) != len(x) or y.dtype.kind not in "iu":
        raise InputError(f"data.y_train must be {len(x)} integer labels, got {getattr(y, 'shape', None)}")
    if len(data.mean) != x.shape[3] or len(data.std) != x.shape[3]:
        raise InputError(f"data.mean/std must have one value per channel ({x.shape[3]})")
    return data


def _norm_tensors(mean: Sequence[float], std: Sequence[float], dev: torch.device
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    m = torch.as_tensor(np.asarray(mean, np.float64), dtype=torch.float64)
    s = torch.as_tensor(np.asarray(std, np.float64), dtype=torch.float64)
    if m.ndim != 1 or s.shape != m.shape or not bool(torch.all(s > 0)):
        raise InputError(f"mean and std must be per-channel sequences of equal length with std > 0, "
                         f"got mean={list(mean)}, std={list(std)}")
    scale = (1.0 / (255.0 * s)).float().view(1, -1, 1, 1).to(dev)
    shift = (-m / s).float().view(1, -1, 1, 1).to(dev)
    return scale, shift


def _unwrap(model: nn.Module) -> nn.Module:
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Read a trainer checkpoint with ``weights_only=True``; a missing or corrupt file is an InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {str(path)!r} does not exist")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, pickle refused by weights_only, ...
        raise InputError(f"checkpoint {str(path)!r} is corrupt or not a swnas training checkpoint: {exc}") from exc
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


def _iter_logits(model: nn.Module, x: torch.Tensor, is_u8: bool, mean, std, batch_size: int,
                 device: Any, amp: Any):
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    net = _unwrap(model)
    if device is None:
        p = next(iter(net.parameters()), None)
        dev = p.device if p is not None else torch.device("cpu")
    else:
        dev = _resolve_device(device)
    net.to(dev)
    mode = _resolve_amp(amp, dev)
    cl = dev.type == "cuda"
    if is_u8:
        if mean is None or std is None:
            raise InputError("mean and std are required for uint8 images (per channel, [0, 1] units)")
        scale, shift = _norm_tensors(mean, std, dev)
        if scale.shape[1] != x.shape[3]:
            raise InputError(f"mean/std have {scale.shape[1]} channels but images have {x.shape[3]}")
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                xb = x[i : i + batch_size].to(dev, non_blocking=True)
                if is_u8:
                    xb = normalize(xb, scale, shift, channels_last=cl)
                elif cl:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                with _autocast(mode, dev):
                    out = net(xb)
                yield i, out.float()
    finally:
        net.train(was_training)


def predict_logits(model: nn.Module, images: Any, *, mean: Sequence[float] | None = None,
                   std: Sequence[float] | None = None, batch_size: int = 512, device: Any = None,
                   amp: Any = "auto") -> torch.Tensor:
    """Logits of ``model`` for every image, as a float32 CPU tensor of shape ``(N, classes)``.

    ``images``: uint8 NHWC (normalised per batch with ``mean``/``std`` in [0, 1] units) or float
    NCHW already normalised; NumPy or torch. The model runs in eval mode on ``device`` (default:
    where its parameters are), then returns to its previous mode.
    """
    x, _, is_u8 = _as_batch_source(images, None)
    parts = [out.cpu() for _, out in _iter_logits(model, x, is_u8, mean, std, batch_size, device, amp)]
    if not parts:
        raise InputError("images holds no samples")
    return torch.cat(parts)


def evaluate(model: nn.Module, images: Any, labels: Any, *, mean: Sequence[float] | None = None,
             std: Sequence[float] | None = None, batch_size: int = 512, device: Any = None,
             amp: Any = "auto") -> dict[str, float]:
    """Top-1 and top-5 accuracy (fractions) and mean cross-entropy of ``model`` on a labelled set.

    Inputs as for :func:`predict_logits`. With fewer than 5 classes top-5 counts the top
    ``classes`` predictions (i.e. it is 1).
    """
    x, y, is_u8 = _as_batch_source(images, labels)
    if len(x) == 0:
        raise InputError("images holds no samples")
    n1 = n5 = 0
    loss = 0.0
    for i, out in _iter_logits(model, x, is_u8, mean, std, batch_size, device, amp):
        yb = y[i : i + len(out)].to(out.device)
        if int(yb.max()) >= out.shape[1] or int(yb.min()) < 0:
            raise InputError(f"labels must lie in 0..{out.shape[1] - 1} (the model's outputs)")
        loss += float(F.cross_entropy(out, yb, reduction="sum"))
        k = min(5, out.shape[1])
        top = out.topk(k, dim=1).indices
        n1 += int((top[:, 0] == yb).sum())
        n5 += int((top == yb[:, None]).any(1).sum())
    n = len(x)
    return {"top1": n1 / n, "top5": n5 / n, "loss": loss / n}


# --------------------------------------------------------------------------- training


def _run_config(rec: Recipe, seed: int, n_train: int, batch: int, steps: int, pad: int, flip: bool) -> dict:
    return {"recipe": rec.to_dict(), "seed": int(seed), "n_train": int(n_train), "batch": int(batch),
            "steps_per_epoch": int(steps), "pad": int(pad), "flip": bool(flip)}


def train(
    model: nn.Module,
    data: Dataset,
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
    eval_batch_size: int = 512,
) -> TrainResult:
    """Train ``model`` in place on ``data.x_train`` and evaluate it on the validation and test sets.

    Parameters
    ----------
    model : nn.Module
        Maps normalised float NCHW images to logits.
    data : Dataset
        From :func:`swnas.data.load_dataset`.
    recipe : {"paper", "fast"} or Recipe
        See :mod:`swnas.recipes`. ``epochs``, ``batch_size`` (global) and ``lr`` override it;
        the ``paper`` milestones stay at 50% and 75% of the epochs.
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
        Random-crop padding; default :func:`swnas.recipes.crop_padding` (4 px at 32 px, 1 px at 8 px).
    sync_bn : bool
        Under DDP, convert BatchNorm layers to SyncBatchNorm.
    eval_batch_size : int

    Returns
    -------
    TrainResult
    """
    D.init_from_env()
    ws, rk = D.world_size(), D.rank()
    main = rk == 0
    rec = get_recipe(recipe, epochs=epochs, batch_size=batch_size, lr=lr)
    data = _check_dataset(data)
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    dev = _resolve_device(device)
    amp_mode = _resolve_amp(amp, dev)
    channels_last = dev.type == "cuda"

    n = len(data.x_train)
    gbatch = rec.batch_size
    if gbatch % ws:
        raise InputError(f"batch_size={gbatch} must be divisible by the world size {ws}")
    if n < gbatch:
        gbatch = (n // ws) * ws
        if gbatch == 0:
            raise InputError(f"{n} training images cannot be split over {ws} ranks")
    steps = n // gbatch
    per_rank = gbatch // ws
    if pad is None:
        pad = crop_padding(data.input_size)
    if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
        raise InputError(f"pad must be a non-negative integer, got {pad!r}")
    if flip == "auto":
        flip = data.name != "digits"
    if not isinstance(flip, bool):
        raise InputError(f"flip must be True, False or 'auto', got {flip!r}")

    if ws > 1 and sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(dev)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, rec)
    sched = make_scheduler(opt, rec, steps)
    scaler = torch.amp.GradScaler("cuda") if amp_mode == "fp16" else None
    config = _run_config(rec, seed, n, gbatch, steps, pad, flip)

    history: list[dict] = []
    start = 0
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    if ckpt_path is not None and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, map_location=dev)
        if ck.get("config") != config:
            raise InputError(
                f"checkpoint {str(ckpt_path)!r} belongs to a different run (its settings "
                f"{ck.get('config')} differ from {config}); use another checkpoint_dir"
            )
        try:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            if scaler is not None and ck.get("scaler"):
                scaler.load_state_dict(ck["scaler"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise InputError(f"checkpoint {str(ckpt_path)!r} does not fit this model: {exc}") from exc
        rng = ck.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"].cpu())
        if "cuda" in rng and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
        start = int(ck["epoch"])
        history = list(ck.get("history", []))

    net: nn.Module = model
    if ws > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None)
    if compile:
        net = torch.compile(net)

    xs = torch.from_numpy(data.x_train).to(dev)
    ys = torch.from_numpy(data.y_train.astype(np.int64, copy=False)).to(dev)
    scale, shift = _norm_tensors(data.mean, data.std, dev)
    criterion = nn.CrossEntropyLoss(label_smoothing=rec.label_smoothing)
    shard = slice(rk * per_rank, (rk + 1) * per_rank)

    bar = None
    if progress and main and start < rec.epochs:
        from tqdm.auto import tqdm

        bar = tqdm(total=(rec.epochs - start) * steps, unit="batch", desc="train", leave=True,
                   dynamic_ncols=True)

    try:
        for epoch in range(start, rec.epochs):
            t0 = time.perf_counter()
            torch.manual_seed(_mix(seed, epoch, 1 + rk))  # dropout and other in-model randomness
            gen = torch.Generator(device=dev)
            gen.manual_seed(_mix(seed, epoch, 0))  # identical on every rank
            perm = torch.randperm(n, generator=gen, device=dev)[: steps * gbatch].view(steps, gbatch)
            oy, ox, fl = random_params(steps * gbatch, pad, flip, generator=gen, device=dev)
            oy, ox, fl = (t.view(steps, gbatch)[:, shard] for t in (oy, ox, fl))
            perm = perm[:, shard]
            net.train()
            loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
            correct = torch.zeros((), dtype=torch.int64, device=dev)
            for s in range(steps):
                idx = perm[s]
                xb = crop_flip(xs[idx], oy[s], ox[s], fl[s], pad)
                xb = normalize(xb, scale, shift, channels_last=channels_last)
                yb = ys[idx]
                with _autocast(amp_mode, dev):
                    out = net(xb)
                    loss = criterion(out.float(), yb)
                opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                else:
                    loss.backward()
                    opt.step()
                sched.step()
                loss_sum += loss.detach().double() * per_rank
                correct += (out.detach().argmax(1) == yb).sum()
                if bar is not None:
                    bar.update(1)
            totals = torch.stack([loss_sum, correct.double()])
            D.all_reduce_sum(totals)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            secs = time.perf_counter() - t0
            seen = steps * gbatch
            stats = {"epoch": epoch + 1, "loss": float(totals[0]) / seen, "acc": float(totals[1]) / seen,
                     "lr": float(opt.param_groups[0]["lr"]), "seconds": secs,
                     "images_per_second": seen / secs if secs > 0 else float("inf")}
            if not math.isfinite(stats["loss"]):
                raise FloatingPointError(f"training loss became {stats['loss']} at epoch {epoch + 1}; "
                                         "lower the learning rate")
            history.append(stats)
            if ckpt_path is not None:
                if main:
                    rng = {"torch": torch.get_rng_state()}
                    if dev.type == "cuda":
                        rng["cuda"] = torch.cuda.get_rng_state_all()
                    _atomic_save({
                        "format": _CKPT_FORMAT, "version": _CKPT_VERSION, "epoch": epoch + 1,
                        "model": model.state_dict(), "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(),
                        "scaler": scaler.state_dict() if scaler is not None else {},
                        "rng": rng, "history": history, "config": config,
                    }, ckpt_path)
                D.barrier()
            if bar is not None:
                bar.set_postfix(epoch=f"{epoch + 1}/{rec.epochs}", loss=f"{stats['loss']:.4f}",
                                acc=f"{stats['acc']:.4f}", img_s=f"{stats['images_per_second']:.0f}")
            elif main:
                left = (rec.epochs - epoch - 1) * secs
                log.info("epoch %d/%d loss %.4f acc %.4f lr %.4g %.0f img/s ETA %.0f s", epoch + 1,
                         rec.epochs, stats["loss"], stats["acc"], stats["lr"],
                         stats["images_per_second"], left)
            for cb in callbacks:
                cb(epoch + 1, stats)
    finally:
        if bar is not None:
            bar.close()

    del xs, ys
    ev = dict(mean=data.mean, std=data.std, batch_size=eval_batch_size, device=dev, amp=amp_mode)
    test = evaluate(model, data.x_test, data.y_test, **ev)
    val = None
    if data.x_val is not None and data.y_val is not None and len(data.x_val):
        val = evaluate(model, data.x_val, data.y_val, **ev)
    seconds = float(sum(h["seconds"] for h in history))
    images = float(sum(h["images_per_second"] * h["seconds"] for h in history))
    return TrainResult(
        epochs=len(history), seconds=seconds,
        images_per_second=images / seconds if seconds > 0 else 0.0,
        history=history, top1=test["top1"], top5=test["top5"], loss=test["loss"],
        val_top1=None if val is None else val["top1"], val_top5=None if val is None else val["top5"],
        val_loss=None if val is None else val["loss"], resumed_from=start, recipe=rec.to_dict(),
        device=str(dev), world_size=ws,
    )
