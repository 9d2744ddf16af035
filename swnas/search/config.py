"""The options of one search (:class:`SearchConfig`) and the names that describe its state file."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from swnas.errors import InputError
from swnas.state import to_jsonable

__all__ = [
    "SearchConfig", "STATE_FILE", "LOG_FILE", "FORMAT", "TIMING_KEYS", "METRIC_UNITS",
    "criterion_names", "module_names", "CONTROL_CRITERIA",
]

#: Criteria that decide without scoring (the controls of ``docs/protocol.md``): ``random`` grows
#: each stage with probability 1/2 (seeded), ``uniform`` grows every stage.
CONTROL_CRITERIA = ("random", "uniform")

FLOAT32_MAX = 3.4028234663852886e38
STATE_FILE = "search.json"
LOG_FILE = "search.log"
FORMAT = "swnas-search/1"
TIMING_KEYS = ("latency", "carbon", "train_seconds")
METRIC_UNITS = {
    "params": "count",
    "macs": "multiply-accumulates per image",
    "memory": "bytes (the paper's memory: input, every layer's output for one image, parameters and buffers)",
    "peak_memory": "bytes (largest activation set of one image)",
    "latency": "ms per image on the CPU (median, 1 thread)",
    "carbon": "kg CO2e of training",
    "top1": "fraction of the test set",
    "top5": "fraction of the test set",
    "val_top1": "fraction of the validation split (of the training data)",
    "train_seconds": "s",
}


def criterion_names() -> tuple[str, ...]:
    """The criteria registered in :mod:`swnas.scoring` (the only source of these names), then the
    :data:`CONTROL_CRITERIA`."""
    from swnas.scoring import criteria

    return tuple(criteria()) + CONTROL_CRITERIA


def module_names() -> tuple[str, ...]:
    """The module types :mod:`swnas.models` can build (the only source of these names)."""
    from swnas.models import MODULE_TYPES

    return tuple(MODULE_TYPES)


@dataclass
class SearchConfig:
    """Options of one search (the paper's defaults).

    ``stages`` defaults to 3 (4 for ``bottleneck``) and ``delta`` to 2 for residual modules and 1
    for NASNet cells; ``score_params`` are passed to the criterion (PLS: ``n_components=2``).
    ``epochs``/``batch_size``/``lr`` of ``None`` take the recipe's values; in transfer mode every
    candidate starts from ``transfer`` (a donor checkpoint) and is fine-tuned ``finetune_epochs``
    (``None``: as ``epochs``).

    The protocol is the paper's (``docs/protocol.md``): all ``iterations`` run even when no stage
    grows (``stop_early`` stops instead); the candidates are
    A_1..A_n; each is then trained ``final_epochs`` more (``None``: half the training epochs, the
    paper's 100 of 200; 0 skips); networks train on all but a stratified ``val_split`` of the
    training data, and ``best`` is the candidate with the highest validation accuracy (none when
    ``val_split`` is 0). ``width`` sets the first-stage width (doubled per stage) and ``cell`` the
    NASNet cell variant (:class:`swnas.models.ArchSpec`).

    ``inherit`` (an addition to the paper, ``docs/protocol.md``): T grows from the trained A by
    function-preserving growth and is fine-tuned ``inherit_epochs`` (``None``: an eighth of the
    training epochs, at least 1) instead of trained from scratch; so is A fine-tuned as T's
    equal-training reference, and the next A is cut from T.
    """

    criterion: str = "pls"
    iterations: int = 5
    stages: int | None = None
    m0: int = 6
    delta: int | None = None
    module: str = "basic"
    reduce: str = "avgpool8"
    recipe: str = "paper"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    transfer: str | None = None
    finetune_epochs: int | None = None
    seed: int = 0
    dataset: str = "cifar10"
    data: str | None = None
    subset: int | None = None
    device: str = "auto"
    backend: str = "auto"
    score_params: dict = field(default_factory=dict)
    # E (paper scale, docs/scale.md): image side of a streamed imagefolder, its decoding workers, SyncBatchNorm
    input_size: int | None = None
    workers: int = 4
    sync_bn: bool = False
    stop_early: bool = False
    final_epochs: int | None = None
    val_split: float = 0.1
    width: int | None = None
    cell: str = "darts"
    inherit: bool = False
    inherit_epochs: int | None = None
    # CPU intra-op threads (None: 1 for inputs of at most 32 px on the CPU, else torch's; swnas.threads)
    threads: int | None = None

    def resolved(self) -> "SearchConfig":
        """A validated copy with the defaults that depend on other options filled in."""
        if self.score_params is not None and not isinstance(self.score_params, dict):
            raise InputError(f"score_params: expected a mapping of parameter: value (e.g. n_components: 2), "
                             f"got {type(self.score_params).__name__}")
        for name in ("criterion", "module", "reduce", "recipe", "transfer", "dataset", "data", "device", "backend",
                     "cell"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                raise InputError(f"{name}: expected a name or path, got {type(v).__name__} {repr(v)[:60]}")
        for name in ("sync_bn", "stop_early", "inherit"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name}: expected true or false, got {repr(getattr(self, name))[:60]}")
        c = dataclasses.replace(self, score_params=dict(self.score_params or {}))
        crits, mods = criterion_names(), module_names()
        if c.criterion not in crits:
            raise InputError(f"criterion: unknown criterion {c.criterion!r}; choose one of {', '.join(crits)}")
        if c.module not in mods:
            raise InputError(f"module: unknown module type {c.module!r}; choose one of {', '.join(mods)}")
        if c.stages is None:
            c.stages = 4 if c.module == "bottleneck" else 3
        if c.delta is None:
            c.delta = 1 if c.module == "nasnet" else 2
        if c.criterion == "pls":
            c.score_params.setdefault("n_components", 2)
        if c.criterion in CONTROL_CRITERIA and c.score_params:
            raise InputError(f"--param: criterion {c.criterion!r} takes no parameters, got {c.score_params}")
        _check_numbers(c)
        if c.threads is not None and (not isinstance(c.threads, int) or isinstance(c.threads, bool) or c.threads < 1):
            raise InputError(f"threads: expected a positive integer, got {c.threads!r}")
        _check_protocol(c)
        _check_inherit(c)
        from swnas.tvdonor import is_torchvision_donor  # E: torchvision:resnet50 names a cached donor

        if c.transfer is not None and not is_torchvision_donor(c.transfer) and not Path(c.transfer).is_file():
            raise InputError(f"transfer: donor checkpoint not found: {c.transfer}")
        if c.data is not None and not Path(c.data).exists():
            raise InputError(f"data: no such file or directory: {c.data}")
        return c

    def to_dict(self) -> dict:
        return to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "SearchConfig":
        if not isinstance(d, dict):
            raise InputError(f"config: expected a dict of options, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise InputError(f"config: unknown option(s) {', '.join(sorted(unknown))}")
        return cls(**d)


def _check_numbers(c: SearchConfig) -> None:
    for name, lo in (("iterations", 0), ("stages", 1), ("m0", 1), ("delta", 1), ("seed", 0)):
        v = getattr(c, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise InputError(f"{name}: expected an integer >= {lo}, got {v!r}")
    for name in ("epochs", "batch_size", "subset", "finetune_epochs", "width"):
        v = getattr(c, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise InputError(f"{name}: expected a positive integer, got {v!r}")
    if c.input_size is not None and (isinstance(c.input_size, bool) or not isinstance(c.input_size, int)
                                     or c.input_size < 8):
        raise InputError(f"input_size: expected an image side >= 8 pixels, got {c.input_size!r}")
    if isinstance(c.workers, bool) or not isinstance(c.workers, int) or c.workers < 0:
        raise InputError(f"workers: expected an integer >= 0, got {c.workers!r}")
    if c.lr is not None and not (isinstance(c.lr, (int, float)) and c.lr > 0 and math.isfinite(c.lr)):
        raise InputError(f"lr: expected a positive learning rate, got {c.lr!r}")
    if c.lr is not None and c.lr > FLOAT32_MAX:
        raise InputError(f"lr: {c.lr:g} does not fit in float32 (the parameters' type); use a learning rate "
                         "such as 0.1")


#: ``--inherit-epochs`` default: this fraction of the training epochs (docs/protocol.md, "Inherit mode").
INHERIT_EPOCHS_FRACTION = 8


def _check_inherit(c: SearchConfig) -> None:
    """``inherit`` needs a growable module type; fills ``inherit_epochs`` (training epochs // 8, >= 1)."""
    if not isinstance(c.inherit, bool):
        raise InputError(f"inherit: expected true or false, got {c.inherit!r}")
    v = c.inherit_epochs
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
        raise InputError(f"inherit_epochs: expected a positive integer, got {v!r}")
    if not c.inherit:
        if v is not None:
            raise InputError("--inherit-epochs applies with --inherit only")
        return
    from swnas.models.grow import can_inherit

    why = can_inherit(c.module)
    if why is not None:
        raise InputError(f"--inherit: --module {c.module} cannot grow by inheritance: {why}. "
                         "Run this search without --inherit (every network trains from scratch)")
    if v is None:
        if c.transfer is not None:
            base = c.finetune_epochs if c.finetune_epochs is not None else (c.epochs or 50)
        else:
            try:
                from swnas.recipes import get_recipe

                base = c.epochs if c.epochs is not None else get_recipe(c.recipe).epochs
            except InputError:
                base = 8  # an unknown recipe is reported by validate_options, naming --recipe
        c.inherit_epochs = max(1, int(base) // INHERIT_EPOCHS_FRACTION)


def _check_protocol(c: SearchConfig) -> None:
    """The options of the paper's protocol (final epochs, validation split, cells); fills
    ``final_epochs`` when ``None`` (half the training epochs, at least 1)."""
    from swnas.models.spec import CELL_VARIANTS
    from swnas.recipes import get_recipe

    if c.final_epochs is None:
        try:
            base = c.epochs if c.epochs is not None else get_recipe(c.recipe).epochs
        except InputError:
            base = 2  # an unknown recipe is reported by validate_options, naming --recipe
        c.final_epochs = max(1, base // 2)
    v = c.final_epochs
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise InputError(f"final_epochs: expected an integer >= 0 (0 skips the final training), got {v!r}")
    vs = c.val_split
    if isinstance(vs, bool) or not isinstance(vs, (int, float)) or not (0.0 <= vs < 1.0) or not math.isfinite(vs):
        raise InputError(f"val_split: expected a fraction in [0, 1), got {vs!r}")
    c.val_split = float(vs)
    if c.cell not in CELL_VARIANTS:
        raise InputError(f"cell: unknown NASNet cell variant {c.cell!r}; choose one of {', '.join(CELL_VARIANTS)}")
    if c.cell != "darts" and c.module != "nasnet":
        raise InputError(f"cell: {c.cell!r} applies to --module nasnet only")
