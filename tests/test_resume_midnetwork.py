"""Resume inside a network: a real digits search killed during its first network's second epoch
continues from that network's epoch checkpoint and ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from swnas.training.resume import (
    describe_partial,
    finish_network,
    network_workdir,
    partial_progress,
    train_with_checkpoints,
)
from swnas.search import comparable_state, load_state

ROOT = Path(__file__).resolve().parents[1]

# The child runs a tiny real search. In "stall" mode the second epoch (index 1) of the first network
# stops after one batch, announces it with a marker file and sleeps, so the parent kills it there.
CHILD = r"""
import os, sys, time
import torch
torch.set_num_threads(1)
mode, out, marker = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "stall":
    import swnas.data.batches as L
    original = L.InMemoryBatches.epoch
    def epoch(self, e):
        for i, batch in enumerate(original(self, e)):
            if e == 1 and i == 1 and not os.path.exists(marker):
                open(marker, "w").close()
                time.sleep(600)
            yield batch
    L.InMemoryBatches.epoch = epoch
from swnas.search import SearchConfig, run_search
cfg = SearchConfig(dataset="digits", subset=240, iterations=1, stages=3, m0=1, delta=1, epochs=3,
                   batch_size=32, lr=0.05, device="cpu", seed=5)
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


@pytest.mark.slow
def test_search_killed_mid_network_resumes_to_the_uninterrupted_state(tmp_path):
    run_dir, ref_dir, marker = tmp_path / "run", tmp_path / "ref", tmp_path / "stalled"
    proc = _child(tmp_path, "stall", run_dir, marker)
    try:
        deadline = time.time() + 300
        while not marker.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert marker.exists(), proc.communicate(timeout=30)[0] if proc.poll() is not None else "no stall in time"
        work = network_workdir(run_dir, "00-A0")
        assert partial_progress(work) == (1, 3)  # the first epoch's checkpoint, written atomically
        os.killpg(proc.pid, signal.SIGKILL)  # a real kill, in the middle of epoch 2 of network 0
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        proc.stdout.close()
    assert load_state(run_dir)["networks"] == []  # nothing was recorded: the kill came mid-network

    resumed = _child(tmp_path, "resume", run_dir, marker)
    ref = _child(tmp_path, "fresh", ref_dir, marker)
    out_resumed, _ = resumed.communicate(timeout=600)
    out_ref, _ = ref.communicate(timeout=600)
    assert resumed.returncode == 0, out_resumed
    assert ref.returncode == 0, out_ref
    assert "resuming initial network A from its checkpoint after epoch 1 of 3" in out_resumed
    assert "resuming" not in out_ref.replace("resuming " + str(ref_dir), "")

    got, want = load_state(run_dir), load_state(ref_dir)
    assert len(want["networks"]) == 3 and all(len(n["history"]) == 3 for n in want["networks"])
    assert [h["epoch"] for h in got["networks"][0]["history"]] == [1, 2, 3]
    assert comparable_state(got) == comparable_state(want)  # networks, stages, scores, accuracies, histories
    assert not (run_dir / "training").exists() and not (ref_dir / "training").exists()


def test_resume_helpers(tmp_path):
    import torch

    from swnas.training.trainer import CHECKPOINT_NAME

    work = network_workdir(tmp_path, "01-T1")
    assert work == tmp_path / "training" / "01-T1"
    assert partial_progress(work) is None and describe_partial(work, "T1") is None
    work.mkdir(parents=True)
    torch.save(
        {"format": "swnas-train-checkpoint", "version": 1, "epoch": 4, "config": {"recipe": {"epochs": 10}}},
        work / CHECKPOINT_NAME,
    )
    assert partial_progress(work) == (4, 10)
    assert "T1 from its checkpoint after epoch 4 of 10" in describe_partial(work, "T1")

    seen = {}
    assert train_with_checkpoints(
        lambda m, s, checkpoint_dir=None: seen.update(d=checkpoint_dir) or {"ok": 1}, "model", 3, work
    ) == {"ok": 1}
    assert seen["d"] == str(work)
    assert train_with_checkpoints(lambda m, s: {"plain": s}, "model", 3, work) == {"plain": 3}  # fakes keep working
    finish_network(work, main=False)
    assert work.exists()
    finish_network(work)
    assert not work.exists() and not (tmp_path / "training").exists()
