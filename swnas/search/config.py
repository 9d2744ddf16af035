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
    "criterion_names", "module_names",
]

FLOAT32_MAX = 3.4028234663852886e38
STATE_FILE = "search.json"
LOG_FILE = "search.log"
FORMAT = "swnas-search/1"
TIMING_KEYS = ("latency", "carbon", "train_seconds")
METRIC_UNITS = {
    "params": "count",
    "macs": "multiply-accumulates per image",
    "memory": "bytes (parameters + buffers)",
    "peak_memory": "bytes (largest activation set of one image)",
    "latency": "ms per image on the CPU (median, 1 thread)",
    "carbon": "kg CO2e of training",
    "top1": "fraction of the test set",
    "top5": "fraction of the test set",
    "train_seconds": "s",
}


def criterion_names() -> tuple[str, ...]:
    """The criteria registered in :mod:`swnas.scoring` (the only source of these names)."""
    from swnas.scoring import criteria

    return tuple(criteria())


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
    keep_going: bool = False
    score_params: dict = field(default_factory=dict)

    def resolved(self) -> "SearchConfig":
        """A validated copy with the defaults that depend on other options filled in."""
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
        _check_numbers(c)
        if c.transfer is not None and not Path(c.transfer).is_file():
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
    for name in ("epochs", "batch_size", "subset", "finetune_epochs"):
        v = getattr(c, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise InputError(f"{name}: expected a positive integer, got {v!r}")
    if c.lr is not None and not (isinstance(c.lr, (int, float)) and c.lr > 0 and math.isfinite(c.lr)):
        raise InputError(f"lr: expected a positive learning rate, got {c.lr!r}")
    if c.lr is not None and c.lr > FLOAT32_MAX:
        raise InputError(f"lr: {c.lr:g} does not fit in float32 (the parameters' type); use a learning rate "
                         "such as 0.1")
