"""Process-group helpers for ``torchrun`` data-parallel training (DDP).

``torchrun --nproc-per-node=K -m swnas ...`` starts K processes with RANK, WORLD_SIZE and
LOCAL_RANK in the environment; :func:`init_from_env` joins them into one process group (NCCL when
CUDA is available, Gloo on CPU). Without those variables everything here describes a single
process (rank 0 of 1) and the collectives are no-ops, so library code can call them
unconditionally.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist

from swnas.errors import InputError

__all__ = [
    "init_from_env",
    "is_initialized",
    "rank",
    "local_rank",
    "world_size",
    "is_main",
    "barrier",
    "all_reduce_sum",
    "all_reduce_mean",
    "broadcast_object",
    "device_for_rank",
    "shutdown",
]


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise InputError(f"environment variable {name} must be an integer, got {raw!r}") from exc


def is_initialized() -> bool:
    """Whether a torch.distributed process group is active."""
    return dist.is_available() and dist.is_initialized()


def init_from_env(backend: str | None = None, timeout_s: float = 1800.0) -> bool:
    """Join the process group described by RANK / WORLD_SIZE / LOCAL_RANK (torchrun's variables).

    Parameters
    ----------
    backend : str, optional
        ``"nccl"`` or ``"gloo"``; default NCCL when CUDA is available, else Gloo.
    timeout_s : float
        Collective timeout.

    Returns
    -------
    bool
        True when running distributed (world size > 1) after the call. Calling it again, or with
        no WORLD_SIZE (or WORLD_SIZE=1) in the environment, is harmless.
    """
    if is_initialized():
        return dist.get_world_size() > 1
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return False
    r = _env_int("RANK", 0)
    if not 0 <= r < world:
        raise InputError(f"RANK={r} is outside 0..WORLD_SIZE-1={world - 1}")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("nccl", "gloo"):
        raise InputError(f"backend must be 'nccl' or 'gloo', got {backend!r}")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29500")
    if backend == "nccl":
        torch.cuda.set_device(_env_int("LOCAL_RANK", 0))
    dist.init_process_group(
        backend=backend, init_method="env://", rank=r, world_size=world, timeout=timedelta(seconds=timeout_s)
    )
    return True


def rank() -> int:
    """Global rank of this process (0 when not distributed)."""
    return dist.get_rank() if is_initialized() else 0


def local_rank() -> int:
    """Rank within this machine (LOCAL_RANK; 0 when not distributed)."""
    return _env_int("LOCAL_RANK", 0) if is_initialized() else 0


def world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    """True on rank 0, the only rank that writes files and shows progress."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op when not distributed)."""
    if is_initialized() and world_size() > 1:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place and return it (identity when not distributed)."""
    if is_initialized() and world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Average a floating-point ``tensor`` over ranks in place and return it."""
    if is_initialized() and world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= world_size()
    return tensor


def broadcast_object(obj: object, src: int = 0) -> object:
    """Return rank ``src``'s ``obj`` on every rank (picklable objects; identity when single)."""
    if not (is_initialized() and world_size() > 1):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def device_for_rank(device: str | torch.device = "auto") -> torch.device:
    """Resolve ``"auto"`` to ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank() % max(torch.cuda.device_count(), 1))
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:<k>', got {device!r}") from exc


def shutdown() -> None:
    """Leave the process group if one is active."""
    if is_initialized():
        dist.destroy_process_group()
