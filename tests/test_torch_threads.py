"""``--threads`` for search and train: the default (1 for small inputs on the CPU), the flag, the record."""

from __future__ import annotations

import json

import pytest

from swnas.cli import main
from swnas.search import SearchConfig, resume_config
from swnas.training.threads import apply_threads, default_threads

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_default_is_one_thread_for_small_inputs_on_the_cpu():
    assert default_threads("digits", None, "cpu") == 1
    assert default_threads("cifar10", None, "cpu") == 1 and default_threads("imagenet32", None, "cpu") == 1
    assert default_threads("imagefolder", None, "cpu") is None  # 224 px by default: torch's threads
    assert default_threads("imagefolder", 32, "cpu") == 1 and default_threads("imagefolder", 64, "cpu") is None
    assert default_threads("cifar10", None, "cuda") is None  # a GPU: the CPU only feeds it


def test_apply_threads_sets_and_says_how():
    torch.set_num_threads(2)
    assert apply_threads(None, "digits", device="cpu") == (1, "default: 1 for inputs of at most 32 px on the CPU")
    assert torch.get_num_threads() == 1
    assert apply_threads(2, "digits", device="cpu") == (2, "--threads")
    assert torch.get_num_threads() == 2
    torch.set_num_threads(2)
    assert apply_threads(None, "imagefolder", device="cpu")[0] == 2  # left as torch has it


def test_search_records_threads_and_resume_may_change_them(tmp_path, capsys, monkeypatch):
    import swnas.search as search_mod
    from test_report_content import _toolkit

    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", lambda *a, **k: _toolkit())
    out = tmp_path / "s"
    torch.set_num_threads(2)
    assert (
        main(
            [
                "search",
                "--dataset",
                "digits",
                "--iterations",
                "1",
                "--m0",
                "1",
                "--delta",
                "1",
                "--threads",
                "2",
                "--out",
                str(out),
                "--quiet",
                "--no-report",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    state = json.loads((out / "search.json").read_text())
    assert state["config"]["threads"] == 2
    assert state["environment"]["threads"] == 2 and state["environment"]["threads_setting"] == "--threads"
    # another thread count only changes reduction order, as another machine would: resume accepts it
    assert resume_config(out, {"threads": 1}).threads == 1
    out2 = tmp_path / "d"
    assert (
        main(
            [
                "search",
                "--dataset",
                "digits",
                "--iterations",
                "1",
                "--m0",
                "1",
                "--delta",
                "1",
                "--out",
                str(out2),
                "--quiet",
                "--no-report",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    env = json.loads((out2 / "search.json").read_text())["environment"]
    assert env["threads"] == 1 and env["threads_setting"].startswith("default: 1")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:  # argparse: a positive integer
        main(["search", "--threads", "0", "--out", str(tmp_path / "z")])
    assert exc.value.code == 2 and "--threads: expected a positive integer" in capsys.readouterr().err
    with pytest.raises(Exception, match="threads"):
        SearchConfig(threads=0).resolved()


def _train_json(out, *extra: str) -> dict:
    """``swnas train`` of a tiny digits network into ``out`` (exit 0), then its train.json."""
    args = ["train", "--dataset", "digits", "--stages", "1,1,1", "--epochs", "1", "--subset", "200"]
    assert main([*args, "--device", "cpu", *extra, "--out", str(out), "--quiet"]) == 0
    return json.loads((out / "train.json").read_text())


def test_train_applies_and_records_threads(tmp_path, capsys):
    torch.set_num_threads(2)
    doc = _train_json(tmp_path / "t")
    assert doc["environment"]["threads"] == 1 and torch.get_num_threads() == 1
    doc = _train_json(tmp_path / "u", "--threads", "2")
    assert doc["environment"] == {"threads": 2, "threads_setting": "--threads"}
