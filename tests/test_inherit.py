"""Inherit mode (``swnas search --inherit``): function-preserving growth, the equal-training
reference, the construction of the next A, recorded costs, the refusal for cells, and resume
inside an inherited network after a real kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from swnas import models as M
from swnas.errors import InputError
from swnas.models.grow import can_inherit, inherit
from swnas.training.recipes import ScheduleFactor, finetune_recipe, get_recipe
from swnas.search import SearchConfig, Toolkit, comparable_state, load_state, run_search
from swnas.search.state import cost_summary

ROOT = Path(__file__).resolve().parents[1]


def _perturbed(spec: M.ArchSpec, seed: int = 0) -> torch.nn.Module:
    """A network whose BatchNorm scales, shifts and running statistics are all non-trivial."""
    torch.manual_seed(seed)
    net = M.build(spec)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(7)
    return net.eval()


GROW_CASES = [
    (M.ArchSpec(module="basic", stages=[1, 2, 1], num_classes=5, input_size=16), [3, 2, 1]),
    (M.ArchSpec(module="basic", stages=[1, 2, 1], num_classes=5, input_size=16), [1, 4, 1]),
    (M.ArchSpec(module="basic", stages=[1, 2, 1], num_classes=5, input_size=16), [1, 2, 3]),
    (M.ArchSpec(module="basic", stages=[1, 1, 1], num_classes=5, input_size=16, shortcut="projection_bn"), [2, 2, 2]),
    (
        M.ArchSpec(module="bottleneck", stages=[1, 1, 1, 1], widths=[4, 8, 8, 8], num_classes=3, input_size=32),
        [2, 1, 1, 1],
    ),
    (
        M.ArchSpec(module="bottleneck", stages=[1, 1, 1, 1], widths=[4, 8, 8, 8], num_classes=3, input_size=32),
        [1, 1, 1, 3],
    ),
]


@pytest.mark.parametrize("spec,stages", GROW_CASES)
def test_grown_network_computes_the_parents_function(spec, stages):
    parent = _perturbed(spec)
    child = inherit(parent, stages, seed=3)
    assert list(child.spec.stages) == stages and not child.training
    x = torch.randn(4, spec.in_channels, spec.input_size, spec.input_size)
    with torch.no_grad():
        want, got = parent(x), child(x)
    # float32, same operations on the shared modules; the added blocks add exact zeros
    assert torch.allclose(got, want, rtol=0, atol=1e-6), float((got - want).abs().max())
    # every shared tensor (parameters and BatchNorm buffers) is the parent's, value for value
    ps, cs = parent.state_dict(), child.state_dict()
    names = {id(m): n for n, m in child.named_modules()}
    pnames = {id(m): n for n, m in parent.named_modules()}
    for dst, src in zip(child.stages, parent.stages):
        for j, block in enumerate(dst):
            for key in block.state_dict():
                if j < len(src):
                    assert torch.equal(cs[f"{names[id(block)]}.{key}"], ps[f"{pnames[id(src[j])]}.{key}"])
    for key in ("fc.weight", "fc.bias", "conv1.weight", "bn1.running_mean", "bn1.running_var"):
        assert torch.equal(cs[key], ps[key])


def test_grown_network_is_the_identity_in_training_mode_too():
    spec = M.ArchSpec(module="basic", stages=[1, 1, 1], num_classes=4, input_size=8)
    parent = _perturbed(spec).train()
    child = inherit(parent, [2, 2, 2], seed=0)
    assert child.training
    x = torch.randn(6, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(child(x), parent(x), rtol=0, atol=1e-6)


def test_added_modules_train_away_from_the_identity():
    """The zeroed BatchNorm scale gets a gradient: an added module is not stuck at the identity."""
    spec = M.ArchSpec(module="basic", stages=[1, 1, 1], num_classes=4, input_size=8)
    child = inherit(_perturbed(spec).train(), [1, 1, 2], seed=0)
    loss = child(torch.randn(6, 3, 8, 8)).logsumexp(1).sum()
    loss.backward()
    assert float(child.stages[2][1].bn2.weight.grad.abs().sum()) > 0


def test_cutting_back_keeps_the_first_modules_of_each_stage():
    spec = M.ArchSpec(module="basic", stages=[3, 3, 3], num_classes=4, input_size=8)
    big = _perturbed(spec, seed=1)
    small = inherit(big, [3, 1, 2])
    for i, m in enumerate([3, 1, 2]):
        for j in range(m):
            for (k, a), (_, b) in zip(small.stages[i][j].state_dict().items(), big.stages[i][j].state_dict().items()):
                assert torch.equal(a, b), (i, j, k)


def test_cells_cannot_inherit_and_the_search_says_so_before_training(tmp_path):
    assert can_inherit("basic") is None and can_inherit("bottleneck") is None
    assert "identity" in can_inherit("nasnet")
    with pytest.raises(InputError, match="--inherit.*nasnet.*identity"):
        SearchConfig(module="nasnet", inherit=True, dataset="digits").resolved()
    cell = M.build(M.ArchSpec(module="nasnet", stages=[1, 1, 1], num_classes=4, input_size=8, widths=[4, 8, 16]))
    with pytest.raises(InputError, match="identity"):
        inherit(cell, [2, 2, 2])
    out = tmp_path / "cells"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "swnas",
            "search",
            "--dataset",
            "digits",
            "--module",
            "nasnet",
            "--inherit",
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert "NASNet cells have no identity branch" in r.stderr
    assert not out.exists()


def test_inherit_options_resolve_and_are_checked():
    c = SearchConfig(dataset="digits", epochs=16, inherit=True).resolved()
    assert c.inherit_epochs == 2  # an eighth of the training epochs
    assert SearchConfig(dataset="digits", epochs=3, inherit=True).resolved().inherit_epochs == 1
    assert SearchConfig(dataset="digits", inherit=True).resolved().inherit_epochs == 25  # paper: 200 epochs
    assert SearchConfig(dataset="digits", epochs=16, inherit=True, inherit_epochs=5).resolved().inherit_epochs == 5
    with pytest.raises(InputError, match="--inherit-epochs applies with --inherit only"):
        SearchConfig(dataset="digits", inherit_epochs=3).resolved()
    with pytest.raises(InputError, match="inherit_epochs"):
        SearchConfig(dataset="digits", inherit=True, inherit_epochs=0).resolved()
    assert SearchConfig(dataset="digits").resolved().inherit_epochs is None


def test_finetune_schedule_is_one_cosine_from_the_base_rate_to_zero():
    rec = finetune_recipe(get_recipe("paper", epochs=40, lr=0.05), 4)
    assert rec.epochs == 4 and rec.lr == 0.05 and rec.schedule == "cosine" and rec.weight_decay == 1e-4
    f = ScheduleFactor(rec, steps_per_epoch=10)
    assert f(0) == 1.0
    assert abs(f(20) - 0.5) < 1e-12  # half way
    assert f(10) > f(20) > f(30) > f(39) > 0
    assert f(40) == 0.0
    with pytest.raises(InputError, match="inherit_epochs"):
        finetune_recipe(rec, 0)


# ------------------------------------------------------------------ the loop, with controlled fakes
def _toolkit(log):
    """Networks are dicts that remember where they came from; scores favour growth in stage 2."""

    def build(stages, seed):
        log.append(("build", list(stages), seed))
        return {"stages": list(stages), "seed": seed, "trained": 0, "from": None}

    def grow(parent, stages, seed):
        log.append(("grow", list(parent["stages"]), list(stages), seed))
        return {"stages": list(stages), "seed": seed, "trained": parent["trained"], "from": parent["stages"]}

    def train(model, seed):
        log.append(("train", list(model["stages"]), seed))
        model["trained"] += 10
        return {"top1": 0.5, "val_top1": 0.4, "top5": 0.9, "seconds": 0.01, "epochs": 10, "images": 1000}

    def finetune(model, seed):
        log.append(("finetune", list(model["stages"]), seed))
        model["trained"] += 2
        return {
            "top1": 0.5,
            "val_top1": 0.4 + 0.01 * sum(model["stages"]),
            "top5": 0.9,
            "seconds": 0.01,
            "epochs": 2,
            "images": 200,
        }

    def score(model):
        # stage 2 gains from depth; every stage gains from training time, as real features do
        return [0.001 * model["trained"] + (0.1 * model["stages"][1] if i == 1 else 0.0) for i in range(3)]

    def final_train(model, seed, epochs, checkpoint_dir):
        return {"top1": 0.6, "val_top1": 0.5, "top5": 0.9, "seconds": 0.01, "images": 500}

    return Toolkit(
        build=build,
        train=train,
        score=score,
        measure=lambda m, s: {"depth": 2 * sum(m["stages"]) + 2, "params": sum(m["stages"])},
        save=lambda m, p: Path(p).write_text(json.dumps(m)),
        load=lambda p: json.loads(Path(p).read_text()),
        spec=lambda m: {"stages": m["stages"]},
        final_train=final_train,
        grow=grow,
        finetune=finetune,
    )


def _cfg(**kw):
    base = dict(dataset="digits", iterations=2, m0=1, delta=1, epochs=16, inherit=True, final_epochs=1)
    base.update(kw)
    return SearchConfig(**base)


def test_inherit_loop_compares_T_with_A_fine_tuned_as_long(tmp_path):
    log: list = []
    res = run_search(_cfg(), tmp_path / "run", toolkit=_toolkit(log), echo=None)
    nets = res.networks
    assert [(n["role"], n["iteration"]) for n in nets] == [
        ("A", 0),
        ("T", 1),
        ("F", 1),
        ("A", 1),
        ("T", 2),
        ("F", 2),
        ("A", 2),
    ]
    # only A0 is built and trained from scratch; everything else grows from a parent and is fine-tuned
    assert [e[0] for e in log if e[0] in ("build", "train")] == ["build", "train"]
    assert sum(1 for e in log if e[0] == "finetune") == 6
    t1, f1, a1 = nets[1], nets[2], nets[3]
    assert f1["stages"] == nets[0]["stages"] == [1, 1, 1] and t1["stages"] == [2, 2, 2]
    assert f1["seed"] == t1["seed"]  # same schedule, same seed: equal training
    assert t1["inherited_from"]["index"] == 0 and f1["inherited_from"]["index"] == 0
    assert t1["inherited_from"]["checkpoint_sha256"] == nets[0]["checkpoint_sha256"]
    # the comparison uses F1's scores, not A0's (A0 has had 2 epochs less: every stage would look better in T)
    it1 = res.state["iterations"][0]
    assert it1["reference"] == 2 and it1["A"] == 0 and it1["T"] == 1
    assert [c["score_A"] for c in it1["comparisons"]] == f1["scores"] != nets[0]["scores"]
    assert it1["grown"] == [2] and it1["stages_after"] == [1, 2, 1]
    # A1 is cut from T1: the grown stage keeps T1's modules, the others drop the added one
    assert a1["stages"] == [1, 2, 1] and a1["inherited_from"]["index"] == 1
    assert a1["inherited_from"]["checkpoint_sha256"] == t1["checkpoint_sha256"]
    assert ("grow", [2, 2, 2], [1, 2, 1], a1["seed"]) in log
    assert res.candidates == [3, 6] and nets[6]["stages"] == [1, 3, 1]


def test_inherit_loop_without_the_reference_would_grow_everywhere(tmp_path):
    """The fake's features improve with training alone: against the un-fine-tuned A every stage wins."""
    tk = _toolkit([])
    res = run_search(_cfg(iterations=1), tmp_path / "run", toolkit=tk, echo=None)
    a0, t1 = res.networks[0], res.networks[1]
    assert a0["scores"] is None  # A0 itself is never scored in inherit mode
    naive = tk.score(tk.load(str(tmp_path / "run" / a0["checkpoint"])))
    assert all(t > a for t, a in zip(t1["scores"], naive))  # the naive comparison: uniform growth
    assert res.state["iterations"][0]["grown"] == [2]  # the equal-training comparison: only the real gain


def test_recorded_costs_and_the_ratio_to_the_paper_protocol(tmp_path):
    res = run_search(_cfg(), tmp_path / "run", toolkit=_toolkit([]), echo=None)
    cost = res.state["cost"]
    # A0 1000; T,F,A x 2 iterations x 200; finals 2 x 500 (the same in both modes)
    assert cost["images_trained"] == 1000 + 6 * 200 + 2 * 500
    assert cost["paper_protocol_images"] == 1000 * (1 + 2 * 2) + 2 * 500
    assert cost["growth_images"] == 1200 and cost["growth_images_paper_protocol"] == 4000
    assert cost["growth_ratio"] == pytest.approx(0.3)
    assert cost["ratio"] == pytest.approx(3200 / 6000)
    assert all(n["metrics"]["images_trained"] in (1000, 200) for n in res.networks)
    doc = load_state(tmp_path / "run")
    assert doc["cost"] == cost
    doc["networks"][1]["metrics"]["images_trained"] = None
    assert cost_summary(doc) is None  # unknown, never a wrong number


def test_inherit_state_is_validated(tmp_path):
    run_search(_cfg(iterations=1), tmp_path / "run", toolkit=_toolkit([]), echo=None)
    path = tmp_path / "run" / "search.json"
    doc = json.loads(path.read_text())
    doc["iterations"][0]["reference"] = 0  # an A, not an F
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="'reference' = 0 is not the index of a trained F"):
        load_state(tmp_path / "run")


# ------------------------------------------------------------------ a real kill inside T's fine-tuning
CHILD = r"""
import os, sys, time
import torch
torch.set_num_threads(1)
mode, out, marker = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "stall":
    import swnas.records.tracking as TR
    original = TR.epoch_callback
    def epoch_callback(name):
        cb = original(name)
        def stall(epoch, stats):
            cb(epoch, stats)
            if name == "01-T1" and epoch == 1 and not os.path.exists(marker):
                open(marker, "w").close()
                time.sleep(600)
        return stall
    TR.epoch_callback = epoch_callback
from swnas.search import SearchConfig, run_search
cfg = SearchConfig(dataset="digits", subset=200, iterations=1, stages=3, m0=1, delta=1, epochs=2,
                   inherit=True, inherit_epochs=2, final_epochs=1, batch_size=50, lr=0.05, device="cpu", seed=4)
run_search(None if mode == "resume" else cfg, out, resume=mode == "resume", echo=print)
"""


def _child(tmp: Path, mode: str, out: Path, marker: Path) -> subprocess.Popen:
    script = tmp / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT), SWNAS_PROGRESS="lines")
    return subprocess.Popen(
        [sys.executable, str(script), mode, str(out), str(marker)],
        cwd=tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.mark.slow  # 44 s under load (three real search processes, one killed); CI runs it
def test_kill_during_T_fine_tuning_then_resume_equals_the_uninterrupted_run(tmp_path):
    run_dir, ref_dir, marker = tmp_path / "run", tmp_path / "ref", tmp_path / "stalled"
    proc = _child(tmp_path, "stall", run_dir, marker)
    try:
        deadline = time.time() + 300
        while not marker.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert marker.exists(), proc.communicate(timeout=30)[0] if proc.poll() is not None else "no stall in time"
        os.killpg(proc.pid, signal.SIGKILL)  # kill -9 after T1's first fine-tuning epoch
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        proc.stdout.close()
    assert [n["role"] for n in load_state(run_dir)["networks"]] == ["A"]  # only A0 was recorded
    assert (run_dir / "training" / "01-T1" / "last.pt").is_file()
    resumed = _child(tmp_path, "resume", run_dir, marker)
    ref = _child(tmp_path, "fresh", ref_dir, marker)
    out_resumed, _ = resumed.communicate(timeout=600)
    out_ref, _ = ref.communicate(timeout=600)
    assert resumed.returncode == 0, out_resumed
    assert ref.returncode == 0, out_ref
    assert "resuming T1 (A deepened, inherited) from its checkpoint after epoch 1 of 2" in out_resumed
    got, want = load_state(run_dir), load_state(ref_dir)
    assert [n["role"] for n in want["networks"]] == ["A", "T", "F", "A"]
    assert comparable_state(got) == comparable_state(want)  # scores, decisions, accuracies, histories


def test_transfer_gives_A0_only_and_T_may_outgrow_the_donor(tmp_path):
    from swnas.search import default_toolkit

    torch.manual_seed(3)
    donor = M.build(M.ArchSpec(module="basic", stages=[2, 2, 2], num_classes=10, input_size=8, in_channels=1))
    M.save_model(donor, tmp_path / "donor.pt")
    with pytest.raises(InputError, match="too shallow for m0 \\+ delta = 3"):
        default_toolkit(
            SearchConfig(dataset="digits", m0=2, delta=1, transfer=str(tmp_path / "donor.pt"), device="cpu").resolved(),
            progress=False,
        )
    cfg = SearchConfig(
        dataset="digits", m0=2, delta=1, transfer=str(tmp_path / "donor.pt"), device="cpu", inherit=True
    ).resolved()
    tk = default_toolkit(cfg, progress=False)
    a0 = tk.build([2, 2, 2], 0)  # from the donor
    assert torch.equal(a0.stages[1][1].conv1.weight, donor.stages[1][1].conv1.weight)
    t = tk.grow(a0.eval(), [3, 3, 3], 1)  # deeper than the donor: grown, not transferred
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(t(x), a0(x), rtol=0, atol=1e-6)
    with pytest.raises(InputError, match="too shallow for m0 = 3"):
        default_toolkit(
            SearchConfig(dataset="digits", m0=3, delta=1, transfer=str(tmp_path / "donor.pt"), inherit=True).resolved(),
            progress=False,
        )


def test_report_states_the_cost_against_the_paper_protocol():
    from swnas.reporting.report import cost_line

    state = {
        "config": {"inherit": True},
        "cost": {
            "images_trained": 3200,
            "paper_protocol_images": 6000,
            "ratio": 3200 / 6000,
            "growth_images": 1200,
            "growth_images_paper_protocol": 4000,
            "growth_ratio": 0.3,
        },
    }
    line = cost_line(state)
    assert "inherit mode" in line and "3,200 images" in line and "6,000" in line and "(0.53x)" in line
    assert "1,200 vs 4,000 images (0.30x)" in line
    assert cost_line({"config": {}, "cost": None}) == ""
