"""Every option of a search checked before the first network trains.

The checks go through the public entry points of the modules that use the options
(:func:`swnas.features.parse_reduce`, the criterion registry of :mod:`swnas.scoring`,
:func:`swnas.scoring.backends.resolve_backend`, :func:`swnas.training.recipes.get_recipe`,
:func:`swnas.data.check_source`), so a value is accepted here exactly when it would work later.
"""

from __future__ import annotations

from typing import Any, cast

from swnas.errors import InputError
from swnas.search.config import SearchConfig

__all__ = ["validate_options", "check_criterion_params", "check_device", "check_problem_sizes", "check_network_size"]

_HUGE = 1 << 40  # stands for "large enough" where a problem size is not known yet


def check_device(device: Any) -> str:
    """``"cpu"`` or ``"cuda"``: where ``device`` (auto, cpu, cuda, cuda:K) runs here; else InputError."""
    import torch

    if not isinstance(device, str):
        raise InputError(f"device: expected auto, cpu, cuda or cuda:K, got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise InputError(f"device: expected auto, cpu, cuda or cuda:K, got {device!r}") from None
    if dev.type == "cpu":
        return "cpu"
    if dev.type != "cuda":
        raise InputError(f"device: must be a CPU or CUDA device, got {device!r}")
    if not torch.cuda.is_available():
        raise InputError(f"device: {device!r} asks for CUDA but no CUDA device is available here")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(f"device: {device!r} does not exist ({torch.cuda.device_count()} CUDA device(s))")
    return "cuda"


def check_criterion_params(
    criterion: str, params: dict, n_samples: int = _HUGE, n_features: int = _HUGE, n_classes: int = 10
) -> dict:
    """The criterion's full parameters for a problem of that size (defaults filled), or InputError.

    A thin local stand-in until :mod:`swnas.scoring` offers a public parameter check.
    """
    from swnas.scoring.api import _criterion

    crit = _criterion(criterion)
    try:
        return crit.check(dict(params), int(n_samples), int(n_features), int(n_classes))
    except InputError as exc:
        raise InputError(f"--param ({criterion}): {exc}") from None


def validate_options(cfg: SearchConfig) -> None:
    """Check reduction, criterion parameters, backend (for that criterion, on that device), device,
    recipe and data source of a resolved config. Raises :class:`InputError` /
    :class:`~swnas.errors.BackendUnavailableError` naming the option."""
    from swnas.data import check_source
    from swnas.features import parse_reduce
    from swnas.training.recipes import get_recipe
    from swnas.scoring.backends import resolve_backend

    from swnas.search.config import CONTROL_CRITERIA

    parse_reduce(cfg.reduce)
    where = check_device(cfg.device)
    if cfg.criterion not in CONTROL_CRITERIA:  # the controls score nothing
        check_criterion_params(cfg.criterion, cfg.score_params)
        resolve_backend(cfg.backend, cfg.criterion, where)
    try:
        get_recipe(cfg.recipe, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr)
    except InputError as exc:
        raise InputError(f"--recipe/--epochs/--batch-size/--lr: {exc}") from None
    check_source(cfg.dataset, cfg.data)
    check_network_size(cfg)


def check_network_size(cfg: SearchConfig) -> None:
    """Refuse a search whose largest network (T of the last iteration: ``m0 + delta * iterations``
    modules per stage at most) is too large to build, before any data is loaded
    (:func:`swnas.models.check_size`; CIFAR-10's input and classes stand in for the data set's).
    A ``--transfer`` run takes its widths from the donor, checked when it is loaded."""
    from swnas import models as M
    from swnas.models.io import MAX_MODULES

    if cfg.transfer:
        return
    most = int(cfg.m0) + int(cast(int, cfg.delta)) * int(cfg.iterations)
    opts = f"--stages {cfg.stages} --m0 {cfg.m0} --delta {cfg.delta} --iterations {cfg.iterations}"
    if cfg.width is not None:
        opts += f" --width {cfg.width}"
    if int(cast(int, cfg.stages)) * most > MAX_MODULES:  # before even listing the stages
        raise InputError(
            f"{opts}: the last T would have {cfg.stages} stages of {most} modules, too large to build "
            f"(at most {MAX_MODULES} modules)"
        )
    spec = M.ArchSpec(module=cfg.module, stages=[most] * int(cast(int, cfg.stages)), cell=cfg.cell)
    M.check_size(spec.with_width(cfg.width) if cfg.width is not None else spec, opts)


def check_problem_sizes(cfg: SearchConfig, template: Any, ds: Any) -> None:
    """Check the criterion parameters against the real scoring problems (training images x the
    smallest stage's feature count), found with one forward pass of two images through the
    smallest network of the search."""
    import numpy as np

    from swnas import models as M
    from swnas.features import stage_features
    from swnas.search.config import CONTROL_CRITERIA

    if cfg.criterion in CONTROL_CRITERIA:
        return
    probe = M.build(template.with_stages([1] * len(template.stages)))
    feats = stage_features(probe, ds.head(2), cfg.reduce, device="cpu", mean=ds.mean, std=ds.std)
    p = min(int(f.shape[1]) for f in feats)
    n_classes = int(np.unique(ds.labels("train")).shape[0])
    check_criterion_params(cfg.criterion, cfg.score_params, ds.size("train"), p, n_classes)
