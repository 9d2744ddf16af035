"""Fault injection: a search killed at any of its steps, or inside a state or checkpoint write, resumes
to exactly the state of an uninterrupted run, with valid JSON on disk at every kill and no temporary
file left behind. (A real kill -9 of a tiny digits search is in test_search.py; the longer randomized
loop is scripts/kill_loop.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import swnas.records.atomic as state_mod
from swnas.search import SearchConfig, Toolkit, comparable_state, load_state, run_search


class Kill(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing on the way catches it."""


class Injector:
    """Counts events of each kind and raises :class:`Kill` at the chosen one."""

    def __init__(self, at: tuple[str, int] | None):
        self.at = at
        self.seen: dict[str, int] = {}

    def hit(self, kind: str) -> None:
        self.seen[kind] = self.seen.get(kind, 0) + 1
        if self.at == (kind, self.seen[kind]):
            raise Kill(f"{kind} #{self.seen[kind]}")


def toolkit(inj: Injector) -> Toolkit:
    def train(m, seed):
        inj.hit("train")
        m["trained"] = True
        return {"top1": 0.5 + 0.01 * sum(m["stages"]) - 0.001 * (seed % 3), "top5": 0.9, "seconds": 0.0, "epochs": 1}

    def score(m):
        inj.hit("score")
        assert m["trained"]
        # stage 1 of the deeper network always wins, stage 2 until it has 3 modules
        return [
            float(s) if i == 0 else (float(s) if s <= 3 and i == 1 else -float(s)) for i, s in enumerate(m["stages"])
        ]

    def save(m, p):
        text = json.dumps(m)
        with open(p, "w") as fh:
            fh.write(text[: len(text) // 2])
            fh.flush()
            inj.hit("checkpoint-write")  # killed with half the checkpoint written
            fh.write(text[len(text) // 2 :])

    return Toolkit(
        build=lambda stages, seed: {"stages": list(stages), "seed": seed},
        train=train,
        score=score,
        measure=lambda m, s: {
            "depth": sum(m["stages"]),
            "params": 10 * sum(m["stages"]),
            "macs": 1,
            "memory": 1,
            "peak_memory": 1,
            "latency": 0.0,
            "carbon": 0.0,
        },
        save=save,
        load=lambda p: json.loads(Path(p).read_text()),
        spec=lambda m: {"stages": m["stages"]},
    )


CFG = SearchConfig(iterations=3, stages=3, m0=1, delta=1, dataset="digits")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "s"
    run_search(CFG, out, toolkit=toolkit(Injector(None)), echo=None)
    return comparable_state(load_state(out))


def _inject_state_writes(monkeypatch, inj: Injector) -> None:
    """Kill inside the state file's atomic write: mid-file (at fsync) or between write and rename."""
    real_fsync, real_replace = state_mod.os.fsync, state_mod.os.replace

    def fsync(fd):
        inj.hit("state-fsync")
        return real_fsync(fd)

    def replace(src, dst):
        if str(dst).endswith("search.json"):
            inj.hit("state-rename")
        return real_replace(src, dst)

    monkeypatch.setattr(state_mod.os, "fsync", fsync)
    monkeypatch.setattr(state_mod.os, "replace", replace)


POINTS = (
    [("train", k) for k in (1, 2, 4, 7)]
    + [("score", k) for k in (1, 2, 5)]
    + [("checkpoint-write", k) for k in (1, 3, 6)]
    + [("state-fsync", k) for k in (1, 2, 8, 15)]
    + [("state-rename", k) for k in (1, 3, 9, 12)]
)


@pytest.mark.parametrize("point", POINTS, ids=[f"{k}-{n}" for k, n in POINTS])
def test_killed_search_resumes_to_the_uninterrupted_state(point, reference, tmp_path, monkeypatch):
    out = tmp_path / "s"
    inj = Injector(point)
    _inject_state_writes(monkeypatch, inj)
    with pytest.raises(Kill):
        run_search(CFG, out, toolkit=toolkit(inj), echo=None)
    started = (out / "search.json").exists()  # a kill before the first state write leaves none
    if started:
        json.loads((out / "search.json").read_text())  # never half a file
    monkeypatch.undo()
    again = dict(config=None, resume=True) if started else dict(config=CFG)
    res = run_search(out_dir=out, toolkit=toolkit(Injector(None)), echo=None, **again)
    assert res.status == "complete"
    assert comparable_state(load_state(out)) == reference
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_every_injection_point_was_reached(reference, tmp_path, monkeypatch):
    """The chosen points exist in an uninterrupted run (a kill there really interrupts it)."""
    inj = Injector(None)
    _inject_state_writes(monkeypatch, inj)
    run_search(CFG, tmp_path / "s", toolkit=toolkit(inj), echo=None)
    for kind, k in POINTS:
        assert inj.seen.get(kind, 0) >= k, (kind, k, inj.seen)
