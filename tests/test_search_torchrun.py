"""The whole search under ``torchrun --nproc-per-node=2`` (Gloo, CPU): it completes, only rank 0
writes, both ranks make the same decisions, and ``--resume`` continues it under torchrun too."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from swnas.search import load_state

ROOT = Path(__file__).resolve().parents[1]

# Each rank runs the search, records every file it opened for writing under OUT, and its view of
# the decisions, into ranks/<rank>.json (outside OUT).
CHILD = r"""
import builtins, json, os, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
out, iterations, resume = Path(sys.argv[1]).resolve(), int(sys.argv[2]), sys.argv[3] == "resume"
rank = int(os.environ["RANK"])
written = []
real_open, real_os_open = builtins.open, os.open

def _under_out(p):
    try:
        return Path(os.fspath(p)).resolve().is_relative_to(out)
    except TypeError:
        return False

def spy_open(file, mode="r", *a, **k):
    if any(c in str(mode) for c in "wax+") and _under_out(file):
        written.append(str(file))
    return real_open(file, mode, *a, **k)

def spy_os_open(path, flags, *a, **k):
    if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and _under_out(path):
        written.append(str(path))
    return real_os_open(path, flags, *a, **k)

builtins.open, os.open = spy_open, spy_os_open
from swnas.search import SearchConfig, run_search, resume_config
if resume:
    cfg = resume_config(out, {"iterations": iterations})
else:
    cfg = SearchConfig(dataset="digits", subset=160, iterations=iterations, stages=3, m0=1, delta=1, epochs=1,
                       batch_size=32, lr=0.05, device="cpu", seed=2)
res = run_search(cfg, out, resume=resume, echo=print if rank == 0 else None)
builtins.open, os.open = real_open, real_os_open
view = {"rank": rank, "written": written, "status": res.status,
        "decisions": [[c["grow"] for c in it["comparisons"]] for it in res.state["iterations"]],
        "scores": [n["scores"] for n in res.networks], "stages": [n["stages"] for n in res.networks]}
Path(sys.argv[4], f"{rank}.json").write_text(json.dumps(view))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(tmp: Path, out: Path, iterations: int, mode: str) -> dict[int, dict]:
    script = tmp / "child.py"
    script.write_text(CHILD)
    ranks = tmp / f"ranks-{mode}"
    ranks.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT), SWNAS_PROGRESS="lines")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node=2",
        "--master-addr=127.0.0.1",
        f"--master-port={_free_port()}",
        str(script),
        str(out),
        str(iterations),
        mode,
        str(ranks),
    ]
    done = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {r: json.loads((ranks / f"{r}.json").read_text()) for r in (0, 1)}


@pytest.mark.slow
def test_search_under_torchrun_then_resumed(tmp_path):
    out = tmp_path / "run"
    first = _torchrun(tmp_path, out, 1, "fresh")
    assert first[0]["status"] == "complete"
    assert first[0]["written"] and first[1]["written"] == []  # only rank 0 writes under OUT
    for key in ("decisions", "scores", "stages", "status"):
        assert first[0][key] == first[1][key]  # the ranks agree on every decision
    state = load_state(out)
    assert len(state["networks"]) == 3 and state["environment"]["world_size"] == 2
    assert all(len(n["history"]) == 1 for n in state["networks"])
    log = (out / "search.log").read_text().splitlines()
    assert len([ln for ln in log if "training initial network A" in ln]) == 1  # one writer, no duplicates

    second = _torchrun(tmp_path, out, 2, "resume")  # one more iteration, under torchrun again
    assert second[0]["status"] == "complete" and second[1]["written"] == []
    for key in ("decisions", "scores", "stages", "status"):
        assert second[0][key] == second[1][key]
    assert second[0]["stages"][:3] == first[0]["stages"] and len(second[0]["stages"]) == 5
    assert second[0]["decisions"][0] == first[0]["decisions"][0] and len(second[0]["decisions"]) == 2
    assert second[0]["scores"][:2] == first[0]["scores"][:2]  # finished work is not redone
    assert not (out / "training").exists()
