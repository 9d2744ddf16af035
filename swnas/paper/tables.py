"""Tables with each measured row beside the paper's published row (Markdown and CSV).

The writer knows nothing of the search: a measured row is a plain dict with a ``row`` label (the
key it is matched on, e.g. ``ResNet56`` or ``it=3``), an optional ``setting`` and any of the
:data:`COLUMNS` values. :func:`side_by_side` puts every published row of a table first in its
place and the measured rows that share its (setting, row) key right after it; measured rows
without a published counterpart follow at the end. Published rows of one key stay together (the
printed row, then the values derived from a released model).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swnas.errors import InputError
from swnas.paper.published import SOURCES, TABLES, PublishedRow, published_rows
from swnas.records.atomic import atomic_write_text

__all__ = ["COLUMNS", "TableRow", "PaperTable", "side_by_side", "render_markdown", "render_csv", "write_table"]

#: Columns a paper table can show, in order; a table shows those any of its rows has.
COLUMNS = (
    "setting",
    "row",
    "source",
    "stages",
    "depth",
    "params_m",
    "flops_m",
    "flops_b",
    "macs_m",
    "memory_mb",
    "latency_ms",
    "carbon_kg",
    "train_h",
    "evaluated_models",
    "gpus",
    "top1",
    "top5",
    "val_top1",
    "final_top1",
    "final_val_top1",
    "epochs",
    "networks",
    "members",
    "note",
)

_HEADERS = {
    "setting": "Setting",
    "row": "Row",
    "source": "Source",
    "stages": "Stages",
    "depth": "Depth",
    "params_m": "Params (M)",
    "flops_m": "FLOPs (M)",
    "flops_b": "FLOPs (B)",
    "macs_m": "MACs (M)",
    "memory_mb": "Memory (MB)",
    "latency_ms": "CPU latency (ms)",
    "carbon_kg": "Carbon (kgCO2eq)",
    "train_h": "Training time (h)",
    "evaluated_models": "Evaluated models",
    "gpus": "GPUs",
    "top1": "Top-1 (%)",
    "top5": "Top-5 (%)",
    "val_top1": "Val top-1 (%)",
    "final_top1": "Top-1 after final epochs (%)",
    "final_val_top1": "Val top-1 after final epochs (%)",
    "epochs": "Epochs",
    "networks": "Networks trained",
    "members": "Members",
    "note": "Note",
}
_DIGITS = {
    "params_m": 2,
    "flops_m": 1,
    "flops_b": 2,
    "macs_m": 1,
    "memory_mb": 2,
    "latency_ms": 2,
    "carbon_kg": 3,
    "train_h": 4,
    "top1": 2,
    "top5": 2,
    "val_top1": 2,
    "final_top1": 2,
    "final_val_top1": 2,
}
#: Tables that print FLOPs in billions (ICPR 2020, Table IV): ``flops_m`` is shown as ``flops_b``.
FLOPS_IN_BILLIONS = ("table4",)


@dataclass
class TableRow:
    """One line of a paper table: ``source`` is ``paper``, ``paper (derived)`` or ``measured``."""

    source: str
    values: dict[str, Any]


@dataclass
class PaperTable:
    """A table ready to render: its id, title, rows and notes (printed under the Markdown table)."""

    name: str
    title: str
    rows: list[TableRow]
    notes: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)  # Markdown printed after the table (e.g. Table II's grid)

    @property
    def columns(self) -> list[str]:
        """The :data:`COLUMNS` that at least one row fills."""
        present = {k for r in self.rows for k, v in r.values.items() if v is not None}
        return [c for c in COLUMNS if c == "source" or c in present]


def _published_values(p: PublishedRow) -> dict[str, Any]:
    d = p.to_dict()
    return {k: d[k] for k in COLUMNS if k in d}


def _in_billions(values: dict[str, Any]) -> dict[str, Any]:
    v = dict(values)
    f = v.pop("flops_m", None)
    v["flops_b"] = f / 1000 if isinstance(f, (int, float)) else None
    return v


def _key(values: dict[str, Any]) -> tuple[str, str]:
    return str(values.get("setting") or ""), str(values.get("row") or "")


def side_by_side(
    table: str, measured: list[dict], *, notes: list[str] | None = None, published: list[PublishedRow] | None = None
) -> PaperTable:
    """The paper's rows of ``table`` with the measured rows next to the one they reproduce.

    Parameters
    ----------
    table : str
        A key of :data:`swnas.paper.published.TABLES`.
    measured : list of dict
        Rows measured here; each needs ``row`` (and ``setting`` when the table has several).
    notes : list of str, optional
        Extra lines (scale of the run, recipe) printed under the table.
    published : list of PublishedRow, optional
        Override the stored rows (default: :func:`swnas.paper.published.published_rows`).
    """
    pub = published_rows(table) if published is None else list(published)
    for i, m in enumerate(measured):
        if not isinstance(m, dict) or not m.get("row"):
            raise InputError(f"measured[{i}]: expected a dict with a 'row' label, got {m!r}")
    rows: list[TableRow] = []
    used: set[int] = set()
    groups: dict[tuple[str, str], list[PublishedRow]] = {}
    for p in pub:  # rows of one key together, at the place of the first (printed before derived)
        groups.setdefault((p.setting, p.row), []).append(p)
    for ps in groups.values():
        rows.extend(TableRow("paper (derived)" if p.derived else "paper", _published_values(p)) for p in ps)
        p = ps[-1]
        for i, m in enumerate(measured):
            if i not in used and _key(m) == (p.setting, p.row):
                rows.append(TableRow("measured", dict(m)))
                used.add(i)
    rows.extend(TableRow("measured", dict(m)) for i, m in enumerate(measured) if i not in used)
    if table in FLOPS_IN_BILLIONS:
        rows = [TableRow(r.source, _in_billions(r.values)) for r in rows]
    cites = sorted({p.cite for p in pub if p.cite})
    all_notes = []
    if cites:
        all_notes.append(f"Published values: {SOURCES['paper']}: {'; '.join(cites)}.")
    if any(p.derived for p in pub):
        all_notes.append(
            f"'paper (derived)': {SOURCES['released']}; not printed in the paper, shown beside the "
            "printed row of the same architecture."
        )
    all_notes.append("n/a: not printed in the paper (published rows) or not measured (measured rows).")
    all_notes.extend(notes or [])
    return PaperTable(table, TABLES[table], rows, all_notes)


def _fmt(col: str, v: Any) -> str:
    if v is None:
        return "n/a"
    if col == "stages" and isinstance(v, (list, tuple)):
        return "[" + ", ".join(str(int(x)) for x in v) + "]"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "n/a"
        return f"{v:.{_DIGITS.get(col, 2)}f}"
    return str(v)


def _cells(t: PaperTable, r: TableRow) -> list[str]:
    return [_fmt(c, r.source if c == "source" else r.values.get(c)) for c in t.columns]


def render_markdown(t: PaperTable) -> str:
    """The table as GitHub Markdown, its title as a heading and its notes underneath."""
    cols = t.columns
    lines = [
        f"# {t.title}",
        "",
        "| " + " | ".join(_HEADERS[c] for c in cols) + " |",
        "|" + "|".join("---" for _ in cols) + "|",
    ]
    lines += ["| " + " | ".join(_cells(t, r)) + " |" for r in t.rows]
    lines.append("")
    for sec in t.sections:
        lines += [sec.rstrip("\n"), ""]
    lines += [f"- {n}" for n in t.notes]
    return "\n".join(lines) + "\n"


def render_csv(t: PaperTable) -> str:
    """The table as CSV (column ids as the header, numbers unrounded, empty for n/a)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(t.columns)
    for r in t.rows:
        out = []
        for c in t.columns:
            v = r.source if c == "source" else r.values.get(c)
            if isinstance(v, (list, tuple)):
                v = "-".join(str(int(x)) for x in v)
            out.append("" if v is None else v)
        w.writerow(out)
    return buf.getvalue()


def write_table(t: PaperTable, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``OUT/<name>.md`` and ``OUT/<name>.csv`` atomically; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = atomic_write_text(out / f"{t.name}.md", render_markdown(t))
    cs = atomic_write_text(out / f"{t.name}.csv", render_csv(t))
    return md, cs
