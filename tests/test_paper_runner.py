"""``swnas paper TABLE``: runs under --out, reuse on a second call, tables beside the published rows."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

import swnas.search as search_mod
from swnas.errors import InputError
from swnas.paper.runner import PaperSettings, run_table
from swnas.search import Toolkit


def _fake_toolkit_factory(calls):
    def factory(cfg, progress=True):
        def build(stages, seed):
            return {"stages": list(stages)}

        def train(model, seed):
            calls["train"] += 1
            return {
                "top1": 0.5,
                "top5": 0.9,
                "val_top1": 0.1 * len(model["stages"]) + 0.01 * sum(model["stages"]),
                "seconds": 0.0,
                "epochs": 1,
            }

        def final_train(model, seed, epochs, ckpt):
            calls["final"] += 1
            return {
                "top1": 0.6,
                "top5": 0.95,
                "val_top1": 0.2 + 0.01 * sum(model["stages"]),
                "seconds": 0.0,
                "epochs": epochs,
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
        )

    return factory


@pytest.mark.slow  # about a minute on 2 loaded cores: three reports with charts
def test_table2_runs_three_searches_and_reuses_them(tmp_path, monkeypatch):
    calls = {"train": 0, "final": 0}
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", _fake_toolkit_factory(calls))
    st = PaperSettings(dataset="digits", out=tmp_path / "p", smoke=True, device="cpu", echo=None)
    md, cs = run_table("table2", st)
    assert calls == {"train": 9, "final": 3}  # 3 criteria x (A0, T1, A1) and one final training each
    text = md.read_text()
    assert text.startswith("# Table II") and "smoke scale" in text
    rows = list(csv.DictReader(io.StringIO(cs.read_text())))
    measured = [r for r in rows if r["source"] == "measured"]
    assert [r["setting"] for r in measured] == ["pls (smoke)", "inffs (smoke)", "ilfs (smoke)"]
    assert all(r["row"] == "it=1" and r["stages"] == "2-2-2" and r["note"] == "best on validation" for r in measured)
    assert rows[-3:] == measured  # smoke rows are never paired: after every published row
    assert float(measured[0]["top1"]) == pytest.approx(50.0)  # as the search trained it (the paper's 200 epochs)
    assert float(measured[0]["final_top1"]) == pytest.approx(60.0)  # after the final epochs
    assert "| inf-FS | paper | 91.59 |" in text and "| PLS (smoke) | measured | 50.00 |" in text
    for crit in ("pls", "inffs", "ilfs"):
        assert (tmp_path / "p" / "searches" / f"scratch-{crit}" / "report" / "stage_depths.png").is_file()
    run_table("table2", st)  # a second call reads everything back
    assert calls == {"train": 9, "final": 3}
    with pytest.raises(InputError, match="table"):
        run_table("table9", st)


@pytest.mark.slow
def test_table1_smoke_on_digits(tmp_path, capsys):
    """A real smoke table (two one-iteration searches on 300 digits) through the command line."""
    from swnas.cli import main

    out = tmp_path / "t1"
    assert (
        main(["paper", "table1", "--dataset", "digits", "--smoke", "--device", "cpu", "--out", str(out), "--quiet"])
        == 0
    )
    rows = [r for r in csv.DictReader(io.StringIO((out / "table1.csv").read_text())) if r["source"] == "measured"]
    assert [r["row"] for r in rows] == ["m0=1", "m0=2"]
    for r in rows:
        assert 0.0 <= float(r["top1"]) <= 100.0 and 0.0 <= float(r["val_top1"]) <= 100.0
    assert "wrote" in capsys.readouterr().out


def test_paper_scale_costs():
    from swnas.paper.runner import table_images, table_hours
    from swnas.training.recipes import estimate_training_hours

    # a paper search: 11 networks x 200 epochs + 5 candidates x 100 final epochs on 45,000 images
    assert table_images("table2") == 3 * (11 * 200 + 5 * 100) * 45_000
    # baselines train on the searches' 45,000 images (one split for every network of a table)
    assert table_images("table3") == 3 * 300 * 45_000 + (11 * 200 + 5 * 100) * 45_000 + (11 * 50 + 5 * 100) * 45_000
    assert table_images("table1") == 5 * (3 * 200 + 100) * 45_000  # m0 = 2, 4, 6, 8, 10
    assert table_hours("table1", 10_000.0) == pytest.approx(table_images("table1") / 10_000 / 3600)
    assert table_hours("table2", 1000.0) == pytest.approx(3 * estimate_training_hours(1000.0, train_images=45_000))
    # the cell search (n = 5): 11 networks x 200 epochs + 5 candidates x 100; NASNet169/205/241 x 300 epochs
    cells = (11 * 200 + 5 * 100) * 45_000
    assert table_images("table4") == 3 * 300 * 45_000 + cells
    # both searches, then ResNet110, NASNet241 and the two searches' last candidates for 300 epochs on
    # Tiny ImageNet (100,000 training images) and on ImageNet 32x32 (1,281,167)
    assert table_images("table6") == (11 * 200 + 5 * 100) * 45_000 + cells + 4 * 300 * (100_000 + 1_281_167)
    # ImageNet: A0, T1, A1 fine-tuned 50 epochs from ResNet-50 and A1's 25 final epochs, 90% of 1,281,167
    assert table_images("imagenet") == (3 * 50 + 25) * 1_153_050
    assert table_images("ensemble") == (11 * 200 + 5 * 100) * 45_000 + cells
    assert table_images("table5") == table_images("ensemble")
    for t in ("table1", "table2", "table3", "table4", "table5", "table6", "ensemble", "imagenet"):
        assert table_hours(t, 5000.0) == pytest.approx(table_images(t) / 5000.0 / 3600)
    with pytest.raises(InputError, match="^table"):
        table_images("table7")


def test_table1_columns_200_epochs_memory_carbon_and_smoke_labels(tmp_path, monkeypatch):
    """Table I: five m0 rows at paper scale, top-1 as the search trained it (the paper's 200 epochs)
    with the final epochs' beside it, memory in MB (2^20 bytes), carbon including the final epochs,
    and smoke rows never paired with a published row."""
    calls = {"train": 0, "final": 0}

    def factory(cfg, progress=True):
        tk = _fake_toolkit_factory(calls)(cfg, progress)

        def train(model, seed):
            calls["train"] += 1
            return {"top1": 0.5, "top5": 0.9, "val_top1": 0.4, "seconds": 2.0, "epochs": 4}

        def final_train(model, seed, epochs, ckpt):
            calls["final"] += 1
            return {"top1": 0.7, "top5": 0.95, "val_top1": 0.6, "seconds": 1.0, "epochs": epochs}

        tk.train, tk.final_train = train, final_train
        tk.measure = lambda m, s: {
            "depth": 1,
            "params": 1000,
            "macs": 5000,
            "memory": 3 * 2**20,
            "peak_memory": 1,
            "latency": 0.5,
            "carbon": 0.3,
        }
        return tk

    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", factory)
    st = PaperSettings(dataset="digits", out=tmp_path / "p", device="cpu", echo=None)
    md, cs = run_table("table1", st)
    rows = list(csv.DictReader(io.StringIO(cs.read_text())))
    assert [(r["source"], r["row"]) for r in rows] == [
        (s, f"m0={m}") for m in (2, 4, 6, 8, 10) for s in ("paper", "measured")
    ]
    paper, meas = rows[-2], rows[-1]
    assert (paper["top1"], paper["memory_mb"], paper["depth"]) == ("92.12", "12.34", "67")
    assert float(meas["top1"]) == pytest.approx(50.0) and float(meas["final_top1"]) == pytest.approx(70.0)
    assert float(meas["val_top1"]) == pytest.approx(40.0) and float(meas["final_val_top1"]) == pytest.approx(60.0)
    assert float(meas["memory_mb"]) == pytest.approx(3.0)
    assert float(meas["carbon_kg"]) == pytest.approx(0.3 * (2.0 + 1.0) / 2.0)  # the final epochs counted
    assert "200 epochs" in md.read_text()
    # smoke: the same table's rows are labelled and never paired
    sm = PaperSettings(dataset="digits", out=tmp_path / "s", smoke=True, device="cpu", echo=None)
    _, cs = run_table("table1", sm)
    rows = list(csv.DictReader(io.StringIO(cs.read_text())))
    assert [r["source"] for r in rows] == ["paper"] * 5 + ["measured"] * 2
    assert [(r["setting"], r["row"]) for r in rows[5:]] == [("m0 (smoke)", "m0=1"), ("m0 (smoke)", "m0=2")]
