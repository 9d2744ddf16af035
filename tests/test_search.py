"""Algorithm 1 with controlled fakes: the decision rule, the network count, early stop, resume."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from swnas.errors import InputError
from swnas.search import (
    SearchConfig,
    Toolkit,
    comparable_state,
    decide,
    load_state,
    resume_config,
    run_search,
)


class Killed(RuntimeError):
    """Stands for the process being killed at a chosen step."""


def fake_toolkit(score_fn, *, crash_on=None, calls=None):
    """A toolkit whose 'networks' are dicts; ``score_fn(stages, seed, role_hint)`` gives stage scores.

    ``crash_on=("train", k)`` raises on the k-th training call (1-based), ``("score", k)`` on the
    k-th scoring call: what a kill at that moment leaves on disk.
    """
    calls = calls if calls is not None else {"train": 0, "score": 0, "build": 0}

    def maybe_crash(kind):
        calls[kind] += 1
        if crash_on is not None and crash_on == (kind, calls[kind]):
            raise Killed(f"killed during {kind} #{calls[kind]}")

    def build(stages, seed):
        calls["build"] += 1
        return {"stages": list(stages), "seed": seed}

    def train(model, seed):
        maybe_crash("train")
        model["trained"] = True
        return {
            "top1": 0.5 + 0.01 * sum(model["stages"]) - 0.001 * (seed % 3),
            "top5": 0.99,
            "seconds": 0.01,
            "epochs": 1,
        }

    def score(model):
        maybe_crash("score")
        assert model.get("trained"), "scored a network that was not trained"
        return list(score_fn(model["stages"], model["seed"]))

    def measure(model, seconds):
        s = sum(model["stages"])
        return {
            "depth": 2 * s + 2,
            "params": 1000 * s,
            "macs": 10_000 * s,
            "memory": 4000 * s,
            "peak_memory": 500 * s,
            "latency": random.random(),
            "carbon": seconds * random.random(),
        }

    def save(model, path):
        Path(path).write_text(json.dumps(model))

    def load(path):
        return json.loads(Path(path).read_text())

    return Toolkit(
        build=build,
        train=train,
        score=score,
        measure=measure,
        save=save,
        load=load,
        spec=lambda m: {"module": "fake", "stages": m["stages"]},
    ), calls


def table_scores(table):
    """Scores looked up by the network's stages (A and T differ in depth, so this controls both)."""

    def fn(stages, seed):
        return table[tuple(stages)]

    return fn


def depth_rule(growing_stages, limit=99):
    """Stage i of the deeper network scores higher while i is in ``growing_stages`` and depth < limit."""

    def fn(stages, seed):
        return [float(m) if (i in growing_stages and m <= limit) else -float(m) for i, m in enumerate(stages)]

    return fn


def cfg(**kw):
    base = dict(iterations=3, stages=3, m0=2, delta=2, dataset="digits")
    base.update(kw)
    return SearchConfig(**base)


# ------------------------------------------------------------------------------- decision rule
def test_decide_is_strict_greater():
    assert decide([1.0, 2.0, 3.0], [1.5, 2.0, 2.9]) == [True, False, False]
    with pytest.raises(InputError, match="stage scores"):
        decide([1.0], [1.0, 2.0])
    with pytest.raises(InputError, match="non-finite"):
        decide([float("nan")], [1.0])


def test_stages_grow_exactly_where_t_beats_a(tmp_path):
    # iteration 1: A=[2,2,2] vs T=[4,4,4]: stage 1 and 3 win -> [4,2,4]
    # iteration 2: A=[4,2,4] vs T=[6,4,6]: only stage 2 wins -> [4,4,4]
    table = {
        (2, 2, 2): [1.0, 1.0, 1.0],
        (4, 4, 4): [1.1, 1.0, 1.5],
        (4, 2, 4): [2.0, 2.0, 2.0],
        (6, 4, 6): [1.9, 2.5, 2.0],
    }
    tk, calls = fake_toolkit(table_scores(table))
    res = run_search(cfg(iterations=2), tmp_path / "s", toolkit=tk, echo=None)
    it1, it2 = res.state["iterations"]
    assert it1["stages_before"] == [2, 2, 2] and it1["stages_after"] == [4, 2, 4]
    assert [c["grow"] for c in it1["comparisons"]] == [True, False, True]
    assert it1["grown"] == [1, 3]
    assert it2["stages_after"] == [4, 4, 4] and it2["grown"] == [2]
    assert [c["score_T"] for c in it2["comparisons"]] == [1.9, 2.5, 2.0]
    assert [n["stages"] for n in res.networks] == [[2, 2, 2], [4, 4, 4], [4, 2, 4], [6, 4, 6], [4, 4, 4]]
    assert [n["role"] for n in res.networks] == ["A", "T", "A", "T", "A"]
    assert [n["iteration"] for n in res.networks] == [0, 1, 1, 2, 2]
    assert res.final_stages == [4, 4, 4]
    # A of iteration 1 was scored as part of iteration 2, the last A never
    assert res.networks[2]["scores"] == [2.0, 2.0, 2.0] and res.networks[4]["scores"] is None


def test_network_and_candidate_counts(tmp_path):
    n = 4
    tk, calls = fake_toolkit(depth_rule({0, 2}))
    res = run_search(cfg(iterations=n), tmp_path / "s", toolkit=tk, echo=None)
    assert res.status == "complete"
    assert len(res.networks) == 2 * n + 1 and calls["train"] == 2 * n + 1
    assert len(res.candidates) == n  # A_1..A_n; the initial A is the starting network
    assert all(res.networks[i]["role"] == "A" for i in res.candidates)
    assert res.candidates == [2, 4, 6, 8] and res.state["initial"] == 0
    assert res.final_stages == [2 + 2 * n, 2, 2 + 2 * n]
    # seeds are distinct per network and recorded
    assert [net["seed"] for net in res.networks] == list(range(2 * n + 1))
    state = load_state(tmp_path / "s")
    assert state == json.loads(json.dumps(res.state))
    for net in state["networks"]:
        assert (tmp_path / "s" / net["checkpoint"]).is_file()
        assert json.loads((tmp_path / "s" / net["spec"]).read_text())["stages"] == net["stages"]
        assert set(net["metrics"]) >= {"params", "macs", "memory", "latency", "carbon", "top1", "top5"}
    assert res.best is None  # no validation accuracy recorded: test accuracy never chooses
    log = (tmp_path / "s" / "search.log").read_text()
    assert "iteration 1 stage 1: score A" in log and "-> grow by 2" in log and "-> keep" in log


def test_early_stop_when_nothing_grows(tmp_path):
    # stage 1 grows at iteration 1 only (limit 4), then nothing grows at iteration 2
    tk, calls = fake_toolkit(depth_rule({0}, limit=4))
    res = run_search(cfg(iterations=5, stop_early=True), tmp_path / "s", toolkit=tk, echo=None)
    assert res.status == "stopped_early"
    assert len(res.state["iterations"]) == 2
    last = res.state["iterations"][-1]
    assert last["no_growth"] and last["stopped_early"] and last["new_A"] is None
    assert len(res.networks) == 4 and len(res.candidates) == 1
    assert res.final_stages == [4, 2, 2]


def test_all_iterations_run_without_growth(tmp_path):
    tk, calls = fake_toolkit(depth_rule(set()))
    res = run_search(cfg(iterations=2), tmp_path / "s", toolkit=tk, echo=None)
    assert res.status == "complete"
    assert all(r["no_growth"] and not r["stopped_early"] for r in res.state["iterations"])
    assert len(res.networks) == 5 and len(res.candidates) == 2
    assert all(res.networks[i]["stages"] == [2, 2, 2] for i in res.candidates)


# ------------------------------------------------------------------------------- resume
@pytest.mark.parametrize("crash_on", [("train", 1), ("train", 2), ("score", 1), ("score", 3), ("train", 5)])
def test_resume_after_kill_equals_uninterrupted(tmp_path, crash_on):
    rule = depth_rule({0, 1}, limit=6)
    tk, _ = fake_toolkit(rule)
    ref = run_search(cfg(iterations=3), tmp_path / "ref", toolkit=tk, echo=None)

    tk_crash, calls = fake_toolkit(rule, crash_on=crash_on)
    with pytest.raises(Killed):
        run_search(cfg(iterations=3), tmp_path / "run", toolkit=tk_crash, echo=None)
    state_path = tmp_path / "run" / "search.json"
    assert state_path.is_file() and not list((tmp_path / "run").glob(".*.tmp"))
    trained_before = len(json.loads(state_path.read_text())["networks"])

    tk2, calls2 = fake_toolkit(rule)
    res = run_search(None, tmp_path / "run", toolkit=tk2, resume=True, echo=None)
    # nothing already trained was trained again
    assert calls2["train"] == len(ref.networks) - trained_before
    assert comparable_state(res.state) == comparable_state(ref.state)
    assert comparable_state(load_state(tmp_path / "run")) == comparable_state(load_state(tmp_path / "ref"))


def test_resume_of_finished_run_trains_nothing(tmp_path):
    tk, _ = fake_toolkit(depth_rule({0}))
    ref = run_search(cfg(iterations=1), tmp_path / "s", toolkit=tk, echo=None)
    tk2, calls = fake_toolkit(depth_rule({0}))
    res = run_search(None, tmp_path / "s", toolkit=tk2, resume=True, echo=None)
    assert calls["train"] == 0 and calls["score"] == 0
    assert comparable_state(res.state) == comparable_state(ref.state)


def test_resume_errors(tmp_path):
    tk, _ = fake_toolkit(depth_rule({0}))
    run_search(cfg(iterations=1), tmp_path / "s", toolkit=tk, echo=None)
    with pytest.raises(InputError, match="already holds a search"):
        run_search(cfg(iterations=1), tmp_path / "s", toolkit=tk, echo=None)
    with pytest.raises(InputError, match=r"--m0 3 \(stored 2\)"):
        resume_config(tmp_path / "s", {"m0": 3})
    assert resume_config(tmp_path / "s", {"m0": 2, "device": "cpu"}).device == "cpu"
    with pytest.raises(InputError, match="no such directory"):
        resume_config(tmp_path / "nothing")
    (tmp_path / "s" / "checkpoints" / "01-T1.pt").unlink()
    with pytest.raises(InputError, match="checkpoint checkpoints/01-T1.pt is missing"):
        run_search(None, tmp_path / "s", toolkit=tk, resume=True, echo=None)
    (tmp_path / "s" / "search.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot read"):
        load_state(tmp_path / "s")


def test_config_validation():
    c = SearchConfig(module="nasnet").resolved()
    assert c.delta == 1 and c.stages == 3 and c.score_params == {"n_components": 2}
    assert SearchConfig(module="bottleneck").resolved().stages == 4
    assert SearchConfig().resolved().delta == 2 and SearchConfig().resolved().m0 == 6
    assert SearchConfig().resolved().iterations == 5
    with pytest.raises(InputError, match="criterion"):
        SearchConfig(criterion="vip").resolved()
    with pytest.raises(InputError, match="m0"):
        SearchConfig(m0=0).resolved()
    with pytest.raises(InputError, match="transfer: donor checkpoint not found"):
        SearchConfig(transfer="/no/such/donor.pt").resolved()


# ------------------------------------------------------------------------------- real trainer, killed
@pytest.mark.slow
def test_real_search_killed_then_resumed_equals_uninterrupted(tmp_path, request):
    """A real (tiny) digits search killed after its first checkpoint resumes to the same state."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from swnas.cli import main

    flags = [
        "--dataset",
        "digits",
        "--subset",
        "200",
        "--iterations",
        "1",
        "--m0",
        "1",
        "--delta",
        "1",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--lr",
        "0.05",
        "--device",
        "cpu",
        "--no-report",
        "--quiet",
    ]
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    import torch

    # CPU results depend on the thread count (reduction order): every run here uses one thread
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    err_log = tmp_path / "stderr.txt"
    import swnas

    # the subprocess runs the same swnas as this process (the source tree under test, not an older install)
    src = str(Path(swnas.__file__).resolve().parents[1])
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p),
    )
    with open(err_log, "wb") as err_fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "swnas", "search", *flags, "--out", str(run_dir)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=err_fh,
            start_new_session=True,
            env=env,
        )
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            state_file = run_dir / "search.json"
            if state_file.is_file() and (run_dir / "checkpoints" / "00-A0.pt").is_file():
                if len(json.loads(state_file.read_text())["networks"]) >= 1:
                    break
            time.sleep(0.02)
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert (run_dir / "search.json").is_file(), err_log.read_text()
    assert main(["search", *flags, "--out", str(ref_dir)]) == 0
    partial = len(json.loads((run_dir / "search.json").read_text())["networks"])
    assert main(["search", "--resume", str(run_dir), "--no-report", "--quiet"]) == 0
    ref, got = load_state(ref_dir), load_state(run_dir)
    assert len(ref["networks"]) == 3 and len(ref["candidates"]) == 1  # A_1 (A0 is the starting network)
    assert all(n["metrics"]["epochs"] == 1 and 0.0 <= n["metrics"]["top1"] <= 1.0 for n in ref["networks"])
    assert all(isinstance(s, float) for s in ref["networks"][0]["scores"])
    assert comparable_state(got) == comparable_state(ref)
    if killed:  # the kill really interrupted the run (it may rarely finish first on a fast machine)
        assert partial < 3
