"""Resuming inside a network: per-epoch training checkpoints of the network a search is training.

While network ``NN-<role><k>`` trains, the trainer writes ``OUT/training/NN-<role><k>/last.pt``
atomically at every epoch end (model, optimizer, scheduler, RNG states, history; see
:func:`swnas.training.trainer.train`). A search killed mid-network and resumed with ``--resume`` rebuilds the
same network and continues after its last finished epoch; since every epoch's batches and
in-model randomness derive from ``(seed, epoch)``, the resumed network equals an uninterrupted
one on the CPU. Once the network is recorded in ``search.json`` (and its final checkpoint is under
``OUT/checkpoints/``) its training directory is removed.

``swnas train --out DIR`` keeps its epoch checkpoint in ``DIR/training/`` the same way; running the
same command again continues it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from swnas.errors import InputError

__all__ = [
    "TRAINING_DIR",
    "network_workdir",
    "partial_progress",
    "describe_partial",
    "train_with_checkpoints",
    "finish_network",
]

TRAINING_DIR = "training"
log = logging.getLogger("swnas.resume")
_R = TypeVar("_R")  # what the trainer returns


def network_workdir(out: str | Path, name: str) -> Path:
    """``OUT/training/<name>``: where network ``name`` (``"01-T1"``) keeps its epoch checkpoint.

    Refused (:class:`~swnas.errors.InputError`) when a symbolic link is on the way: swnas does not
    write or remove through links out of OUT.
    """
    from swnas.records.atomic import inside

    return inside(out, f"{TRAINING_DIR}/{name}", "training directory")


def _unreadable(exc: Exception, path: Path) -> InputError:
    return InputError(
        f"{exc}; remove {path} to train this network from its first epoch (only its unfinished "
        "epochs are lost) and run the command again"
    )


def partial_progress(workdir: str | Path) -> tuple[int, int | None] | None:
    """``(epochs done, epochs planned)`` of the checkpoint in ``workdir``, or ``None`` when there is none.

    A corrupt checkpoint is an :class:`InputError` that says which file to remove.
    """
    from swnas.training.trainer import CHECKPOINT_NAME, load_checkpoint

    path = Path(workdir) / CHECKPOINT_NAME
    if not path.is_file():
        return None
    try:
        ck = load_checkpoint(path)
    except InputError as exc:
        raise _unreadable(exc, path) from None
    planned = ck.get("config", {}).get("recipe", {}).get("epochs")
    return int(ck["epoch"]), None if planned is None else int(planned)


def describe_partial(workdir: str | Path, what: str) -> str | None:
    """A line saying that ``what`` continues from its checkpoint, or ``None`` when it starts afresh."""
    got = partial_progress(workdir)
    if got is None:
        return None
    done, planned = got
    of = f" of {planned}" if planned is not None else ""
    return f"    resuming {what} from its checkpoint after epoch {done}{of} ({Path(workdir) / 'last.pt'})"


def _accepts_checkpoint_dir(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "checkpoint_dir" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _stale(exc: InputError) -> bool:
    """Whether the trainer refused its epoch checkpoint because it was made with other settings
    (:func:`swnas.training.trainer.train`'s message; ``tests/test_reliability_users.py`` ties the two)."""
    return "belongs to a different run" in str(exc)


def train_with_checkpoints(train: Callable[..., _R], model: Any, seed: int, workdir: Path) -> _R:
    """``train(model, seed, checkpoint_dir=workdir)`` when the toolkit's trainer takes it, else ``train(model, seed)``.

    An epoch checkpoint made with other training settings (an option changed while this network
    was unfinished, as after a divergence: the same ``--out`` again, or ``--resume``, with a lower
    ``--lr``) is removed and the network trains from its first epoch, with a warning. Only call
    this while holding the directory's lock, for a network not yet recorded as trained.
    """
    if not _accepts_checkpoint_dir(train):
        return train(model, seed)
    try:
        return train(model, seed, checkpoint_dir=str(workdir))
    except InputError as exc:
        if not _stale(exc):
            raise
    from swnas.training.trainer import CHECKPOINT_NAME

    path = Path(workdir) / CHECKPOINT_NAME
    log.warning(
        "%s was made with other training settings (an option changed since, e.g. a lower --lr after a "
        "divergence); it is removed and this network trains from its first epoch",
        path,
    )
    path.unlink(missing_ok=True)  # every rank saw the same file at start-up
    return train(model, seed, checkpoint_dir=str(workdir))


def finish_network(workdir: str | Path, main: bool = True) -> None:
    """Remove a finished network's epoch checkpoint (rank 0), then its directory and ``OUT/training``
    when they are empty. Only swnas's own files are removed (``last.pt``, its temporary files), never
    anything else found there, and never through a symbolic link."""
    if not main:
        return
    from swnas.records.atomic import is_temp_file
    from swnas.training.trainer import CHECKPOINT_NAME

    w = Path(workdir)
    if w.is_symlink() or not w.is_dir():
        return
    for f in w.iterdir():
        if (f.name == CHECKPOINT_NAME or is_temp_file(f.name)) and (f.is_file() or f.is_symlink()):
            f.unlink()
    for d in (w, w.parent) if w.parent.name in (TRAINING_DIR, "final") and w.name != TRAINING_DIR else (w,):
        try:
            d.rmdir()
        except OSError:
            pass  # other entries remain, or it is already gone
