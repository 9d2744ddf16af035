"""swnas.paper: the published numbers as data and the side-by-side tables (no search needed)."""
from __future__ import annotations

import csv
import io

import pytest

from swnas.errors import InputError
from swnas.models import ArchSpec, build, paper_depth
from swnas.paper import PUBLISHED, TABLES, published_rows, render_csv, render_markdown, side_by_side, write_table
from swnas.paper.published import SOURCES


def test_every_published_row_names_a_known_table_and_source():
    assert {r.table for r in PUBLISHED} <= set(TABLES)
    assert all(r.source in SOURCES for r in PUBLISHED)
    readme = {r.row: r for r in published_rows("table3", "scratch")}
    assert (readme["ResNet56"].top1, readme["ResNet110"].top1, readme["it=5"].top1) == (93.03, 93.57, 94.27)
    ens = published_rows("ensemble")[0]
    assert (ens.top1, ens.params_m) == (95.68, 7.27)
    with pytest.raises(InputError, match="^table:"):
        published_rows("table9")


def test_published_depths_follow_the_papers_counting():
    # every row found by a search (not a named baseline) has the depth swnas.models.costs counts
    for r in PUBLISHED:
        if r.stages is None or r.row.startswith(("ResNet", "NASNet241")) or r.row in ("it=2", "it=4", "it=6"):
            continue  # baselines keep their names; every other row of the cell search suffices
        module = "nasnet" if r.table == "table4" else "basic"
        spec = ArchSpec(module=module, stages=list(r.stages), cell="keras" if module == "nasnet" else "darts")
        assert paper_depth(spec) == r.depth, r


def test_derived_costs_are_what_the_builders_give():
    from swnas.metrics import count_params
    from swnas.models.costs import keras_flops

    import torch

    for r in published_rows("table2"):
        with torch.device("meta"):
            net = build(ArchSpec(stages=list(r.stages)))
        # Keras counts BatchNorm statistics and the released convolutions carry biases: within 2%
        assert abs(count_params(net) / 1e6 - r.params_m) / r.params_m < 0.02
        assert keras_flops(net) / 1e6 == pytest.approx(r.flops_m, abs=0.05)
    for r in [r for r in published_rows("table4") if r.row in ("NASNet169", "it=1")]:
        with torch.device("meta"):
            net = build(ArchSpec(module="nasnet", stages=list(r.stages), cell="keras").with_width(32))
        assert abs(count_params(net) / 1e6 - r.params_m) / r.params_m < 0.02, r
        if r.flops_m is not None:
            assert keras_flops(net) / 1e6 == pytest.approx(r.flops_m, abs=0.05)


def test_side_by_side_puts_measured_rows_after_their_published_row(tmp_path):
    measured = [
        {"setting": "scratch", "row": "it=5", "stages": [10, 14, 8], "depth": 67, "top1": 41.5},
        {"setting": "scratch", "row": "ResNet56", "stages": [9, 9, 9], "depth": 56, "top1": 40.0,
         "val_top1": 39.0},
        {"setting": "scratch", "row": "ResNet44", "stages": [7, 7, 7], "depth": 44, "top1": 38.25},
    ]
    t = side_by_side("table3", measured, notes=["smoke scale"])
    labels = [(r.source, r.values["row"]) for r in t.rows]
    assert labels[:2] == [("paper", "ResNet56"), ("measured", "ResNet56")]
    i = labels.index(("paper", "it=5"))
    assert labels[i + 1] == ("measured", "it=5")
    assert labels[-1] == ("measured", "ResNet44")  # no published counterpart: at the end
    md = render_markdown(t)
    assert md.startswith("# Table III") and "| paper | ResNet56 |" not in md  # setting comes first
    assert "| scratch | ResNet56 | paper | [9, 9, 9] | 56 |" in md and "smoke scale" in md
    assert "n/a" in md and "39.00" in md
    rows = list(csv.DictReader(io.StringIO(render_csv(t))))
    assert rows[1]["source"] == "measured" and rows[1]["top1"] == "40.0" and rows[0]["top1"] == "93.03"
    assert rows[0]["val_top1"] == "" and rows[0]["stages"] == "9-9-9"
    md_path, csv_path = write_table(t, tmp_path / "out")
    assert md_path.read_text() == md and csv_path.name == "table3.csv"
    with pytest.raises(InputError, match=r"measured\[0\]"):
        side_by_side("table3", [{"top1": 1.0}])
