"""The README's way to get CIFAR-10 for the CLI works offline as written; a failed command leaves no stray .lock."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np

from swnas.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("#### Getting CIFAR-10")
    return text[start : text.index("Defaults follow the paper", start)]


class _FakeCIFAR10:
    """torchvision's CIFAR10 as the README uses it (``data`` uint8 NHWC, ``targets`` a list), offline."""

    calls: list = []

    def __init__(self, root, train=True, download=False):
        type(self).calls.append((root, train, download))
        n = 40 if train else 20
        rng = np.random.default_rng(0 if train else 1)
        self.data = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        self.targets = [int(i % 10) for i in range(n)]


def test_readme_npz_recipe_makes_a_file_the_cli_reads(tmp_path, monkeypatch, capsys):
    section = _readme_section()
    for key in ("x_train", "y_train", "x_test", "y_test", "uint8 NHWC", "cifar-10-batches-py"):
        assert key in section
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = "\n".join(line[2:] if line.startswith("  ") else line for line in code.splitlines())
    fake = types.ModuleType("torchvision.datasets")
    fake.CIFAR10 = _FakeCIFAR10
    monkeypatch.setitem(sys.modules, "torchvision.datasets", fake)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert _FakeCIFAR10.calls[-2:] == [("cifar10-tv", True, True), ("cifar10-tv", False, True)]
    with np.load(tmp_path / "cifar10.npz", allow_pickle=False) as z:
        assert z["x_train"].shape == (40, 32, 32, 3) and z["x_train"].dtype == np.uint8
    monkeypatch.delitem(sys.modules, "torchvision.datasets")
    rc = main(
        [
            "train",
            "--dataset",
            "cifar10",
            "--data",
            "cifar10.npz",
            "--stages",
            "1,1,1",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--out",
            "t",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "top-1" in out and (tmp_path / "t" / "model.pt").is_file()


def test_cifar_offline_without_data_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SWNAS_DATA_DIR", raising=False)
    rc = main(["train", "--dataset", "cifar10", "--stages", "1,1,1", "--out", str(tmp_path / "new" / "deep")])
    err = capsys.readouterr().err
    assert rc == 2 and "x_train, y_train, x_test, y_test; uint8 NHWC" in err and "torchvision" in err
    assert not (tmp_path / "new").exists()  # the directories it made are gone, .lock included


def test_failed_train_and_search_leave_no_stray_lock(tmp_path, capsys):
    rc = main(
        [
            "train",
            "--dataset",
            "digits",
            "--stages",
            "1,1,1",
            "--epochs",
            "1",
            "--lr",
            "1e30",
            "--out",
            str(tmp_path / "t"),
        ]
    )
    assert rc == 1 and "diverged" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()
    rc = main(
        [
            "search",
            "--dataset",
            "digits",
            "--iterations",
            "1",
            "--m0",
            "1",
            "--epochs",
            "1",
            "--lr",
            "1e30",
            "--out",
            str(tmp_path / "s"),
            "--quiet",
        ]
    )
    assert rc == 1 and "diverged" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    # a directory the user made stays, and so does anything in it
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    rc = main(
        [
            "train",
            "--dataset",
            "digits",
            "--stages",
            "1,1,1",
            "--epochs",
            "1",
            "--lr",
            "1e30",
            "--out",
            str(tmp_path / "mine"),
        ]
    )
    assert rc == 1 and (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_train_keeps_a_directory_holding_work(tmp_path):
    from swnas.experiments.train_architecture import _missing_ancestors, _remove_if_unused

    out = tmp_path / "a" / "b"
    made = _missing_ancestors(out)
    assert made == [out, tmp_path / "a"]
    (out / "training").mkdir(parents=True)
    (out / "training" / "last.pt").write_bytes(b"x")
    (out / ".lock").write_text("")
    _remove_if_unused(made)
    assert (out / "training" / "last.pt").is_file()  # an epoch checkpoint to continue from
    (out / "training" / "last.pt").unlink()
    _remove_if_unused(made)
    assert not (tmp_path / "a").exists()
