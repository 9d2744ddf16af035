"""``swnas paper TABLE --inherit``: the table's searches in inherit mode, under their own names, their
rows labelled so that none is matched to a published row, and the stored-settings check including it."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

import swnas.search as search_mod
from swnas.errors import InputError
from swnas.paper.published import PublishedRow
from swnas.paper.runner import PaperSettings, run_table
from swnas.paper.tables import side_by_side
from swnas.search import Toolkit


def _factory(calls: dict):
    """Fake networks (dicts); in inherit mode T grows from A and networks are fine-tuned."""

    def factory(cfg, progress=True):
        def build(stages, seed):
            return {"stages": list(stages)}

        def train(model, seed):
            calls["train"] += 1
            return {
                "top1": 0.5,
                "top5": 0.9,
                "val_top1": 0.01 * sum(model["stages"]),
                "seconds": 0.0,
                "epochs": 8,
                "images": 8000,
            }

        def finetune(model, seed, checkpoint_dir=None):
            calls["finetune"] += 1
            return {
                "top1": 0.55,
                "top5": 0.9,
                "val_top1": 0.01 * sum(model["stages"]),
                "seconds": 0.0,
                "epochs": 1,
                "images": 1000,
            }

        def grow(parent, stages, seed):
            calls["grow"] += 1
            return {"stages": list(stages)}

        def final_train(model, seed, epochs, ckpt):
            return {
                "top1": 0.6,
                "top5": 0.95,
                "val_top1": 0.02 * sum(model["stages"]),
                "seconds": 0.0,
                "epochs": epochs,
                "images": 1000 * epochs,
            }

        return Toolkit(
            build=build,
            train=train,
            score=lambda m: [float(s) for s in m["stages"]],
            measure=lambda m, s: {
                "depth": 1,
                "params": 1000 * sum(m["stages"]),
                "macs": 5000,
                "memory": 1,
                "peak_memory": 1,
                "latency": 0.5,
                "carbon": 0.0,
            },
            save=lambda m, p: Path(p).write_text(json.dumps(m)),
            load=lambda p: json.loads(Path(p).read_text()),
            spec=lambda m: {"module": "basic", "stages": m["stages"], "input_size": 8, "in_channels": 1},
            final_train=final_train,
            grow=grow if cfg.inherit else None,
            finetune=finetune if cfg.inherit else None,
        )

    return factory


@pytest.fixture
def calls(monkeypatch):
    c = {"train": 0, "finetune": 0, "grow": 0}
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", _factory(c))
    return c


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_table1_inherit_runs_its_own_searches_and_labels_its_rows(tmp_path, calls, capsys):
    from swnas.cli import main

    out = tmp_path / "P"
    argv = ["paper", "table1", "--smoke", "--dataset", "digits", "--device", "cpu", "--out", str(out), "--quiet"]
    assert main([*argv, "--inherit"]) == 0
    assert calls["grow"] == 6 and calls["finetune"] == 6  # per search: T1, F1, A1 grown from A0/T1 and fine-tuned
    assert calls["train"] == 2  # only each search's A0 trains from scratch
    for m0 in (1, 2):
        cfg = json.loads((out / "searches" / f"table1-m0-{m0}-inherit" / "search.json").read_text())["config"]
        assert cfg["inherit"] is True and cfg["m0"] == m0
    assert not (out / "table1.md").exists() and not (out / "searches" / "table1-m0-1").exists()
    md = (out / "table1-inherit.md").read_text()
    assert md.startswith("# Table I") and "inherit mode" in md.splitlines()[0]
    assert "never matched to a published row" in md and "table1-m0-1-inherit 0." in md  # the cost ratio
    rows = _rows(out / "table1-inherit.csv")
    measured = [r for r in rows if r["source"] == "measured"]
    assert [(r["setting"], r["row"]) for r in measured] == [
        ("m0 (inherit) (smoke)", "m0=1"),
        ("m0 (inherit) (smoke)", "m0=2"),
    ]
    # a published row of the same label is not paired with the inherit row
    t = side_by_side("table1", measured, published=[PublishedRow("table1", "m0=2", "m0", top1=91.0)])
    assert [r.source for r in t.rows] == ["paper", "measured", "measured"]
    assert t.rows[1].values["row"] == "m0=1"  # unpaired rows follow in their order, after the published one
    # the paper's protocol in the same DIR: its own searches, its own table; the inherit runs stay
    n = dict(calls)
    assert main(argv) == 0
    assert calls["train"] - n["train"] == 6 and calls["grow"] == n["grow"]  # A0, T1, A1 from scratch, twice
    assert [r["setting"] for r in _rows(out / "table1.csv") if r["source"] == "measured"] == ["m0 (smoke)"] * 2
    capsys.readouterr()
    # an inherit search stored under the protocol's name is refused, naming the option
    shutil.rmtree(out / "searches" / "table1-m0-1")
    shutil.copytree(out / "searches" / "table1-m0-1-inherit", out / "searches" / "table1-m0-1")
    assert main(argv) == 2
    assert "searches/table1-m0-1 " in capsys.readouterr().err
    st = PaperSettings(dataset="digits", out=out, smoke=True, device="cpu", echo=None)
    with pytest.raises(InputError, match=r"inherit: stored True, asked False"):
        run_table("table1", st)


@pytest.mark.parametrize("table", ["table4", "table5", "ensemble"])
def test_cell_tables_refuse_inherit_before_anything_runs(tmp_path, calls, table, capsys):
    from swnas.cli import main

    out = tmp_path / "P"
    assert (
        main(
            [
                "paper",
                table,
                "--smoke",
                "--dataset",
                "digits",
                "--device",
                "cpu",
                "--out",
                str(out),
                "--inherit",
                "--quiet",
            ]
        )
        == 2
    )
    assert "cells cannot grow by inheritance" in capsys.readouterr().err
    assert not out.exists() and calls == {"train": 0, "finetune": 0, "grow": 0}
