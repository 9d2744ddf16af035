"""``swnas paper``: a DIR's runs are never reused under other settings (dataset, data, seed, smoke,
recipe), neither through ``DIR/paper.json`` nor run by run (a search's config, a training's options)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import swnas.search as search_mod
from swnas.errors import InputError
from swnas.paper.runner import PaperSettings, run_table
from swnas.paper.runs import ensure_training
from test_paper_runner import _fake_toolkit_factory


@pytest.fixture
def fake(monkeypatch):
    calls = {"train": 0, "final": 0}
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", _fake_toolkit_factory(calls))
    return calls


def _paper(out: Path, *extra: str) -> list[str]:
    return ["paper", "table1", "--smoke", "--device", "cpu", "--out", str(out), "--quiet", *extra]


def test_cli_refuses_a_dir_made_with_another_dataset_or_seed(tmp_path, fake, capsys):
    from swnas.cli import main

    out = tmp_path / "P"
    assert main(_paper(out, "--dataset", "digits")) == 0
    trained = dict(fake)
    table = (out / "table1.md").read_text()
    capsys.readouterr()
    for flags, what in (
        (("--dataset", "cifar10"), "dataset: stored 'digits', asked 'cifar10'"),
        (("--dataset", "digits", "--seed", "5"), "seed: stored 0, asked 5"),
        (("--dataset", "digits", "--recipe", "fast"), "recipe: stored 'paper', asked 'fast'"),
    ):
        assert main(_paper(out, *flags)) == 2, flags
        err = capsys.readouterr().err
        assert what in err and "searches/table1-m0-1" in err and "another --out" in err, err
    assert fake == trained  # nothing trained, nothing read back under the new title
    assert (out / "table1.md").read_text() == table
    # the same settings read everything back
    assert main(_paper(out, "--dataset", "digits")) == 0 and fake == trained
    # a paper-scale table in a smoke DIR is refused too
    assert main(["paper", "table1", "--dataset", "digits", "--device", "cpu", "--out", str(out), "--quiet"]) == 2
    assert "smoke: stored True, asked False" in capsys.readouterr().err


def test_each_stored_search_is_checked_without_the_settings_file(tmp_path, fake):
    """A DIR without paper.json (made before it existed, or copied run by run): every search read back
    is compared with the one asked for, and the error names the run and the option."""
    st = PaperSettings(dataset="digits", out=tmp_path / "P", smoke=True, device="cpu", echo=None)
    run_table("table1", st)
    (st.out / "paper.json").unlink()
    other = PaperSettings(dataset="digits", out=st.out, smoke=True, device="cpu", echo=None, seed=3)
    with pytest.raises(InputError, match=r"the search searches/table1-m0-1 .*seed: stored 0, asked 3"):
        run_table("table1", other)
    # only where it runs may differ
    (st.out / "paper.json").unlink()
    elsewhere = PaperSettings(dataset="digits", out=st.out, smoke=True, device="cuda:0", echo=None)
    cfg = json.loads((st.out / "searches" / "table1-m0-2" / "search.json").read_text())["config"]
    assert cfg["device"] == "cpu"
    n = dict(fake)
    run_table("table1", elsewhere)  # read back, nothing trained on a device this machine lacks
    assert fake == n
    # a copied search of another m0 under this name is refused
    shutil.rmtree(st.out / "searches" / "table1-m0-1")
    shutil.copytree(st.out / "searches" / "table1-m0-2", st.out / "searches" / "table1-m0-1")
    with pytest.raises(InputError, match=r"table1-m0-1 .*m0: stored 2, asked 1"):
        run_table("table1", st)


def test_a_stored_training_of_other_settings_is_refused(tmp_path):
    from swnas.models import ArchSpec

    st = PaperSettings(dataset="digits", out=tmp_path / "P", smoke=True, device="cpu", echo=None)
    out = st.out / "baselines" / "ResNet20"
    out.mkdir(parents=True)
    spec = ArchSpec(module="basic", stages=[3, 3, 3])
    doc = {
        "dataset": "digits",
        "spec": spec.to_dict(),
        "stages": [3, 3, 3],
        "metrics": {"top1": 0.5},
        "options": {
            "data": None,
            "subset": 300,
            "recipe": "paper",
            "epochs": 2,
            "batch_size": 64,
            "lr": None,
            "seed": 0,
            "device": "cpu",
            "val_split": 0.0,
        },
    }
    (out / "train.json").write_text(json.dumps(doc))
    kw = dict(dataset="digits", data=None, subset=300, seed=0)
    assert ensure_training(st, out, "ResNet20", spec, **kw) == doc  # the same training: read back
    with pytest.raises(InputError, match=r"baselines/ResNet20 .*seed: stored 0, asked 1"):
        ensure_training(st, out, "ResNet20", spec, **dict(kw, seed=1))
    with pytest.raises(InputError, match=r"dataset: stored 'digits', asked 'cifar10'"):
        ensure_training(st, out, "ResNet20", spec, **dict(kw, dataset="cifar10"))
    with pytest.raises(InputError, match=r"stages: stored \[3, 3, 3\], asked \[5, 5, 5\]"):
        ensure_training(st, out, "ResNet20", ArchSpec(module="basic", stages=[5, 5, 5]), **kw)
    with pytest.raises(InputError, match=r"epochs: stored 2, asked \d+"):
        ensure_training(
            PaperSettings(dataset="digits", out=st.out, device="cpu", echo=None), out, "ResNet20", spec, **kw
        )


def test_baselines_hold_out_the_searches_validation_split(tmp_path, monkeypatch):
    """One split for every network of a table: a baseline trains on the searches' images."""
    import swnas.experiments.train_architecture as baseline_mod
    from swnas.paper.runs import ensure_baseline, training_row

    seen = {}

    def fake_train(**kw):
        seen.update(kw)
        return {"spec": kw["spec"].to_dict(), "metrics": {"top1": 0.5, "val_top1": 0.25, "params": 1000}}

    monkeypatch.setattr(baseline_mod, "train_architecture", fake_train)
    for smoke, split in ((True, 0.2), (False, 0.1)):
        st = PaperSettings(dataset="digits", out=tmp_path / f"P{smoke}", smoke=smoke, device="cpu", echo=None)
        _, res = ensure_baseline(st, "ResNet20", [3, 3, 3])
        assert seen["val_split"] == split == st.search_options()["val_split"]
        assert training_row("scratch", "ResNet20", res)["val_top1"] == pytest.approx(25.0)
