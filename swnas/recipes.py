"""Training recipes (optimiser, schedule, augmentation) and a compute-time estimate.

``paper`` is the recipe of the Stage-Wise NAS paper's code; ``fast`` is a one-cycle recipe for
GPUs. Both use Nesterov SGD. Learning-rate schedules are stepped once per iteration through a
:class:`torch.optim.lr_scheduler.LambdaLR` whose factor object holds only numbers, so scheduler
state dicts load with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch

from swnas.errors import InputError

__all__ = ["Recipe", "RECIPES", "get_recipe", "ScheduleFactor", "make_optimizer", "make_scheduler",
           "crop_padding", "estimate_training_hours", "PAPER_SEARCH_RUNS"]


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of one training run.

    Attributes
    ----------
    name : str
    epochs, batch_size : int
        ``batch_size`` is the global batch (split evenly over DDP ranks).
    lr : float
        Base (``multistep``) or peak (``onecycle``) learning rate.
    momentum, weight_decay : float
    nesterov : bool
    schedule : {"multistep", "onecycle"}
    milestones : tuple of float
        ``multistep``: fractions of the epochs where the rate is multiplied by ``gamma``.
    gamma : float
    warmup : float
        ``onecycle``: fraction of the iterations spent rising from ``lr * start_factor`` to ``lr``;
        the rest falls linearly to ``lr * end_factor``.
    start_factor, end_factor : float
    label_smoothing : float
    """

    name: str
    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    schedule: str = "multistep"
    milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1
    warmup: float = 0.25
    start_factor: float = 0.04
    end_factor: float = 0.0
    label_smoothing: float = 0.0

    def milestone_epochs(self) -> list[int]:
        """Epochs at which a ``multistep`` schedule divides the rate (e.g. [100, 150] of 200)."""
        return [int(round(f * self.epochs)) for f in self.milestones]

    def to_dict(self) -> dict:
        return asdict(self)


#: The paper's recipe: Nesterov SGD (momentum 0.9), lr 0.01, weight decay 1e-4, batch 128,
#: lr / 10 at epochs 100 and 150 of 200 (at 50% and 75% when the epochs are overridden).
PAPER = Recipe("paper", epochs=200, batch_size=128, lr=0.01)

#: A GPU recipe: one-cycle (linear warm-up over the first 25% of iterations from lr/25 to 0.4,
#: then linear decay to 0), Nesterov SGD, weight decay 5e-4, label smoothing 0.1, batch 512,
#: 30 epochs. Designed to bring a CIFAR ResNet-56 to about 93% CIFAR-10 test accuracy (the paper
#: recipe's level, ~93-94%) in 30 instead of 200 epochs, i.e. ~7x fewer images; the figure is a
#: design target from comparable published one-cycle CIFAR schedules, not a measurement of this
#: code (no GPU was available when it was written).
FAST = Recipe("fast", epochs=30, batch_size=512, lr=0.4, weight_decay=5e-4, schedule="onecycle",
              label_smoothing=0.1)

RECIPES: dict[str, Recipe] = {"paper": PAPER, "fast": FAST}


def get_recipe(recipe: str | Recipe = "paper", *, epochs: int | None = None,
               batch_size: int | None = None, lr: float | None = None) -> Recipe:
    """A named recipe with optional overrides (the milestones stay fractions of the epochs)."""
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise InputError(f"recipe must be one of {list(RECIPES)} or a Recipe, got {recipe!r}")
        recipe = RECIPES[recipe]
    elif not isinstance(recipe, Recipe):
        raise InputError(f"recipe must be a name or a Recipe, got {type(recipe).__name__}")
    changes: dict = {}
    if epochs is not None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise InputError(f"epochs must be a positive integer, got {epochs!r}")
        changes["epochs"] = epochs
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        changes["batch_size"] = batch_size
    if lr is not None:
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise InputError(f"lr must be a positive finite number, got {lr!r}")
        changes["lr"] = float(lr)
    r = replace(recipe, **changes)
    if r.schedule not in ("multistep", "onecycle"):
        raise InputError(f"recipe schedule must be 'multistep' or 'onecycle', got {r.schedule!r}")
    return r


def crop_padding(input_size: int) -> int:
    """Zero padding of the random-crop augmentation: 4 px at 32 px, scaled as ``round(size / 8)``
    with a minimum of 1 (8x8 digits: 1 px; 64 px Tiny ImageNet: 8 px)."""
    return max(1, int(round(input_size / 8)))


class ScheduleFactor:
    """Learning-rate multiplier as a function of the iteration (a LambdaLR ``lr_lambda``).

    Holds only numbers, so LambdaLR's state dict stays loadable with ``weights_only=True``.
    """

    def __init__(self, recipe: Recipe, steps_per_epoch: int) -> None:
        self.kind = recipe.schedule
        self.steps_per_epoch = int(steps_per_epoch)
        self.total = int(steps_per_epoch * recipe.epochs)
        self.milestones = [int(m) for m in recipe.milestone_epochs()]
        self.gamma = float(recipe.gamma)
        self.warmup_steps = max(1, int(round(recipe.warmup * self.total)))
        self.start_factor = float(recipe.start_factor)
        self.end_factor = float(recipe.end_factor)

    def __call__(self, step: int) -> float:
        if self.kind == "multistep":
            epoch = step // self.steps_per_epoch
            return self.gamma ** sum(1 for m in self.milestones if epoch >= m)
        if step < self.warmup_steps:
            return self.start_factor + (1.0 - self.start_factor) * step / self.warmup_steps
        span = max(1, self.total - self.warmup_steps)
        frac = min(1.0, (step - self.warmup_steps) / span)
        return 1.0 + (self.end_factor - 1.0) * frac


def make_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.SGD:
    """Nesterov SGD with the recipe's rate, momentum and weight decay (decay on all parameters,
    as the paper's Keras code applies its L2 penalty)."""
    return torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                           nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-iteration LambdaLR implementing the recipe's schedule."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, ScheduleFactor(recipe, steps_per_epoch))


#: The paper's full from-scratch search on CIFAR-10 as (models, epochs) groups: 11 models trained
#: 200 epochs and 5 trained 100 epochs.
PAPER_SEARCH_RUNS: tuple[tuple[int, int], ...] = ((11, 200), (5, 100))


def estimate_training_hours(images_per_second: float, *, runs=PAPER_SEARCH_RUNS,
                            train_images: int = 50_000, eval_fraction: float = 0.0) -> float:
    """Hours of training for ``runs`` at a measured throughput.

    ``hours = train_images * sum(models * epochs) * (1 + eval_fraction) / images_per_second / 3600``.
    For the paper's search (11 x 200 + 5 x 100 epochs of 50,000 CIFAR-10 images = 135 M images)
    at the throughput measured for ResNet-56 this is a first-order estimate: the candidates are
    ResNets of similar depth (ResNet-44 .. ResNet-110), so the per-image cost varies around the
    ResNet-56 figure; ``eval_fraction`` adds evaluation/scoring time as a fraction of training.
    """
    if not images_per_second > 0:
        raise InputError(f"images_per_second must be positive, got {images_per_second!r}")
    total_images = train_images * sum(m * e for m, e in runs)
    return total_images * (1.0 + eval_fraction) / images_per_second / 3600.0
