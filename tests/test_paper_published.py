"""Every printed value in ``swnas.paper.published`` pinned against the paper's figures
(``tests/data/published_tables.md``, a transcription of ICPR 2020's Tables I-VI and Section IV)."""

from __future__ import annotations

from pathlib import Path

import pytest

from swnas.paper.published import (
    ELSKEN_ENSEMBLE,
    IMAGENET_TOP5,
    PUBLISHED,
    TABLE3_HOURS_PER_ITERATION,
    TABLE6_TARGETS,
    published_rows,
)

DATA = Path(__file__).parent / "data" / "published_tables.md"


def _sections() -> dict[str, list[list[str]]]:
    """``## Name`` -> the body rows of its Markdown table (cells stripped)."""
    out: dict[str, list[list[str]]] = {}
    name = None
    for line in DATA.read_text().splitlines():
        if line.startswith("## "):
            name = line[3:].strip()
            out[name] = []
        elif name and line.startswith("|") and not line.startswith("|---"):
            out[name].append([c.strip() for c in line.strip("|").split("|")])
    return {k: v[1:] for k, v in out.items()}  # drop each header


def _num(cell: str) -> float | None:
    cell = cell.replace("about ", "").replace(",", "")
    return None if cell == "-" else float(cell)


def _paper(table: str) -> dict[tuple[str, str], object]:
    rows = [r for r in published_rows(table) if r.source == "paper"]
    keys = [(r.setting, r.row) for r in rows]
    assert len(keys) == len(set(keys)), keys  # one printed row per key
    return dict(zip(keys, rows))


S = _sections()


def test_table1_every_value():
    rows = _paper("table1")
    assert list(rows) == [("m0", f"m0={m}") for m in (2, 4, 6, 8, 10)]  # five rows, m0 = 10 included
    for m0, depth, params, flops, memory, acc in S["Table I"]:
        r = rows[("m0", f"m0={m0}")]
        assert (r.depth, r.params_m, r.flops_m, r.memory_mb, r.top1) == (
            int(depth),
            float(params),
            float(flops),
            float(memory),
            float(acc),
        )
        assert r.cite == "ICPR 2020, Table I"


def test_table2_every_value():
    rows = _paper("table2")
    names = {"inf-FS": "inffs", "il-FS": "ilfs", "PLS": "pls"}
    assert len(rows) == 15
    for crit, *accs in S["Table II"]:
        for k, a in enumerate(accs, 1):
            assert rows[(names[crit], f"it={k}")].top1 == float(a)
    # the released search's derived costs stay beside them, never in their place
    derived = [r for r in published_rows("table2") if r.derived]
    assert len(derived) == 5 and all(r.top1 is None and r.source == "released" for r in derived)


def test_table3_every_value_in_the_papers_order():
    rows = _paper("table3")
    order = []
    for arch, depth, params, flops, memory, ms, carbon, acc in S["Table III"]:
        if arch.startswith("Ours"):
            it = arch.split("(")[1].split(")")[0]
            key = ("transfer" if "transfer" in arch else "scratch", it)
        else:
            key = ("scratch", arch)
        order.append(key)
        r = rows[key]
        assert (r.depth, r.params_m, r.flops_m, r.memory_mb, r.latency_ms, r.carbon_kg, r.top1) == (
            int(depth),
            float(params),
            float(flops),
            float(memory),
            float(ms),
            float(carbon),
            float(acc),
        ), key
    assert list(rows) == order


def test_table4_every_value_flops_in_billions():
    rows = _paper("table4")
    order = []
    for arch, depth, params, flops_b, memory, acc in S["Table IV"]:
        key = ("cells", arch.split("(")[1].rstrip(")")) if arch.startswith("Ours") else ("uniform", arch)
        order.append(key)
        r = rows[key]
        assert (r.depth, r.params_m, r.flops_m / 1000, r.memory_mb, r.top1) == pytest.approx(
            (int(depth), float(params), float(flops_b), float(memory), float(acc))
        )
    assert list(rows) == order
    # NASNet241's 3.3 M is the paper's own Table IV (the derived Keras count is a separate row)
    assert rows[("uniform", "NASNet241")].params_m == 3.3


def test_table5_every_value():
    rows = _paper("table5")
    assert len(rows) == len(S["Table V"]) == 11
    for model, models, gpus, params, acc in S["Table V"]:
        key = ("ours", model[len("Ours (") : -1]) if model.startswith("Ours") else ("earlier work", model)
        r = rows[key]
        assert (r.evaluated_models, r.gpus, r.params_m, r.top1) == (
            None if models == "-" else int(_num(models)),
            None if gpus == "-" else int(gpus),
            _num(params),
            float(acc),
        ), key


def test_table6_every_value_is_top5():
    rows = _paper("table6")
    names = {
        "ResNet110": "ResNet110",
        "Ours (residual modules)": "residual",
        "NASNet241": "NASNet241",
        "Ours (cell modules)": "cells",
    }
    assert len(rows) == 8 and list(TABLE6_TARGETS) == ["tinyimagenet", "imagenet32"]
    for arch, tiny, i32 in S["Table VI"]:
        for target, v in zip(TABLE6_TARGETS, (tiny, i32)):
            r = rows[(target, names[arch])]
            assert r.top5 == float(v) and r.top1 is None


def test_text_figures():
    text = {k: float(v) for k, v in S["Text"]}
    assert IMAGENET_TOP5 == text["ImageNet top-5"]
    ens = published_rows("ensemble")[0]
    assert (ens.top1, ens.params_m) == (text["ensemble accuracy"], text["ensemble params (M)"])
    assert ELSKEN_ENSEMBLE == (text["Elsken ensemble accuracy"], text["Elsken ensemble params (M)"])
    assert TABLE3_HOURS_PER_ITERATION == {
        "scratch": text["Table III hours per iteration, scratch"],
        "transfer": text["Table III hours per iteration, weight transfer"],
    }
    (im,) = published_rows("imagenet")  # the ImageNet table's one printed value
    assert (im.setting, im.row, im.top5, im.top1, im.cite) == (
        "imagenet",
        "final",
        text["ImageNet top-5"],
        None,
        "ICPR 2020, Section IV",
    )


def test_every_printed_row_is_pinned():
    # the tests above cover every 'paper' row of every table: their counts add up
    counts = {
        "table1": 5,
        "table2": 15,
        "table3": 9,
        "table4": 6,
        "table5": 11,
        "table6": 8,
        "ensemble": 1,
        "imagenet": 1,
    }
    got: dict[str, int] = {}
    for r in PUBLISHED:
        if r.source == "paper":
            got[r.table] = got.get(r.table, 0) + 1
            assert r.cite.startswith("ICPR 2020, "), r
    assert got == counts
