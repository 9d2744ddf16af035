"""Algorithm 1 as the paper publishes it: all iterations run, candidates A_1..A_n, final epochs,
selection on a validation split, the random/uniform controls, and the issue's digits search."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swnas.errors import InputError
from swnas.search import SearchConfig, Toolkit, load_state, run_search
from swnas.search.loop import control_decision


def _toolkit(score, *, val=None, final=True, calls=None):
    """Fake networks (dicts). ``score(stages) -> per-stage scores``; ``val(stages) -> validation top-1``."""
    calls = calls if calls is not None else {"train": 0, "final": 0, "score": 0}

    def train(model, seed):
        calls["train"] += 1
        model["trained"] = True
        s = model["stages"]
        return {
            "top1": 0.9 - 0.01 * sum(s),
            "top5": 1.0,
            "seconds": 0.0,
            "epochs": 2,
            "val_top1": None if val is None else val(s),
        }

    def final_train(model, seed, epochs, ckpt_dir):
        calls["final"] += 1
        assert Path(ckpt_dir).parent.name == "final"
        model["final_epochs"] = epochs
        s = model["stages"]
        return {
            "top1": 0.95 - 0.01 * sum(s),
            "top5": 1.0,
            "seconds": 0.0,
            "epochs": epochs,
            "val_top1": None if val is None else val(s) + 0.01,
        }

    def do_score(model):
        calls["score"] += 1
        return score(model["stages"])

    tk = Toolkit(
        build=lambda stages, seed: {"stages": list(stages)},
        train=train,
        score=do_score,
        measure=lambda m, s: {
            "depth": 1,
            "params": 1,
            "macs": 1,
            "memory": 1,
            "peak_memory": 1,
            "latency": 0.0,
            "carbon": 0.0,
        },
        save=lambda m, p: Path(p).write_text(json.dumps(m)),
        load=lambda p: json.loads(Path(p).read_text()),
        spec=lambda m: {"stages": m["stages"]},
        final_train=final_train if final else None,
    )
    return tk, calls


def _cfg(**kw):
    base = dict(iterations=3, stages=3, m0=1, delta=1, dataset="digits", final_epochs=2)
    base.update(kw)
    return SearchConfig(**base)


def never_grows(stages):
    return [1.0 / s for s in stages]  # the deeper network always scores lower


def test_no_growth_goes_on_and_is_recorded(tmp_path):
    tk, calls = _toolkit(never_grows)
    res = run_search(_cfg(), tmp_path / "s", toolkit=tk, echo=None)
    assert res.status == "complete" and len(res.state["iterations"]) == 3
    assert all(r["no_growth"] and not r["stopped_early"] for r in res.state["iterations"])
    assert len(res.networks) == 7 and calls["train"] == 7
    stopped = run_search(_cfg(stop_early=True), tmp_path / "t", toolkit=_toolkit(never_grows)[0], echo=None)
    assert stopped.status == "stopped_early" and len(stopped.networks) == 2 and stopped.candidates == []
    with pytest.raises(InputError, match="keep_going"):  # the old no-op option is gone
        SearchConfig.from_dict({**_cfg().to_dict(), "keep_going": True})


def test_candidates_are_a1_to_an_with_final_epochs_and_validation_best(tmp_path):
    grows = lambda stages: [float(s) for s in stages]  # noqa: E731 - deeper scores higher: every stage grows
    val = lambda stages: {3: 0.50, 6: 0.70, 9: 0.60, 12: 0.65}[sum(stages)]  # noqa: E731
    tk, calls = _toolkit(grows, val=val)
    res = run_search(_cfg(), tmp_path / "s", toolkit=tk, echo=None)
    nets = res.networks
    assert res.state["initial"] == 0 and res.candidates == [2, 4, 6]
    assert [nets[i]["iteration"] for i in res.candidates] == [1, 2, 3]
    assert calls["final"] == 3 and "final" not in nets[0]
    for i in res.candidates:
        fin = nets[i]["final"]
        assert fin["epochs"] == 2 and set(fin) >= {"top1", "top5", "val_top1", "checkpoint", "checkpoint_sha256"}
        assert (tmp_path / "s" / fin["checkpoint"]).is_file()
        assert nets[i]["metrics"]["val_top1"] == val(nets[i]["stages"])
    # best: highest validation accuracy after the final epochs (A1 = [2, 2, 2], sum 6), not test accuracy
    assert res.best == 2
    assert max(res.candidates, key=lambda i: nets[i]["final"]["top1"]) == 2  # same here, by construction
    # resuming a finished search trains nothing again, final epochs included
    tk2, calls2 = _toolkit(grows, val=val)
    again = run_search(None, tmp_path / "s", toolkit=tk2, resume=True, echo=None)
    assert calls2 == {"train": 0, "final": 0, "score": 0} and again.best == 2
    rep = tmp_path / "s" / "report"
    from swnas.reporting.report import write_report

    md = write_report(tmp_path / "s", ensemble=False).markdown
    assert "Val top-1 (%)" in md and "Top-1 after final epochs (%)" in md and rep.is_dir()


def test_best_uses_validation_not_test_and_none_without_validation(tmp_path):
    grows = lambda stages: [float(s) for s in stages]  # noqa: E731
    # test accuracy falls with depth (A1 best on test) but validation rises (A3 best on validation)
    tk, _ = _toolkit(grows, val=lambda s: 0.1 * sum(s), final=False)
    res = run_search(_cfg(final_epochs=0), tmp_path / "s", toolkit=tk, echo=None)
    assert res.best == res.candidates[-1] != max(res.candidates, key=lambda i: res.networks[i]["metrics"]["top1"])
    assert all("final" not in n for n in res.networks)
    tk0, _ = _toolkit(grows)  # no validation accuracy (--val-split 0)
    res0 = run_search(_cfg(val_split=0.0), tmp_path / "z", toolkit=tk0, echo=None)
    assert res0.best is None and load_state(tmp_path / "z")["best"] is None


def test_controls_run_the_same_loop_without_scoring(tmp_path):
    tk, calls = _toolkit(never_grows)
    res = run_search(_cfg(criterion="uniform"), tmp_path / "u", toolkit=tk, echo=None)
    assert calls["score"] == 0 and len(res.networks) == 7
    assert res.networks[res.final]["stages"] == [4, 4, 4]
    assert all(c["score_A"] is None for r in res.state["iterations"] for c in r["comparisons"])
    tkr, callsr = _toolkit(never_grows)
    r1 = run_search(_cfg(criterion="random", seed=5, iterations=4), tmp_path / "r", toolkit=tkr, echo=None)
    assert callsr["score"] == 0 and len(r1.networks) == 9
    grown = [r["grown"] for r in r1.state["iterations"]]
    assert grown == [[i + 1 for i, g in enumerate(control_decision("random", 3, 5, k)) if g] for k in (1, 2, 3, 4)]
    # seeded: the same seed gives the same decisions, and over many draws about half the stages grow
    draws = [g for k in range(1, 401) for g in control_decision("random", 3, 7, k)]
    assert 0.45 < sum(draws) / len(draws) < 0.55
    assert control_decision("random", 3, 7, 1) == control_decision("random", 3, 7, 1)
    with pytest.raises(InputError, match="--param"):
        SearchConfig(criterion="random", score_params={"n_components": 2}).resolved()


def test_protocol_options_are_checked():
    c = SearchConfig(epochs=8).resolved()
    assert (c.final_epochs, c.val_split, c.stop_early) == (4, 0.1, False)
    assert SearchConfig().resolved().final_epochs == 100  # the paper: 200 + 100
    for kw, name in (
        ({"final_epochs": -1}, "final_epochs"),
        ({"val_split": 1.0}, "val_split"),
        ({"cell": "keras"}, "cell"),
        ({"width": 0}, "width"),
    ):
        with pytest.raises(InputError, match=name):
            SearchConfig(**kw).resolved()


@pytest.mark.slow
def test_issue_digits_search(tmp_path, capsys):
    """The issue's 'done when' search: two iterations, candidates A_1 and A_2 only, val_top1 and
    final for each, best = the candidate with the highest validation accuracy."""
    from swnas.cli import main

    out = tmp_path / "s"
    code = main(
        [
            "search",
            "--dataset",
            "digits",
            "--iterations",
            "2",
            "--m0",
            "1",
            "--delta",
            "1",
            "--epochs",
            "2",
            "--final-epochs",
            "1",
            "--val-split",
            "0.2",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--no-report",
            "--quiet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    state = load_state(out)
    nets = state["networks"]
    assert len(state["iterations"]) == 2 and len(nets) == 5
    assert [nets[i]["role"] + str(nets[i]["iteration"]) for i in state["candidates"]] == ["A1", "A2"]
    assert state["initial"] == 0 and state["config"]["val_split"] == 0.2
    for i in state["candidates"]:
        m, fin = nets[i]["metrics"], nets[i]["final"]
        assert 0.0 <= m["val_top1"] <= 1.0 and fin["epochs"] == 1 and 0.0 <= fin["val_top1"] <= 1.0
    best = max(state["candidates"], key=lambda i: (nets[i]["final"]["val_top1"], -i))
    assert state["best"] == best
    # the networks trained on 80% of the training part (stratified)
    from swnas.data import load_dataset

    ds = load_dataset("digits", val_split=0.2, seed=0)
    assert len(ds.x_val) + len(ds.x_train) == len(load_dataset("digits").x_train)
    assert abs(len(ds.x_val) - 0.2 * len(load_dataset("digits").x_train)) <= 1
    # the ensemble and export use each candidate after its final epochs (the paper's candidate)
    import torch

    from swnas.reporting.ensemble import ensemble_search
    from swnas.models import load as load_model_file
    from swnas.reporting.report import export_candidate
    from swnas.search import final_record, load_recorded

    for k, i in enumerate(state["candidates"]):
        one = ensemble_search(out, members=[i], device="cpu", write=False)
        assert one.top1 == pytest.approx(nets[i]["final"]["top1"], abs=1e-12)
        (path,) = export_candidate(out, f"A{k + 1}", tmp_path / f"a{k}.pt")
        got = load_model_file(path).state_dict()
        fin = load_recorded(out, final_record(nets[i])).state_dict()
        before = load_recorded(out, nets[i]).state_dict()
        assert all(torch.equal(got[n], fin[n]) for n in fin)
        assert any(not torch.equal(got[n], before[n]) for n in before if before[n].is_floating_point())
