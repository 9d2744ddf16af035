"""Training one architecture from scratch (``swnas train``): a found one, or a uniform baseline.

The output directory is checked before training (a writable directory, no symbolic links, not
holding an earlier result unless ``force``) and locked for the run, like a search's ``--out``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from swnas.training import resume
from swnas.errors import InputError
from swnas.records.atomic import (
    RunLock,
    atomic_save,
    atomic_write_json,
    clean_temp_files,
    prepare_out_dir,
    read_json,
    refuse_dangerous_dir,
    refuse_links,
)

__all__ = ["train_architecture", "TRAIN_FORMAT", "MODEL_FILE", "RESULT_FILE"]

TRAIN_FORMAT = "swnas-train/1"
MODEL_FILE = "model.pt"
RESULT_FILE = "train.json"


def _resolve_spec(spec: Any, module: str, stages: Sequence[int] | None) -> Any:
    from swnas import models as M

    if spec is None and stages is None:
        raise InputError("spec: give an architecture spec or the per-stage module counts")
    if isinstance(spec, (str, Path)):
        spec = M.ArchSpec.from_dict(read_json(spec, what="--spec"))
    elif isinstance(spec, dict):
        spec = M.ArchSpec.from_dict(spec)
    elif spec is None:
        assert stages is not None  # refused above when both are None
        spec = M.ArchSpec(module=module, stages=list(stages))
    if not isinstance(spec, M.ArchSpec):
        raise InputError(f"spec: expected an ArchSpec, a dict or a JSON path, got {type(spec).__name__}")
    return spec


def _check_out(out: Path, force: bool) -> None:
    refuse_dangerous_dir(out)
    if out.is_dir():
        refuse_links(out, (MODEL_FILE, RESULT_FILE, RunLock.NAME, resume.TRAINING_DIR))
        if (out / "search.json").exists():  # its training/ holds a killed search's epoch checkpoints
            raise InputError(
                f"--out {out}: holds a search (search.json); train a baseline in "
                f"{out / 'baselines' / 'NAME'} or another directory, not in the search's own"
            )
    prepare_out_dir(out)
    held = [n for n in (MODEL_FILE, RESULT_FILE) if (out / n).exists()]
    if held and not force:
        raise InputError(
            f"--out {out}: already holds {' and '.join(held)} of an earlier training; "
            "give --force to replace them, or choose another --out"
        )


def _missing_ancestors(out: Path) -> list[Path]:
    """``out`` and those of its parents that do not exist yet, deepest first."""
    made = []
    p = out
    while not p.exists() and not p.is_symlink() and p != p.parent:
        made.append(p)
        p = p.parent
    return made


def _remove_if_unused(made: list[Path]) -> None:
    """Remove the directories ``made`` (deepest first) when ``made[0]`` holds no file but the lock.

    A training that wrote anything (an epoch checkpoint to continue from) keeps its directory.
    """
    import os
    import shutil

    out = made[0]
    if any(f.is_file() and f.name != RunLock.NAME for f in out.rglob("*")):
        return
    shutil.rmtree(out, ignore_errors=True)
    for p in made[1:]:
        try:
            os.rmdir(p)
        except OSError:
            return


def train_architecture(
    *,
    spec: Any = None,
    module: str = "basic",
    stages: Sequence[int] | None = None,
    dataset: str = "digits",
    data: str | None = None,
    subset: int | None = None,
    recipe: str = "paper",
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    device: str = "auto",
    out: str | Path = "runs/train",
    name: str | None = None,
    progress: bool = True,
    force: bool = False,
    input_size: int | None = None,
    workers: int = 4,
    sync_bn: bool = False,
    val_split: float = 0.0,
    threads: int | None = None,
) -> dict:
    """Train one architecture from scratch and write ``OUT/model.pt`` and ``OUT/train.json``.

    ``spec`` is an :class:`~swnas.models.ArchSpec`, its dict, or a JSON file (e.g. a search's
    ``specs/NN-A2.json``); otherwise ``module`` and ``stages`` describe it. Classes, input size and
    channels are set from the dataset, so a found architecture can move to another dataset.
    ``train.json`` holds name, stages, depth, spec, dataset, options, ``metrics`` with the keys
    of a search's networks and ``history`` (one entry per epoch, with ``val_acc`` when there is a
    validation split); ``swnas report`` lists it as a baseline when OUT is
    ``SEARCH/baselines/NAME``. An OUT that already holds a result is refused unless ``force``.
    Training keeps an epoch checkpoint in ``OUT/training/``: the same call after a kill continues
    from it. ``input_size`` and ``workers`` apply to a streamed ``imagefolder``; ``sync_bn`` under DDP.
    The network starts from the recipe's initialisation (``original``: he-normal), as the networks of a
    search trained from scratch do. ``val_split`` holds out the same stratified validation split a
    search with that ``--val-split`` and ``seed`` holds out (``metrics.val_top1``), so a baseline
    trains on exactly the search networks' images. ``threads`` sets torch's CPU intra-op threads
    (``None``: :func:`swnas.training.threads.apply_threads`'s default, 1 for inputs of at most 32 px on the
    CPU); ``train.json`` records the count under ``environment``.
    """
    import torch

    from swnas.training import distributed as dist
    from swnas import models as M
    from swnas.data import check_source, load_dataset
    from swnas.training.recipes import training_images
    from swnas.training.recipes import get_recipe
    from swnas.search.state import metrics_record
    from swnas.search.toolkit import measure_network
    from swnas.search.validate import check_device
    from swnas.training.trainer import train

    from swnas.training.threads import apply_threads

    spec = _resolve_spec(spec, module, stages)
    M.check_size(spec, "--spec" if stages is None else "--stages")  # before anything is built or loaded
    check_source(dataset, data)
    check_device(device)
    n_threads, threads_how = apply_threads(threads, dataset, input_size, device)
    rec = get_recipe(recipe, epochs=epochs, batch_size=batch_size, lr=lr)
    out = Path(out)
    dist.init_from_env()
    lock = None
    made = _missing_ancestors(out)  # directories this command creates: a failure before any work removes them
    if dist.is_main():
        _check_out(out, force)
        lock = RunLock(out).acquire()
        clean_temp_files(out)
    try:
        ds = load_dataset(
            dataset, data, subset=subset, seed=seed, input_size=input_size, workers=workers, val_split=val_split
        )
        spec = dataclasses.replace(
            spec, num_classes=ds.num_classes, input_size=ds.input_size, in_channels=ds.in_channels
        )
        torch.manual_seed(seed)
        model = M.initialize(M.build(spec), rec.init)  # the recipe's initialisation, as a search's networks get
        # epoch checkpoints in OUT/training/; the same command continues a killed run (swnas.training.resume)
        work = out / resume.TRAINING_DIR
        note = resume.describe_partial(work, name or spec.name) if dist.is_main() else None
        if note:
            logging.getLogger("swnas.train").warning(note.strip())
        r = resume.train_with_checkpoints(  # a stale epoch checkpoint (other settings) is replaced, with a warning
            lambda m, s, checkpoint_dir=None: train(
                m,
                ds,
                recipe=recipe,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                device=device,
                seed=s,
                progress=progress and dist.is_main(),
                checkpoint_dir=checkpoint_dir,
                sync_bn=sync_bn,
            ),
            model,
            seed,
            work,
        )
        meas = measure_network(model, ds, r.seconds, str(next(model.parameters()).device))
        result = {
            "format": TRAIN_FORMAT,
            "name": name or spec.name,
            "stages": list(spec.stages),
            "depth": spec.depth,
            "spec": spec.to_dict(),
            "dataset": dataset,
            "options": {
                "data": data,
                "subset": subset,
                "recipe": recipe,
                "epochs": epochs,
                "batch_size": batch_size,
                "lr": lr,
                "seed": seed,
                "device": device,
                "val_split": val_split,
            },
            "metrics": metrics_record(
                meas,
                {
                    "top1": r.top1,
                    "top5": r.top5,
                    "val_top1": r.val_top1,
                    "epochs": r.epochs,
                    "images": training_images(rec, ds.size("train"), r.epochs),
                },
                r.seconds,
            ),
            "checkpoint": MODEL_FILE,
            # per epoch: loss, acc, lr, seconds, images_per_second; val_acc, val_loss with a validation split
            "history": r.history,
            "environment": {"threads": n_threads, "threads_setting": threads_how},
        }
        if dist.is_main():
            atomic_save(lambda p: M.save_model(model, p), out / MODEL_FILE)
            atomic_write_json(out / RESULT_FILE, result)
        dist.barrier()
        resume.finish_network(work, dist.is_main())
    except BaseException:
        if lock is not None and made:
            _remove_if_unused(made)  # still under the lock: no stray .lock in a directory this command made
        raise
    finally:
        if lock is not None:
            lock.release()
    return result
