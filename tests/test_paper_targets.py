"""``swnas paper table6`` with both of the paper's targets in one command, Table III's time column and
``swnas paper imagenet`` (a tiny synthetic image folder at smoke scale), each beside the published values."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

import swnas.search as search_mod
from swnas.errors import InputError
from swnas.paper import imagenet as imagenet_mod
from swnas.paper.tables_4_to_6 import parse_target, targets_of
from swnas.paper.runner import PaperSettings, run_table


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def _tiny_targets(root: Path) -> tuple[Path, Path]:
    """A 6-class Tiny-ImageNet-shaped folder (train/<wnid>/images, val/images + val_annotations.txt)
    and a 6-class ImageNet32-shaped npz directory, both of 8 px images."""
    from PIL import Image

    rng = np.random.default_rng(0)
    tiny, i32 = root / "tiny", root / "i32"
    ann = []
    for c in range(6):
        d = tiny / "train" / f"n0{c}" / "images"
        d.mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(d / f"n0{c}_{i}.png")
        ann += [f"val_{c}_{i}.png\tn0{c}\t0\t0\t8\t8" for i in range(2)]
    (tiny / "val" / "images").mkdir(parents=True)
    for line in ann:
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tiny / "val" / "images" / line.split()[0])
    (tiny / "val" / "val_annotations.txt").write_text("\n".join(ann) + "\n")
    i32.mkdir()
    np.savez(
        i32 / "train_data_batch_1.npz",
        data=rng.integers(0, 255, (48, 192), dtype=np.uint8),
        labels=np.repeat(np.arange(1, 7), 8),
    )
    np.savez(
        i32 / "val_data.npz", data=rng.integers(0, 255, (12, 192), dtype=np.uint8), labels=np.repeat(np.arange(1, 7), 2)
    )
    return tiny, i32


# ------------------------------------------------------------------------------- Table VI
def test_targets_are_parsed_named_and_checked(tmp_path):
    assert parse_target("tinyimagenet=/d/tiny") == ("tinyimagenet", "/d/tiny")
    assert parse_target("ImageNet32=/x=y") == ("imagenet32", "/x=y")  # only the first '=' splits
    assert parse_target("digits") == ("digits", None)
    with pytest.raises(InputError, match="--target"):
        parse_target("=/x")
    st = PaperSettings(
        dataset="digits", out=tmp_path / "p", echo=None, targets=(("tinyimagenet", "/d/tiny"), ("imagenet32", "/d/i32"))
    )
    ts, notes = targets_of(st)
    assert [(t.label, t.dataset, t.data, t.input_size, t.seed) for t in ts] == [
        ("tinyimagenet", "imagefolder", "/d/tiny", 64, 0),
        ("imagenet32", "imagenet32", "/d/i32", None, 0),
    ]
    assert notes == []  # real targets: no smoke caveat
    for bad, msg in (((("mnist", None),), "unknown target"), ((("digits", None), ("digits", None)), "twice")):
        with pytest.raises(InputError, match=msg):
            targets_of(PaperSettings(dataset="digits", out=tmp_path / "p", echo=None, targets=bad))
    missing = PaperSettings(
        dataset="digits",
        out=tmp_path / "p",
        echo=None,
        device="cpu",
        targets=(("tinyimagenet", "/d/tiny"), ("imagenet32", str(tmp_path / "nope"))),
    )
    with pytest.raises(InputError, match="^target_data: .*tiny.*tinyimagenet"):
        run_table("table6", missing)
    assert not (tmp_path / "p").exists()  # refused before anything ran
    with pytest.raises(InputError, match="--inherit"):  # table6 runs the cell search now
        run_table("table6", PaperSettings(dataset="digits", out=tmp_path / "p", echo=None, smoke=True, inherit=True))


def test_table6_takes_each_searchs_last_candidate(tmp_path):
    """'residual' and 'cells' are the search's final network (A_n), not its first or its best."""
    from swnas.models import ArchSpec
    from swnas.paper.tables_4_to_6 import _final_candidate

    specs = tmp_path / "specs"
    specs.mkdir()
    nets = []
    for i, stages in enumerate(([2, 2, 2], [4, 2, 2], [4, 4, 2], [6, 4, 2])):
        (specs / f"{i}.json").write_text(ArchSpec(stages=stages).to_json())
        nets.append({"iteration": i // 2 + (i > 0), "stages": stages, "spec": f"specs/{i}.json"})
    state = {"networks": nets, "candidates": [1, 3], "best": 1}
    net, spec = _final_candidate(tmp_path, state)
    assert net is nets[3] and list(spec.stages) == [6, 4, 2]


def test_cli_takes_both_targets_in_one_command():
    from swnas.cli import build_parser

    ns = build_parser().parse_args(
        ["paper", "table6", "--out", "d", "--target", "tinyimagenet=/t", "--target", "imagenet32=/i"]
    )
    assert ns.target == ["tinyimagenet=/t", "imagenet32=/i"] and ns.dataset is None
    assert build_parser().parse_args(["paper", "imagenet", "--out", "d", "--smoke"]).table == "imagenet"


@pytest.mark.slow  # about a minute on 2 loaded cores: both smoke searches and 8 tiny trainings
def test_table6_smoke_both_targets_four_rows_top5(tmp_path):
    from swnas.cli import main

    tiny, i32 = _tiny_targets(tmp_path)
    out = tmp_path / "p"
    args = [
        "paper",
        "table6",
        "--dataset",
        "digits",
        "--smoke",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--quiet",
        "--target",
        f"tinyimagenet={tiny}",
        "--target",
        f"imagenet32={i32}",
    ]
    assert main(args) == 0
    rows = _rows(out / "table6.csv")
    paper = [(r["setting"], r["row"], r["top5"]) for r in rows if r["source"] == "paper"]
    assert paper[:4] == [
        ("tinyimagenet", "ResNet110", "69.94"),
        ("tinyimagenet", "residual", "72.34"),
        ("tinyimagenet", "NASNet241", "79.2"),
        ("tinyimagenet", "cells", "79.23"),
    ]
    measured = [r for r in rows if r["source"] == "measured"]
    assert [(r["setting"], r["row"]) for r in measured] == [
        (f"{t} (smoke)", row)
        for t in ("tinyimagenet", "imagenet32")
        for row in ("ResNet20", "residual", "NASNet62-w4", "cells")
    ]
    for r in measured:  # top-5 and top-1 of a 6-class target: top-5 >= top-1, both percentages
        assert 0.0 <= float(r["top1"]) <= float(r["top5"]) <= 100.0
    res = json.loads((out / "searches" / "scratch-pls" / "search.json").read_text())
    cells = json.loads((out / "searches" / "cells-pls" / "search.json").read_text())
    for name, state in (("residual", res), ("cells", cells)):
        last = state["networks"][state["candidates"][-1]]
        r = next(r for r in measured if r["row"] == name)
        assert r["stages"] == "-".join(str(s) for s in last["stages"])  # the search's last candidate
    t = json.loads((out / "retrain" / "tinyimagenet" / "ResNet20" / "train.json").read_text())
    assert (t["dataset"], t["spec"]["num_classes"], t["spec"]["input_size"]) == ("imagefolder", 6, 8)
    cell_final = json.loads((out / "retrain" / "imagenet32" / "cells-A1" / "train.json").read_text())
    assert cell_final["dataset"] == "imagenet32"
    # a stored training made on another target folder is refused, never reused under this name
    other = tmp_path / "other"
    other.mkdir()
    (other / "tiny").symlink_to(tiny, target_is_directory=True)
    st = PaperSettings(
        dataset="digits",
        out=out,
        smoke=True,
        device="cpu",
        echo=None,
        targets=(("tinyimagenet", str(other / "tiny")), ("imagenet32", str(i32))),
    )
    with pytest.raises(InputError, match="retrain/tinyimagenet/ResNet20 was made with other settings.*data"):
        run_table("table6", st)


# ------------------------------------------------------------------------------- Table III time
def test_table3_time_column_and_hours_per_iteration(tmp_path, monkeypatch):
    """Each row's training wall time in hours from its record, and each search's time per iteration
    beside the paper's 17 h (scratch) and 3 h (weight transfer)."""
    from swnas.models import ArchSpec
    from swnas.paper import runner
    from swnas.paper.published import TABLE3_HOURS_PER_ITERATION

    def factory(cfg, progress=True):
        from test_paper_runner import _fake_toolkit_factory

        tk = _fake_toolkit_factory({"train": 0, "final": 0})(cfg, progress)
        hours = 2.0 if cfg.transfer is None else 0.5

        def train(model, seed):
            return {"top1": 0.5, "top5": 0.9, "val_top1": 0.4, "seconds": hours * 3600, "epochs": 4}

        def final_train(model, seed, epochs, ckpt):
            return {"top1": 0.7, "top5": 0.95, "val_top1": 0.6, "seconds": 3600.0, "epochs": epochs}

        tk.train, tk.final_train = train, final_train
        return tk

    def baseline(st, label, stages, module="basic", spec=None):
        out = st.out / "baselines" / label
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.pt").write_bytes(b"")
        return out, {
            "spec": ArchSpec(stages=list(stages)).to_dict(),
            "metrics": {"params": 1000, "top1": 0.9, "train_seconds": 1800.0, "epochs": 300},
        }

    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", factory)
    monkeypatch.setattr(runner, "ensure_baseline", baseline)
    st = PaperSettings(dataset="digits", out=tmp_path / "p", device="cpu", echo=None)
    md, cs = run_table("table3", st)
    rows = _rows(cs)
    measured = {(r["setting"], r["row"]): r for r in rows if r["source"] == "measured"}
    assert float(measured[("scratch", "ResNet110")]["train_h"]) == pytest.approx(0.5)
    assert float(measured[("scratch", "it=5")]["train_h"]) == pytest.approx(2.0 + 1.0)  # search + final epochs
    assert float(measured[("transfer", "it=1")]["train_h"]) == pytest.approx(0.5 + 1.0)
    assert all(r["train_h"] == "" for r in rows if r["source"] == "paper")  # the paper prints none per row
    text = md.read_text()
    assert "| Training time (h) |" in text.splitlines()[2]  # the header
    # 11 networks of 2 h over 5 iterations; 11 of 0.5 h with weight transfer
    assert "| scratch | 17 | 4.4000 | searches/scratch-pls | 11 | 5 |" in text
    assert "| transfer | 3 | 1.1000 | searches/transfer-pls | 11 | 5 |" in text
    assert TABLE3_HOURS_PER_ITERATION == {"scratch": 17.0, "transfer": 3.0}
    assert "ICPR 2020, Section IV" in text and "## Time per iteration (hours)" in text


# ------------------------------------------------------------------------------- ImageNet
def test_imagenet_options_are_checked_before_anything_runs(tmp_path):
    out = tmp_path / "p"
    for st, msg in (
        (PaperSettings(dataset="imagefolder", out=out, echo=None), "^data: .*--data DIR"),
        (PaperSettings(dataset="cifar10", out=out, echo=None, smoke=True), "^--dataset"),
        (PaperSettings(dataset="imagefolder", out=out, echo=None, data=str(tmp_path / "none")), "not a directory"),
        (PaperSettings(dataset="imagefolder", out=out, echo=None, smoke=True, inherit=True), "--inherit"),
    ):
        with pytest.raises(InputError, match=msg):
            run_table("imagenet", st)
    assert not out.exists()
    # paper scale: bottleneck modules, delta 2, transfer from torchvision's ResNet-50 at 224 px, and
    # m0 + delta within the donor's 3-block first stage
    s = imagenet_mod.IMAGENET_SEARCH
    assert (s["module"], s["stages"], s["delta"], s["transfer"], s["input_size"]) == (
        "bottleneck",
        4,
        2,
        "torchvision:resnet50",
        224,
    )
    from swnas.training.torchvision_donor import DEPTHS

    assert s["m0"] + s["delta"] * s["iterations"] <= min(DEPTHS["resnet50"])


def test_imagenet_smoke_transfers_into_bottlenecks_beside_90_23(tmp_path):
    from swnas.cli import main

    out = tmp_path / "p"
    assert main(["paper", "imagenet", "--smoke", "--device", "cpu", "--out", str(out), "--quiet"]) == 0
    rows = _rows(out / "imagenet.csv")
    assert (rows[0]["source"], rows[0]["setting"], rows[0]["row"], rows[0]["top5"]) == (
        "paper",
        "imagenet",
        "final",
        "90.23",
    )
    measured = [r for r in rows if r["source"] == "measured"]
    assert [(r["setting"], r["row"]) for r in measured] == [
        ("imagenet (smoke)", "donor"),
        ("imagenet (smoke)", "final"),
    ]
    for r in measured:
        assert 0.0 <= float(r["top1"]) <= float(r["top5"]) <= 100.0
        assert float(r["train_h"]) > 0.0
    state = json.loads((out / "searches" / "imagenet-pls" / "search.json").read_text())
    cfg = state["config"]
    assert (cfg["dataset"], cfg["module"], cfg["stages"], cfg["m0"], cfg["delta"]) == (
        "imagefolder",
        "bottleneck",
        4,
        1,
        2,
    )
    assert cfg["transfer"].endswith("baselines/donor-bottleneck/model.pt")  # weights transferred from the donor
    assert cfg["data"].endswith(imagenet_mod.SMOKE_FOLDER)
    last = state["networks"][state["candidates"][-1]]
    assert float(measured[-1]["top5"]) == pytest.approx(100 * last["final"]["top5"])
    assert measured[-1]["stages"] == "-".join(str(s) for s in last["stages"])
    assert all(m <= 3 for m in last["stages"])  # never deeper than the donor
    text = (out / "imagenet.md").read_text()
    assert "ICPR 2020, Section IV" in text and "delta 2" in text and "m0 + delta <= 3" in text
    # read back: nothing is trained again
    before = {str(p): p.stat().st_mtime_ns for p in out.rglob("*.pt")}
    assert main(["paper", "imagenet", "--smoke", "--device", "cpu", "--out", str(out), "--quiet"]) == 0
    assert {str(p): p.stat().st_mtime_ns for p in out.rglob("*.pt")} == before
    # a stored search made with other settings is refused, not reused
    st = PaperSettings(dataset="imagefolder", out=out, smoke=True, device="cpu", echo=None)
    changed = dict(imagenet_mod.SMOKE_IMAGENET, delta=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(imagenet_mod, "SMOKE_IMAGENET", changed)
        with pytest.raises(InputError, match="searches/imagenet-pls was made with other settings.*delta"):
            run_table("imagenet", st)
    with pytest.raises(InputError, match="paper.json"):  # another seed: the DIR's settings differ
        run_table(
            "imagenet", PaperSettings(dataset="imagefolder", out=out, smoke=True, device="cpu", echo=None, seed=1)
        )


def test_imagenet_streams_the_folder_given_as_data(tmp_path, monkeypatch):
    """--data DIR: the folder is read through swnas.data.folder's streaming source (forced here for a
    tiny folder by lowering the threshold that ImageNet's size exceeds)."""
    from swnas.cli import main
    from swnas.data import folder

    opened = []
    real_open = folder.open_imagefolder

    def spy(path, **kw):
        opened.append((str(path), kw.get("input_size")))
        return real_open(path, **kw)

    monkeypatch.setattr(folder, "STREAM_ABOVE_BYTES", 0)
    monkeypatch.setattr(folder, "open_imagefolder", spy)
    data = imagenet_mod.write_smoke_folder(tmp_path / "images")
    out = tmp_path / "p"
    assert (
        main(["paper", "imagenet", "--smoke", "--data", str(data), "--device", "cpu", "--out", str(out), "--quiet"])
        == 0
    )
    assert opened and {p for p, _ in opened} == {str(data)} and {s for _, s in opened} == {32}
    assert not (out / imagenet_mod.SMOKE_FOLDER).exists()  # the given folder, no synthetic one
    cfg = json.loads((out / "searches" / "imagenet-pls" / "search.json").read_text())["config"]
    assert cfg["data"] == str(data)
    measured = [r for r in _rows(out / "imagenet.csv") if r["source"] == "measured"]
    assert [r["row"] for r in measured] == ["donor", "final"] and all(r["top5"] for r in measured)


def test_table6_paper_scale_pairs_each_row_with_the_papers(tmp_path, monkeypatch):
    """At paper scale the four measured rows of each target sit under the paper's row of the same
    target and network, and ResNet110 / NASNet241 are the real ones (searches and trainings faked)."""
    from test_paper_runner import _fake_toolkit_factory

    from swnas.paper import tables_4_to_6

    trained = []

    def fake_training(st, out, label, spec, *, dataset, data, subset, seed, val_split=0.0, input_size=None):
        trained.append((str(out.relative_to(st.out)), dataset, data, list(spec.stages), spec.module, input_size))
        return {"spec": spec.to_dict(), "metrics": {"params": 1000, "top1": 0.25, "top5": 0.5, "epochs": 300}}

    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", _fake_toolkit_factory({"train": 0, "final": 0}))
    monkeypatch.setattr(tables_4_to_6, "ensure_training", fake_training)
    tiny, i32 = tmp_path / "tiny", tmp_path / "i32"
    tiny.mkdir()
    i32.mkdir()
    st = PaperSettings(
        dataset="digits",
        out=tmp_path / "p",
        device="cpu",
        echo=None,
        targets=(("tinyimagenet", str(tiny)), ("imagenet32", str(i32))),
    )
    _, cs = run_table("table6", st)
    rows = _rows(cs)
    keys = [(r["source"], r["setting"], r["row"]) for r in rows]
    assert tables_4_to_6.TABLE6_ROWS == ("ResNet110", "residual", "NASNet241", "cells")  # the paper's order
    assert keys == [
        (s, t, n)
        for t in ("tinyimagenet", "imagenet32")
        for n in tables_4_to_6.TABLE6_ROWS
        for s in ("paper", "measured")
    ]
    assert all(r["top5"] == "50.0" and r["top1"] == "25.0" for r in rows if r["source"] == "measured")
    res = json.loads((st.out / "searches" / "scratch-pls" / "search.json").read_text())
    last = res["networks"][res["candidates"][-1]]
    assert last["iteration"] == 5  # the paper-scale search: the fifth candidate is Table VI's 'residual'
    assert trained[:4] == [
        ("retrain/tinyimagenet/ResNet110", "imagefolder", str(tiny), [18, 18, 18], "basic", 64),
        ("retrain/tinyimagenet/A5", "imagefolder", str(tiny), last["stages"], "basic", 64),
        ("retrain/tinyimagenet/NASNet241", "imagefolder", str(tiny), [6, 6, 6], "nasnet", 64),
        ("retrain/tinyimagenet/cells-A5", "imagefolder", str(tiny), trained[3][3], "basic", 64),
    ]
    assert [t[:3] for t in trained[4:]] == [
        (f"retrain/imagenet32/{n}", "imagenet32", str(i32)) for n in ("ResNet110", "A5", "NASNet241", "cells-A5")
    ]
