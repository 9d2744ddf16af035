"""``swnas paper TABLE``: every search and training a paper table needs, resumable, and the table.

Everything lives under ``--out DIR``: ``DIR/searches/NAME`` (one search state each, shared between
tables: Table III's scratch search is Table II's PLS-VIP search), ``DIR/baselines/NAME`` (uniform
networks, also the weight-transfer donor) and ``DIR/TABLE.md`` / ``DIR/TABLE.csv``. Running the
command again reuses what DIR holds: finished searches and baselines are read back, a killed one
resumes. ``--smoke`` shrinks every run (one epoch, one iteration, m0 = 1, a 300-image subset) so a
table finishes in minutes on a CPU; the table says which scale it was run at.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from swnas.errors import InputError
from swnas.paper.tables import side_by_side, write_table

__all__ = ["PaperSettings", "TABLE_RUNNERS", "run_table", "RESNET_BASELINES", "PAPER_TABLE_RUNS", "table_images",
           "table_hours"]

#: Table III's hand-designed baselines.
RESNET_BASELINES = (("ResNet44", 7), ("ResNet56", 9), ("ResNet110", 18))
#: Table II's criteria, in the paper's order.
TABLE2_CRITERIA = ("pls", "inffs", "ilfs")


@dataclass(frozen=True)
class PaperSettings:
    """Where and at which scale to run a table (``smoke``: tiny, for a CPU)."""

    dataset: str
    out: Path
    data: str | None = None
    smoke: bool = False
    device: str = "auto"
    recipe: str = "paper"
    seed: int = 0
    echo: Callable[[str], None] | None = print

    def search_options(self) -> dict:
        """Options shared by every search of a table (the paper's, or the smoke scale)."""
        opts: dict[str, Any] = dict(dataset=self.dataset, data=self.data, device=self.device, recipe=self.recipe,
                                    seed=self.seed, iterations=5, m0=6, delta=2, val_split=0.1)
        if self.smoke:
            opts.update(iterations=1, m0=1, delta=1, epochs=1, final_epochs=1, batch_size=64, subset=300,
                        val_split=0.2)
        return opts

    def baseline_epochs(self) -> int | None:
        """A baseline trains as long as a candidate in all (search epochs + final epochs)."""
        if self.smoke:
            return 2
        from swnas.recipes import get_recipe

        e = get_recipe(self.recipe).epochs
        return e + max(1, e // 2)

    def scale_note(self) -> str:
        o = self.search_options()
        scale = "smoke scale (a check that the pipeline runs, not a reproduction)" if self.smoke else "paper scale"
        return (f"Measured here at {scale}: dataset {self.dataset}, recipe {self.recipe}, "
                f"{o['iterations']} iteration(s), m0 {o['m0']}, delta {o['delta']}, epochs "
                f"{o.get('epochs') or 'of the recipe'}, final epochs {o.get('final_epochs') or 'half of them'}, "
                f"validation split {o['val_split']}, subset {o.get('subset') or 'none'}. Top-1 is the test "
                "accuracy after the final epochs; the best candidate is chosen on validation accuracy.")


def _say(st: PaperSettings, msg: str) -> None:
    if st.echo is not None:
        st.echo(msg)


# ------------------------------------------------------------------------------- runs
def ensure_search(st: PaperSettings, name: str, **options: Any) -> tuple[Path, dict]:
    """Run (or resume, or read back) the search ``DIR/searches/NAME``; returns its directory and state."""
    from swnas.search import SearchConfig, run_search

    out = st.out / "searches" / name
    opts = dict(st.search_options(), **options)
    resume = (out / "search.json").is_file()
    _say(st, f"== search {name}: " + ("resuming / reading back" if resume else "starting"))
    res = run_search(None if resume else SearchConfig(**opts), out, resume=resume, echo=None if st.echo is None
                     else (lambda s: _say(st, "   " + s)))
    return out, res.state


def ensure_baseline(st: PaperSettings, label: str, stages: list[int], module: str = "basic") -> tuple[Path, dict]:
    """Train (or read back) the uniform network ``DIR/baselines/LABEL``."""
    from swnas.baseline import train_architecture
    from swnas.state import read_json

    out = st.out / "baselines" / label
    if (out / "train.json").is_file():
        return out, read_json(out / "train.json", what="baseline")
    _say(st, f"== baseline {label}: stages {stages}")
    o = st.search_options()
    res = train_architecture(module=module, stages=stages, dataset=st.dataset, data=st.data, subset=o.get("subset"),
                             recipe=st.recipe, epochs=st.baseline_epochs(), batch_size=o.get("batch_size"),
                             seed=st.seed, device=st.device, out=out, name=label, progress=False, force=True)
    return out, res


# ------------------------------------------------------------------------------- rows
def _pct(v: Any) -> float | None:
    return 100.0 * float(v) if isinstance(v, (int, float)) else None


def _cost_row(spec: Any, metrics: dict) -> dict:
    import torch

    from swnas.models import build, keras_flops

    with torch.device("meta"):
        net = build(spec)
    m = metrics
    return {"params_m": m["params"] / 1e6 if m.get("params") is not None else None,
            "flops_m": keras_flops(net) / 1e6, "macs_m": m["macs"] / 1e6 if m.get("macs") is not None else None,
            "latency_ms": m.get("latency"), "carbon_kg": m.get("carbon")}


def candidate_rows(out: Path, state: dict, setting: str) -> list[dict]:
    """One row per candidate A_k of a search: ``it=k``, costs, test and validation top-1 (after the
    final epochs when they ran)."""
    from swnas.models import ArchSpec, paper_depth

    rows = []
    for idx in state["candidates"]:
        net = state["networks"][idx]
        spec = ArchSpec.from_json((out / net["spec"]).read_text())
        m, fin = net["metrics"], net.get("final") or {}
        row = {"setting": setting, "row": f"it={net['iteration']}", "stages": list(net["stages"]),
               "depth": paper_depth(spec), **_cost_row(spec, m),
               "top1": _pct(fin.get("top1", m.get("top1"))), "val_top1": _pct(fin.get("val_top1", m.get("val_top1"))),
               "epochs": (m.get("epochs") or 0) + (fin.get("epochs") or 0)}
        if idx == state.get("best"):
            row["row"] += " (best)"
        rows.append(row)
    return rows


def baseline_row(setting: str, label: str, result: dict) -> dict:
    from swnas.models import ArchSpec

    spec = ArchSpec.from_dict(result["spec"])
    m = result["metrics"]
    return {"setting": setting, "row": label, "stages": list(spec.stages), "depth": spec.depth, **_cost_row(spec, m),
            "top1": _pct(m.get("top1")), "epochs": m.get("epochs")}


def _match_best(rows: list[dict]) -> list[dict]:
    """Published rows are keyed ``it=k``: match a measured ``it=k (best)`` row to it as well."""
    for r in rows:
        if r["row"].endswith(" (best)"):
            r["row"] = r["row"][: -len(" (best)")]
            r["note"] = "best on validation"
    return rows


# ------------------------------------------------------------------------------- tables
def table1(st: PaperSettings) -> list[dict]:
    """m0 sweep, one iteration of PLS-VIP each: the candidate A_1 of every m0."""
    rows = []
    for m0 in ((1, 2) if st.smoke else (2, 4, 6, 8)):
        out, state = ensure_search(st, f"table1-m0-{m0}", iterations=1, m0=m0)
        for r in candidate_rows(out, state, "m0"):
            r["row"] = f"m0={m0}"
            rows.append(r)
    return rows


def table2(st: PaperSettings) -> list[dict]:
    """Three criteria x n iterations from scratch (and each search's stage-depth chart, Fig. 4)."""
    from swnas.report import write_report

    rows = []
    for crit in TABLE2_CRITERIA:
        out, state = ensure_search(st, f"scratch-{crit}", criterion=crit)
        write_report(out, ensemble=False, device=st.device)
        rows += candidate_rows(out, state, crit)
    return _match_best(rows)


def table3(st: PaperSettings) -> list[dict]:
    """ResNet-44/56/110, the scratch PLS-VIP search and the weight-transfer search from ResNet-110."""
    rows = []
    donor = None
    for label, m in RESNET_BASELINES:
        out, res = ensure_baseline(st, label, [m, m, m])
        rows.append(baseline_row("scratch", label, res))
        donor = out / "model.pt"
    out, state = ensure_search(st, "scratch-pls", criterion="pls")
    rows += candidate_rows(out, state, "scratch")
    out, state = ensure_search(st, "transfer-pls", criterion="pls", transfer=str(donor))
    rows += candidate_rows(out, state, "transfer")
    return _match_best(rows)


TABLE_RUNNERS: dict[str, Callable[[PaperSettings], list[dict]]] = {
    "table1": table1, "table2": table2, "table3": table3,
}


def run_table(name: str, st: PaperSettings) -> tuple[Path, Path]:
    """Run every search/training table ``name`` needs (reusing DIR) and write ``DIR/NAME.md``/``.csv``."""
    if name not in TABLE_RUNNERS:
        raise InputError(f"table: {name!r} is not implemented; choose one of {', '.join(TABLE_RUNNERS)}")
    st.out.mkdir(parents=True, exist_ok=True)
    rows = TABLE_RUNNERS[name](st)
    table = side_by_side(name, rows, notes=[st.scale_note()])
    return write_table(table, st.out)


#: What each table trains at paper scale on CIFAR-10, as (networks, epochs, training images) groups:
#: a search of n = 5 trains 11 networks for 200 epochs and its 5 candidates 100 more, on the 45,000
#: images left by the 10% validation split; baselines train 300 epochs on all 50,000; weight transfer
#: fine-tunes 50 epochs. Table III's scratch search is Table II's PLS-VIP search (shared when both
#: tables use the same --out).
_SEARCH = ((11, 200, 45_000), (5, 100, 45_000))
PAPER_TABLE_RUNS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "table1": ((4 * 3, 200, 45_000), (4, 100, 45_000)),  # m0 = 2, 4, 6, 8: A0, T1, A1 + A1's final epochs
    "table2": _SEARCH * 3,
    "table3": ((3, 300, 50_000),) + _SEARCH + ((11, 50, 45_000), (5, 100, 45_000)),
}


def table_images(name: str) -> int:
    """Images a table trains on at paper scale (see :data:`PAPER_TABLE_RUNS`)."""
    if name not in PAPER_TABLE_RUNS:
        raise InputError(f"table: {name!r} has no cost estimate; choose one of {', '.join(PAPER_TABLE_RUNS)}")
    return sum(m * e * n for m, e, n in PAPER_TABLE_RUNS[name])


def table_hours(name: str, images_per_second: float) -> float:
    """Training hours of a table at a measured throughput (:func:`swnas.recipes.estimate_training_hours`)."""
    from swnas.recipes import estimate_training_hours

    table_images(name)
    return sum(estimate_training_hours(images_per_second, runs=((m, e),), train_images=n)
               for m, e, n in PAPER_TABLE_RUNS[name])
