"""A search that survives what users do: concurrent runs, full disks, hostile paths and files,
resource bombs, the documented recovery after divergence (docs/reliability.md).

Each test fails on the code before its fix; the fakes from ``test_reliability`` keep them fast.
"""

from __future__ import annotations

import json
import os
import pathlib
from pathlib import Path

import pytest

import swnas.search as search_mod
from swnas.records.atomic import RunLock
from test_reliability import SMALL, TINY_TRAIN, Calls, fake_factory, run


def snapshot(d: Path) -> dict:
    """Every file under ``d`` with its bytes (the lock file's holder line aside)."""
    return {
        str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file() and p.name != RunLock.NAME
    }


@pytest.fixture
def stopped_search(tmp_path, capsys, monkeypatch):
    """A search stopped at its first scoring step (two networks trained), resumable."""
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", fake_factory(Calls(), fail_score=1))
    out = tmp_path / "s"
    assert run(["search", *SMALL, "--out", out], capsys)[0] == 2
    return out


# ------------------------------------------------------------------ 1. a refused run touches nothing
def test_refused_runs_never_write_or_delete_in_the_locked_directory(stopped_search, capsys, monkeypatch):
    out = stopped_search
    (out / "config.yaml").write_text("# the first run's options\n")
    before = snapshot(out)
    with RunLock(out):  # the first run, still going
        # a concurrent --resume (also with --track) and a fresh search into the same --out
        for argv in (
            ["search", "--resume", out, "--no-report", "--quiet"],
            ["search", "--resume", out, "--no-report", "--quiet", "--track", "jsonl"],
            ["search", *SMALL, "--out", out, "--track", "jsonl"],
        ):
            code, _, err = run(argv, capsys)
            assert code == 2 and "in use by pid" in err, (argv, err)
            assert snapshot(out) == before, argv


def test_refused_search_never_removes_a_directory_made_meanwhile(tmp_path, capsys, monkeypatch):
    """The race: B looks (no --out yet), A creates it and takes the lock, B's lock is refused."""
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", fake_factory(Calls()))
    out = tmp_path / "s"
    out.mkdir()
    (out / "search.json").write_text(json.dumps({"networks": []}))  # A has just started
    (out / "config.yaml").write_text("# A's options\n")
    (out / "search.log").write_text("A is loading its data\n")
    before = snapshot(out)
    real_exists = pathlib.Path.exists

    def exists(self, *a, **k):  # B's look happened before A made the directory
        return False if str(self) == str(out) else real_exists(self, *a, **k)

    with RunLock(out):
        monkeypatch.setattr(pathlib.Path, "exists", exists)
        code, _, err = run(["search", *SMALL, "--out", out], capsys)
        monkeypatch.setattr(pathlib.Path, "exists", real_exists)
        assert code == 2 and "in use by pid" in err, err
        assert out.is_dir() and snapshot(out) == before
        assert (out / RunLock.NAME).exists()  # the holder's lock file is still the one it holds


# ------------------------------------------------------------------ 2. disk full
TORCH_FULL = "[enforce fail at inline_container.cc:626] . unexpected pos 3456 vs 3350"


def test_disk_full_while_saving_a_checkpoint_is_a_message_and_resumes(tmp_path, capsys, monkeypatch):
    calls = Calls()
    factory = fake_factory(calls)
    full = {"on": True}

    def with_full_disk(cfg, progress=True):
        tk = factory(cfg, progress)
        save = tk.save

        def save_or_fail(m, p):
            Path(p).write_text("half a checkpoint")
            if full["on"] and calls.train == 2:
                raise RuntimeError(TORCH_FULL)
            save(m, p)

        tk.save = save_or_fail
        return tk

    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", with_full_disk)
    out = tmp_path / "s"
    code, _, err = run(["search", *SMALL, "--out", out], capsys)
    assert code == 2 and f"cannot write {out / 'checkpoints' / '01-T1.pt'}" in err, err
    assert "no space left" in err and f"swnas search --resume {out}" in err
    state = json.loads((out / "search.json").read_text())
    assert [n["index"] for n in state["networks"]] == [0]  # the earlier state is intact
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    full["on"] = False
    assert run(["search", "--resume", out, "--no-report", "--quiet"], capsys)[0] == 0


def test_disk_full_while_writing_the_state_is_a_message(tmp_path, capsys, monkeypatch):
    import errno

    import swnas.records.atomic as state_mod

    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", fake_factory(Calls()))
    out = tmp_path / "s"
    real_fsync, seen = os.fsync, []

    def fsync(fd):  # the file system reports ENOSPC when the delayed blocks are allocated
        name = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else ""
        if ".search.json." in name:
            seen.append(name)
            if len(seen) == 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(state_mod.os, "fsync", fsync)
    code, _, err = run(["search", *SMALL, "--out", out], capsys)
    if not seen:
        pytest.skip("needs /proc/self/fd to tell the state's writes apart")
    assert code == 2 and f"cannot write {out / 'search.json'}: No space left on device" in err, err
    assert json.loads((out / "search.json").read_text())["networks"]  # the previous complete state


def test_disk_full_during_export_keeps_the_earlier_file(tmp_path, capsys, monkeypatch):
    import torch

    from test_reliability import real_toolkit_factory

    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", real_toolkit_factory(4))
    out = tmp_path / "s"
    assert run(["search", *SMALL, "--out", out], capsys)[0] == 0
    to = tmp_path / "m.pt"
    assert run(["export", out, "--to", to], capsys)[0] == 0
    before = to.read_bytes()

    def full(obj, f, *a, **k):
        Path(f).write_bytes(b"PK half")
        raise RuntimeError(TORCH_FULL)

    monkeypatch.setattr(torch, "save", full)
    code, _, err = run(["export", out, "--to", to, "--force"], capsys)
    assert code == 2 and f"cannot write {to}" in err and "unexpected pos" in err, err
    assert to.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "s"]


# ------------------------------------------------------------------ 3. only what swnas owns
@pytest.mark.parametrize("where", ["/", "/etc", "~"])
def test_dangerous_out_is_refused(where, tmp_path, capsys, monkeypatch, no_training_anywhere):
    def guard(self):  # should the check regress, the test still writes nothing in / or /etc
        raise AssertionError(f"would lock and write in {self.path.parent}")

    monkeypatch.setattr(RunLock, "acquire", guard)
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    target = os.path.expanduser(where)
    for argv in (["search", *SMALL, "--out", target], ["train", "--stages", "1,1,1", *TINY_TRAIN, "--out", target]):
        code, _, err = run(argv, capsys)
        assert code == 2 and "give a directory of the run's own" in err, (argv, err)


@pytest.fixture
def no_training_anywhere(monkeypatch):
    """Nothing may be trained or written (the real trainer and the search's toolkit both fail)."""
    import swnas.training.trainer as train_mod

    def boom(*a, **k):
        raise AssertionError("trained although --out is refused")

    monkeypatch.setattr(train_mod, "train", boom)
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", boom)


@pytest.mark.parametrize("entry", ["track.jsonl", "tensorboard", "training", "final"])
def test_links_in_out_are_refused_before_training(entry, tmp_path, capsys, no_training_anywhere):
    victim = tmp_path / "victim"
    victim.mkdir()
    out = tmp_path / "s"
    out.mkdir()
    (out / entry).symlink_to(victim, target_is_directory=True)
    code, _, err = run(["search", *SMALL, "--out", out, "--track", "jsonl"], capsys)
    assert code == 2 and "symbolic link" in err and entry in err, err
    assert list(victim.iterdir()) == []


def test_link_inside_training_is_refused_on_resume(stopped_search, tmp_path, capsys, monkeypatch):
    out = stopped_search
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    (out / "training").mkdir()
    (out / "training" / "02-A1").symlink_to(victim, target_is_directory=True)
    code, _, err = run(["search", "--resume", out, "--no-report", "--quiet"], capsys)
    assert code == 2 and "symbolic link" in err, err
    assert sorted(p.name for p in victim.iterdir()) == ["keep.txt"]


def test_train_in_a_killed_search_keeps_its_training_dir(stopped_search, capsys, no_training_anywhere):
    out = stopped_search
    (out / "training" / "02-A1").mkdir(parents=True)
    (out / "training" / "02-A1" / "last.pt").write_bytes(b"epoch 7 of a long network")
    code, _, err = run(["train", "--stages", "1,1,1", *TINY_TRAIN, "--out", out, "--quiet"], capsys)
    assert code == 2 and "holds a search" in err and "baselines" in err, err
    assert (out / "training" / "02-A1" / "last.pt").read_bytes() == b"epoch 7 of a long network"


def test_finished_network_removes_only_its_own_files(tmp_path):
    from swnas.training import resume

    w = resume.network_workdir(tmp_path, "03-T2")
    w.mkdir(parents=True)
    (w / "last.pt").write_text("ck")
    (w / ".last.pt.abc123.swnas.tmp").write_text("half")
    (w / "notes.txt").write_text("mine")
    resume.finish_network(w)
    assert sorted(p.name for p in w.iterdir()) == ["notes.txt"]
    (w / "notes.txt").unlink()
    resume.finish_network(w)
    assert not (tmp_path / "training").exists()


def test_report_file_in_out_is_found_before_training(tmp_path, capsys, no_training_anywhere):
    out = tmp_path / "s"
    out.mkdir()
    (out / "report").write_text("my report")
    code, _, err = run(["search", *SMALL, "--out", out], capsys)
    assert code == 2 and "report is a file" in err, err
    assert (out / "report").read_text() == "my report"


@pytest.fixture
def exported(tmp_path, capsys, monkeypatch):
    from test_reliability import real_toolkit_factory

    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", real_toolkit_factory(4))
    out = tmp_path / "s"
    assert run(["search", *SMALL, "--out", out], capsys)[0] == 0
    return out


def test_export_never_overwrites_without_force(exported, tmp_path, capsys):
    out = exported
    to = tmp_path / "mine.pt"
    to.write_text("a file of the user's")
    code, _, err = run(["export", out, "--to", to], capsys)
    assert code == 2 and "exists; give --force" in err
    assert to.read_text() == "a file of the user's"
    # a search's own file is never replaced, not even with --force
    state = (out / "search.json").read_bytes()
    for target in (out / "search.json", out / "checkpoints" / "00-A0.pt", out / "specs" / "new.pt"):
        code, _, err = run(["export", out, "--to", target, "--force"], capsys)
        assert code == 2 and "is one of the files of the run" in err, (target, err)
    assert (out / "search.json").read_bytes() == state and not (out / "specs" / "new.pt").exists()
    # leftovers of a killed export to the same name are removed; other files are not
    (tmp_path / ".mine.pt.k1ll3d.swnas.tmp").write_text("half")
    (tmp_path / ".mine.pt.notes").write_text("mine")
    assert run(["export", out, "--to", to, "--force"], capsys)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mine.pt.notes", "mine.pt", "s"]


def test_export_refuses_a_device_file(exported, capsys):
    if not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null here")
    code, _, err = run(["export", exported, "--to", "/dev/null", "--force"], capsys)
    assert code == 2 and "not a regular file" in err, err


# ------------------------------------------------------------------ 4. --track mlflow stays inside --out
class FakeMlflow:
    """Records what swnas asks of MLflow (the package need not be installed)."""

    def __init__(self):
        self.calls, self.env_at_start = [], {}

    def set_tracking_uri(self, uri):
        self.calls.append(("set_tracking_uri", uri))

    def get_experiment_by_name(self, name):
        self.calls.append(("get_experiment_by_name", name))

    def create_experiment(self, name, artifact_location=None):
        self.calls.append(("create_experiment", name, artifact_location))
        return "1"

    def start_run(self, run_name=None, experiment_id=None):
        self.env_at_start = {k: os.environ.get(k) for k in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")}
        self.calls.append(("start_run", run_name, experiment_id))

    def log_params(self, d):
        pass

    def log_metrics(self, d, step=None):
        pass

    def end_run(self):
        self.calls.append(("end_run",))


@pytest.mark.parametrize("user_uri", [None, "http://tracking.example:5000"])
def test_mlflow_tracks_under_out_without_telemetry(user_uri, tmp_path, capsys, monkeypatch):
    import sys

    fake = FakeMlflow()
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    for k in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(k, raising=False)
    if user_uri:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", user_uri)
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", fake_factory(Calls()))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "s"
    assert run(["search", *SMALL, "--out", out, "--track", "mlflow"], capsys)[0] == 0
    assert fake.env_at_start == {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    names = [c[0] for c in fake.calls]
    if user_uri:  # the user's server, as configured
        assert "set_tracking_uri" not in names and ("start_run", "s", None) in fake.calls
    else:
        assert ("set_tracking_uri", f"sqlite:///{out / 'mlflow.db'}") in fake.calls
        assert ("create_experiment", "swnas", (out / "mlflow-artifacts").as_uri()) in fake.calls
        assert ("start_run", "s", "1") in fake.calls
    assert list(cwd.iterdir()) == []


def test_mlflow_settings_respect_the_users_choices():
    from swnas.records.tracking import mlflow_settings

    st = mlflow_settings("/runs/x", {"DO_NOT_TRACK": "0"})
    assert st["env"] == {"MLFLOW_DISABLE_TELEMETRY": "true"}  # the user's DO_NOT_TRACK=0 stays
    assert st["tracking_uri"] == "sqlite:////runs/x/mlflow.db"
    assert mlflow_settings("/runs/x", {"MLFLOW_TRACKING_URI": "file:/m"})["tracking_uri"] is None


# ------------------------------------------------------------------ 5. resource bounds
BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    + "criterion: *i\n"
)


@pytest.mark.parametrize(
    "name, text, needle",
    [
        ("bomb.yaml", BOMB, "uses a YAML anchor or alias (line 1"),
        ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("big.yaml", "# padding\n" * 200_000, "bytes; a run's options fit in"),
    ],
)
def test_hostile_config_is_refused_quickly_and_briefly(name, text, needle, tmp_path, capsys, no_training_anywhere):
    import time

    cfg = tmp_path / name
    cfg.write_text(text)
    t0 = time.perf_counter()
    code, _, err = run(["search", "--config", cfg, "--out", tmp_path / "s"], capsys)
    assert code == 2 and needle in err, err[:500]
    assert time.perf_counter() - t0 < 10 and len(err) < 1000  # nothing expanded, nothing echoed
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--m0", "1000000"], "3 stages of 1000001 modules, too large to build"),
        (["--width", "1000000"], "channels wide"),
        (["--stages", "100"], "channels wide"),
        (["--module", "nasnet", "--width", "5000"], "GiB of float32 weights"),
        (["--iterations", "10000", "--delta", "1000"], "too large to build"),
    ],
)
def test_oversized_search_is_refused_before_anything_is_built(
    argv, needle, tmp_path, capsys, monkeypatch, no_training_anywhere
):

    only_on_meta(monkeypatch)
    code, _, err = run(["search", *SMALL, *argv, "--out", tmp_path / "s"], capsys)
    assert code == 2 and needle in err, err
    assert not (tmp_path / "s").exists()


def only_on_meta(monkeypatch, limit: int = 1 << 12) -> None:
    """Should a size check regress, fail instead of allocating: wide networks build only on ``meta``."""
    import torch

    from swnas import models as M

    real = M.build

    def build(spec):
        if torch.empty(0).device.type != "meta" and max(spec.stage_widths) > limit:
            raise AssertionError("a network too large to build was built outside the meta device")
        return real(spec)

    monkeypatch.setattr(M, "build", build)


def test_oversized_train_is_refused(tmp_path, capsys, no_training_anywhere):
    code, _, err = run(["train", "--stages", "5000,5000,5000", *TINY_TRAIN, "--out", tmp_path / "t"], capsys)
    assert code == 2 and "15000 in all" in err
    spec = tmp_path / "wide.json"
    spec.write_text(json.dumps({"module": "basic", "stages": [1, 1, 1], "widths": [10**6] * 3}))
    code, _, err = run(["train", "--spec", spec, *TINY_TRAIN, "--out", tmp_path / "t"], capsys)
    assert code == 2 and "--spec: a stage 1000000 channels wide" in err
    assert not (tmp_path / "t").exists()


def test_crafted_spec_in_a_comparison_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", fake_factory(Calls()))
    dirs = [tmp_path / "a", tmp_path / "b"]
    for d in dirs:
        assert run(["search", *SMALL, "--out", d], capsys)[0] == 0
    spec = dirs[1] / "specs" / "02-A1.json"
    spec.write_text(json.dumps({"module": "basic", "stages": [1, 1, 1], "widths": [2**15, 2**15, 2**15]}))
    only_on_meta(monkeypatch)
    code, _, err = run(["report", *dirs, "--quiet"], capsys)
    assert code == 2 and "02-A1.json" in err and "GiB of float32 weights" in err, err


# ------------------------------------------------------------------ 6. the documented recovery after divergence
REAL = [
    "--dataset",
    "digits",
    "--subset",
    "200",
    "--epochs",
    "1",
    "--batch-size",
    "64",
    "--device",
    "cpu",
    "--iterations",
    "1",
    "--m0",
    "1",
    "--delta",
    "1",
    "--final-epochs",
    "0",
    "--no-report",
    "--quiet",
]


@pytest.fixture
def diverged_first_network(tmp_path, capsys, monkeypatch):
    """A real search whose first network 'diverged' after its epoch checkpoint was written
    (training/00-A0/last.pt made with --lr 0.5, nothing recorded in search.json)."""
    from swnas.search.toolkit import default_toolkit

    def diverging(cfg, progress=True):
        tk = default_toolkit(cfg, progress=progress)

        def measure(model, seconds):
            raise FloatingPointError("loss became nan at epoch 2")

        tk.measure = measure
        return tk

    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", diverging)
    out = tmp_path / "s"
    code, _, err = run(["search", *REAL, "--lr", "0.5", "--out", out], capsys)
    assert code == 1 and "training diverged" in err and "--lr 0.05" in err, err
    assert (out / "training" / "00-A0" / "last.pt").is_file()
    assert json.loads((out / "search.json").read_text())["networks"] == []
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", default_toolkit)
    return out


@pytest.mark.parametrize("how", ["resume", "fresh"])
def test_restart_after_divergence_with_a_lower_lr(how, diverged_first_network, capsys):
    out = diverged_first_network
    argv = (
        ["search", "--resume", out, "--lr", "0.05", "--no-report", "--quiet"]
        if how == "resume"
        else ["search", *REAL, "--lr", "0.05", "--out", out]
    )
    code, _, err = run(argv, capsys)
    assert code == 0, err
    assert "trains from its first epoch" in err and "checkpoint_dir" not in err
    state = json.loads((out / "search.json").read_text())
    assert state["config"]["lr"] == 0.05 and state["status"] == "complete" and len(state["networks"]) == 3
    assert not (out / "training").exists()


def test_stale_checkpoint_message_is_the_trainers(tmp_path):
    """resume._stale recognises swnas.training.trainer's refusal of a checkpoint made with other settings."""
    import torch

    from swnas import models as M
    from swnas.training import resume
    from swnas.data import load_dataset
    from swnas.errors import InputError
    from swnas.training.trainer import train

    ds = load_dataset("digits", subset=100, seed=0)
    model = M.build(M.ArchSpec(stages=[1, 1, 1], num_classes=10, input_size=8, in_channels=1, widths=[4, 4, 4]))
    train(model, ds, epochs=1, batch_size=50, lr=0.1, device="cpu", seed=0, progress=False, checkpoint_dir=tmp_path)
    torch.manual_seed(0)
    with pytest.raises(InputError) as exc:
        train(
            model, ds, epochs=1, batch_size=50, lr=0.01, device="cpu", seed=0, progress=False, checkpoint_dir=tmp_path
        )
    assert resume._stale(exc.value) and not resume._stale(InputError("checkpoint 'x' is corrupt"))


def test_corrupt_epoch_checkpoint_says_what_to_remove(stopped_search, capsys):
    out = stopped_search
    ck = out / "training" / "02-A1" / "last.pt"
    ck.parent.mkdir(parents=True)
    ck.write_bytes(b"PK\x03\x04 truncated")
    code, _, err = run(["search", "--resume", out, "--no-report", "--quiet"], capsys)
    assert code == 2 and f"remove {ck} to train this network from its first epoch" in err, err
    assert "weights_only" not in err


# ------------------------------------------------------------------ 7. crafted files are messages, not tracebacks
CRAFTED = [
    (lambda s: s["networks"][2]["metrics"].update(top1="high"), "metrics.top1 must be a number or null"),
    (lambda s: s["networks"][2]["metrics"].update(params=[1]), "metrics.params must be a number or null"),
    (lambda s: s["networks"][2]["metrics"].update(params=10**400), "metrics.params must be a number or null"),
    (lambda s: s["networks"][2].update(history="x"), "'history' must be a list of epochs"),
    (lambda s: s["networks"][2].update(history=["x"]), "'history[0]' must be an object"),
    (lambda s: s["iterations"][0].update(comparisons=[{"stage": "x"}]), "'stage' must be a stage number 1..3"),
    (lambda s: s["iterations"][0].update(comparisons=[None]), "comparisons[0]: expected an object"),
    (lambda s: s["iterations"][0]["comparisons"][0].update(score_A="big"), "'score_A' must be a number or null"),
    (lambda s: s["networks"][2].update(stages=[10**30, 1, 1]), "holds more than 10000 modules"),
    (lambda s: s["networks"][2].update(final="x"), "'final' must be an object"),
    (lambda s: s["networks"][2].update(final={"epochs": "x", "checkpoint": "c"}), "final.epochs must be a number"),
    (lambda s: s.update(environment="x"), "'environment' must be an object"),
    (lambda s: s["networks"][0].update(seed=10**30), "'seed' = 1000000000000000000000000000000 is out of range"),
    (
        lambda s: s.update(format="swnas-search/2"),
        "has format swnas-search/2, but this version of swnas reads swnas-search/1",
    ),
]


@pytest.mark.parametrize("edit, needle", CRAFTED)
def test_crafted_state_fields_are_messages(edit, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", fake_factory(Calls()))
    good, out = tmp_path / "good", tmp_path / "s"
    for d in (good, out):
        assert run(["search", *SMALL, "--out", d], capsys)[0] == 0
    state = json.loads((out / "search.json").read_text())
    edit(state)
    (out / "search.json").write_text(json.dumps(state))
    for argv in (
        ["report", out, "--no-ensemble", "--quiet", "--html"],
        ["report", out, good, "--quiet"],
        ["export", out, "--to", tmp_path / "m.pt"],
        ["search", "--resume", out, "--quiet", "--no-report"],
    ):
        code, _, err = run(argv, capsys)
        assert code == 2 and needle in err and len(err) < 1000, (argv, err)


@pytest.mark.parametrize(
    "line, needle",
    [
        ("out: [1, 2]", "out must be a directory path, got [1, 2]"),
        ("score_params: [1, 2]", "score_params: expected a mapping"),
        ("html: 3", "html must be true or false"),
        ("log_level: 5", "log_level must be a name"),
        ("data: [1]", "data: expected a name or path"),
        ("reduce: {a: 1}", "reduce: expected a name or path"),
        ("stop_early: 'yes'", "stop_early: expected true or false"),
    ],
)
def test_config_values_of_the_wrong_type_are_messages(
    line, needle, tmp_path, capsys, monkeypatch, no_training_anywhere
):
    monkeypatch.chdir(tmp_path)  # the default --out, runs/search, would be here
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"dataset: digits\niterations: 1\n{line}\n")
    code, _, err = run(["search", "--config", cfg, "--quiet"], capsys)
    assert code == 2 and needle in err, err


# ------------------------------------------------------------------ 8. smaller findings
class Gadget:
    """A pickled object that weights_only=True refuses (its loading would call print)."""

    def __reduce__(self):
        return (print, ("code ran",))


def test_malicious_checkpoint_is_refused_without_torchs_advice(tmp_path, capsys):
    import torch

    from swnas.errors import InputError
    from swnas.models import load
    from swnas.training.trainer import load_checkpoint

    path = tmp_path / "evil.pt"
    torch.save({"format": "swnas-model-v1", "x": Gadget()}, path)
    for reader in (load, load_checkpoint):
        with pytest.raises(InputError) as exc:
            reader(path)
        msg = str(exc.value)
        assert "swnas never loads" in msg and "weights_only" not in msg, msg
    assert "code ran" not in capsys.readouterr().out


def test_a_validation_split_leaving_few_training_images_warns(tmp_path, capsys):
    from swnas.data import load_dataset
    from swnas.search import SearchConfig
    from swnas.search.toolkit import warn_small_training_split

    import logging

    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger = logging.getLogger("swnas.search")
    logger.addHandler(handler)
    try:
        ds = load_dataset("digits", seed=0, val_split=0.9999)
        cfg = SearchConfig(dataset="digits", val_split=0.9999)
        assert warn_small_training_split(cfg, len(ds.y_train), ds.num_classes)
    finally:
        logger.removeHandler(handler)
    assert any("--val-split 0.9999 leaves" in m for m in seen), seen
    assert not warn_small_training_split(SearchConfig(dataset="digits"), 1617, 10)
    assert not warn_small_training_split(SearchConfig(dataset="digits", val_split=0.0), 10, 10)
