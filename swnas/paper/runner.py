"""``swnas paper TABLE``: every search and training a paper table needs, resumable, and the table.

This module holds Tables I-III, the registry of every table (:data:`TABLE_RUNNERS`, with Tables
IV-VI and the ensemble from :mod:`swnas.paper.tables_4_to_6` and the ImageNet search from
:mod:`swnas.paper.imagenet`), :func:`run_table` (which writes
``DIR/TABLE.md`` / ``DIR/TABLE.csv``) and the paper-scale costs (:data:`PAPER_TABLE_RUNS`). The
runs under ``--out DIR`` and the rows are :mod:`swnas.paper.runs`': running the command again
reuses what DIR holds (finished searches and baselines are read back, a killed one resumes).
``--smoke`` shrinks every run (one epoch, one iteration, m0 = 1, a 300-image subset) so a table
finishes in minutes on a CPU; the table says which scale it was run at.
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Callable

from swnas.errors import InputError
from swnas.paper import imagenet as imagenet_table
from swnas.paper import tables_4_to_6
from swnas.paper.runs import (
    PaperSettings,
    candidate_rows,
    ensure_baseline,
    ensure_search,
    match_best,
    open_dir,
    training_row,
)
from swnas.paper.runs import INHERIT_SUFFIX
from swnas.paper.tables import PaperTable, side_by_side, write_table

#: Appended to the setting of every row measured at smoke scale (never a published row's key).
SMOKE_LABEL = " (smoke)"

__all__ = [
    "PaperSettings",
    "TABLE_RUNNERS",
    "run_table",
    "RESNET_BASELINES",
    "PAPER_TABLE_RUNS",
    "table_images",
    "table_hours",
]

#: Table III's hand-designed baselines.
RESNET_BASELINES = (("ResNet44", 7), ("ResNet56", 9), ("ResNet110", 18))
#: Table II's criteria, in the paper's order.
TABLE2_CRITERIA = ("pls", "inffs", "ilfs")


# ------------------------------------------------------------------------------- tables
#: Table I's initial depths (ICPR 2020, Table I: five rows) and the smoke scale's.
TABLE1_M0 = (2, 4, 6, 8, 10)
SMOKE_TABLE1_M0 = (1, 2)
#: Tables I and II print the accuracy after the search's training (200 epochs), not after the final epochs.
TOP1_SEARCH_NOTE = (
    "Top-1 is the candidate as the search trained it (metrics.top1: the paper's 200 epochs, as "
    "Tables I and II print); 'Top-1 after final epochs' is the same network after its final "
    "epochs (the paper's 300 in all, Table III's)."
)


def table1(st: PaperSettings) -> tuple[list[dict], list[str]]:
    """m0 sweep, one iteration of PLS-VIP each: the candidate A_1 of every m0, its accuracy after the
    search's training (the paper's 200 epochs) in ``top1`` and after the final epochs beside it."""
    rows = []
    for m0 in SMOKE_TABLE1_M0 if st.smoke else TABLE1_M0:
        out, state = ensure_search(st, f"table1-m0-{m0}", iterations=1, m0=m0)
        for r in candidate_rows(out, state, "m0", after_final=False):
            r["row"] = f"m0={m0}"
            rows.append(r)
    return rows, [TOP1_SEARCH_NOTE]


def table2(st: PaperSettings) -> tuple[list[dict], list[str]]:
    """Three criteria x n iterations from scratch (and each search's stage-depth chart, Fig. 4)."""
    from swnas.reporting.report import write_report

    rows = []
    for crit in TABLE2_CRITERIA:
        out, state = ensure_search(st, f"scratch-{crit}", criterion=crit)
        write_report(out, ensemble=False, device=st.device)
        rows += candidate_rows(out, state, crit, after_final=False)
    return match_best(rows), [TOP1_SEARCH_NOTE, CRITERION_PARAMS_NOTE]


#: Which criterion parameters Table II's searches use (docs/protocol.md, "Criterion parameters").
CRITERION_PARAMS_NOTE = (
    "Criterion parameters are fixed defaults, not tuned on validation data as the paper "
    "tunes them: PLS-VIP 2 components, inf-FS and il-FS swnas.scoring's defaults "
    "(docs/protocol.md, 'Criterion parameters')."
)

#: Table II's criteria as the paper names them, in its row order.
TABLE2_NAMES = {"inffs": "inf-FS", "ilfs": "il-FS", "pls": "PLS"}


def criterion_grid(table: PaperTable) -> str:
    """Table II as the paper lays it out: one line per criterion (published, then measured), one
    column per iteration, top-1 after the search's training (200 epochs)."""
    cells: dict[tuple[str, str], dict[int, float]] = {}
    for r in table.rows:
        setting, row = str(r.values.get("setting") or ""), str(r.values.get("row") or "")
        top1 = r.values.get("top1")
        if r.source == "paper (derived)" or not row.startswith("it=") or top1 is None:
            continue
        crit = setting.split(" ")[0]
        label = TABLE2_NAMES.get(crit, crit) + setting[len(crit) :]
        cells.setdefault((label, r.source), {})[int(row[3:])] = top1
    its = sorted({k for v in cells.values() for k in v}) or [1]
    lines = [
        "## Top-1 (%) per iteration (the paper's layout)",
        "",
        "| Criterion | Source | " + " | ".join(f"it {k}" for k in its) + " |",
        "|" + "|".join("---" for _ in range(len(its) + 2)) + "|",
    ]
    for (label, source), v in cells.items():
        lines.append(f"| {label} | {source} | " + " | ".join(f"{v[k]:.2f}" if k in v else "n/a" for k in its) + " |")
    return "\n".join(lines) + "\n"


def table3(st: PaperSettings) -> tuple[list[dict], list[str], list[str]]:
    """ResNet-44/56/110, the scratch PLS-VIP search and the weight-transfer search from ResNet-110,
    each row with its training wall time, and the searches' time per iteration beside the paper's."""
    rows = []
    donor = None
    for label, m in RESNET_BASELINES:
        out, res = ensure_baseline(st, label, [m, m, m])
        rows.append(training_row("scratch", label, res, times=True))
        donor = out / "model.pt"
    searches = []
    out, state = ensure_search(st, "scratch-pls", criterion="pls")
    rows += candidate_rows(out, state, "scratch", times=True)
    searches.append(("scratch", out, state))
    out, state = ensure_search(st, "transfer-pls", criterion="pls", transfer=str(donor))
    rows += candidate_rows(out, state, "transfer", times=True)
    searches.append(("transfer", out, state))
    return match_best(rows), [TIME_NOTE], [hours_per_iteration(st, searches)]


#: What Table III's time column is.
TIME_NOTE = (
    "Training time (h): wall time of the row's training as its record holds it (metrics.train_seconds, "
    "plus the final epochs' for a candidate), in hours, on this machine; the paper prints no time per "
    "network, only the search's time per iteration (section below)."
)


def search_hours(state: dict) -> float:
    """Wall time in hours of the networks a search trained (A0, T_k, A_k; final epochs excluded)."""
    return sum(float(n["metrics"].get("train_seconds") or 0.0) for n in state["networks"]) / 3600.0


def hours_per_iteration(st: PaperSettings, searches: list[tuple[str, Path, dict]]) -> str:
    """Table III's time per iteration (ICPR 2020, Section IV: 17 h from scratch, 3 h with weight
    transfer) beside each measured search's (its networks' training hours / its iterations)."""
    from swnas.paper.published import TABLE3_HOURS_PER_ITERATION

    lines = [
        "## Time per iteration (hours)",
        "",
        "| Setting | Paper (h) | Measured (h) | Measured search | Networks | Iterations |",
        "|---|---|---|---|---|---|",
    ]
    for setting, out, state in searches:
        its = max(1, int(state["config"].get("iterations") or 1))
        label = setting + (SMOKE_LABEL if st.smoke else "")
        lines.append(
            f"| {label} | {TABLE3_HOURS_PER_ITERATION[setting]:.0f} | {search_hours(state) / its:.4f} | "
            f"searches/{out.name} | {len(state['networks'])} | {its} |"
        )
    lines += [
        "",
        "Paper: ICPR 2020, Section IV (the text on Table III: weight transfer from ResNet110 cuts the "
        "average time per iteration from 17 to 3 hours, on the authors' GPU). Measured: the training wall "
        "time of every network the search trained (A0, then T_k and A_k; the final epochs excluded) divided "
        "by its iterations, on this machine ("
        + ("smoke scale: not comparable" if st.smoke else "device " + str(st.device))
        + "); scoring time is not included.",
    ]
    return "\n".join(lines) + "\n"


#: Table id -> runner; a runner returns its measured rows, or (rows, notes) with lines for the table, or
#: (rows, notes, sections) with Markdown sections printed after it.
TABLE_RUNNERS: dict[str, Callable[[PaperSettings], list[dict] | tuple]] = {
    "table1": table1,
    "table2": table2,
    "table3": table3,
    "table4": tables_4_to_6.table4,
    "table5": tables_4_to_6.table5,
    "table6": tables_4_to_6.table6,
    "ensemble": tables_4_to_6.ensemble,
    "imagenet": imagenet_table.imagenet,
}


#: Tables whose searches grow NASNet cells, which cannot grow by inheritance (no identity branch).
CELL_TABLES = ("table4", "table5", "table6", "ensemble")


def check_settings(name: str, st: PaperSettings) -> None:
    """The data options of a table, checked without reading anything (InputError naming the option)."""
    from swnas.data import check_source

    if st.inherit and name in CELL_TABLES:
        raise InputError(
            f"--inherit: {name} runs the NASNet cell search, and cells cannot grow by inheritance "
            "(a cell has no identity branch; docs/protocol.md, 'Inherit mode'); run it without "
            "--inherit"
        )
    if name == "imagenet":
        imagenet_table.check_imagenet(st)  # --smoke writes its own folder: no --data needed
    else:
        check_source(st.dataset, st.data)
    if st.data is not None and not Path(st.data).exists():
        raise InputError(f"data: {st.data} does not exist")
    if name == "table6":
        for t in tables_4_to_6.targets_of(st)[0]:
            if t.data is not None and not Path(t.data).exists():
                raise InputError(f"target_data: {t.data} does not exist (target {t.label})")


def run_table(name: str, st: PaperSettings) -> tuple[Path, Path]:
    """Run every search/training table ``name`` needs (reusing DIR) and write ``DIR/NAME.md``/``.csv``."""
    if name not in TABLE_RUNNERS:
        raise InputError(f"table: {name!r} is not implemented; choose one of {', '.join(TABLE_RUNNERS)}")
    check_settings(name, st)  # before DIR is made: a bad option leaves nothing behind
    open_dir(st)  # DIR/paper.json: runs made with other settings are refused, never reused
    got = TABLE_RUNNERS[name](st)
    rows, notes, sections = (list(got) + [[]] * (3 - len(got))) if isinstance(got, tuple) else (got, [], [])
    if st.inherit:
        notes = [*notes, inherit_note(name, st)]
    if st.smoke:
        for r in rows:  # a smoke run reproduces nothing: no published row shares these keys
            r["setting"] = f"{r.get('setting') or ''}{SMOKE_LABEL}".lstrip()
        notes = [
            *notes,
            "Smoke scale: every measured row's setting ends in '(smoke)' and none is paired with a "
            "published row; the measured rows follow the published ones.",
        ]
    override = imagenet_table.scale_options(st) if name == "imagenet" else {}
    table = side_by_side(name, rows, notes=[st.scale_note(**override), *notes])
    if name == "table2":
        table.sections.append(criterion_grid(table))
    table.sections.extend(sections)
    if st.inherit:
        table.name += INHERIT_SUFFIX
        table.title += " - inherit mode (an addition to the paper, not its protocol)"
    return write_table(table, st.out)


def inherit_note(name: str, st: PaperSettings) -> str:
    """What inherit mode changed in table ``name``, with each search's training cost against the
    paper's protocol (read from its ``search.json``)."""
    from swnas.search import load_state

    costs = []
    for d in sorted((st.out / "searches").glob(f"*{INHERIT_SUFFIX}")):
        cost = (load_state(d).get("cost") or {}) if (d / "search.json").is_file() else {}
        if isinstance(cost.get("ratio"), (int, float)):
            costs.append(f"{d.name} {cost['ratio']:.2f}x")
    return (
        "Inherit mode (--inherit; docs/protocol.md, 'Inherit mode'): each T grows from the trained A with "
        "identity-initialised modules and is fine-tuned, compared with A fine-tuned as long; A_k is cut from T_k. "
        "Rows of these searches are labelled '(inherit)' and are never matched to a published row: the paper "
        "trained every network from scratch. Baselines train from scratch as in the paper. Images trained "
        "against the paper's protocol at these settings: " + (", ".join(costs) if costs else "n/a") + "."
    )


#: What each table trains at paper scale on CIFAR-10, as (networks, epochs, training images) groups:
#: a residual search of n = 5 trains 11 networks for 200 epochs and its 5 candidates 100 more, on the
#: 45,000 images left by the 10% validation split; the cell search (n = 5) 11 networks and 5
#: candidates; baselines train 300 epochs on the same 45,000 images (one split for every network of a
#: table); networks retrained on another dataset train 300 epochs on all of it (Table VI: four
#: networks on Tiny ImageNet and on ImageNet 32x32); weight transfer fine-tunes 50 epochs.
#: Searches are shared between tables run with the same --out (Table III's, Table VI's and the
#: ensemble's residual search is Table II's PLS-VIP search; the ensemble's cell search is Table IV's).
_SEARCH = ((11, 200, 45_000), (5, 100, 45_000))
_CELL_SEARCH = ((11, 200, 45_000), (5, 100, 45_000))
PAPER_TABLE_RUNS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "table1": ((5 * 3, 200, 45_000), (5, 100, 45_000)),  # m0 = 2, 4, 6, 8, 10: A0, T1, A1 + A1's final epochs
    "table2": _SEARCH * 3,
    "table3": ((3, 300, 45_000),) + _SEARCH + ((11, 50, 45_000), (5, 100, 45_000)),
    "table4": ((3, 300, 45_000),) + _CELL_SEARCH,  # NASNet169/205/241 + the cell search
    # both searches, then ResNet110, the residual final, NASNet241 and the cell final for 300 epochs on
    # Tiny ImageNet (100,000 training images) and on ImageNet 32x32 (1,281,167)
    "table6": _SEARCH + _CELL_SEARCH + ((4, 300, 100_000), (4, 300, 1_281_167)),
    "table5": _SEARCH + _CELL_SEARCH,  # the two searches and their ensemble (which trains nothing)
    "ensemble": _SEARCH + _CELL_SEARCH,  # evaluating the ensemble trains nothing
    # A0, T1, A1 fine-tuned 50 epochs from ResNet-50, A1's 25 final epochs, on ImageNet's 1,281,167
    # training images less the 10% validation split.
    "imagenet": ((3, 50, 1_153_050), (1, 25, 1_153_050)),
}


def table_images(name: str) -> int:
    """Images a table trains on at paper scale (see :data:`PAPER_TABLE_RUNS`)."""
    if name not in PAPER_TABLE_RUNS:
        raise InputError(f"table: {name!r} has no cost estimate; choose one of {', '.join(PAPER_TABLE_RUNS)}")
    return sum(m * e * n for m, e, n in PAPER_TABLE_RUNS[name])


def table_hours(name: str, images_per_second: float) -> float:
    """Training hours of a table at a measured throughput (:func:`swnas.training.recipes.estimate_training_hours`)."""
    from swnas.training.recipes import estimate_training_hours

    table_images(name)
    return sum(
        estimate_training_hours(images_per_second, runs=((m, e),), train_images=n) for m, e, n in PAPER_TABLE_RUNS[name]
    )
