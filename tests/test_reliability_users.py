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
from swnas.state import RunLock
from test_reliability import SMALL, TINY_TRAIN, Calls, fake_factory, run


def snapshot(d: Path) -> dict:
    """Every file under ``d`` with its bytes (the lock file's holder line aside)."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()
            and p.name != RunLock.NAME}


@pytest.fixture
def stopped_search(tmp_path, capsys, monkeypatch):
    """A search stopped at its first scoring step (two networks trained), resumable."""
    monkeypatch.setattr(search_mod, "default_toolkit", fake_factory(Calls(), fail_score=1))
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
        for argv in (["search", "--resume", out, "--no-report", "--quiet"],
                     ["search", "--resume", out, "--no-report", "--quiet", "--track", "jsonl"],
                     ["search", *SMALL, "--out", out, "--track", "jsonl"]):
            code, _, err = run(argv, capsys)
            assert code == 2 and "in use by pid" in err, (argv, err)
            assert snapshot(out) == before, argv


def test_refused_search_never_removes_a_directory_made_meanwhile(tmp_path, capsys, monkeypatch):
    """The race: B looks (no --out yet), A creates it and takes the lock, B's lock is refused."""
    monkeypatch.setattr(search_mod, "default_toolkit", fake_factory(Calls()))
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
TORCH_FULL = ("[enforce fail at inline_container.cc:626] . unexpected pos 3456 vs 3350")


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

    monkeypatch.setattr(search_mod, "default_toolkit", with_full_disk)
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

    import swnas.state as state_mod

    monkeypatch.setattr(search_mod, "default_toolkit", fake_factory(Calls()))
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

    monkeypatch.setattr(search_mod, "default_toolkit", real_toolkit_factory(4))
    out = tmp_path / "s"
    assert run(["search", *SMALL, "--out", out], capsys)[0] == 0
    to = tmp_path / "m.pt"
    assert run(["export", out, "--to", to], capsys)[0] == 0
    before = to.read_bytes()

    def full(obj, f, *a, **k):
        Path(f).write_bytes(b"PK half")
        raise RuntimeError(TORCH_FULL)

    monkeypatch.setattr(torch, "save", full)
    code, _, err = run(["export", out, "--to", to], capsys)
    assert code == 2 and f"cannot write {to}" in err and "unexpected pos" in err, err
    assert to.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "s"]
