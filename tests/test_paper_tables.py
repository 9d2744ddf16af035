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
    from swnas.models.metrics import count_params
    from swnas.models.costs import keras_flops

    import torch

    for r in [r for r in published_rows("table2") if r.derived]:
        with torch.device("meta"):
            net = build(ArchSpec(stages=list(r.stages)))
        # Keras counts BatchNorm statistics and the released convolutions carry biases: within 2%
        assert abs(count_params(net) / 1e6 - r.params_m) / r.params_m < 0.02
        assert keras_flops(net) / 1e6 == pytest.approx(r.flops_m, abs=0.05)
    for r in [r for r in published_rows("table4") if r.derived and r.row in ("NASNet169", "it=1")]:
        with torch.device("meta"):
            net = build(ArchSpec(module="nasnet", stages=list(r.stages), cell="keras").with_width(32))
        assert abs(count_params(net) / 1e6 - r.params_m) / r.params_m < 0.02, r
        if r.flops_m is not None:
            assert keras_flops(net) / 1e6 == pytest.approx(r.flops_m, abs=0.05)


def test_side_by_side_puts_measured_rows_after_their_published_row(tmp_path):
    measured = [
        {"setting": "scratch", "row": "it=5", "stages": [10, 14, 8], "depth": 67, "top1": 41.5},
        {"setting": "scratch", "row": "ResNet56", "stages": [9, 9, 9], "depth": 56, "top1": 40.0, "val_top1": 39.0},
        {"setting": "scratch", "row": "ResNet44", "stages": [7, 7, 7], "depth": 44, "top1": 38.25},
    ]
    measured.append({"setting": "scratch (smoke)", "row": "ResNet110", "top1": 12.0})
    t = side_by_side("table3", measured, notes=["smoke scale"])
    labels = [(r.source, r.values["setting"], r.values["row"]) for r in t.rows]
    # the paper's order: ResNet44, it=1 scratch, it=1 transfer, ResNet56, ...; each measured row after its own
    assert labels[:5] == [
        ("paper", "scratch", "ResNet44"),
        ("measured", "scratch", "ResNet44"),
        ("paper", "scratch", "it=1"),
        ("paper", "transfer", "it=1"),
        ("paper", "scratch", "ResNet56"),
    ]
    assert labels[5] == ("measured", "scratch", "ResNet56")
    i = labels.index(("paper", "scratch", "it=5"))
    assert labels[i + 1] == ("measured", "scratch", "it=5")
    assert labels[-1] == ("measured", "scratch (smoke)", "ResNet110")  # no published key: at the end
    assert labels.index(("paper", "scratch", "ResNet110")) + 1 != len(labels) - 1
    md = render_markdown(t)
    assert md.startswith("# Table III") and "| paper | ResNet56 |" not in md  # setting comes first
    assert "| scratch | ResNet56 | paper | [9, 9, 9] | 56 | 0.86 | 125 |" in md and "smoke scale" in md
    assert "Memory (MB)" in md and "| 10.42 |" in md and "ICPR 2020, Table III" in md
    assert "n/a" in md and "39.00" in md
    rows = list(csv.DictReader(io.StringIO(render_csv(t))))
    assert rows[1]["source"] == "measured" and rows[1]["top1"] == "38.25" and rows[0]["top1"] == "92.83"
    assert rows[0]["val_top1"] == "" and rows[0]["stages"] == "7-7-7" and rows[0]["memory_mb"] == "8.14"
    md_path, csv_path = write_table(t, tmp_path / "out")
    assert md_path.read_text() == md and csv_path.name == "table3.csv"
    with pytest.raises(InputError, match=r"measured\[0\]"):
        side_by_side("table3", [{"top1": 1.0}])


def test_table4_prints_flops_in_billions_and_derived_rows_beside_the_printed_ones():
    t = side_by_side("table4", [{"setting": "cells", "row": "it=1", "flops_m": 1500.0, "top1": 90.0}])
    assert "flops_m" not in t.columns and "flops_b" in t.columns
    labels = [(r.source, r.values["setting"], r.values["row"]) for r in t.rows]
    # printed it=1, then the released model's derived costs, then the measured row
    i = labels.index(("paper", "cells", "it=1"))
    assert labels[i + 1 : i + 3] == [("paper (derived)", "cells", "it=1"), ("measured", "cells", "it=1")]
    assert t.rows[i].values["flops_b"] == pytest.approx(1.8) and t.rows[i + 2].values["flops_b"] == 1.5
    md = render_markdown(t)
    assert "FLOPs (B)" in md and "| 1.80 |" in md


def test_table2_grid_is_the_papers_layout(tmp_path):
    from swnas.paper.runner import criterion_grid

    measured = [{"setting": "pls (smoke)", "row": "it=1", "top1": 55.5}]
    t = side_by_side("table2", measured)
    grid = criterion_grid(t)
    lines = grid.splitlines()
    assert lines[2] == "| Criterion | Source | it 1 | it 2 | it 3 | it 4 | it 5 |"
    assert lines[4:7] == [
        "| inf-FS | paper | 91.59 | 92.09 | 92.02 | 92.36 | 92.45 |",
        "| il-FS | paper | 91.94 | 92.06 | 92.10 | 92.08 | 92.52 |",
        "| PLS | paper | 92.03 | 92.38 | 92.62 | 92.53 | 92.58 |",
    ]
    assert lines[7] == "| PLS (smoke) | measured | 55.50 | n/a | n/a | n/a | n/a |"
