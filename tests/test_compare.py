"""``swnas report DIR1 DIR2``: searches side by side (swnas.reporting.compare), checked against their search.json."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from swnas.cli import main
from swnas.reporting.compare import compare_searches, default_compare_dir
from swnas.errors import InputError
from swnas.search import SearchConfig, run_search

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def two_searches(tmp_path_factory):
    """Two real tiny digits searches (networks trained, scored, finally trained): PLS-VIP and uniform."""
    root = tmp_path_factory.mktemp("cmp") / "runs"
    dirs = []
    for crit in ("pls", "uniform"):
        cfg = SearchConfig(
            dataset="digits",
            subset=100,
            iterations=2,
            stages=3,
            m0=1,
            delta=1,
            epochs=1,
            final_epochs=1,
            val_split=0.2,
            batch_size=40,
            criterion=crit,
            device="cpu",
        )
        out = root / f"scratch-{crit}"
        run_search(cfg, out, echo=None)
        dirs.append(out)
    return dirs


def _state(d: Path) -> dict:
    return json.loads((d / "search.json").read_text())


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_comparison_holds_each_search_by_name(two_searches, tmp_path):
    cmp = compare_searches(two_searches, tmp_path / "cmp")
    assert cmp.directory == tmp_path / "cmp" and cmp.searches == ["scratch-pls", "scratch-uniform"]
    assert cmp.depth_png.read_bytes()[:8] == PNG_MAGIC
    rows = _rows(cmp.table_csv)
    md = cmp.table_md.read_text()
    for d in two_searches:
        st = _state(d)
        mine = [r for r in rows if r["search"] == d.name]
        assert [int(r["iteration"]) for r in mine] == [st["networks"][i]["iteration"] for i in st["candidates"]]
        assert [r["criterion"] for r in mine] == [st["config"]["criterion"]] * len(mine)
        for r, i in zip(mine, st["candidates"]):
            net = st["networks"][i]
            assert r["stages"] == "-".join(map(str, net["stages"]))
            assert int(r["params"]) == net["metrics"]["params"] and int(r["macs"]) == net["metrics"]["macs"]
            assert int(r["paper_flops"]) == net["metrics"]["macs"]  # residual networks: the two counts agree
            assert float(r["top1"]) == pytest.approx(net["metrics"]["top1"], abs=1e-12)
            assert float(r["val_top1"]) == pytest.approx(net["metrics"]["val_top1"], abs=1e-12)
            assert float(r["final_top1"]) == pytest.approx(net["final"]["top1"], abs=1e-12)
            assert int(r["final_epochs"]) == 1
            assert (r["best"] == "True") == (i == st["best"])
        assert sum(r["best"] == "True" for r in mine) == 1  # val split > 0: every search chose one
        # the Markdown block of this search: its name opens it, its stages follow in order
        block = md.split(f"| **{d.name}** |", 1)[1]
        block = block.split("| **scratch-", 1)[0]
        staged = ["-".join(map(str, st["networks"][i]["stages"])) for i in st["candidates"]]
        pos = [block.index(f"| {s} |") for s in staged]
        assert pos == sorted(pos)
        best_it = st["networks"][st["best"]]["iteration"]
        best_line = next(ln for ln in block.splitlines() if ln.rstrip().endswith("| **best** |"))
        assert best_line.split("|")[3].strip() == str(best_it)
    # the uniform control grows every stage every iteration
    uni = [r["stages"] for r in rows if r["search"] == "scratch-uniform"]
    assert uni == ["2-2-2", "3-3-3"]
    assert json.loads((tmp_path / "cmp" / "compare.json").read_text())["format"] == "swnas-compare/1"


@pytest.mark.slow
def test_cli_report_with_two_dirs_and_the_default_place(two_searches, capsys):
    out = default_compare_dir(two_searches)
    assert out == two_searches[0].absolute().parent / "compare"
    assert main(["report", *map(str, two_searches), "--quiet"]) == 0
    o = capsys.readouterr().out
    assert f"comparison of 2 searches written to {out}" in o
    assert (out / "compare.md").is_file() and (out / "compare.csv").is_file()
    assert main(["report", *map(str, two_searches), "--quiet"]) == 0  # an earlier comparison is replaced
    # one DIR: the search's own report, as before
    assert main(["report", str(two_searches[0]), "--no-ensemble", "--quiet"]) == 0
    assert (two_searches[0] / "report" / "table.md").is_file()
    assert main(["report", str(two_searches[0]), "--out-compare", str(out)]) == 2
    assert "two or more DIRs" in capsys.readouterr().err


@pytest.mark.slow
def test_comparison_refuses_bad_inputs(two_searches, tmp_path):
    a, b = two_searches
    with pytest.raises(InputError, match="two or more"):
        compare_searches([a], tmp_path / "x")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(InputError, match=f"{plain}.*not a search directory"):
        compare_searches([a, plain], tmp_path / "x")
    with pytest.raises(InputError, match="no such directory"):
        compare_searches([a, tmp_path / "missing"], tmp_path / "x")
    broken = tmp_path / "broken"
    shutil.copytree(b, broken)
    (broken / "search.json").write_text("{ not json")
    with pytest.raises(InputError, match=str(broken / "search.json")):
        compare_searches([a, broken], tmp_path / "x")
    with pytest.raises(InputError, match="given twice"):
        compare_searches([a, a], tmp_path / "x")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a swnas comparison"):
        compare_searches([a, b], foreign)
    assert (foreign / "notes.txt").read_text() == "mine" and not (foreign / "compare.md").exists()
    with pytest.raises(InputError, match="is the search directory"):
        compare_searches([a, b], a)
    # two searches that share a directory name are told apart by their parents
    other = tmp_path / "elsewhere" / a.name
    shutil.copytree(a, other)
    cmp = compare_searches([a, other], tmp_path / "same-names")
    assert len(set(cmp.searches)) == 2 and all(s.endswith(a.name) for s in cmp.searches)


def test_paper_flops_of_a_cell_network_count_separable_convolutions_as_full_ones(tmp_path):
    # the paper's FLOPs column differs from the MACs exactly where the Keras counter does: cells
    import torch

    from swnas.reporting.compare import _paper_costs, _Search
    from swnas.models.metrics import count_macs
    from swnas.models import ArchSpec, build, keras_flops, paper_depth

    spec = ArchSpec(module="nasnet", stages=[2, 1, 1], widths=[4, 8, 16])
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "a.json").write_text(spec.to_json())
    depth, flops = _paper_costs(_Search("s", tmp_path, {}), {"spec": "specs/a.json"})
    torch.manual_seed(0)
    net = build(spec)
    assert depth == paper_depth(spec) and flops == keras_flops(net)
    assert flops > count_macs(net)
    assert _paper_costs(_Search("s", tmp_path, {}), {"spec": "specs/missing.json"}) == (None, None)
