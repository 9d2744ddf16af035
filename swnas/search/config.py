"""The options of one search (:class:`SearchConfig`) and the names that describe its state file."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swnas.errors import InputError
from swnas.records.atomic import to_jsonable

__all__ = [
    "SearchConfig",
    "STATE_FILE",
    "LOG_FILE",
    "FORMAT",
    "TIMING_KEYS",
    "METRIC_UNITS",
    "criterion_names",
    "module_names",
    "CONTROL_CRITERIA",
    "SearchOption",
    "SEARCH_OPTIONS",
    "OPTIONS_BY_NAME",
    "option",
    "KINDS",
    "CHANGES",
    "RESUME",
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
    from swnas.models.registry import MODULE_TYPES

    return tuple(MODULE_TYPES)


def _cell_variants() -> tuple[str, ...]:
    """The NASNet cell variants of :class:`swnas.models.ArchSpec`."""
    from swnas.models.spec import CELL_VARIANTS

    return tuple(CELL_VARIANTS)


#: What a different value of an option changes: the networks built or trained (``training``), the
#: stage scores (``scoring``), the course of the run (``run``: how long it goes on; its own
#: ``--resume`` rule), or nothing that is computed (``nothing``).
CHANGES = ("training", "scoring", "run", "nothing")
#: When ``--resume`` may give an option another value: ``always``; ``until_trained`` (no network
#: trained yet); ``until_scored`` (no scoring step yet); ``rule``: the option's own rule
#: (:data:`swnas.search.state.RESUME_RULES`). The default follows ``changes``.
RESUME = ("always", "until_trained", "until_scored", "rule")
_RESUME_OF = {"training": "until_trained", "scoring": "until_scored", "run": "rule", "nothing": "always"}
#: How a value is given and checked. ``name``, ``path``, ``choice``: a string (``choice``: one of
#: ``choices()``); ``int``: an integer >= ``minimum`` (or ``None`` when the default is ``None``);
#: ``float`` (positive), ``fraction`` (in [0, 1)): numbers; ``flag``: true or false (a flag without a value on
#: the command line); ``params``: ``KEY=VALUE`` pairs (repeatable), a mapping in a file.
KINDS = ("name", "path", "choice", "int", "float", "fraction", "flag", "params")
#: kinds whose values :meth:`SearchConfig.resolved` checks by kind alone; the others need ``custom_check``
GENERIC_KINDS = ("name", "path", "choice", "int", "flag")


@dataclass(frozen=True)
class SearchOption:
    """One option of a search, as :data:`SEARCH_OPTIONS` lists it (declared once, in :class:`SearchConfig`).

    Attributes
    ----------
    name : str
        The :class:`SearchConfig` field; also the key in ``search.json``'s ``config`` and in a
        ``--config`` file (where ``-`` may stand for ``_``): :attr:`config_key`.
    type : str
        The field's annotation.
    default : Any
        The field's default (a ``default_factory`` is called).
    flag : str
        The ``swnas search`` flag.
    kind : str
        One of :data:`KINDS`: the command line's parser and the check of :meth:`SearchConfig.resolved`.
    changes : str
        One of :data:`CHANGES`.
    resume : str
        One of :data:`RESUME`.
    help : str
        The flag's help text.
    minimum : int or None
        ``int`` options: the smallest value.
    choices : callable or None
        ``choice`` options: returns the allowed names (read when the parser is built).
    metavar : str or None
        The flag's value placeholder in ``--help``.
    custom_check : bool
        The value is checked by its own code in :meth:`SearchConfig.resolved` (besides, or instead
        of, its kind's check).
    filled : bool
        A default of ``None`` stands for a value that depends on other options, filled in by
        :meth:`SearchConfig.resolved` before the kind's check (``stages``, ``delta``).
    """

    name: str
    type: str
    default: Any
    flag: str
    kind: str
    changes: str
    resume: str
    help: str
    minimum: int | None = None
    choices: Callable[[], Sequence[str]] | None = None
    metavar: str | None = None
    custom_check: bool = False
    filled: bool = False

    @property
    def config_key(self) -> str:
        """The option's key in ``search.json``, ``OUT/config.yaml`` and ``--config`` files."""
        return self.name


def option(
    default: Any,
    flag: str,
    kind: str,
    changes: str,
    *,
    help: str,
    resume: str | None = None,
    minimum: int | None = None,
    choices: Callable[[], Sequence[str]] | None = None,
    metavar: str | None = None,
    custom_check: bool = False,
    filled: bool = False,
) -> Any:
    """A :class:`SearchConfig` field declared with everything the command line, config files,
    validation and ``--resume`` need to know about it (:class:`SearchOption`).

    ``default`` is the default value, or a class (``dict``) whose instances are the default.
    """
    if kind not in KINDS or changes not in CHANGES or (resume is not None and resume not in RESUME):
        raise ValueError(f"option {flag}: kind {kind!r}, changes {changes!r} or resume {resume!r} is not known")
    meta = {
        "swnas_option": {
            "flag": flag,
            "kind": kind,
            "changes": changes,
            "resume": resume or _RESUME_OF[changes],
            "help": help,
            "minimum": minimum,
            "choices": choices,
            "metavar": metavar,
            "custom_check": custom_check,
            "filled": filled,
        }
    }
    if isinstance(default, type):
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class SearchConfig:
    """Options of one search (the paper's defaults).

    ``stages`` defaults to 3 (4 for ``bottleneck``) and ``delta`` to 2 for residual modules and 1
    for NASNet cells (the module type's ``search_stages`` and ``search_delta``,
    :data:`swnas.models.MODULE_TYPES`); ``score_params`` are passed to the criterion (PLS: ``n_components=2``).
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

    Every field is declared once, with :func:`option`: its default, ``swnas search`` flag, kind,
    what it changes and its ``--resume`` rule. :data:`SEARCH_OPTIONS` lists them; the command
    line, ``--config`` files, the checks of :meth:`resolved` and the resume rules read that table.
    """

    criterion: str = option(
        "pls",
        "--criterion",
        "choice",
        "scoring",
        choices=criterion_names,
        help="stage importance (default pls, 2 components)",
    )
    iterations: int = option(5, "--iterations", "int", "run", minimum=0, help="iterations n (default 5)")
    stages: int | None = option(
        None,
        "--stages",
        "int",
        "training",
        minimum=1,
        filled=True,
        help="number of stages S (default 3; 4 for bottleneck)",
    )
    m0: int = option(6, "--m0", "int", "training", minimum=1, help="initial modules per stage (default 6)")
    delta: int | None = option(
        None,
        "--delta",
        "int",
        "training",
        minimum=1,
        filled=True,
        help="modules added per step (default 2; 1 for nasnet)",
    )
    module: str = option(
        "basic", "--module", "choice", "training", choices=module_names, help="module type (default basic)"
    )
    reduce: str = option(
        "avgpool8", "--reduce", "name", "scoring", help="stage-feature reduction (default avgpool8, the paper's)"
    )
    recipe: str = option("paper", "--recipe", "name", "training", help="training recipe (default paper)")
    epochs: int | None = option(
        None, "--epochs", "int", "training", minimum=1, help="training epochs per network (default: the recipe's)"
    )
    batch_size: int | None = option(None, "--batch-size", "int", "training", minimum=1, help="training batch size")
    lr: float | None = option(None, "--lr", "float", "training", help="learning rate", custom_check=True)
    transfer: str | None = option(
        None,
        "--transfer",
        "path",
        "training",
        metavar="DONOR.pt",
        help="start every network from a trained donor's weights",
    )
    finetune_epochs: int | None = option(
        None, "--finetune-epochs", "int", "training", minimum=1, help="epochs after transfer"
    )
    seed: int = option(0, "--seed", "int", "training", minimum=0, help="seed (network j uses seed + j; default 0)")
    dataset: str = option(
        "cifar10", "--dataset", "name", "training", help="digits, cifar10, imagefolder or imagenet32 (default cifar10)"
    )
    data: str | None = option(None, "--data", "path", "training", metavar="PATH", help="dataset file or directory")
    subset: int | None = option(
        None, "--subset", "int", "training", minimum=1, help="use this many training images (balanced)"
    )
    device: str = option("auto", "--device", "name", "nothing", help="auto, cpu, cuda or cuda:K (default auto)")
    # every scorer backend agrees with the float64 reference within the tested tolerance
    backend: str = option("auto", "--backend", "name", "nothing", help="scorer backend (default auto)")
    score_params: dict = option(
        dict,
        "--param",
        "params",
        "scoring",
        custom_check=True,
        help="criterion parameter, e.g. n_components=2 (repeatable)",
    )
    # paper scale (docs/scale.md): image side of a streamed imagefolder, its decoding workers, SyncBatchNorm
    input_size: int | None = option(
        None,
        "--input-size",
        "int",
        "training",
        minimum=1,
        metavar="PX",
        custom_check=True,
        help="image side for imagefolder data (224 for ImageNet; streamed from disk)",
    )
    workers: int = option(
        4, "--workers", "int", "nothing", minimum=0, help="DataLoader processes decoding streamed images (default 4)"
    )
    sync_bn: bool = option(False, "--sync-bn", "flag", "training", help="SyncBatchNorm under torchrun (DDP)")
    stop_early: bool = option(False, "--stop-early", "flag", "run", help="stop when no stage grows")
    final_epochs: int | None = option(
        None,
        "--final-epochs",
        "int",
        "run",
        minimum=0,
        custom_check=True,
        help="train each candidate this many more epochs after the search (default: half the training "
        "epochs, the paper's 100; 0 skips)",
    )
    val_split: float = option(
        0.1,
        "--val-split",
        "fraction",
        "training",
        custom_check=True,
        help="stratified validation fraction of the training data; best = highest validation accuracy "
        "(default 0.1; 0: train on everything, no best)",
    )
    width: int | None = option(
        None,
        "--width",
        "int",
        "training",
        minimum=1,
        help="first-stage width, doubled at each stage (NASNet: cell filters)",
    )
    cell: str = option(
        "darts",
        "--cell",
        "choice",
        "training",
        choices=_cell_variants,
        help="NASNet cell variant (default darts; keras = the paper's)",
    )
    inherit: bool = option(
        False,
        "--inherit",
        "flag",
        "training",
        help="grow T from the trained A (new modules start as identities) and fine-tune instead of training "
        "from scratch; A is fine-tuned as much for an equal comparison (not the paper's protocol; see "
        "docs/protocol.md)",
    )
    inherit_epochs: int | None = option(
        None,
        "--inherit-epochs",
        "int",
        "training",
        minimum=1,
        help="fine-tuning epochs of each inherited network (default: an eighth of the training epochs)",
    )
    # CPU intra-op threads (None: 1 for inputs of at most 32 px on the CPU, else torch's; swnas.training.threads);
    # they change the CPU reduction order only, recorded in ``environment``, as a different machine would
    threads: int | None = option(
        None,
        "--threads",
        "int",
        "nothing",
        minimum=1,
        help="CPU threads torch uses inside one operation (default: 1 for inputs of at most 32 px on the CPU, "
        "where more only slow down under load; torch's default otherwise); recorded in the run's environment",
    )

    def resolved(self) -> SearchConfig:
        """A validated copy with the defaults that depend on other options filled in."""
        if self.score_params is not None and not isinstance(self.score_params, dict):
            raise InputError(
                f"score_params: expected a mapping of parameter: value (e.g. n_components: 2), "
                f"got {type(self.score_params).__name__}"
            )
        for opt in SEARCH_OPTIONS:  # the checks of the option kinds (KINDS)
            v = getattr(self, opt.name)
            if opt.kind in ("name", "path", "choice") and v is not None and not isinstance(v, str):
                raise InputError(f"{opt.name}: expected a name or path, got {type(v).__name__} {repr(v)[:60]}")
        for opt in SEARCH_OPTIONS:
            if opt.kind == "flag" and not isinstance(getattr(self, opt.name), bool):
                raise InputError(f"{opt.name}: expected true or false, got {repr(getattr(self, opt.name))[:60]}")
        c = dataclasses.replace(self, score_params=dict(self.score_params or {}))
        crits, mods = criterion_names(), module_names()
        if c.criterion not in crits:
            raise InputError(f"criterion: unknown criterion {c.criterion!r}; choose one of {', '.join(crits)}")
        if c.module not in mods:
            raise InputError(f"module: unknown module type {c.module!r}; choose one of {', '.join(mods)}")
        from swnas.models.registry import MODULE_TYPES

        if c.stages is None:
            c.stages = MODULE_TYPES[c.module].search_stages
        if c.delta is None:
            c.delta = MODULE_TYPES[c.module].search_delta
        if c.criterion not in CONTROL_CRITERIA:  # the parameters a criterion's record asks to be recorded
            from swnas.scoring.api import get_criterion

            for key, value in get_criterion(c.criterion).search_params.items():
                c.score_params.setdefault(key, value)
        if c.criterion in CONTROL_CRITERIA and c.score_params:
            raise InputError(f"--param: criterion {c.criterion!r} takes no parameters, got {c.score_params}")
        _check_numbers(c)
        _check_protocol(c)
        _check_inherit(c)
        from swnas.training.torchvision_donor import is_torchvision_donor  # torchvision:resnet50 names a cached donor

        if c.transfer is not None and not is_torchvision_donor(c.transfer) and not Path(c.transfer).is_file():
            raise InputError(f"transfer: donor checkpoint not found: {c.transfer}")
        if c.data is not None and not Path(c.data).exists():
            raise InputError(f"data: no such file or directory: {c.data}")
        return c

    def to_dict(self) -> dict:
        return to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> SearchConfig:
        if not isinstance(d, dict):
            raise InputError(f"config: expected a dict of options, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise InputError(f"config: unknown option(s) {', '.join(sorted(unknown))}")
        return cls(**d)


def _search_options(cls: type | None = None) -> tuple[SearchOption, ...]:
    """The :class:`SearchOption` of every field of ``cls`` (default :class:`SearchConfig`); a field
    declared without :func:`option` is a ``TypeError`` naming it."""
    out = []
    for f in dataclasses.fields(cls or SearchConfig):
        meta = f.metadata.get("swnas_option")
        if meta is None:
            raise TypeError(
                f"search option {f.name!r} is not declared with option(...): give it a flag, kind, "
                "what it changes and its --resume rule (docs/CONTRACTS.md, 'Add a search option')"
            )
        default: Any = f.default
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        out.append(SearchOption(name=f.name, type=str(f.type), default=default, **meta))
    return tuple(out)


#: Every option of a search, in :class:`SearchConfig`'s order: the one table the command line's
#: ``swnas search`` flags, the ``--config`` file keys, the checks of :meth:`SearchConfig.resolved`
#: and the ``--resume`` rules (:mod:`swnas.search.state`) derive from.
SEARCH_OPTIONS: tuple[SearchOption, ...] = _search_options()
OPTIONS_BY_NAME: dict[str, SearchOption] = {o.name: o for o in SEARCH_OPTIONS}


def _check_numbers(c: SearchConfig) -> None:
    """The ``int`` options by kind (``minimum``; ``None`` where that is the default), then the numbers
    checked by their own rules (``custom_check``)."""
    ints = [o for o in SEARCH_OPTIONS if o.kind == "int" and not o.custom_check]
    for opt in ints:  # those that must be set (``filled``: their default depends on others, filled by now)
        v, lo = getattr(c, opt.name), opt.minimum or 0
        if (opt.default is not None or opt.filled) and (isinstance(v, bool) or not isinstance(v, int) or v < lo):
            raise InputError(f"{opt.name}: expected an integer >= {lo}, got {v!r}")
    for opt in ints:  # those that may stay None
        v, lo = getattr(c, opt.name), opt.minimum or 0
        if (
            opt.default is None
            and not opt.filled
            and v is not None
            and (isinstance(v, bool) or not isinstance(v, int) or v < lo)
        ):
            want = "a positive integer" if lo == 1 else f"an integer >= {lo}"
            raise InputError(f"{opt.name}: expected {want}, got {v!r}")
    if c.input_size is not None and (
        isinstance(c.input_size, bool) or not isinstance(c.input_size, int) or c.input_size < 8
    ):
        raise InputError(f"input_size: expected an image side >= 8 pixels, got {c.input_size!r}")
    if c.lr is not None and not (isinstance(c.lr, (int, float)) and c.lr > 0 and math.isfinite(c.lr)):
        raise InputError(f"lr: expected a positive learning rate, got {c.lr!r}")
    if c.lr is not None and c.lr > FLOAT32_MAX:
        raise InputError(
            f"lr: {c.lr:g} does not fit in float32 (the parameters' type); use a learning rate such as 0.1"
        )


#: ``--inherit-epochs`` default: this fraction of the training epochs (docs/protocol.md, "Inherit mode").
INHERIT_EPOCHS_FRACTION = 8


def _check_inherit(c: SearchConfig) -> None:
    """``inherit`` needs a growable module type; fills ``inherit_epochs`` (training epochs // 8, >= 1)."""
    v = c.inherit_epochs  # its type and range: checked by kind (_check_numbers)
    if not c.inherit:
        if v is not None:
            raise InputError("--inherit-epochs applies with --inherit only")
        return
    from swnas.models.grow import can_inherit

    why = can_inherit(c.module)
    if why is not None:
        raise InputError(
            f"--inherit: --module {c.module} cannot grow by inheritance: {why}. "
            "Run this search without --inherit (every network trains from scratch)"
        )
    if v is None:
        if c.transfer is not None:
            base = c.finetune_epochs if c.finetune_epochs is not None else (c.epochs or 50)
        else:
            try:
                from swnas.training.recipes import get_recipe

                base = c.epochs if c.epochs is not None else get_recipe(c.recipe).epochs
            except InputError:
                base = 8  # an unknown recipe is reported by validate_options, naming --recipe
        c.inherit_epochs = max(1, int(base) // INHERIT_EPOCHS_FRACTION)


def _check_protocol(c: SearchConfig) -> None:
    """The options of the paper's protocol (final epochs, validation split, cells); fills
    ``final_epochs`` when ``None`` (half the training epochs, at least 1)."""
    from swnas.models.registry import MODULE_TYPES
    from swnas.models.spec import CELL_VARIANTS
    from swnas.training.recipes import get_recipe

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
    if c.cell != "darts" and not MODULE_TYPES[c.module].cells:
        takers = ", ".join(n for n, t in MODULE_TYPES.items() if t.cells)
        raise InputError(f"cell: {c.cell!r} applies to --module {takers} only")
