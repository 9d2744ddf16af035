"""Config files: YAML/JSON loading, key normalisation, errors, overrides and the write-back round trip."""
from __future__ import annotations

import json

import pytest

from swnas.config_file import load_config, merge_options, write_config
from swnas.errors import InputError
from swnas.runinfo import environment, git_revision

ALLOWED = ("dataset", "batch_size", "epochs", "score_params", "keep_going", "data")


def test_yaml_and_json_agree(tmp_path):
    pytest.importorskip("yaml")
    y = tmp_path / "run.yaml"
    y.write_text("dataset: digits\nbatch-size: 64\nscore_params:\n  n_components: 3\nkeep_going: true\n")
    j = tmp_path / "run.json"
    j.write_text(json.dumps({"dataset": "digits", "batch_size": 64, "score_params": {"n_components": 3},
                             "keep-going": True}))
    assert load_config(y, ALLOWED) == load_config(j, ALLOWED) == {
        "dataset": "digits", "batch_size": 64, "score_params": {"n_components": 3}, "keep_going": True}


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
