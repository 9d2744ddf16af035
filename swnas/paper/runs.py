"""What every ``swnas paper`` table is built from: its settings, its runs under ``--out DIR`` and its rows.

Everything lives under ``--out DIR``: ``DIR/searches/NAME`` (one search state each, shared between
tables: Table III's scratch search is Table II's PLS-VIP search), ``DIR/baselines/NAME`` (uniform
networks, also the weight-transfer donor) and ``DIR/retrain/TARGET/NAME`` (an architecture
trained from scratch on another dataset, Table VI). Running a table again reuses what DIR holds:
finished searches and trainings are read back, a killed one resumes. See ``docs/protocol.md``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

__all__ = ["PaperSettings", "ensure_search", "ensure_baseline", "ensure_training", "candidate_rows", "baseline_row",
           "training_row", "match_best", "say"]


@dataclass(frozen=True)
class PaperSettings:
    """Where and at which scale to run a table (``smoke``: tiny, for a CPU).

    ``target_dataset`` / ``target_data`` are the second dataset of Table VI (``None``: the smoke
    run moves to ``dataset`` itself with another seed; at paper scale Table VI needs one).
    """

    dataset: str
    out: Path
    data: str | None = None
    smoke: bool = False
    device: str = "auto"
    recipe: str = "paper"
    seed: int = 0
    echo: Callable[[str], None] | None = print
    target_dataset: str | None = None
    target_data: str | None = None

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


def say(st: PaperSettings, msg: str) -> None:
    """Print ``msg`` through the settings' echo (silent when it is ``None``)."""
    if st.echo is not None:
        st.echo(msg)


# ------------------------------------------------------------------------------- runs
def ensure_search(st: PaperSettings, name: str, **options: Any) -> tuple[Path, dict]:
    """Run (or resume, or read back) the search ``DIR/searches/NAME``; returns its directory and state."""
    from swnas.search import SearchConfig, run_search

    out = st.out / "searches" / name
    opts = dict(st.search_options(), **options)
    resume = (out / "search.json").is_file()
    say(st, f"== search {name}: " + ("resuming / reading back" if resume else "starting"))
    res = run_search(None if resume else SearchConfig(**opts), out, resume=resume, echo=None if st.echo is None
                     else (lambda s: say(st, "   " + s)))
    return out, res.state


def ensure_training(st: PaperSettings, out: Path, label: str, spec: Any, *, dataset: str, data: str | None,
                    subset: int | None, seed: int) -> dict:
    """Train (or read back) the architecture ``spec`` from scratch into ``out`` (``out/train.json``).

    A finished training is read back; a killed one continues from its epoch checkpoint
    (:func:`swnas.baseline.train_architecture`).
    """
    from swnas.baseline import train_architecture
    from swnas.state import read_json

    if (out / "train.json").is_file():
        return read_json(out / "train.json", what=label)
    say(st, f"== training {label} on {dataset}: stages {list(spec.stages)}")
    return train_architecture(spec=spec, dataset=dataset, data=data, subset=subset, recipe=st.recipe,
                              epochs=st.baseline_epochs(), batch_size=st.search_options().get("batch_size"),
                              seed=seed, device=st.device, out=out, name=label, progress=False, force=True)


def ensure_baseline(st: PaperSettings, label: str, stages: list[int], module: str = "basic",
                    spec: Any = None) -> tuple[Path, dict]:
    """Train (or read back) the uniform network ``DIR/baselines/LABEL`` (``spec`` overrides module/stages)."""
    from swnas.models import ArchSpec

    out = st.out / "baselines" / label
    spec = spec if spec is not None else ArchSpec(module=module, stages=list(stages))
    res = ensure_training(st, out, label, spec, dataset=st.dataset, data=st.data,
                          subset=st.search_options().get("subset"), seed=st.seed)
    return out, res


# ------------------------------------------------------------------------------- rows
def pct(v: Any) -> float | None:
    """A fraction as a percentage (``None`` stays ``None``)."""
    return 100.0 * float(v) if isinstance(v, (int, float)) else None


def cost_row(spec: Any, metrics: dict) -> dict:
    """The cost columns of a row: parameters, the paper's FLOPs, MACs, latency, carbon."""
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
               "depth": paper_depth(spec), **cost_row(spec, m),
               "top1": pct(fin.get("top1", m.get("top1"))), "val_top1": pct(fin.get("val_top1", m.get("val_top1"))),
               "epochs": (m.get("epochs") or 0) + (fin.get("epochs") or 0)}
        if idx == state.get("best"):
            row["row"] += " (best)"
        rows.append(row)
    return rows


def training_row(setting: str, label: str, result: dict, *, depth: int | None = None) -> dict:
    """The row of one :func:`ensure_training` result (``depth``: the paper's count; default the spec's)."""
    from swnas.models import ArchSpec

    spec = ArchSpec.from_dict(result["spec"])
    m = result["metrics"]
    return {"setting": setting, "row": label, "stages": list(spec.stages),
            "depth": spec.depth if depth is None else depth, **cost_row(spec, m), "top1": pct(m.get("top1")),
            "epochs": m.get("epochs")}


def baseline_row(setting: str, label: str, result: dict) -> dict:
    """The row of a uniform baseline (its depth as its name counts it)."""
    return training_row(setting, label, result)


def match_best(rows: list[dict]) -> list[dict]:
    """Published rows are keyed ``it=k``: match a measured ``it=k (best)`` row to it as well."""
    for r in rows:
        if r["row"].endswith(" (best)"):
            r["row"] = r["row"][: -len(" (best)")]
            r["note"] = "best on validation"
    return rows
