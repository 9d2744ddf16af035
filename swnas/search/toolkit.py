"""What the search needs from the rest of swnas (:class:`Toolkit`), and its real wiring.

The search only calls these functions, so its decision rule, resume logic and outputs can be
tested with controlled fakes; :func:`default_toolkit` wires ``swnas.data``, ``swnas.models``,
``swnas.training.trainer``, ``swnas.features``, ``swnas.models.metrics`` and ``swnas.training.transfer``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from swnas.errors import InputError
from swnas.search.config import SearchConfig

__all__ = ["Toolkit", "default_toolkit", "measure_network", "stage_scores_for", "CARBON_NOTE"]

CARBON_NOTE = "swnas.models.metrics.carbon (ML CO2 Impact formula: power x hours x PUE x grid intensity)"


@dataclass
class Toolkit:
    """What the search needs from the rest of swnas, as callables.

    Attributes
    ----------
    build : (stages, seed) -> model
        A network with those modules per stage, initialised from ``seed`` (or transferred).
    train : (model, seed) -> dict
        Trains in place; returns at least ``top1``, ``top5``, ``seconds`` (and ``epochs``).
    score : (model) -> list of float
        One score per stage (the criterion's stage score on the training set).
    measure : (model, train_seconds) -> dict
        ``params, macs, memory, peak_memory, latency, carbon`` (and optionally ``depth``).
    save, load : checkpoint writer ``(model, path)`` and reader ``(path) -> model``.
    spec : (model) -> dict
        The serialisable architecture.
    is_main, barrier :
        Distributed helpers: only the main process writes; everyone waits at the barrier.
    final_train : (model, seed, epochs, checkpoint_dir) -> dict, optional
        The candidates' final training (:mod:`swnas.search.final`): continues ``model`` in place
        for ``epochs`` at the schedule's last rate, resumable from ``checkpoint_dir``; returns
        ``top1``, ``top5``, ``val_top1``, ``seconds``. ``None``: no final training.
    grow : (parent_model, stages, seed) -> model, optional
        Inherit mode: a network with ``stages`` modules per stage inheriting the parent's weights,
        added modules starting as identities (:func:`swnas.models.grow.inherit`).
    finetune : (model, seed, checkpoint_dir=None) -> dict, optional
        Inherit mode: fine-tunes in place (``--inherit-epochs``, a warm restart; returns what
        ``train`` returns).

    Every training callable may also return ``images``: the images it trained on (epochs x
    training images x copies per epoch), recorded as ``metrics.images_trained``.
    """

    build: Callable[[list, int], Any]
    train: Callable[[Any, int], dict]
    score: Callable[[Any], Sequence[float]]
    measure: Callable[[Any, float], dict]
    save: Callable[[Any, str], None]
    load: Callable[[str], Any]
    spec: Callable[[Any], dict]
    is_main: Callable[[], bool] = lambda: True
    barrier: Callable[[], None] = lambda: None
    carbon_note: str = ""
    final_train: Callable[[Any, int, int, str], dict] | None = None
    grow: Callable[[Any, list, int], Any] | None = None
    finetune: Callable[..., dict] | None = None


def measure_network(model: Any, ds: Any, seconds: float, device: str) -> dict:
    """The :attr:`Toolkit.measure` record of a trained network (cost metrics + training carbon).

    ``device`` is where it trained (for the carbon estimate of ``seconds`` of training).
    """
    from swnas.models.metrics import carbon, measure

    m = measure(model, input_size=ds.input_size, in_channels=ds.in_channels, latency=True, threads=1, batch=1)
    c = carbon(seconds, device)
    method = ", ".join(
        [str(c["method"])]
        + [f"{k}={c[k]}" for k in ("device", "power_watts", "n_devices", "pue", "carbon_intensity_kg_per_kwh")]
    )
    return {
        "depth": m.get("depth"),
        "params": m.get("params"),
        "macs": m.get("macs"),
        "memory": m.get("memory_bytes"),
        "peak_memory": m.get("peak_memory_bytes"),
        "latency": m.get("latency_ms"),
        "carbon": float(c["kg_co2e"]),
        "carbon_method": method,
    }


#: below this many training images per class a validation split leaves too little to train on
MIN_TRAIN_PER_CLASS = 10


def warn_small_training_split(cfg: SearchConfig, n_train: int, n_classes: int) -> bool:
    """Warn (on the ``swnas`` logger) when ``--val-split`` leaves fewer than
    :data:`MIN_TRAIN_PER_CLASS` training images per class; returns whether it warned."""
    import logging

    if not cfg.val_split or n_train >= MIN_TRAIN_PER_CLASS * max(1, int(n_classes)):
        return False
    logging.getLogger("swnas.search").warning(
        "--val-split %g leaves %d training image(s) for %d classes (fewer than %d per class): the networks will "
        "learn little; use a smaller --val-split",
        cfg.val_split,
        n_train,
        n_classes,
        MIN_TRAIN_PER_CLASS,
    )
    return True


def _template(cfg: SearchConfig, ds: Any) -> tuple[Any, Any]:
    """The architecture every candidate derives from, and the transfer donor (or ``None``)."""
    from swnas import models as M

    if not cfg.transfer:
        spec = M.ArchSpec(
            module=cfg.module,
            stages=[cfg.m0] * cast(int, cfg.stages),  # cfg is resolved
            num_classes=ds.num_classes,
            input_size=ds.input_size,
            in_channels=ds.in_channels,
            cell=cfg.cell,
        )
        return (spec.with_width(cfg.width) if cfg.width is not None else spec), None
    from swnas.training.transfer import load_donor
    from swnas.training.torchvision_donor import is_torchvision_donor, load_torchvision_donor

    donor = load_torchvision_donor(cfg.transfer) if is_torchvision_donor(cfg.transfer) else load_donor(cfg.transfer)
    template = cast(M.ArchSpec, donor.spec)  # a network built by swnas.models.build
    if getattr(template, "num_classes", ds.num_classes) != ds.num_classes:
        raise InputError(
            f"transfer: the donor predicts {template.num_classes} classes but {cfg.dataset} has {ds.num_classes}"
        )
    if template.module != cfg.module or len(template.stages) != cfg.stages:
        raise InputError(
            f"transfer: the donor is a {template.module} network with {len(template.stages)} stages; "
            f"give --module {template.module} --stages {len(template.stages)}"
        )
    need = cfg.m0 if cfg.inherit else cfg.m0 + cast(int, cfg.delta)  # inherit mode: the donor gives A0's weights only
    if need > min(template.stages):
        raise InputError(
            f"transfer: the donor's stages {list(template.stages)} are too shallow for "
            f"{'m0' if cfg.inherit else 'm0 + delta'} = {need} modules (a network cannot be deeper than its donor)"
        )
    return template, donor


def default_toolkit(cfg: SearchConfig, *, progress: bool = True) -> Toolkit:
    """The real wiring: dataset, model builder (or weight transfer), trainer, stage scorer, metrics.

    Under ``torchrun`` every network trains data-parallel (the trainer handles DDP) and only rank
    0 writes; each rank scores its shard of the training set and the statistics are summed before
    the scores are computed, so K processes make the decisions one would. The criterion's
    parameters are checked against the real problem sizes before anything trains.
    """
    import torch

    from swnas.training import distributed as dist
    from swnas import models as M
    from swnas.data import load_dataset
    from swnas.training.recipes import finetune_recipe, get_recipe, training_images
    from swnas.search.validate import check_problem_sizes
    from swnas.records.tracking import epoch_callback
    from swnas.training.trainer import train

    dist.init_from_env()
    ds = load_dataset(
        cfg.dataset,
        cfg.data,
        subset=cfg.subset,
        seed=cfg.seed,
        val_split=cfg.val_split,
        input_size=cfg.input_size,
        workers=cfg.workers,
    )
    warn_small_training_split(cfg, len(cast(Any, ds).y_train), ds.num_classes)  # every loaded source has y_train
    template, donor = _template(cfg, ds)
    check_problem_sizes(cfg, template, ds)
    epochs = training_epochs(cfg, donor is not None)
    rec = get_recipe(cfg.recipe, epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr)
    show = progress and dist.is_main()
    n_train = ds.size("train")
    used = {"device": "cpu"}

    def build(stages, seed):
        torch.manual_seed(seed)
        spec = template.with_stages(list(stages))
        if donor is not None:
            from swnas.training.transfer import transfer_weights

            return transfer_weights(donor, spec)
        return M.initialize(M.build(spec), rec.init)

    def run_training(model, seed, recipe, checkpoint_dir=None):
        r = train(
            model,
            ds,
            recipe=recipe,
            device=cfg.device,
            seed=seed,
            progress=show,
            checkpoint_dir=checkpoint_dir,
            sync_bn=cfg.sync_bn,
            callbacks=[epoch_callback(Path(checkpoint_dir).name)] if checkpoint_dir else (),
        )  # --track
        p = next(model.parameters(), None)
        if p is not None:
            used["device"] = str(p.device)
        return {
            "top1": r.top1,
            "top5": r.top5,
            "val_top1": r.val_top1,
            "seconds": r.seconds,
            "epochs": r.epochs,
            "history": r.history,
            "images": training_images(recipe, n_train, r.epochs),
        }

    def train_fn(model, seed, checkpoint_dir=None):
        return run_training(model, seed, rec, checkpoint_dir)

    def final_fn(model, seed, final_epochs, checkpoint_dir):
        return run_training(model, seed, final_recipe(rec, final_epochs), checkpoint_dir)

    def grow_fn(parent, stages, seed):
        from swnas.models.grow import inherit

        return inherit(parent, list(stages), seed=seed)

    def finetune_fn(model, seed, checkpoint_dir=None):
        return run_training(model, seed, finetune_recipe(rec, int(cfg.inherit_epochs)), checkpoint_dir)

    def score_fn(model):
        return [r.stage for r in stage_scores_for(model, ds, cfg)]

    def spec(model):
        s = model.spec
        return s.to_dict() if hasattr(s, "to_dict") else dict(s)

    return Toolkit(
        build=build,
        train=train_fn,
        score=score_fn,
        measure=lambda model, seconds: measure_network(model, ds, seconds, used["device"]),
        save=lambda model, path: M.save_model(model, path),
        load=load_model_checked,
        spec=spec,
        is_main=dist.is_main,
        barrier=dist.barrier,
        carbon_note=CARBON_NOTE,
        final_train=final_fn,
        grow=grow_fn if cfg.inherit else None,
        finetune=finetune_fn if cfg.inherit else None,
    )


def training_epochs(cfg: SearchConfig, transfer: bool) -> int | None:
    """Epochs per network: ``--epochs`` (``None``: the recipe's); with a donor ``--finetune-epochs``,
    else ``--epochs`` when given, else the paper's 50 (:data:`swnas.training.recipes.TRANSFER_EPOCHS`)."""
    from swnas.training.recipes import TRANSFER_EPOCHS

    if not transfer:
        return cfg.epochs
    if cfg.finetune_epochs is not None:
        return cfg.finetune_epochs
    return cfg.epochs if cfg.epochs is not None else TRANSFER_EPOCHS


def final_recipe(rec: Any, epochs: int) -> Any:
    """The recipe of a candidate's final training: ``epochs`` more at the schedule's last rate
    (``multistep``: ``lr * gamma ** len(milestones)``, constant); a ``onecycle`` recipe runs a new,
    shorter cycle. A time-based decay (``original``: Keras' ``decay=1e-6``) continues from the
    training's last iteration instead of restarting (``decay_offset_epochs``)."""
    from dataclasses import replace

    offset = int(rec.epochs) + int(rec.decay_offset_epochs)
    if rec.schedule == "multistep":
        return replace(
            rec,
            epochs=int(epochs),
            lr=rec.lr * rec.gamma ** len(rec.milestones),
            milestones=(),
            decay_offset_epochs=offset,
        )
    return replace(rec, epochs=int(epochs), decay_offset_epochs=offset)


def load_model_checked(path: str) -> Any:
    """:func:`swnas.models.load` after checking, without allocating, that the file's spec fits its weights."""
    from swnas.search.checkpoints import load_model

    return load_model(path)


def stage_scores_for(model: Any, ds: Any, cfg: SearchConfig) -> list:
    """Stage scores of ``model`` on the un-augmented training split, normalised as the recipe trains.

    :func:`swnas.features.stage_scores_of` on this process's rank: under torchrun a criterion
    that streams reads every K-th image per rank and the statistics are summed over ranks, so
    every rank gets the single-process result.
    """
    from swnas.training import distributed as dist
    from swnas.data import input_normalization
    from swnas.features import stage_scores_of
    from swnas.training.recipes import get_recipe

    mean, std = input_normalization(ds, get_recipe(cfg.recipe).normalize)  # as the networks were trained
    return stage_scores_of(
        model,
        ds,
        cfg.criterion,
        cfg.reduce,
        device=None if cfg.device == "auto" else cfg.device,
        backend=cfg.backend,
        mean=mean,
        std=std,
        rank=dist.rank(),
        world_size=dist.world_size(),
        **cfg.score_params,
    )
