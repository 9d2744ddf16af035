"""The paper's published numbers, as data, each with the table and the source it comes from.

Only numbers with a checkable source are stored. Three kinds of source:

* ``paper`` values printed in the paper and reprinted in the authors' README (Table III's residual
  rows) or quoted from the paper's text (the ensemble row, the first weight-transfer iteration);
* ``released`` architectures of the authors' released CIFAR-10 models
  (``models/CIFAR10/ResidualModules`` and ``CellModules`` in their repository), or uniform
  networks of the same Keras cells (NASNet169/205/241); their depth, FLOPs and parameters (Keras'
  ``count_params``, which includes BatchNorm's moving statistics) are *derived* from those Keras
  models and marked ``derived=True``. :mod:`swnas.models.costs` reproduces the depth and FLOPs
  exactly, and the trainable parameters of the cells exactly;
* ``nasnet`` Zoph et al. (2018), Table 1: NASNet-A (6 @ 768), i.e. NASNet241, has 3.3 M parameters.

A value the package does not hold is ``None`` and prints as ``n/a``: Tables I, II, IV and VI's
accuracies are not stored (see ``docs/protocol.md``, "Published numbers"); add them to
:data:`PUBLISHED` from the paper when you have it, with their source.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from swnas.errors import InputError

__all__ = ["PublishedRow", "PUBLISHED", "TABLES", "published_rows", "SOURCES"]

#: Where a published value comes from (the ``source`` field of a row).
SOURCES = {
    "paper": "Jordao et al., Stage-Wise Neural Architecture Search, ICPR 2020 (values as the paper and the "
             "authors' README print them)",
    "released": "architecture of the authors' released CIFAR-10 model (github.com/arturjordao/"
                "StageWiseArchitectureSearch, models/CIFAR10); costs derived with swnas.models.costs",
    "nasnet": "Zoph et al., Learning Transferable Architectures, CVPR 2018, Table 1 (NASNet-A 6 @ 768)",
}

#: The tables ``swnas paper`` writes: id -> what the paper's table shows.
TABLES = {
    "table1": "Table I: influence of the initial depth m0 (one iteration of the search)",
    "table2": "Table II: criteria (PLS-VIP, inf-FS, il-FS) over five iterations",
    "table3": "Table III: found residual networks vs ResNet-44/56/110, from scratch and by weight transfer",
    "table4": "Table IV: NASNet cells with stage-wise depth vs uniform NASNet169/205/241",
    "table6": "Table VI: found architectures transferred to another dataset",
    "ensemble": "Ensemble of the candidates of a residual and a cell search (Section IV)",
}


@dataclass(frozen=True)
class PublishedRow:
    """One published row. Percentages are top-1 accuracy in percent; ``None`` = not stored.

    Attributes
    ----------
    table : str
        A key of :data:`TABLES`.
    row : str
        The row's label, the key a measured row is matched on (``ResNet56``, ``it=3``, ...).
    setting : str
        Which experiment of the table (``scratch``, ``transfer``, ``pls``, ``cells`` ...).
    stages : tuple of int or None
    depth : int or None
        As the paper counts it (:func:`swnas.models.costs.paper_depth`; baselines by name).
    params_m, flops_m : float or None
        Millions of parameters and of FLOPs (the paper's convention, :func:`swnas.models.costs.keras_flops`).
    latency_ms, carbon_kg, top1 : float or None
    source : str
        A key of :data:`SOURCES`.
    derived : bool
        The costs were computed from a released architecture, not printed in the paper.
    """

    table: str
    row: str
    setting: str = ""
    stages: tuple[int, ...] | None = None
    depth: int | None = None
    params_m: float | None = None
    flops_m: float | None = None
    latency_ms: float | None = None
    carbon_kg: float | None = None
    top1: float | None = None
    source: str = "paper"
    derived: bool = False

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stages"] = list(self.stages) if self.stages is not None else None
        return d


def _released_residual(k: int, stages: tuple[int, ...], depth: int, params_m: float, flops_m: float) -> PublishedRow:
    return PublishedRow("table2", f"it={k}", "pls", stages, depth, params_m, flops_m, source="released", derived=True)


PUBLISHED: tuple[PublishedRow, ...] = (
    # Table III, from scratch (the rows the authors' README reprints).
    PublishedRow("table3", "ResNet56", "scratch", (9, 9, 9), 56, 0.86, 125, 46.86, 1.27, 93.03),
    PublishedRow("table3", "it=3", "scratch", (10, 12, 6), 59, 0.69, 130, 50.16, 1.23, 93.36),
    PublishedRow("table3", "ResNet110", "scratch", (18, 18, 18), 110, 1.7, 253, 90.33, 2.26, 93.57),
    PublishedRow("table3", "it=5", "scratch", (10, 14, 8), 67, 0.88, 149, 57.96, 1.32, 94.27),
    # Table III, weight transfer from ResNet-110: the first iteration grew no stage.
    PublishedRow("table3", "it=1", "transfer", (6, 6, 6), 39),
    # Table II, PLS-VIP: the released residual search (m0 = 6, delta = 2), iterations 1..5.
    _released_residual(1, (6, 8, 6), 43, 0.606, 92.7),
    _released_residual(2, (8, 10, 6), 51, 0.653, 111.6),
    _released_residual(3, (10, 12, 6), 59, 0.700, 130.5),
    _released_residual(4, (10, 12, 8), 63, 0.848, 139.9),
    _released_residual(5, (10, 14, 8), 67, 0.886, 149.3),
    # Table IV: uniform NASNets (Keras NASNet-A cells, first-stage width 32) and the released cell search.
    PublishedRow("table4", "NASNet169", "uniform", (4, 4, 4), 169, 2.318, 2766.0, source="released", derived=True),
    PublishedRow("table4", "NASNet205", "uniform", (5, 5, 5), 205, 2.837, 3288.2, source="released", derived=True),
    PublishedRow("table4", "NASNet241", "uniform", (6, 6, 6), 241, 3.355, 3810.4, source="released", derived=True),
    PublishedRow("table4", "it=1", "cells", (2, 3, 2), 109, 1.385, 1895.7, source="released", derived=True),
    PublishedRow("table4", "it=2", "cells", (3, 3, 2), 121, 1.414, 2069.7, source="released", derived=True),
    PublishedRow("table4", "it=3", "cells", (3, 4, 2), 133, 1.517, 2243.8, source="released", derived=True),
    PublishedRow("table4", "it=4", "cells", (4, 4, 3), 157, 1.932, 2591.9, source="released", derived=True),
    PublishedRow("table4", "it=5", "cells", (5, 4, 4), 181, 2.347, 2940.1, source="released", derived=True),
    PublishedRow("table4", "it=6", "cells", (6, 5, 4), 205, 2.479, 3288.2, source="released", derived=True),
    PublishedRow("table4", "NASNet241", "nasnet-a", (6, 6, 6), params_m=3.3, source="nasnet"),
    # The ensemble of residual it = 1, 3, 5 and cell it = 1, 3, 5.
    PublishedRow("ensemble", "ensemble", "residual+cells", params_m=7.27, top1=95.68),
)


def published_rows(table: str, setting: str | None = None) -> list[PublishedRow]:
    """The stored rows of ``table`` (optionally one ``setting``), in the paper's order."""
    if table not in TABLES:
        raise InputError(f"table: unknown table {table!r}; choose one of {', '.join(TABLES)}")
    return [r for r in PUBLISHED if r.table == table and (setting is None or r.setting == setting)]
