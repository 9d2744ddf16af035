"""The paper's published numbers, as data, each with the table and the source it comes from.

Two kinds of value, never mixed in one row:

* ``paper``: printed in the paper (Jordao et al., *Stage-Wise Neural Architecture Search*,
  ICPR 2020), cited by table ("ICPR 2020, Table N", or its Section IV text): every value of Tables
  I-VI and the text's ImageNet top-5 (table ``imagenet``), ensemble figures and Table III's time
  per iteration, as printed (Table IV's parameters look
  truncated, not rounded; memory "MB" is 2^20 bytes for the residual networks);
* ``released``: architectures of the authors' released CIFAR-10 models
  (``models/CIFAR10/ResidualModules`` and ``CellModules`` in their repository) and uniform
  networks of the same Keras cells (NASNet169/205/241), with depth, FLOPs and parameters (Keras'
  ``count_params``, which includes BatchNorm's moving statistics) *derived* from those models and
  marked ``derived=True``. :mod:`swnas.models.costs` reproduces the depth and FLOPs exactly, and the
  trainable parameters of the cells exactly. A derived row sits beside the printed row of the same
  key, never in its place.

A value the paper does not print is ``None`` and prints as ``n/a``. ``tests/data/published_tables.md``
holds the printed figures the tests pin every value against.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from swnas.errors import InputError

__all__ = [
    "PublishedRow",
    "PUBLISHED",
    "TABLES",
    "published_rows",
    "SOURCES",
    "TABLE6_TARGETS",
    "IMAGENET_TOP5",
    "TABLE3_HOURS_PER_ITERATION",
    "ELSKEN_ENSEMBLE",
]

#: Where a published value comes from (the ``source`` field of a row).
SOURCES = {
    "paper": "Jordao et al., Stage-Wise Neural Architecture Search, ICPR 2020 (values as printed, cited by table)",
    "released": "architecture of the authors' released CIFAR-10 model (github.com/arturjordao/"
    "StageWiseArchitectureSearch, models/CIFAR10); costs derived with swnas.models.costs",
}

#: The tables ``swnas paper`` writes: id -> what the paper's table shows.
TABLES = {
    "table1": "Table I: influence of the initial depth m0 (one iteration of the search)",
    "table2": "Table II: criteria (PLS-VIP, inf-FS, il-FS) over five iterations",
    "table3": "Table III: found residual networks vs ResNet-44/56/110, from scratch and by weight transfer",
    "table4": "Table IV: NASNet cells with stage-wise depth vs uniform NASNet169/205/241",
    "table5": "Table V: versus other NAS methods (evaluated models, GPUs, parameters, accuracy)",
    "table6": "Table VI: found architectures trained from scratch on another dataset (top-5)",
    "ensemble": "Ensemble of the candidates of a residual and a cell search (Section IV)",
    "imagenet": "ImageNet (224 x 224): bottleneck modules with weight transfer, top-5 (Section IV)",
}


@dataclass(frozen=True)
class PublishedRow:
    """One published row. Accuracies are in percent; ``None`` = not printed.

    Attributes
    ----------
    table : str
        A key of :data:`TABLES`.
    row : str
        The row's label, the key a measured row is matched on (``ResNet56``, ``it=3``, ``m0=2`` ...).
    setting : str
        Which experiment of the table (``scratch``, ``transfer``, ``pls``, ``cells``, ``m0``, a
        target dataset ...); a measured row pairs with a published one when both match.
    stages : tuple of int or None
    depth : int or None
        As the paper counts it (:func:`swnas.models.costs.paper_depth`; baselines by name).
    params_m, flops_m : float or None
        Millions of parameters and of FLOPs (the paper's convention, :func:`swnas.models.costs.keras_flops`;
        Table IV prints FLOPs in billions: stored here in millions, shown in billions).
    memory_mb : float or None
        Memory in MB as the paper prints it (2^20 bytes: swnas' ``memory`` / 2**20).
    latency_ms, carbon_kg : float or None
        CPU inference time (ms) and training carbon (kgCO2eq), Table III.
    top1, top5 : float or None
        Test accuracy (Table VI prints top-5; the ImageNet text figure is top-5).
    evaluated_models, gpus : int or None
        Table V: networks trained by the search and GPUs used.
    source : str
        A key of :data:`SOURCES`.
    derived : bool
        The costs were computed from a released architecture, not printed in the paper.
    cite : str
        Where the values are printed ("ICPR 2020, Table III"); empty for derived rows.
    """

    table: str
    row: str
    setting: str = ""
    stages: tuple[int, ...] | None = None
    depth: int | None = None
    params_m: float | None = None
    flops_m: float | None = None
    memory_mb: float | None = None
    latency_ms: float | None = None
    carbon_kg: float | None = None
    top1: float | None = None
    top5: float | None = None
    evaluated_models: int | None = None
    gpus: int | None = None
    source: str = "paper"
    derived: bool = False
    cite: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stages"] = list(self.stages) if self.stages is not None else None
        return d


def _released_residual(k: int, stages: tuple[int, ...], depth: int, params_m: float, flops_m: float) -> PublishedRow:
    return PublishedRow("table2", f"it={k}", "pls", stages, depth, params_m, flops_m, source="released", derived=True)


def _cells(
    row: str, setting: str, stages: tuple[int, ...], depth: int, params_m: float, flops_m: float
) -> PublishedRow:
    return PublishedRow("table4", row, setting, stages, depth, params_m, flops_m, source="released", derived=True)


def _t(n: str) -> str:
    return f"ICPR 2020, Table {n}"


def _table1(m0: int, depth: int, params: float, flops: float, memory: float, top1: float) -> PublishedRow:
    return PublishedRow(
        "table1",
        f"m0={m0}",
        "m0",
        depth=depth,
        params_m=params,
        flops_m=flops,
        memory_mb=memory,
        top1=top1,
        cite=_t("I"),
    )


def _table2(criterion: str, accs: tuple[float, ...]) -> tuple[PublishedRow, ...]:
    return tuple(PublishedRow("table2", f"it={k}", criterion, top1=a, cite=_t("II")) for k, a in enumerate(accs, 1))


def _table3(
    row: str,
    setting: str,
    stages: tuple[int, ...] | None,
    depth: int,
    params: float,
    flops: float,
    memory: float,
    latency: float,
    carbon: float,
    top1: float,
) -> PublishedRow:
    return PublishedRow(
        "table3", row, setting, stages, depth, params, flops, memory, latency, carbon, top1, cite=_t("III")
    )


def _table4(
    row: str, setting: str, depth: int, params: float, flops_b: float, memory: float, top1: float
) -> PublishedRow:
    return PublishedRow(
        "table4",
        row,
        setting,
        depth=depth,
        params_m=params,
        flops_m=round(flops_b * 1000, 6),
        memory_mb=memory,
        top1=top1,
        cite=_t("IV"),
    )


def _table5(
    row: str, setting: str, models: int | None, gpus: int | None, params: float | None, top1: float
) -> PublishedRow:
    return PublishedRow(
        "table5", row, setting, params_m=params, top1=top1, evaluated_models=models, gpus=gpus, cite=_t("V")
    )


def _table6(row: str, target: str, top5: float) -> PublishedRow:
    return PublishedRow("table6", row, target, top5=top5, cite=_t("VI"))


#: Table VI's two targets: the ``setting`` of its rows -> the dataset as the paper names it.
TABLE6_TARGETS = {"tinyimagenet": "Tiny ImageNet", "imagenet32": "ImageNet 32x32"}

PUBLISHED: tuple[PublishedRow, ...] = (
    # Table I: m0 = 2 ... 10, the first candidate (one iteration, 200 epochs).
    _table1(2, 23, 0.36, 45, 3.81, 91.23),
    _table1(4, 31, 0.40, 64, 5.31, 91.57),
    _table1(6, 43, 0.60, 92, 7.58, 92.03),
    _table1(8, 63, 0.95, 139, 11.56, 91.98),
    _table1(10, 67, 1.10, 149, 12.34, 92.12),
    # Table II: accuracy (200 epochs) per iteration, in the paper's row order (inf-FS, il-FS, PLS) ...
    *_table2("inffs", (91.59, 92.09, 92.02, 92.36, 92.45)),
    *_table2("ilfs", (91.94, 92.06, 92.10, 92.08, 92.52)),
    *_table2("pls", (92.03, 92.38, 92.62, 92.53, 92.58)),
    # ... and the released residual PLS-VIP search (m0 = 6, delta = 2), iterations 1..5 (derived costs).
    _released_residual(1, (6, 8, 6), 43, 0.606, 92.7),
    _released_residual(2, (8, 10, 6), 51, 0.653, 111.6),
    _released_residual(3, (10, 12, 6), 59, 0.700, 130.5),
    _released_residual(4, (10, 12, 8), 63, 0.848, 139.9),
    _released_residual(5, (10, 14, 8), 67, 0.886, 149.3),
    # Table III (300 epochs), in the paper's order; stages as the authors' README gives them (the
    # weight-transfer rows print none: it=5's depth 59 disagrees with its costs, which fit [6, 10, 14]).
    _table3("ResNet44", "scratch", (7, 7, 7), 44, 0.66, 97, 8.14, 36.33, 0.96, 92.83),
    _table3("it=1", "scratch", None, 43, 0.60, 92, 7.41, 36.26, 0.94, 93.38),
    _table3("it=1", "transfer", (6, 6, 6), 39, 0.56, 83, 7.00, 31.69, 0.20, 93.32),
    _table3("ResNet56", "scratch", (9, 9, 9), 56, 0.86, 125, 10.42, 46.86, 1.27, 93.03),
    _table3("it=3", "scratch", (10, 12, 6), 59, 0.69, 130, 10.32, 50.16, 1.23, 93.36),
    _table3("it=3", "transfer", None, 51, 0.90, 111, 9.16, 40.96, 0.24, 93.61),
    _table3("ResNet110", "scratch", (18, 18, 18), 110, 1.7, 253, 20.67, 90.33, 2.26, 93.57),
    _table3("it=5", "scratch", (10, 14, 8), 67, 0.88, 149, 11.65, 57.96, 1.32, 94.27),
    _table3("it=5", "transfer", None, 59, 1.23, 139, 11.31, 49.99, 0.29, 93.51),
    # Table IV as printed (FLOPs in billions), in the paper's order ...
    _table4("NASNet169", "uniform", 169, 2.3, 2.7, 71.26, 94.34),
    _table4("it=1", "cells", 109, 1.3, 1.8, 45.20, 94.55),
    _table4("NASNet205", "uniform", 205, 2.8, 3.2, 86.37, 94.37),
    _table4("it=3", "cells", 133, 1.5, 2.2, 56.96, 94.63),
    _table4("NASNet241", "uniform", 241, 3.3, 3.8, 101.47, 94.51),
    _table4("it=5", "cells", 181, 2.3, 2.9, 78.87, 94.74),
    # ... and the released cell models and uniform Keras-cell networks at width 32 (derived costs).
    _cells("NASNet169", "uniform", (4, 4, 4), 169, 2.318, 2766.0),
    _cells("NASNet205", "uniform", (5, 5, 5), 205, 2.837, 3288.2),
    _cells("NASNet241", "uniform", (6, 6, 6), 241, 3.355, 3810.4),
    _cells("it=1", "cells", (2, 3, 2), 109, 1.385, 1895.7),
    _cells("it=2", "cells", (3, 3, 2), 121, 1.414, 2069.7),
    _cells("it=3", "cells", (3, 4, 2), 133, 1.517, 2243.8),
    _cells("it=4", "cells", (4, 4, 3), 157, 1.932, 2591.9),
    _cells("it=5", "cells", (5, 4, 4), 181, 2.347, 2940.1),
    _cells("it=6", "cells", (6, 5, 4), 205, 2.479, 3288.2),
    # Table V: results the paper took from earlier work, then its own ("-": not printed).
    _table5("Zoph et al.", "earlier work", 20_000, 800, 2.5, 94.51),
    _table5("Baker et al.", "earlier work", 1_500, 10, 11.1, 93.08),
    _table5("Real et al.", "earlier work", 1_000, 250, 5.4, 94.60),
    _table5("Brock et al.", "earlier work", 300, 1, 4.6, 94.47),
    _table5("Dong et al.", "earlier work", 240, 1, 2.5, 96.25),
    _table5("Jin et al.", "earlier work", 60, 1, None, 88.56),  # printed "about 60"
    _table5("Elsken et al.", "earlier work", 40, 5, 19.7, 94.80),
    _table5("Kandasamy et al.", "earlier work", 10, 4, None, 91.31),
    _table5("residual modules", "ours", 11, 1, 1.7, 94.27),  # 1.7 M is ResNet110's count (the paper's own)
    _table5("cell modules", "ours", 11, 1, 2.3, 94.74),
    _table5("ensemble", "ours", None, None, 7.27, 95.68),
    # Table VI: top-5 after training from scratch on each target.
    _table6("ResNet110", "tinyimagenet", 69.94),
    _table6("residual", "tinyimagenet", 72.34),
    _table6("NASNet241", "tinyimagenet", 79.20),
    _table6("cells", "tinyimagenet", 79.23),
    _table6("ResNet110", "imagenet32", 68.89),
    _table6("residual", "imagenet32", 70.09),
    _table6("NASNet241", "imagenet32", 80.67),
    _table6("cells", "imagenet32", 79.39),
    # Section IV's text: the ensemble of residual it = 1, 3, 5 and cell it = 1, 3, 5 ...
    PublishedRow("ensemble", "ensemble", "residual+cells", params_m=7.27, top1=95.68, cite="ICPR 2020, Section IV"),
)

#: The text on Table III (ICPR 2020, Section IV): the residual search's average time per iteration in
#: hours, from scratch and with weight transfer from ResNet110 ("from 17 to 3 hours").
TABLE3_HOURS_PER_ITERATION = {"scratch": 17.0, "transfer": 3.0}
#: Section IV's ImageNet (224 x 224) search, bottleneck modules with weight transfer: final top-5.
IMAGENET_TOP5 = 90.23
PUBLISHED = (
    *PUBLISHED,
    PublishedRow("imagenet", "final", "imagenet", top5=IMAGENET_TOP5, cite="ICPR 2020, Section IV"),
)
#: Section IV: Elsken et al.'s ensemble, as the paper quotes it (top-1 %, millions of parameters).
ELSKEN_ENSEMBLE = (95.60, 88.0)


def published_rows(table: str, setting: str | None = None) -> list[PublishedRow]:
    """The stored rows of ``table`` (optionally one ``setting``), in the paper's order."""
    if table not in TABLES:
        raise InputError(f"table: unknown table {table!r}; choose one of {', '.join(TABLES)}")
    return [r for r in PUBLISHED if r.table == table and (setting is None or r.setting == setting)]
