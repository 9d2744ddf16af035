"""Config files: YAML/JSON loading, key normalisation, errors, overrides and the write-back round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swnas.config_file import load_config, merge_options, write_config
from swnas.errors import InputError
from swnas.search.environment import environment, git_revision

ALLOWED = ("dataset", "batch_size", "epochs", "score_params", "stop_early", "data")


def test_yaml_and_json_agree(tmp_path):
    pytest.importorskip("yaml")
    y = tmp_path / "run.yaml"
    y.write_text("dataset: digits\nbatch-size: 64\nscore_params:\n  n_components: 3\nstop_early: true\n")
    j = tmp_path / "run.json"
    j.write_text(
        json.dumps({"dataset": "digits", "batch_size": 64, "score_params": {"n_components": 3}, "stop-early": True})
    )
    assert (
        load_config(y, ALLOWED)
        == load_config(j, ALLOWED)
        == {"dataset": "digits", "batch_size": 64, "score_params": {"n_components": 3}, "stop_early": True}
    )


def test_errors_name_the_file_and_problem(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.json"
    bad.write_text('{"epochs": 3,}')
    with pytest.raises(InputError, match="not valid JSON .line 1"):
        load_config(bad)
    lst = tmp_path / "list.json"
    lst.write_text("[1, 2]")
    with pytest.raises(InputError, match="mapping"):
        load_config(lst)
    unk = tmp_path / "unk.json"
    unk.write_text('{"epochz": 3}')
    with pytest.raises(InputError, match="unknown option.*epochz"):
        load_config(unk, ALLOWED)


def test_flags_override_and_write_back_round_trips(tmp_path):
    merged = merge_options({"dataset": "cifar10", "epochs": 200}, {"epochs": 2})
    assert merged == {"dataset": "cifar10", "epochs": 2}
    resolved = dict(merged, batch_size=None, score_params={"n_components": 2}, data="/tmp/x y")
    path = write_config(tmp_path / "out" / "config.yaml", resolved)
    assert load_config(path, ALLOWED) == resolved
    assert list(load_config(path)) == list(resolved)  # order kept


def test_environment_record():
    env = environment(device="cpu", backend="cpp")
    assert env["device"] == "cpu" and env["backend"] == "cpp" and env["world_size"] == 1
    assert env["threads"] >= 1 and env["torch"] and env["swnas"]
    json.dumps(env)  # JSON-ready
    rev = git_revision()
    assert rev is None or len(rev.split("-")[0]) == 40


def test_search_session_logs_tracks_and_writes_config(tmp_path):
    """A --config file under the flags, OUT/config.yaml written back, epoch lines and tracking through a session."""
    import argparse
    import logging

    from swnas.cli import _with_config_file
    from swnas.search.session import search_session
    from swnas.search import SearchConfig, Toolkit, run_search
    from swnas.records.tracking import active, epoch_callback

    run_file = tmp_path / "run.json"
    run_file.write_text(
        json.dumps(
            {
                "dataset": "digits",
                "iterations": 1,
                "m0": 1,
                "delta": 1,
                "stages": 2,
                "track": "jsonl",
                "log-level": "debug",
                "epochs": 9,
            }
        )
    )
    ns = argparse.Namespace(config=str(run_file), epochs=2)  # --epochs 2 given on the command line
    given = _with_config_file(ns, {"epochs": 2})
    assert given["epochs"] == 2 and given["iterations"] == 1 and ns.track == "jsonl" and ns.log_level == "debug"
    cfg = SearchConfig(**given)
    out = tmp_path / "out"

    def train(model, seed, checkpoint_dir=None):
        cb = epoch_callback(Path(checkpoint_dir).name)
        hist = []
        for e in (1, 2):
            stats = {"epoch": e, "loss": 1.0 / e, "acc": 0.5, "lr": 0.1, "seconds": 0.01, "images_per_second": 5.0}
            hist.append(stats)
            cb(e, stats)
            logging.getLogger("swnas.train").info("epoch %d of %s", e, Path(checkpoint_dir).name)
        return {"top1": 0.5, "top5": 1.0, "seconds": 0.02, "epochs": 2, "history": hist}

    tk = Toolkit(
        build=lambda stages, seed: {"stages": list(stages)},
        train=train,
        score=lambda m: [float(s) for s in m["stages"]],
        measure=lambda m, s: {
            "depth": 1,
            "params": 1,
            "macs": 1,
            "memory": 1,
            "peak_memory": 1,
            "latency": 0.1,
            "carbon": 0.0,
        },
        save=lambda m, p: Path(p).write_text(json.dumps(m)),
        load=lambda p: json.loads(Path(p).read_text()),
        spec=lambda m: {"stages": m["stages"]},
    )
    with search_session(cfg, out, ns, quiet=True):
        assert active().kind == "jsonl"
        run_search(cfg, out, toolkit=tk, echo=None)
    assert active().kind == "none"  # the session ended
    written = load_config(out / "config.yaml")
    assert written["epochs"] == 2 and written["track"] == "jsonl" and written["stages"] == 2
    assert written["score_params"] == {"n_components": 2}  # resolved defaults are written back
    log = (out / "search.log").read_text()
    assert "INFO swnas.train: epoch 2 of 02-A1" in log  # the logging handler writes OUT/search.log
    events = [json.loads(line) for line in (out / "track.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "config" and kinds.count("epoch") == 6 and kinds.count("final") == 3
    assert kinds.count("scores") == 1
    sc = next(e for e in events if e["event"] == "scores")
    assert sc["A"] == [1.0, 1.0] and sc["T"] == [2.0, 2.0]
    assert {e["network"] for e in events if e["event"] == "epoch"} == {"00-A0", "01-T1", "02-A1"}
    state = json.loads((out / "search.json").read_text())
    assert [len(n["history"]) for n in state["networks"]] == [2, 2, 2]
    assert state["environment"]["world_size"] == 1 and state["environment"]["torch"]


def test_tracker_choices():
    from swnas.errors import BackendUnavailableError
    from swnas.records.tracking import make_tracker

    with pytest.raises(InputError, match="track must be one of"):
        make_tracker("wandb", ".")
    assert make_tracker("jsonl", ".", rank=1).kind == "none"  # only rank 0 tracks
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(BackendUnavailableError, match="pip install tensorboard"):
            make_tracker("tensorboard", ".")
