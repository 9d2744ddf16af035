"""Outputs of a search: the Table-III-like table, the depth and accuracy charts, and model export.

``write_report(OUT)`` reads ``OUT/search.json`` (and ``OUT/baselines/*/train.json`` written by
``swnas train --out OUT/baselines/NAME``, and ``OUT/ensemble.json``) and writes into ``OUT/report/``:

- ``table.md`` / ``table.csv``: depth, params, MACs, memory, CPU latency, carbon, top-1/top-5 of
  every candidate, of the baselines and of the candidates' ensemble;
- ``stage_depths.png``: modules per stage of A over the iterations, A0 included (the paper's Fig. 4);
- ``accuracy_vs_macs.png``: top-1 accuracy against MACs: the candidates (validation, test, test
  after the final epochs; the best starred), the baselines and the ensemble;
- ``stage_scores.png``: per stage, the scores of A and T over the iterations (when scored).

Candidates are named ``A1``..``An`` (:func:`swnas.search.candidate_name`); people read numbers
formatted by :mod:`swnas.reporting.fmt`, ``table.csv`` keeps them whole.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swnas.errors import InputError
from swnas.reporting.fmt import human_count, pct, score_pair, sig4
from swnas.records.atomic import atomic_save, atomic_write_text, read_json, refuse_links

__all__ = [
    "Report",
    "collect_rows",
    "write_report",
    "export_candidate",
    "describe_candidate",
    "ensemble_line",
    "display_name",
    "depth_figure",
    "accuracy_figure",
    "scores_figure",
    "human_count",
    "sig4",
    "COLUMNS",
]

COLUMNS = (
    "name",
    "kind",
    "iteration",
    "stages",
    "depth",
    "params",
    "macs",
    "memory",
    "peak_memory",
    "latency_ms",
    "carbon_kg",
    "top1",
    "top5",
    "val_top1",
    "final_epochs",
    "final_top1",
    "final_val_top1",
    "images_trained",
    "best",
)


@dataclass
class Report:
    """Paths and content of a written report."""

    directory: Path
    table_md: Path
    table_csv: Path
    depth_png: Path
    accuracy_png: Path
    markdown: str
    rows: list = field(default_factory=list)
    ensemble: dict | None = None
    scores_png: Path | None = None  # stage_scores.png; None when no iteration was scored (control criteria)

    @property
    def charts(self) -> list[Path]:
        """The PNG files written."""
        return [p for p in (self.depth_png, self.accuracy_png, self.scores_png) if p is not None]


def _row_from_metrics(name, kind, iteration, stages, depth, m: dict) -> dict:
    return {
        "name": name,
        "kind": kind,
        "iteration": iteration,
        "stages": list(stages) if stages is not None else None,
        "depth": depth if depth is not None else m.get("depth"),
        "params": m.get("params"),
        "macs": m.get("macs"),
        "memory": m.get("memory"),
        "peak_memory": m.get("peak_memory"),
        "latency_ms": m.get("latency"),
        "carbon_kg": m.get("carbon"),
        "top1": m.get("top1"),
        "top5": m.get("top5"),
        "val_top1": m.get("val_top1"),
        "final_epochs": None,
        "final_top1": None,
        "final_val_top1": None,
        "images_trained": m.get("images_trained"),
        "best": None,
    }


def _pct_pc(v: Any) -> str:
    return pct(v, "%")


def ensemble_line(ens: dict, state: dict) -> str:
    """The ensemble's line, e.g. ``ensemble of A1..A3 (averaged softmax) on 10,000 test images: top-1
    95.68%, top-5 ...; best single A2 94.10%``."""
    from swnas.search import candidate_name

    nets = state["networks"]
    names = [candidate_name(nets[i]) if isinstance(i, int) and 0 <= i < len(nets) else str(i) for i in ens["members"]]
    single = ""
    tops = ens.get("member_top1") or []
    if tops and len(tops) == len(names):
        k = max(range(len(tops)), key=lambda j: tops[j])
        single = f"; best single member {names[k]} {pct(tops[k], '%')}"
    return (
        f"ensemble of {', '.join(names)} (averaged softmax) on {ens.get('n_test', 0):,} test images: "
        f"top-1 {pct(ens.get('top1'), '%')}, top-5 {pct(ens.get('top5'), '%')}{single}"
    )


def describe_candidate(state: dict, index: int) -> str:
    """One line on network ``index`` of a search for people: its name, stages, cost and accuracies.

    ``A2: stages [2, 2, 1], depth 12, 0.10 M params, 1.35 M MACs; validation / test top-1 10.00% / 10.86%;
    after 1 final epochs 10.00% / 10.58%`` (``(best)`` after the name when it is the search's best).
    """
    from swnas.search import candidate_name

    net = state["networks"][index]
    m = net.get("metrics") or {}
    fin = net.get("final") if isinstance(net.get("final"), dict) else {}
    name = candidate_name(net) if net.get("iteration") else "A0 (initial network)"
    best = " (best)" if state.get("best") == index else ""
    after = (
        f"; after {fin['epochs']} final epochs {_pct_pc(fin.get('val_top1'))} / {_pct_pc(fin.get('top1'))}"
        if fin.get("epochs")
        else ""
    )
    return (
        f"{name}{best}: stages {list(net['stages'])}, depth {net.get('depth', m.get('depth'))}, "
        f"{human_count(m.get('params'))} params, {human_count(m.get('macs'))} MACs; validation / test top-1 "
        f"{_pct_pc(m.get('val_top1'))} / {_pct_pc(m.get('top1'))}{after}"
    )


def cost_line(state: dict) -> str:
    """The search's training cost, and the paper protocol's at the same settings (empty when unknown)."""
    c = state.get("cost")
    if not isinstance(c, dict) or not c.get("paper_protocol_images"):
        return ""
    mode = "inherit mode" if state.get("config", {}).get("inherit") else "the paper's protocol"
    return (
        f"Training cost ({mode}): {c['images_trained']:,} images trained in all; the paper's protocol trains "
        f"{c['paper_protocol_images']:,} at the same settings ({c['ratio']:.2f}x). T, F and A networks of the "
        f"iterations: {c['growth_images']:,} vs {c['growth_images_paper_protocol']:,} images "
        f"({c['growth_ratio']:.2f}x)."
    )


def _baselines(out: Path) -> list[dict]:
    rows: list[dict] = []
    base = out / "baselines"
    if not base.is_dir():
        return rows
    for f in sorted(base.glob("*/train.json")):
        d = read_json(f, what="baseline")
        if not isinstance(d, dict) or "metrics" not in d:
            raise InputError(f"baseline: {f} is not a `swnas train` result (no metrics)")
        rows.append(
            _row_from_metrics(
                d.get("name", f.parent.name), "baseline", None, d.get("stages"), d.get("depth"), d["metrics"]
            )
        )
    return rows


def collect_rows(out_dir: str | Path, state: dict | None = None, ensemble: dict | None = None) -> list[dict]:
    """Table rows: the candidates (in order), then the baselines, then the ensemble if given."""
    from swnas.search import load_state

    out = Path(out_dir)
    state = state if state is not None else load_state(out)
    from swnas.search import candidate_name

    nets = state["networks"]
    rows = []
    for i in state["candidates"]:
        n = nets[i]
        row = _row_from_metrics(
            candidate_name(n), "candidate", n["iteration"], n["stages"], n.get("depth"), n["metrics"]
        )
        fin = n.get("final") if isinstance(n.get("final"), dict) else {}
        row.update(
            final_epochs=fin.get("epochs"),
            final_top1=fin.get("top1"),
            final_val_top1=fin.get("val_top1"),
            best=state.get("best") == i,
        )
        rows.append(row)
    rows.extend(_baselines(out))
    if ensemble is not None:
        sel = [r for r in rows if r["kind"] == "candidate"]

        def total(key):
            vals = [r[key] for r in sel]
            return sum(vals) if vals and all(isinstance(v, (int, float)) for v in vals) else None

        rows.append(
            {
                "name": f"ensemble of {len(ensemble['members'])}",
                "kind": "ensemble",
                "iteration": None,
                "stages": None,
                "depth": None,
                "params": total("params"),
                "macs": total("macs"),
                "memory": total("memory"),
                "peak_memory": None,
                "latency_ms": total("latency_ms"),
                "carbon_kg": total("carbon_kg"),
                "top1": ensemble["top1"],
                "top5": ensemble["top5"],
                "val_top1": None,
                "final_epochs": None,
                "final_top1": None,
                "final_val_top1": None,
                "images_trained": None,
                "best": None,
            }
        )
    return rows


def _fmt(v: Any, kind: str) -> str:
    if v is None:
        return "-"
    if kind == "count":
        return human_count(v)
    if kind == "bytes":
        return f"{v / 2**20:.2f} MiB"
    if kind == "pct":
        return f"{100 * v:.2f}"
    if kind == "ms":
        return f"{v:.3f}"
    if kind == "kg":
        return f"{v:.3g}"
    if kind == "stages":
        return "-".join(str(s) for s in v)
    return str(v)


BEST_NOTE = (
    "(best): the candidate with the highest validation accuracy (after its final epochs when they ran); "
    "the test accuracy is reported, never used to choose."
)
NO_BEST_NOTE = "No best candidate: the search held out no validation split (--val-split 0)."


def display_name(row: dict) -> str:
    """A row's name as tables show it: ``A2 (best)`` for the search's best candidate."""
    return f"{row['name']} (best)" if row.get("best") else str(row["name"])


def _markdown(rows: list[dict], state: dict, ensemble_note: str) -> str:
    cfg = state["config"]
    head = (
        "Network",
        "Stages",
        "Depth",
        "Params",
        "MACs",
        "Memory",
        "CPU latency (ms)",
        "Carbon (kg CO2e)",
        "Top-1 (%)",
        "Top-5 (%)",
        "Val top-1 (%)",
        "Top-1 after final epochs (%)",
    )
    lines = [
        f"# Stage-wise search: {cfg.get('dataset')} / {cfg.get('module')} / {cfg.get('criterion')}",
        "",
        f"Status {state['status']}: {len(state['networks'])} networks trained, {len(state['candidates'])} candidates.",
        "",
    ]
    if cost_line(state):
        lines += [cost_line(state), ""]
    lines += [
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    for r in rows:
        cells = (
            display_name(r),
            _fmt(r["stages"], "stages"),
            _fmt(r["depth"], ""),
            _fmt(r["params"], "count"),
            _fmt(r["macs"], "count"),
            _fmt(r["memory"], "bytes"),
            _fmt(r["latency_ms"], "ms"),
            _fmt(r["carbon_kg"], "kg"),
            _fmt(r["top1"], "pct"),
            _fmt(r["top5"], "pct"),
            _fmt(r.get("val_top1"), "pct"),
            _fmt(r.get("final_top1"), "pct"),
        )
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", BEST_NOTE if any(r.get("best") for r in rows) else NO_BEST_NOTE]
    lines += ["", "## Decisions", ""]
    for rec in state["iterations"]:
        parts = [
            f"stage {c['stage']}: "
            + (
                " vs ".join(score_pair(c["score_A"], c["score_T"]))
                if c["score_A"] is not None
                else cfg.get("criterion", "control")
            )
            + f" -> {'grow' if c['grow'] else 'keep'}"
            for c in rec["comparisons"]
        ]
        tail = (
            " (no stage grew; stopped)"
            if rec.get("stopped_early")
            else (" (no stage grew)" if rec.get("no_growth") else "")
        )
        lines.append(
            f"- iteration {rec['iteration']}: {rec['stages_before']} -> {rec['stages_after']}; "
            + "; ".join(parts)
            + tail
        )
    if ensemble_note:
        lines += ["", ensemble_note]
    lines += [
        "",
        "Ensemble MACs/params/latency are sums over its members; memory is in bytes of parameters "
        "and buffers. Carbon: " + (state.get("carbon_method") or "see swnas.models.metrics.carbon") + ".",
    ]
    return "\n".join(lines) + "\n"


def rows_csv(rows: list[dict], columns: Sequence[str] = COLUMNS) -> str:
    """``rows`` as CSV with ``columns`` as the header: empty for None, stages joined by ``-``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if r[c] is None else ("-".join(map(str, r[c])) if c == "stages" else r[c]) for c in columns])
    return buf.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save_png(fig: Any, path: Path) -> Path:
    plt = _pyplot()
    fig.tight_layout()
    try:
        return atomic_save(lambda p: fig.savefig(p, format="png", dpi=120), path)
    finally:
        plt.close(fig)


def depth_figure(state: dict) -> Any:
    """Modules per stage of A over the iterations (the paper's Fig. 4), iteration 0 = the initial A0.

    Grouped bars, one per stage, so that stages of equal depth stay visible side by side.
    """
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    nets = sorted((n for n in state["networks"] if n.get("role") == "A"), key=lambda n: n["iteration"])
    iters = [n["iteration"] for n in nets]
    S = len(nets[0]["stages"]) if nets else 0
    fig, ax = plt.subplots(figsize=(6, 4))
    width = 0.8 / max(S, 1)
    for s in range(S):
        xs = [i + (s - (S - 1) / 2) * width for i in iters]
        ax.bar(xs, [n["stages"][s] for n in nets], width=width, label=f"stage {s + 1}")
    ax.set_xlabel("iteration (0 = the initial network A0)")
    ax.set_ylabel("modules in the stage")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Modules per stage of A over the iterations")
    if iters:
        ax.set_xticks(iters)
        ax.set_xticklabels([f"{i}\nA{i}" for i in iters])
    if S:
        ax.legend()
    ax.grid(alpha=0.3)
    return fig


def accuracy_figure(rows: list[dict]) -> Any:
    """Top-1 accuracy against MACs: each candidate's validation and test accuracy after the search and
    test accuracy after its final epochs, the best candidate starred, the baselines and the ensemble."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))

    def num(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    cands = [r for r in rows if r["kind"] == "candidate" and num(r["macs"])]
    series = (
        ("top1", "o", "candidates, test"),
        ("val_top1", "x", "candidates, validation"),
        ("final_top1", "^", "candidates, test after final epochs"),
    )
    for key, marker, label in series:
        pts = [r for r in cands if num(r.get(key))]
        if pts:
            if key == "final_top1" and pts[0].get("final_epochs"):
                label = f"candidates, test after {pts[0]['final_epochs']} final epochs"
            ax.scatter([r["macs"] / 1e6 for r in pts], [100 * r[key] for r in pts], marker=marker, label=label)
    for r in cands:
        y = r.get("final_top1") if num(r.get("final_top1")) else r.get("top1")
        if not num(y) or y is None:
            continue
        if num(r.get("final_top1")) and num(r.get("top1")):
            ax.plot([r["macs"] / 1e6] * 2, [100 * r["top1"], 100 * r["final_top1"]], color="0.6", lw=0.8, zorder=0)
        ax.annotate(display_name(r), (r["macs"] / 1e6, 100 * y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        if r.get("best"):
            ax.scatter(
                [r["macs"] / 1e6],
                [100 * y],
                marker="*",
                s=220,
                facecolors="none",
                edgecolors="gold",
                linewidths=1.5,
                label="best (highest validation accuracy)",
                zorder=3,
            )
    for kind, marker in (("baseline", "s"), ("ensemble", "D")):
        pts = [r for r in rows if r["kind"] == kind and num(r["macs"]) and num(r["top1"])]
        if not pts:
            continue
        ax.scatter(
            [r["macs"] / 1e6 for r in pts],
            [100 * r["top1"] for r in pts],
            marker=marker,
            label=pts[0]["name"] if kind == "ensemble" else "baselines",
        )
        for r in pts:
            ax.annotate(
                r["name"], (r["macs"] / 1e6, 100 * r["top1"]), textcoords="offset points", xytext=(4, -10), fontsize=8
            )
    ax.set_xlabel("MACs (millions)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("Accuracy against cost")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return fig


def scores_figure(state: dict) -> Any | None:
    """Per stage, the score of A and of T at each iteration, the iterations where the stage grew marked.

    ``None`` when no iteration was scored (none yet, or a control criterion: random/uniform).
    """
    its = [
        it for it in state.get("iterations", []) if any(c.get("score_A") is not None for c in it.get("comparisons", []))
    ]
    if not its:
        return None
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    S = max(len(it["comparisons"]) for it in its)
    ref = "F" if any("reference" in it for it in its) else "A"
    fig, axes = plt.subplots(1, S, figsize=(3.2 * S, 3.4), squeeze=False)
    for s, ax in enumerate(axes[0]):
        pts = [
            (it["iteration"], c)
            for it in its
            for c in it["comparisons"]
            if c.get("stage") == s + 1 and c.get("score_A") is not None
        ]
        xs = [k for k, _ in pts]
        ax.plot(xs, [c["score_A"] for _, c in pts], marker="o", label=f"score of {ref}")
        ax.plot(xs, [c["score_T"] for _, c in pts], marker="s", label="score of T")
        grew = [(k, c["score_T"]) for k, c in pts if c.get("grow")]
        if grew:
            ax.scatter(
                [k for k, _ in grew], [v for _, v in grew], marker="^", s=90, color="green", zorder=3, label="grew"
            )
        ax.set_title(f"stage {s + 1}")
        ax.set_xlabel("iteration")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if s == 0:
            ax.set_ylabel(f"{state.get('config', {}).get('criterion', '')} score")
            ax.legend(fontsize=7)
    fig.suptitle(f"Score of {ref} and T per stage (a stage grows where T scores higher)", fontsize=10)
    return fig


def _plots(state: dict, rows: list[dict], depth_png: Path, acc_png: Path, scores_png: Path) -> Path | None:
    _save_png(depth_figure(state), depth_png)
    _save_png(accuracy_figure(rows), acc_png)
    fig = scores_figure(state)
    return _save_png(fig, scores_png) if fig is not None else None


def write_report(
    out_dir: str | Path,
    *,
    ensemble: bool = True,
    device: str = "auto",
    echo: Callable[[str], None] | None = None,
) -> Report:
    """Write ``OUT/report/`` (table.md, table.csv, stage_depths.png, accuracy_vs_macs.png).

    With ``ensemble`` the candidates' ensemble is evaluated when every candidate checkpoint loads
    (result cached in ``OUT/ensemble.json`` for the same members); when it cannot be evaluated the
    table says why instead.
    """
    from swnas.reporting.ensemble import ENSEMBLE_FILE, ensemble_search
    from swnas.search import load_state

    out = Path(out_dir)
    state = load_state(out)
    if not state["candidates"]:
        raise InputError(f"{out}: the search has no trained candidate yet; nothing to report")
    ens, note = None, ""
    if ensemble and len(state["candidates"]) > 1:
        cached = out / ENSEMBLE_FILE
        if cached.is_file():
            d = read_json(cached, what="ensemble")
            if isinstance(d, dict) and d.get("members") == state["candidates"]:
                ens = d
        if ens is None:
            try:
                if echo:
                    echo(f"evaluating the ensemble of {len(state['candidates'])} candidates on the test set")
                ens = ensemble_search(out, device=device).to_dict()
            except Exception as exc:  # the table is still useful without it; say why it is missing
                note = f"Ensemble not evaluated: {type(exc).__name__}: {exc}"
                if echo:
                    echo(note)
    rows = collect_rows(out, state, ens)
    refuse_links(out, ("report",))
    rep_dir = out / "report"
    refuse_links(rep_dir, ("table.md", "table.csv", "stage_depths.png", "accuracy_vs_macs.png", "stage_scores.png"))
    md = _markdown(rows, state, note)
    table_md = atomic_write_text(rep_dir / "table.md", md)
    table_csv = atomic_write_text(rep_dir / "table.csv", rows_csv(rows))
    depth_png, acc_png = rep_dir / "stage_depths.png", rep_dir / "accuracy_vs_macs.png"
    scores_png = _plots(state, rows, depth_png, acc_png, rep_dir / "stage_scores.png")
    return Report(
        directory=rep_dir,
        table_md=table_md,
        table_csv=table_csv,
        depth_png=depth_png,
        accuracy_png=acc_png,
        markdown=md,
        rows=rows,
        ensemble=ens,
        scores_png=scores_png,
    )


def export_candidate(
    out_dir: str | Path,
    candidate: str | None,
    to: str | Path,
    *,
    torchscript: bool = False,
    onnx: bool = False,
    normalize_inputs: bool = False,
    force: bool = False,
) -> list[Path]:
    """Write the candidate ``candidate`` of a search as one file.

    ``candidate`` names it as every output does: ``"best"`` (or ``None``; the highest validation
    accuracy, the last candidate when the search had no validation split), ``"last"``, or ``"A1"``,
    ``"A2"``, ... (:func:`swnas.search.pick_candidate`).

    ``to`` receives the spec and the weights (after the candidate's final epochs when they ran;
    ``swnas.models.load(to)`` rebuilds it, with the training input normalisation as its
    ``normalization`` attribute, :func:`export_normalization`). With
    ``torchscript`` a TorchScript file goes to ``to`` with suffix ``.torchscript.pt``; with
    ``onnx`` an ONNX file with suffix ``.onnx`` (input ``images``, output ``logits``, any batch
    size; needs the ``onnx`` extra, onnx and onnxscript: :func:`require_onnx`). With
    ``normalize_inputs`` those two take images scaled to [0, 1] (float, NCHW) and apply the training
    normalisation themselves (:class:`swnas.models.NormalizedInputs`); the ``.pt`` file is the bare network either way.
    An existing file is replaced only with ``force``; a search's own files (``search.json``,
    ``checkpoints/``, ...) and anything but a regular file (a device, a FIFO) never are.
    """
    from swnas.search import candidate_name, load_state, pick_candidate

    out = Path(out_dir)
    state = load_state(out)
    if not state["candidates"]:
        raise InputError(f"{out}: the search has no trained candidate yet")
    if candidate is not None and not isinstance(candidate, str):
        raise InputError(f"--candidate: {candidate!r}: give best, last or a candidate name such as A2")
    index = pick_candidate(state, candidate)
    to, ts_path, onnx_path = _export_paths(to, torchscript, onnx, force)
    if onnx:
        require_onnx()  # before anything is loaded or written
    net = state["networks"][index]
    from swnas.models import save_model
    from swnas.search import final_record, load_recorded

    rec = final_record(net)  # the weights after the final epochs when they ran (the paper's candidate)
    model = load_recorded(out, rec)
    norm = export_normalization(state["config"])
    if normalize_inputs and not (torchscript or onnx):
        raise InputError("--normalize-inputs: applies to the --torchscript and --onnx files; give one of them")
    if normalize_inputs and norm is None:
        raise InputError(
            f"--normalize-inputs: the training normalisation of {out} cannot be recomputed (its data "
            "could not be read); export without it"
        )
    written = [
        atomic_save(
            lambda p: save_model(
                model,
                p,
                extra={
                    "search": str(out.resolve()),
                    "candidate": candidate_name(net),
                    "network": int(net["index"]),
                    "final_epochs": rec is not net,
                    "metrics": _plain(net["metrics"]),
                    "final": _plain(net.get("final") or {}),
                    "normalization": norm,
                },
            ),
            to,
        )
    ]
    if ts_path is not None or onnx_path is not None:
        import torch

        spec = model.spec
        example = torch.zeros(1, spec.in_channels, spec.input_size, spec.input_size)
        from swnas.models import NormalizedInputs

        model = NormalizedInputs(model, norm).eval() if normalize_inputs else model.eval()
        if ts_path is not None:
            import warnings

            with torch.no_grad(), warnings.catch_warnings():
                # TorchScript is deprecated upstream in favour of torch.export, but still loads everywhere
                warnings.simplefilter("ignore", FutureWarning)
                traced = torch.jit.trace(model, example)
            written.append(atomic_save(lambda p: traced.save(p), ts_path))
        if onnx_path is not None:
            written.append(atomic_save(lambda p: _onnx_export(model, spec, p), onnx_path))
    return written


#: the packages ``--onnx`` needs, and the extra that installs them (pyproject.toml)
ONNX_PACKAGES = ("onnx", "onnxscript")
ONNX_INSTALL = 'pip install "swnas[onnx]"'


def require_onnx() -> None:
    """An :class:`~swnas.errors.InputError` naming the ``onnx`` extra unless onnx and onnxscript import.

    torch's ONNX exporter builds the graph with onnxscript and writes it with onnx; without either
    it fails half-way with a traceback, so ``--onnx`` checks both before anything is written.
    """
    import importlib

    missing = []
    for name in ONNX_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
        except Exception as exc:
            missing.append(f"{name} (installed, but importing it fails: {type(exc).__name__}: {exc})")
    if missing:
        raise InputError(
            f"--onnx: needs the packages {', '.join(ONNX_PACKAGES)}; missing: {', '.join(missing)}. "
            f'Install the onnx extra: {ONNX_INSTALL} (from a clone: pip install ".[onnx]"), '
            "or pip install onnx onnxscript"
        )


def _onnx_export(model: Any, spec: Any, path: str) -> None:
    """Write ``model`` (float NCHW images of ``spec``'s size -> logits) as ONNX to ``path``, any batch size.

    Input ``images``, output ``logits``, the weights inside the file. torch >= 2.5 exports through :func:`torch.export`
    (onnxscript) with a dynamic batch dimension; older torch through its TorchScript exporter with
    ``dynamic_axes``. A model the exporter cannot translate is an InputError, not a traceback.
    """
    import inspect

    import torch

    example = torch.zeros(2, spec.in_channels, spec.input_size, spec.input_size)  # 2: no batch-of-1 specialisation
    kw: dict[str, Any] = {"input_names": ["images"], "output_names": ["logits"]}
    params = inspect.signature(torch.onnx.export).parameters
    if "dynamo" in params:
        kw.update(dynamo=True, verbose=False, dynamic_shapes=({0: torch.export.Dim("batch")},))
    if "external_data" in params:  # one self-contained file (its default puts the weights in PATH.data,
        kw["external_data"] = False  # named after the temporary file that is renamed onto ``path``)
    else:  # pragma: no cover - torch < 2.5
        kw.update(dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
    try:
        torch.onnx.export(model, (example,), path, **kw)
    except ImportError as exc:
        raise InputError(f"--onnx: {exc}; install the onnx extra: {ONNX_INSTALL}") from None
    except OSError:
        raise  # a full disk or an unwritable file: atomic_save names the path
    except Exception as exc:
        raise InputError(
            f"--onnx: torch.onnx.export could not translate this network "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "the .pt file and --torchscript hold the same network"
        ) from None


def export_normalization(cfg: dict) -> dict | None:
    """How a search's networks saw their inputs, for inference on an exported candidate.

    ``{"kind": "channel" | "pixel_mean", "mean": tensor (C,) or (H, W, C), "std": tensor (C,),
    "formula": ...}``: a uint8 HWC image becomes ``(image / 255 - mean) / std`` in CHW order. The
    statistics are recomputed from the search's data options (its training split), as the
    ensemble does; ``None`` (with a warning) when the data can no longer be read.
    """
    import logging

    import numpy as np
    import torch

    from swnas.data import input_normalization, reopen_dataset
    from swnas.training.recipes import get_recipe

    try:
        ds = reopen_dataset(cfg)
        kind = get_recipe(cfg.get("recipe") or "paper").normalize
        mean, std = input_normalization(ds, kind)
    except (InputError, OSError) as e:
        logging.getLogger("swnas").warning(
            "export: the input normalisation is not stored (the search's data could not be read: %s)", e
        )
        return None
    return {
        "kind": kind,
        "mean": torch.as_tensor(np.asarray(mean, dtype=np.float32)),
        "std": torch.as_tensor(np.asarray(std, dtype=np.float32)),
        "formula": "uint8 HWC image -> (image / 255 - mean) / std, then CHW",
    }


def _refuse_overwrite(path: Path, force: bool) -> None:
    """An export never replaces a search's own file or a special file, and an existing file only with ``force``."""
    from swnas.search.opening import OUT_ENTRIES

    if path.is_symlink():
        raise InputError(f"--to {path}: is a symbolic link; swnas does not write through links")
    real = path.resolve()
    for parent in real.parents:
        if (parent / "search.json").is_file() or (parent / "train.json").is_file():
            first = real.relative_to(parent).parts[0]
            if first in (*OUT_ENTRIES, "model.pt", "train.json"):
                raise InputError(f"--to {path}: is one of the files of the run in {parent}; export elsewhere")
    if path.exists():
        if not path.is_file():
            raise InputError(f"--to {path}: exists and is not a regular file (a device, a FIFO, ...); export elsewhere")
        if not force:
            raise InputError(f"--to {path}: exists; give --force to replace it, or another --to")


def _export_paths(
    to: str | Path, torchscript: bool, onnx: bool, force: bool = False
) -> tuple[Path, Path | None, Path | None]:
    """``--to`` and the TorchScript/ONNX files beside it, checked: none is a directory, none overwrites another,
    none replaces an existing file without ``force`` (:func:`_refuse_overwrite`).

    The extra files share ``to``'s name without its ``.pt``/``.torchscript``/``.onnx`` endings:
    ``m.pt`` -> ``m.torchscript.pt`` and ``m.onnx``.
    """
    to = Path(to)
    if to.is_dir():
        raise InputError(f"--to {to}: is a directory; give a file name such as {to / 'model.pt'}")
    if to.parent.exists() and not to.parent.is_dir():
        raise InputError(f"--to {to}: {to.parent} is not a directory")
    base = to.name
    for end in (".pt", ".torchscript", ".onnx"):
        if base.endswith(end) and len(base) > len(end):
            base = base[: -len(end)]
    ts_path = to.with_name(base + ".torchscript.pt") if torchscript else None
    onnx_path = to.with_name(base + ".onnx") if onnx else None
    for extra, flag in ((ts_path, "--torchscript"), (onnx_path, "--onnx")):
        if extra is None:
            continue
        if extra == to:
            raise InputError(f"--to {to}: {flag} would write its file over the checkpoint; give --to {base}.pt")
        if extra.is_dir():
            raise InputError(f"{flag}: {extra} is a directory")
    for p in (to, ts_path, onnx_path):
        if p is not None:
            _refuse_overwrite(p, force)
    if to.parent.is_dir():  # temporary files of an earlier export to the same name, killed midway
        from swnas.records.atomic import is_temp_file

        mine = tuple(f".{p.name}." for p in (to, ts_path, onnx_path) if p is not None)
        for f in to.parent.iterdir():
            if f.name.startswith(mine) and is_temp_file(f.name) and f.is_file() and not f.is_symlink():
                f.unlink()
    return to, ts_path, onnx_path


def _plain(d: dict) -> dict:
    return {k: v for k, v in d.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
