"""Training recipes (optimiser, schedule, augmentation) and a compute-time estimate.

``paper`` is the recipe the Stage-Wise NAS paper's text describes; ``original`` is what the
authors' released Keras code did (three augmented copies of the training set per epoch, L2 on
convolution kernels only, he-normal initialisation, per-pixel mean subtraction, Keras time-based
rate decay); ``fast`` is a one-cycle recipe for GPUs. All use Nesterov SGD. ``docs/protocol.md``
lists every difference and where it comes from. Learning-rate schedules are stepped once per iteration through a
:class:`torch.optim.lr_scheduler.LambdaLR` whose factor object holds only numbers, so scheduler
state dicts load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from swnas.errors import InputError

__all__ = [
    "Recipe",
    "RECIPES",
    "get_recipe",
    "ScheduleFactor",
    "make_optimizer",
    "make_scheduler",
    "crop_padding",
    "estimate_training_hours",
    "SCHEDULES",
    "finetune_recipe",
    "PAPER_SEARCH_RUNS",
    "DECAY_SCOPES",
    "NORMALIZATIONS",
    "FINAL_EPOCHS",
    "TRANSFER_EPOCHS",
    "steps_per_epoch",
    "images_per_epoch",
    "training_images",
]

#: Learning-rate schedules: steps at milestones, one cycle (warm-up then linear decay), or one
#: cosine annealing from ``lr`` to 0 (a warm restart, used to fine-tune inherited networks).
SCHEDULES = ("multistep", "onecycle", "cosine")
#: Which parameters a recipe's weight decay applies to.
DECAY_SCOPES = ("all", "kernels", "conv_kernels")
#: How inputs are normalised: per-channel mean and std, or the per-pixel mean image subtracted.
NORMALIZATIONS = ("channel", "pixel_mean")
#: The paper's final training of each candidate after the search decision (Section IV).
FINAL_EPOCHS = 100
#: The paper's fine-tuning of weight-transferred networks (Section IV).
TRANSFER_EPOCHS = 50


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
    schedule : {"multistep", "onecycle", "cosine"}
    milestones : tuple of float
        ``multistep``: fractions of the epochs where the rate is multiplied by ``gamma``.
    gamma : float
    warmup : float
        ``onecycle``: fraction of the iterations spent rising from ``lr * start_factor`` to ``lr``;
        the rest falls linearly to ``lr * end_factor``.
    start_factor, end_factor : float
    label_smoothing : float
    copies_per_epoch : int
        Independently augmented copies of the training set that make one epoch (the original
        code concatenates 3 per epoch, so its "epoch" is 3 passes).
    decay_scope : {"all", "kernels", "conv_kernels"}
        Parameters that get ``weight_decay``: all of them, convolution and dense kernels, or
        convolution kernels only (never BatchNorm parameters or biases unless ``all``).
    lr_decay : float
        Keras time-based decay: the rate is divided by ``1 + lr_decay * iteration`` on top of the
        schedule (the original code's ``SGD(decay=1e-6)``).
    decay_offset_epochs : int
        Epochs of an earlier run that the time-based decay continues from: the iteration count in
        ``1 + lr_decay * iteration`` starts at ``decay_offset_epochs * steps_per_epoch`` (a
        candidate's final epochs continue the decay of its training, as Keras' optimizer did).
    init : {"default", "he_normal"}
        Weight initialisation of networks trained from scratch, in a search and by ``swnas train``
        (:func:`swnas.models.initialize`).
    normalize : {"channel", "pixel_mean"}
        Input normalisation: ``(x / 255 - mean_c) / std_c`` per channel, or ``x / 255`` minus the
        training split's per-pixel mean image (no scaling), in training, evaluation and stage
        scoring alike (:func:`swnas.data.input_normalization`).
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
    copies_per_epoch: int = 1
    decay_scope: str = "all"
    lr_decay: float = 0.0
    decay_offset_epochs: int = 0
    init: str = "default"
    normalize: str = "channel"

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
FAST = Recipe("fast", epochs=30, batch_size=512, lr=0.4, weight_decay=5e-4, schedule="onecycle", label_smoothing=0.1)

#: The authors' released Keras code: batch 128, SGD lr 0.01, momentum 0.9, Nesterov, decay 1e-6,
#: lr 1e-3 from epoch 100 and 1e-4 from epoch 150, each epoch three augmented copies of the
#: training set, Keras ``l2(1e-4)`` on convolution kernels (a loss term 1e-4 * w^2, i.e. gradient
#: 2e-4 * w: weight decay 2e-4 in PyTorch's convention) and none on BatchNorm, biases or the dense
#: layer, he-normal (fan-in) initialisation, per-pixel mean subtraction.
ORIGINAL = Recipe(
    "original",
    epochs=200,
    batch_size=128,
    lr=0.01,
    weight_decay=2e-4,
    copies_per_epoch=3,
    decay_scope="conv_kernels",
    lr_decay=1e-6,
    init="he_normal",
    normalize="pixel_mean",
)

RECIPES: dict[str, Recipe] = {"paper": PAPER, "original": ORIGINAL, "fast": FAST}


def get_recipe(
    recipe: str | Recipe = "paper", *, epochs: int | None = None, batch_size: int | None = None, lr: float | None = None
) -> Recipe:
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
    _check_fields(r)
    return r


def _check_fields(r: Recipe) -> None:
    from swnas.models.init import INIT_SCHEMES

    if r.schedule not in SCHEDULES:
        raise InputError(f"recipe schedule must be one of {list(SCHEDULES)}, got {r.schedule!r}")
    if isinstance(r.copies_per_epoch, bool) or not isinstance(r.copies_per_epoch, int) or r.copies_per_epoch < 1:
        raise InputError(f"copies_per_epoch must be a positive integer, got {r.copies_per_epoch!r}")
    if r.decay_scope not in DECAY_SCOPES:
        raise InputError(f"decay_scope must be one of {list(DECAY_SCOPES)}, got {r.decay_scope!r}")
    if not (isinstance(r.lr_decay, (int, float)) and math.isfinite(r.lr_decay) and r.lr_decay >= 0):
        raise InputError(f"lr_decay must be a non-negative finite number, got {r.lr_decay!r}")
    off = r.decay_offset_epochs
    if isinstance(off, bool) or not isinstance(off, int) or off < 0:
        raise InputError(f"decay_offset_epochs must be a non-negative integer, got {off!r}")
    if r.init not in INIT_SCHEMES:
        raise InputError(f"init must be one of {list(INIT_SCHEMES)}, got {r.init!r}")
    if r.normalize not in NORMALIZATIONS:
        raise InputError(f"normalize must be one of {list(NORMALIZATIONS)}, got {r.normalize!r}")


def finetune_recipe(recipe: Recipe, epochs: int) -> Recipe:
    """The recipe that fine-tunes an inherited network (``swnas search --inherit``) for ``epochs``.

    A warm restart (SGDR, Loshchilov & Hutter, ICLR 2017): the rate jumps back to the recipe's
    base (``multistep``) or peak (``onecycle``) rate and is annealed to 0 along one cosine over the
    ``epochs``, as NASH (Elsken, Metzen & Hutter, 2017) trains each network grown by a network
    morphism. Everything else (optimiser, weight decay, augmentation, batch, copies per epoch)
    is the recipe's. ``docs/protocol.md`` ("Inherit mode") says why.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise InputError(f"inherit_epochs: expected a positive integer, got {epochs!r}")
    return replace(recipe, epochs=int(epochs), schedule="cosine", milestones=())


def images_per_epoch(recipe: Recipe, n_train: int) -> int:
    """Images one epoch of ``recipe`` trains on: ``n_train * copies_per_epoch``."""
    return int(n_train) * recipe.copies_per_epoch


def steps_per_epoch(recipe: Recipe, n_train: int) -> int:
    """SGD steps of one epoch (the last batch may be partial)."""
    return max(1, math.ceil(images_per_epoch(recipe, n_train) / recipe.batch_size))


def training_images(recipe: Recipe, n_train: int, epochs: int | None = None) -> int:
    """Images a whole run trains on (``epochs`` defaults to the recipe's)."""
    return images_per_epoch(recipe, n_train) * (recipe.epochs if epochs is None else int(epochs))


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
        self.lr_decay = float(recipe.lr_decay)
        self.decay_offset = int(recipe.decay_offset_epochs) * self.steps_per_epoch

    def __call__(self, step: int) -> float:
        return self._schedule(step) / (1.0 + self.lr_decay * (step + self.decay_offset))

    def _schedule(self, step: int) -> float:
        if self.kind == "multistep":
            epoch = step // self.steps_per_epoch
            return self.gamma ** sum(1 for m in self.milestones if epoch >= m)
        if self.kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, step / max(1, self.total))))
        if step < self.warmup_steps:
            return self.start_factor + (1.0 - self.start_factor) * step / self.warmup_steps
        span = max(1, self.total - self.warmup_steps)
        frac = min(1.0, (step - self.warmup_steps) / span)
        return 1.0 + (self.end_factor - 1.0) * frac


def _decayed(model: torch.nn.Module, scope: str) -> tuple[list, list]:
    """(parameters with weight decay, parameters without) for ``scope``, in ``model.parameters()`` order."""
    kinds = (torch.nn.Conv2d,) if scope == "conv_kernels" else (torch.nn.Conv2d, torch.nn.Linear)
    kernels = {id(m.weight) for m in model.modules() if isinstance(m, kinds)}
    params = list(model.parameters())
    return [p for p in params if id(p) in kernels], [p for p in params if id(p) not in kernels]


def make_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.SGD:
    """Nesterov SGD with the recipe's rate, momentum and weight decay.

    ``decay_scope="all"`` decays every parameter (one parameter group); ``kernels`` and
    ``conv_kernels`` put the decayed kernels in a first group and the rest (BatchNorm, biases,
    and for ``conv_kernels`` the dense layer) in a second group without decay.
    """
    kw: dict[str, Any] = dict(lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov)
    if recipe.decay_scope == "all":
        return torch.optim.SGD(model.parameters(), weight_decay=recipe.weight_decay, **kw)
    decayed, plain = _decayed(model, recipe.decay_scope)
    groups = [{"params": decayed, "weight_decay": recipe.weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return torch.optim.SGD([g for g in groups if g["params"]], **kw)


def make_scheduler(
    optimizer: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-iteration LambdaLR implementing the recipe's schedule."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, ScheduleFactor(recipe, steps_per_epoch))


#: The paper's full from-scratch search on CIFAR-10 as (models, epochs) groups: 11 models trained
#: 200 epochs and 5 trained 100 epochs.
PAPER_SEARCH_RUNS: tuple[tuple[int, int], ...] = ((11, 200), (5, 100))


def estimate_training_hours(
    images_per_second: float, *, runs=PAPER_SEARCH_RUNS, train_images: int = 50_000, eval_fraction: float = 0.0
) -> float:
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
