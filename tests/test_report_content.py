"""What the reports people read hold: numbers for people, the best marked, validation and final columns,
A0 in the depth bars, per-stage scores, validation curves, integer epoch ticks, the ensemble in every view."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

import swnas.reporting.ensemble as ens_mod
from swnas.reporting.ensemble import EnsembleResult
from swnas.reporting.fmt import human_count, score_pair, sig4
from swnas.reporting.html import curves_figure, render_html
from swnas.reporting.report import (
    accuracy_figure,
    collect_rows,
    depth_figure,
    ensemble_line,
    scores_figure,
    write_report,
)
from swnas.search import SearchConfig, Toolkit, run_search


def _toolkit() -> Toolkit:
    def train(m, seed):
        s = sum(m["stages"])
        hist = [
            {
                "epoch": e,
                "loss": 2.0 / e,
                "acc": 0.2 * e,
                "val_acc": 0.15 * e,
                "lr": 0.1,
                "seconds": 1.0,
                "images_per_second": 9.0,
            }
            for e in (1, 2, 3)
        ]
        return {
            "top1": 0.8 + 0.01 * s,
            "top5": 0.99,
            "val_top1": 0.95 - 0.02 * s,
            "seconds": 0.5,
            "epochs": 3,
            "history": hist,
        }

    return Toolkit(
        build=lambda stages, seed: {"stages": list(stages), "seed": seed},
        train=train,
        # stage 1 grows each iteration by a margin in the 6th digit; the others never
        score=lambda m: [0.932610 + 0.000001 * s if i == 0 else -float(s) for i, s in enumerate(m["stages"])],
        measure=lambda m, seconds: {
            "depth": 2 * sum(m["stages"]) + 2,
            "params": 50_000 * sum(m["stages"]),
            "macs": 353_333 * sum(m["stages"]),
            "memory": 1,
            "peak_memory": 1,
            "latency": 0.1,
            "carbon": 1e-6,
        },
        save=lambda m, p: Path(p).write_text(json.dumps(m)),
        load=lambda p: json.loads(Path(p).read_text()),
        spec=lambda m: {"stages": m["stages"]},
    )


@pytest.fixture
def searched(tmp_path):
    out = tmp_path / "run"
    res = run_search(
        SearchConfig(iterations=2, stages=3, m0=1, delta=1, dataset="digits"), out, toolkit=_toolkit(), echo=None
    )
    state = json.loads((out / "search.json").read_text())
    assert state["best"] == 2 and state["candidates"] == [2, 4]  # A1 best (shallower: higher validation)
    return out, state, res


ENS = {
    "members": [2, 4],
    "top1": 0.9123,
    "top5": 0.99,
    "n_test": 359,
    "member_top1": [0.84, 0.85],
    "member_top5": [0.99, 0.99],
}


def test_numbers_for_people():
    assert human_count(150_000) == "0.15 M" and human_count(1_058_000) == "1.06 M"
    assert human_count(45_532_000) == "45.5 M" and human_count(96_218) == "96.2 k" and human_count(850) == "850"
    assert human_count(2.31e9) == "2.31 G" and human_count(None) == "-"
    assert sig4(0.945890234) == "0.9459" and sig4(12.3456) == "12.35"
    assert score_pair(0.9458902, 0.9326197) == ("0.9459", "0.9326")
    assert score_pair(0.932612, 0.932641) == ("0.93261", "0.93264")  # digits enough to tell them apart
    assert score_pair(0.5, 0.5) == ("0.5", "0.5")


def test_table_md_marks_the_best_and_formats_numbers(searched):
    out, state, _ = searched
    md = write_report(out, ensemble=False).markdown
    assert "| A1 (best) |" in md and "| A2 |" in md
    assert "(best): the candidate with the highest validation accuracy" in md
    a1 = state["networks"][2]["metrics"]
    assert human_count(a1["params"]) == "0.20 M" and "| 0.20 M | 1.41 M |" in md
    # decisions: 4 significant digits, or enough to tell A from T (they differ in the 6th)
    c = state["iterations"][0]["comparisons"][0]
    assert c["grow"] and f"stage 1: {c['score_A']:.6g} vs {c['score_T']:.6g} -> grow" in md
    assert str(c["score_A"]) not in md


def test_depth_bars_start_at_iteration_0(searched):
    _, state, _ = searched
    fig = depth_figure(state)
    ax = fig.axes[0]
    assert list(ax.get_xticks()) == [0, 1, 2]
    heights = sorted((round(p.get_x() + p.get_width() / 2, 3), p.get_height()) for p in ax.patches)
    assert heights[0] == (round(0 - 0.8 / 3, 3), 1)  # A0's stage 1 has one module
    assert sum(1 for x, _ in heights if abs(x) < 0.5) == 3  # A0's three stages are drawn
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0\nA0", "1\nA1", "2\nA2"]


def test_accuracy_chart_has_validation_final_best_and_the_ensemble(searched):
    out, state, _ = searched
    rows = collect_rows(out, state, ENS)
    fig = accuracy_figure(rows)
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert "ensemble of 2" in labels and "candidates, validation" in labels
    assert "best (highest validation accuracy)" in labels
    ens_row = [r for r in rows if r["kind"] == "ensemble"][0]
    pts = {tuple(map(lambda v: round(float(v), 6), xy)) for c in ax.collections for xy in c.get_offsets()}
    assert (round(ens_row["macs"] / 1e6, 6), round(100 * ENS["top1"], 6)) in pts
    a1 = state["networks"][2]["metrics"]
    assert (round(a1["macs"] / 1e6, 6), round(100 * a1["val_top1"], 6)) in pts
    assert "A1 (best)" in [t.get_text() for t in ax.texts]


def test_per_stage_score_chart(searched):
    _, state, _ = searched
    fig = scores_figure(state)
    assert len(fig.axes) == 3
    ax = fig.axes[0]
    a_line, t_line = ax.get_lines()[:2]
    assert list(a_line.get_xdata()) == [1, 2]
    assert list(a_line.get_ydata()) == [it["comparisons"][0]["score_A"] for it in state["iterations"]]
    assert list(t_line.get_ydata()) == [it["comparisons"][0]["score_T"] for it in state["iterations"]]
    assert all(float(t).is_integer() for t in ax.get_xticks())
    control = dict(
        state,
        iterations=[
            {**it, "comparisons": [{**c, "score_A": None, "score_T": None} for c in it["comparisons"]]}
            for it in state["iterations"]
        ],
    )
    assert scores_figure(control) is None  # random/uniform controls have no scores to draw


def test_curves_show_validation_per_epoch_and_whole_epochs(searched):
    _, state, _ = searched
    fig = curves_figure(state)
    ax = fig.axes[1]
    val = [ln for ln in ax.get_lines() if ln.get_label().endswith("validation")]
    assert len(val) == len(state["networks"]) and val[0].get_linestyle() == "--"
    assert list(val[0].get_ydata()) == pytest.approx([15.0, 30.0, 45.0])
    fig.canvas.draw()
    for a in fig.axes:
        assert all(float(t).is_integer() for t in a.get_xticks())


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows: list[tuple[str, list[str]]] = []
        self._cls = ""
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._cls = dict(attrs).get("class") or ""
            self.rows.append((self._cls, []))
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1][1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_html_has_the_columns_of_table_md_and_the_best(searched):
    out, state, _ = searched
    rows = collect_rows(out, state, ENS)
    page = render_html(state, rows)
    p = _Cells()
    p.feed(page)
    head = next(cells for _, cells in p.rows if cells and cells[0] == "Network")
    assert {"Val top-1 (%)", "Top-1 after final epochs (%)", "Val top-1 after final epochs (%)"} <= set(head)
    body = {cells[0]: (cls, dict(zip(head, cells))) for cls, cells in p.rows if cells and cells[0] != "Network"}
    cls, a1 = body["A1 (best)"]
    m = state["networks"][2]["metrics"]
    assert cls == "best" and a1["Val top-1 (%)"] == f"{100 * m['val_top1']:.2f}"
    assert a1["Params"] == "0.20 M" and a1["MACs"] == "1.41 M"
    assert body["A2"][0] == "" and body["ensemble of 2"][1]["Top-1 (%)"] == "91.23"
    c = state["iterations"][0]["comparisons"][0]
    assert f"{c['score_A']:.6g}" in page and str(c["score_A"]) not in page


def test_search_prints_the_ensemble_accuracy(tmp_path, capsys, monkeypatch):
    import swnas.search as search_mod
    from swnas.cli import main

    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", lambda *a, **k: _toolkit())
    monkeypatch.setattr(ens_mod, "ensemble_search", lambda out, **k: EnsembleResult(**ENS))
    code = main(
        [
            "search",
            "--dataset",
            "digits",
            "--iterations",
            "2",
            "--m0",
            "1",
            "--delta",
            "1",
            "--out",
            str(tmp_path / "s"),
            "--quiet",
        ]
    )
    o = capsys.readouterr().out
    assert code == 0
    assert "ensemble of A1, A2 (averaged softmax) on 359 test images: top-1 91.23%" in o
    assert "best single member A2 85.00%" in o and "stage_scores.png" in o
    state = json.loads((tmp_path / "s" / "search.json").read_text())
    assert ensemble_line(ENS, state) in o
