"""``swnas paper table4 | table6 | ensemble`` at smoke scale on digits: tables written, runs reused.

One smoke DIR is shared by the module (the ensemble reuses table4's cell search, table6 the
ensemble's residual search); every table runs again at the end of its test and must train nothing.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from swnas.errors import InputError
from swnas.paper.runner import PaperSettings, run_table


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def _mtimes(root: Path) -> dict[str, int]:
    """Modification times of every checkpoint and training result (a resumed search rewrites its
    search.json, so that one is compared by content)."""
    return {
        str(p.relative_to(root)): p.stat().st_mtime_ns
        for p in root.rglob("*")
        if p.is_file() and p.suffix in (".json", ".pt") and p.name != "search.json"
    }


def _networks(root: Path) -> dict[str, list]:
    return {str(p.relative_to(root)): json.loads(p.read_text())["networks"] for p in root.rglob("search.json")}


def _again_trains_nothing(name: str, st: PaperSettings) -> None:
    """Run the table again: no checkpoint or result under DIR is rewritten, no network is added."""
    before, nets = _mtimes(st.out), _networks(st.out)
    md = (st.out / f"{name}.md").read_text()
    run_table(name, st)
    assert _mtimes(st.out) == before and len(before) >= 4
    assert _networks(st.out) == nets
    assert (st.out / f"{name}.md").read_text() == md  # read back, the same table


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> PaperSettings:
    return PaperSettings(
        dataset="digits", out=tmp_path_factory.mktemp("paper") / "p", smoke=True, device="cpu", echo=None
    )


@pytest.mark.slow  # about a minute on 2 loaded cores: a one-iteration cell search and two uniform cell networks
def test_table4_smoke_cells_beside_the_published_rows(smoke):
    from swnas.models import ArchSpec, paper_depth
    from swnas.paper.tables_4_to_6 import SMOKE_CELL_WIDTH

    md, cs = run_table("table4", smoke)
    rows = _rows(cs)
    labels = [(r["source"], r["setting"], r["row"]) for r in rows]
    assert labels[:3] == [
        ("paper", "uniform", "NASNet169"),
        ("paper (derived)", "uniform", "NASNet169"),
        ("paper", "cells", "it=1"),
    ]  # the paper's order, derived costs beside the printed row
    assert [lab[0] for lab in labels[-3:]] == ["measured"] * 3  # smoke rows are never paired
    i = labels.index(("measured", "cells (smoke)", "it=1"))
    assert "flops_b" in rows[0] and "flops_m" not in rows[0] and rows[0]["flops_b"] == "2.7"
    uniform = [r for r in rows if r["source"] == "measured" and r["setting"] == "uniform (smoke)"]
    # shrunken stand-ins are never keyed to the published NASNet rows, and say what they stand for
    assert [r["note"] for r in uniform] == [
        f"smoke stand-in for NASNet{d}: [{m}, {m}, {m}] cells at width {SMOKE_CELL_WIDTH}"
        for d, m in ((169, 1), (205, 2))
    ]
    for r in uniform + [rows[i]]:
        stages = [int(s) for s in r["stages"].split("-")]
        spec = ArchSpec(module="nasnet", stages=stages, cell="keras").with_width(SMOKE_CELL_WIDTH)
        assert int(r["depth"]) == paper_depth(spec)
        assert not r["row"].startswith("NASNet") or r["row"] == f"NASNet{paper_depth(spec)}-w{SMOKE_CELL_WIDTH}"
        assert 0.0 <= float(r["top1"]) <= 100.0
    state = json.loads((smoke.out / "searches" / "cells-pls" / "search.json").read_text())
    assert (state["config"]["module"], state["config"]["cell"], state["config"]["width"]) == ("nasnet", "keras", 4)
    text = md.read_text()
    assert text.startswith("# Table IV") and "not NASNet169/205/241" in text and "4-8% below" in text
    assert state["config"]["iterations"] == 1  # smoke; the paper-scale cell search runs 5
    from swnas.paper.tables_4_to_6 import CELL_SEARCH

    assert CELL_SEARCH["iterations"] == 5
    _again_trains_nothing("table4", smoke)


@pytest.mark.slow  # about 40 s: the residual search (the cell search is table4's when run first)
def test_ensemble_smoke_sums_its_members(smoke):
    from swnas.data import load_dataset

    run_table("ensemble", smoke)
    rows = _rows(smoke.out / "ensemble.csv")
    assert (rows[0]["source"], rows[0]["row"], rows[0]["top1"], rows[0]["params_m"]) == (
        "paper",
        "ensemble",
        "95.68",
        "7.27",
    )
    ens = rows[-1]  # smoke: not paired with the published row
    members = [r for r in rows[1:-1] if r["source"] == "measured"]
    assert ens["source"] == "measured" and ens["setting"] == "residual+cells (smoke)"
    assert [(r["setting"], r["row"]) for r in members] == [("residual (smoke)", "it=1"), ("cells (smoke)", "it=1")]
    assert ens["note"] == "members: residual it=1, cells it=1" and int(ens["members"]) == 2
    assert "networks" not in rows[0]  # the member count is not under "networks trained"
    assert float(ens["params_m"]) == pytest.approx(sum(float(r["params_m"]) for r in members))
    # each member is the candidate after its final epochs, normalised as it was trained
    for r, name in zip(members, ("scratch-pls", "cells-pls")):
        state = json.loads((smoke.out / "searches" / name / "search.json").read_text())
        net = state["networks"][state["candidates"][0]]
        assert float(r["top1"]) == pytest.approx(100 * net["final"]["top1"])
        assert float(r["params_m"]) == pytest.approx(net["metrics"]["params"] / 1e6)
    held = json.loads((smoke.out / "ensembles" / "residual+cells.json").read_text())
    assert 100 * held["top1"] == pytest.approx(float(ens["top1"]))
    assert held["n_test"] == len(load_dataset("digits").y_test)  # the whole test set, not the subset
    _again_trains_nothing("ensemble", smoke)


@pytest.mark.slow  # about 30 s: ResNet-20, the residual final, a NASNet stand-in and the cell final retrained
def test_table6_smoke_trains_the_four_rows_on_the_target(smoke):
    from swnas.cli import main

    out = smoke.out
    assert (
        main(["paper", "table6", "--dataset", "digits", "--smoke", "--device", "cpu", "--out", str(out), "--quiet"])
        == 0
    )
    rows = [r for r in _rows(out / "table6.csv") if r["source"] == "measured"]
    assert all(r["setting"] == "digits (smoke)" and 0.0 <= float(r["top1"]) <= float(r["top5"]) <= 100.0 for r in rows)
    assert "Top-5 (%)" in (out / "table6.md").read_text()
    # the paper's four rows (smoke stand-ins named by their own depth), in its order
    assert [r["row"] for r in rows] == ["ResNet20", "residual", "NASNet62-w4", "cells"]
    assert [r["note"].split(":")[0] for r in rows[::2]] == [
        "smoke stand-in for ResNet110",
        "smoke stand-in for NASNet241",
    ]
    state = json.loads((out / "searches" / "scratch-pls" / "search.json").read_text())
    last = state["networks"][state["candidates"][-1]]
    assert rows[1]["stages"] == "-".join(str(s) for s in last["stages"])
    trained = json.loads((out / "retrain" / "digits" / f"A{last['iteration']}" / "train.json").read_text())
    assert trained["dataset"] == "digits" and trained["options"]["seed"] == 1  # another seed than the search's
    assert trained["stages"] == last["stages"]
    assert "it is not a transfer" in (out / "table6.md").read_text()
    _again_trains_nothing("table6", smoke)
    # what DIR holds was trained with seed 1: a run that asks for seed 0 on digits is refused, not mixed in
    other = PaperSettings(dataset="digits", out=out, smoke=True, device="cpu", echo=None, target_dataset="digits")
    with pytest.raises(InputError, match="--out"):
        run_table("table6", other)


def test_table6_needs_a_target_at_paper_scale(tmp_path):
    st = PaperSettings(dataset="digits", out=tmp_path / "p", device="cpu", echo=None)
    with pytest.raises(InputError, match="^target_dataset"):
        run_table("table6", st)
    bad = PaperSettings(dataset="digits", out=tmp_path / "p", device="cpu", echo=None, target_dataset="mnist")
    with pytest.raises(InputError, match="dataset"):
        run_table("table6", bad)
    missing = PaperSettings(
        dataset="cifar10",
        data=str(tmp_path / "no.npz"),
        out=tmp_path / "p",
        device="cpu",
        echo=None,
        target_dataset="digits",
    )
    with pytest.raises(InputError, match="^data: .*does not exist"):
        run_table("table6", missing)
    no_target = PaperSettings(
        dataset="digits",
        out=tmp_path / "p",
        device="cpu",
        echo=None,
        target_dataset="cifar10",
        target_data=str(tmp_path / "t.npz"),
    )
    with pytest.raises(InputError, match="^target_data: .*does not exist"):
        run_table("table6", no_target)
    assert not (tmp_path / "p").exists()  # refused before anything ran: DIR is not even made


def test_paper_parser_takes_every_table_and_the_target():
    from swnas.cli import build_parser

    ns = build_parser().parse_args(
        ["paper", "table6", "--out", "d", "--target-dataset", "imagenet32", "--target-data", "/x"]
    )
    assert (ns.table, ns.target_dataset, ns.target_data) == ("table6", "imagenet32", "/x")
    for t in ("table4", "ensemble"):
        assert build_parser().parse_args(["paper", t, "--out", "d"]).table == t


@pytest.mark.slow  # reuses the module's residual and cell searches (about 2 min alone)
def test_table5_smoke_measures_both_searches_beside_the_papers_rows(smoke):
    md, cs = run_table("table5", smoke)
    rows = _rows(cs)
    paper = [r for r in rows if r["source"] == "paper"]
    assert len(paper) == 11 and paper[0]["row"] == "Zoph et al." and paper[0]["evaluated_models"] == "20000"
    measured = [r for r in rows if r["source"] == "measured"]
    assert [(r["setting"], r["row"]) for r in measured] == [
        ("ours (smoke)", "residual modules"),
        ("ours (smoke)", "cell modules"),
        ("ours (smoke)", "ensemble"),
    ]
    for r, name in zip(measured, ("scratch-pls", "cells-pls")):
        state = json.loads((smoke.out / "searches" / name / "search.json").read_text())
        last = state["networks"][state["candidates"][-1]]
        assert int(r["evaluated_models"]) == len(state["networks"]) == 3 and r["gpus"] == "0"
        assert float(r["top1"]) == pytest.approx(100 * last["final"]["top1"])
    assert "Evaluated models" in md.read_text()
