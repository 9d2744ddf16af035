"""What a hostile but realistic user meets on the command line (docs/reliability.md).

Every test here drives ``swnas ...`` through :func:`swnas.cli.main` and checks the exit code, the
message and what is (not) on disk afterwards: options checked before any training, foreign
checkpoints refused, no file outside --out touched, one run per --out, no raw traceback.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import swnas.search as search_mod
import swnas.training.trainer as train_mod
from swnas.cli import main
from swnas.search import Toolkit
from swnas.records.atomic import RunLock, file_sha256


def run(argv, capsys):
    """main(argv) -> (exit code, stdout, stderr); argparse's SystemExit becomes its code."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


class Calls:
    def __init__(self):
        self.train = 0
        self.score = 0


def fake_factory(calls: Calls, fail_score: int | None = None, fail_train: int | None = None):
    """A ``default_toolkit`` stand-in (dict networks saved as JSON) that counts its calls."""
    from swnas.errors import InputError

    def train(m, seed):
        calls.train += 1
        if fail_train == calls.train:
            raise InputError("train: injected failure")
        return {"top1": 0.5 + 0.01 * sum(m["stages"]), "top5": 0.9, "seconds": 0.0, "epochs": 1}

    def score(m):
        calls.score += 1
        if fail_score == calls.score:
            raise InputError("reduce: injected failure while scoring")
        return [float(s) if i == 0 else -float(s) for i, s in enumerate(m["stages"])]

    def factory(cfg, progress=True):
        return Toolkit(
            build=lambda stages, seed: {"stages": list(stages), "seed": seed},
            train=train,
            score=score,
            measure=lambda m, s: {
                "depth": 2 * sum(m["stages"]) + 2,
                "params": sum(m["stages"]),
                "macs": 1,
                "memory": 1,
                "latency": 0.0,
                "carbon": 0.0,
            },
            save=lambda m, p: Path(p).write_text(json.dumps(m)),
            load=lambda p: json.loads(Path(p).read_text()),
            spec=lambda m: {"stages": m["stages"]},
        )

    return factory


SMALL = ["--dataset", "digits", "--iterations", "1", "--m0", "1", "--delta", "1", "--no-report", "--quiet"]
TINY_TRAIN = ["--dataset", "digits", "--subset", "200", "--epochs", "1", "--batch-size", "64", "--device", "cpu"]


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if the real trainer is ever called."""

    def boom(*a, **k):
        raise AssertionError("a network was trained although the options are invalid")

    monkeypatch.setattr(train_mod, "train", boom)


# ------------------------------------------------------------------ 1. options checked before training
BAD_OPTIONS = [
    (["--reduce", "grid:0"], "reduce: unknown reduction 'grid:0'"),
    (["--param", "n_components=999"], "n_components: 999 components need at least 999 features"),
    (["--criterion", "inffs", "--param", "alpha=5"], "alpha"),
    (["--param", "bogus=1"], "unknown parameter(s) bogus"),
    (["--criterion", "ilfs", "--backend", "foo"], "unknown backend 'foo'"),
    (["--recipe", "nope"], "recipe must be one of"),
    (["--device", "tpu"], "device:"),
    (["--data", "{tmp}"], "digits data set is bundled"),
    (["--lr", "1e308"], "does not fit in float32"),
]


@pytest.mark.parametrize("extra, needle", BAD_OPTIONS)
def test_bad_options_fail_before_any_network_trains(extra, needle, tmp_path, capsys, no_training):
    out = tmp_path / "s"
    code, _, err = run(["search", *SMALL, "--out", out, *[a.format(tmp=tmp_path) for a in extra]], capsys)
    assert code == 2 and needle in err, err
    assert not (out / "checkpoints").exists()


def test_backend_checked_for_streaming_criterion_before_training(tmp_path, capsys, no_training):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA (the backend must be unavailable)")
    code, _, err = run(["search", *SMALL, "--backend", "cuda", "--out", tmp_path / "s"], capsys)
    assert code == 2 and "backend 'cuda' is not available" in err
    code, _, err = run(["search", *SMALL, "--device", "cuda", "--out", tmp_path / "s"], capsys)
    assert code == 2 and "no CUDA device" in err


def test_resume_may_change_what_nothing_computed_depends_on(tmp_path, capsys, monkeypatch):
    calls = Calls()
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", fake_factory(calls, fail_score=1))
    out = tmp_path / "s"
    code, _, err = run(["search", *SMALL, "--out", out], capsys)
    assert code == 2 and "injected failure while scoring" in err and calls.train == 2
    # the reduction and the criterion were used by no scoring step yet: they may change
    code, _, err = run(
        ["search", "--resume", out, "--reduce", "gap", "--param", "n_components=1", "--no-report", "--quiet"], capsys
    )
    assert code == 0, err
    state = json.loads((out / "search.json").read_text())
    assert state["config"]["reduce"] == "gap" and state["config"]["score_params"]["n_components"] == 1
    assert calls.train == 3 and state["status"] == "complete"
    # more iterations may be asked for; the training options may not change any more
    code, _, err = run(["search", "--resume", out, "--iterations", "2", "--no-report", "--quiet"], capsys)
    assert code == 0, err and json.loads((out / "search.json").read_text())["config"]["iterations"] == 2
    code, _, err = run(["search", "--resume", out, "--m0", "2", "--reduce", "gmp"], capsys)
    assert code == 2 and "--m0 2 (stored 1): 5 network(s) were trained with it" in err
    assert "--reduce 'gmp' (stored 'gap'): 2 scoring step(s) used it" in err


def test_failed_first_network_does_not_block_the_same_out(tmp_path, capsys, monkeypatch):
    calls = Calls()
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", fake_factory(calls, fail_train=1))
    out = tmp_path / "s"
    code, _, err = run(["search", *SMALL, "--out", out], capsys)
    assert code == 2 and "injected failure" in err
    code, _, err = run(["search", *SMALL, "--out", out], capsys)
    assert code == 0, err
    assert json.loads((out / "search.json").read_text())["status"] == "complete"


# ------------------------------------------------------------------ 2. foreign checkpoints refused
def real_toolkit_factory(width: int):
    """Real (untrained) tiny ResNets; ``width`` makes runs with different weights and parameter counts."""
    import torch

    from swnas import models as M

    def build(stages, seed):
        torch.manual_seed(seed)
        return M.build(
            M.ArchSpec(
                module="basic", stages=list(stages), widths=[width] * 3, num_classes=10, input_size=8, in_channels=1
            )
        )

    def meas(model, seconds):
        params = sum(p.numel() for p in model.parameters())
        return {
            "depth": model.spec.depth,
            "params": params,
            "macs": params,
            "memory": params,
            "latency": 0.0,
            "carbon": 0.0,
        }

    def factory(cfg, progress=True):
        return Toolkit(
            build=build,
            train=lambda m, s: {"top1": 0.1, "top5": 0.5, "seconds": 0.0, "epochs": 0},
            score=lambda m: [float(len(s)) * (1 if i == 0 else -1) for i, s in enumerate(m.stages)],
            measure=meas,
            save=M.save_model,
            load=search_mod.load_model,
            spec=lambda m: m.spec.to_dict(),
        )

    return factory


@pytest.fixture
def two_real_searches(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    outs = []
    for w in (4, 6):
        monkeypatch.setattr(search_mod.toolkit, "default_toolkit", real_toolkit_factory(w))
        out = tmp_path / f"w{w}"
        code, _, err = run(["search", *SMALL, "--out", out], capsys)
        assert code == 0, err
        outs.append(out)
    return outs


def test_swapped_checkpoint_is_refused_everywhere(two_real_searches, tmp_path, capsys):
    mine, other = two_real_searches
    shutil.copy(other / "checkpoints" / "02-A1.pt", mine / "checkpoints" / "02-A1.pt")
    for argv in (
        ["export", mine, "--to", tmp_path / "m.pt"],
        ["ensemble", mine],
        ["search", "--resume", mine, "--no-report", "--quiet"],
    ):
        code, _, err = run(argv, capsys)
        assert code == 2 and "02-A1.pt" in err and "SHA-256" in err, (argv, err)
    assert not (tmp_path / "m.pt").exists()
    # a missing or null recorded hash never skips the check
    for value in ("pop", None):
        state = json.loads((mine / "search.json").read_text())
        for net in state["networks"]:
            net.pop("checkpoint_sha256") if value == "pop" else net.update(checkpoint_sha256=value)
        (mine / "search.json").write_text(json.dumps(state))
        code, _, err = run(["export", mine, "--to", tmp_path / "m.pt"], capsys)
        assert code == 2 and "not the SHA-256 of the checkpoint" in err, err
        assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("path", ["/etc/passwd", "../w6/checkpoints/00-A0.pt"])
def test_checkpoint_path_outside_out_is_refused(path, two_real_searches, tmp_path, capsys):
    mine = two_real_searches[0]
    state = json.loads((mine / "search.json").read_text())
    state["networks"][2]["checkpoint"] = path
    (mine / "search.json").write_text(json.dumps(state))
    code, _, err = run(["export", mine, "--to", tmp_path / "m.pt"], capsys)
    assert code == 2 and "points outside" in err


def test_crafted_checkpoint_asking_for_a_million_channels(two_real_searches, tmp_path, capsys):
    import torch

    mine = two_real_searches[0]
    ck = mine / "checkpoints" / "02-A1.pt"
    payload = torch.load(ck, weights_only=True)
    spec = json.loads(payload["spec"])
    spec["widths"] = [10**6] * 3
    payload["spec"] = json.dumps(spec)
    torch.save(payload, ck)
    state = json.loads((mine / "search.json").read_text())
    state["networks"][2]["checkpoint_sha256"] = file_sha256(ck)  # a consistent forgery
    (mine / "search.json").write_text(json.dumps(state))
    code, _, err = run(["export", mine, "--to", tmp_path / "m.pt"], capsys)
    assert code == 2 and "spec does not match its weights" in err and "02-A1.pt" in err


# ------------------------------------------------------------------ 3. no links followed out of --out
def test_symlinked_log_is_refused_and_untouched(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", fake_factory(Calls()))
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    out = tmp_path / "s"
    out.mkdir()
    (out / "search.log").symlink_to(victim)
    code, _, err = run(["search", *SMALL, "--out", out], capsys)
    assert code == 2 and "symbolic link" in err
    assert victim.read_text() == "keep me\n"


def test_symlinked_report_dir_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", fake_factory(Calls()))
    out = tmp_path / "s"
    assert run(["search", *SMALL, "--out", out], capsys)[0] == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "report").symlink_to(elsewhere, target_is_directory=True)
    code, _, err = run(["report", out, "--no-ensemble", "--quiet"], capsys)
    assert code == 2 and "symbolic link" in err
    assert list(elsewhere.iterdir()) == []


# ------------------------------------------------------------------ 4. one run per --out
def test_second_run_refused_while_the_first_holds_the_lock(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", fake_factory(Calls(), fail_score=1))
    out = tmp_path / "s"
    assert run(["search", *SMALL, "--out", out], capsys)[0] == 2  # stopped at its first scoring step
    before = (out / "search.json").read_text()
    with RunLock(out):  # stands for the first run, still going
        code, _, err = run(["search", "--resume", out, "--no-report", "--quiet"], capsys)
        assert code == 2 and f"in use by pid {os.getpid()}" in err
        code, _, err = run(["train", "--stages", "1,1,1", *TINY_TRAIN, "--out", out, "--quiet"], capsys)
        assert code == 2 and "holds a search" in err  # refused before the lock: a search's --out is not train's
    assert (out / "search.json").read_text() == before
    assert run(["search", "--resume", out, "--no-report", "--quiet"], capsys)[0] == 0  # free again


# ------------------------------------------------------------------ 5. swnas train --out
def test_train_refuses_to_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "t"
    argv = ["train", "--stages", "1,1,1", *TINY_TRAIN, "--out", out, "--quiet"]
    assert run(argv, capsys)[0] == 0
    first = (out / "train.json").read_text()
    code, _, err = run([*argv, "--seed", "1"], capsys)
    assert code == 2 and "already holds model.pt and train.json" in err and "--force" in err
    assert (out / "train.json").read_text() == first
    assert run([*argv, "--seed", "1", "--force"], capsys)[0] == 0
    assert json.loads((out / "train.json").read_text())["options"]["seed"] == 1


@pytest.mark.parametrize("command", ["train", "search"])
def test_out_that_is_a_file_fails_before_training(command, tmp_path, capsys, no_training):
    f = tmp_path / "file"
    f.write_text("x")
    argv = ["train", "--stages", "1,1,1", *TINY_TRAIN] if command == "train" else ["search", *SMALL]
    code, _, err = run([*argv, "--out", f], capsys)
    assert code == 2 and "exists and is not a directory" in err


# ------------------------------------------------------------------ 7. no raw tracebacks
def test_diverging_training_names_the_epoch_and_suggests_a_lower_lr(tmp_path, capsys):
    code, _, err = run(["train", "--stages", "1,1,1", *TINY_TRAIN, "--lr", "1e6", "--out", tmp_path / "t"], capsys)
    assert code == 1 and "training diverged" in err and "at epoch 1" in err and "--lr 100000" in err


def test_full_disk_is_a_message(tmp_path, capsys, monkeypatch):
    import torch

    def full(*a, **k):
        raise RuntimeError(
            "[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0; "
            "PytorchStreamWriter failed writing file data/0: file write failed"
        )

    monkeypatch.setattr(torch, "save", full)
    out = tmp_path / "t"
    code, _, err = run(["train", "--stages", "1,1,1", *TINY_TRAIN, "--out", out, "--quiet"], capsys)
    # the first write is the epoch checkpoint OUT/training/last.pt (swnas train resumes from it)
    assert code == 2 and "cannot write" in err and "training/last.pt" in err and "unexpected pos" in err
    assert not out.exists()  # no temp file left behind, and no stray .lock: it made OUT and wrote nothing there


def test_export_to_a_directory(two_real_searches, tmp_path, capsys):
    code, _, err = run(["export", two_real_searches[0], "--to", tmp_path], capsys)
    assert code == 2 and "is a directory" in err


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda s: s.pop("iterations"), "lacks 'iterations'"),
        (lambda s: s["candidates"].append(99), "candidates[1] = 99"),
        (lambda s: s["networks"][0].pop("stages"), "networks[0]: lacks 'stages'"),
        (lambda s: s["iterations"][0].update(T=0), "'T' = 0 is not the index of a trained T"),
        (lambda s: s.update(final="x"), "'final' = 'x'"),
    ],
)
def test_hand_edited_state_is_a_message(edit, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", fake_factory(Calls()))
    out = tmp_path / "s"
    assert run(["search", *SMALL, "--out", out], capsys)[0] == 0
    state = json.loads((out / "search.json").read_text())
    edit(state)
    (out / "search.json").write_text(json.dumps(state))
    for argv in (
        ["report", out, "--no-ensemble", "--quiet"],
        ["export", out, "--to", tmp_path / "m.pt"],
        ["search", "--resume", out, "--quiet", "--no-report"],
    ):
        code, _, err = run(argv, capsys)
        assert code == 2 and needle in err, (argv, err)


# ------------------------------------------------------------------ 10. hygiene
def test_temp_files_of_killed_writes_are_cleaned_and_modes_agree(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", fake_factory(Calls(), fail_score=1))
    out = tmp_path / "s"
    assert run(["search", *SMALL, "--out", out], capsys)[0] == 2
    left = [
        out / ".search.json.x1.swnas.tmp",
        out / "checkpoints" / ".02-A1.pt.x2.swnas.tmp",
        out / "specs" / ".j.swnas.tmp",
    ]
    for p in left:
        p.write_text("half a file")
    users = [out / "notes.tmp", out / ".notes.tmp", out / "checkpoints" / "mine.tmp"]  # not swnas's own
    for p in users:
        p.write_text("keep me")
    assert run(["search", "--resume", out, "--quiet", "--no-report"], capsys)[0] == 0
    assert not any(p.exists() for p in left)
    assert all(p.read_text() == "keep me" for p in users)
    modes = {
        p.name: p.stat().st_mode & 0o777
        for p in (out / "search.json", out / "search.log", out / "checkpoints" / "00-A0.pt")
    }
    assert len(set(modes.values())) == 1, modes


def test_directory_that_is_no_dataset_is_not_downloaded_into(tmp_path, capsys, no_training):
    empty = tmp_path / "mydata"
    empty.mkdir()
    code, _, err = run(
        [
            "search",
            "--dataset",
            "cifar10",
            "--data",
            empty,
            "--iterations",
            "1",
            "--out",
            tmp_path / "s",
            "--quiet",
            "--no-report",
        ],
        capsys,
    )
    assert code == 2 and "without a CIFAR-10 data set" in err
    assert list(empty.iterdir()) == []


@pytest.mark.parametrize(
    "to, flags, needle",
    [
        ("m.onnx", ["--onnx"], "--onnx would write its file over the checkpoint"),
        ("m.torchscript.pt", ["--torchscript"], "--torchscript would write its file over the checkpoint"),
    ],
)
def test_export_extra_files_never_replace_the_checkpoint(to, flags, needle, two_real_searches, tmp_path, capsys):
    code, _, err = run(["export", two_real_searches[0], "--to", tmp_path / to, *flags], capsys)
    assert code == 2 and needle in err
    assert not (tmp_path / to).exists()


def test_torchscript_name_has_one_suffix(two_real_searches, tmp_path, capsys):
    code, out, err = run(["export", two_real_searches[0], "--to", tmp_path / "m.pt", "--torchscript"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("m.")) == ["m.pt", "m.torchscript.pt"]
