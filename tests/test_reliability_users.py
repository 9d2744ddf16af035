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
