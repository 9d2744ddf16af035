"""Boundary, tie and two-sided cases that a realistic one-line bug gets wrong (docs/testing.md).

Each test here pins a case where a flipped comparison, a wrong field or a skipped step still
passes the happy-path tests: a score exactly at the selector's threshold, a chunk of another width,
two ranks whose data differ by 10^500 in magnitude, more PLS components than X has rank, a tie on
validation accuracy, a resumed early stop, the final epochs' rate, a reopened ``--track`` file,
a comparison whose best is neither its first nor its last candidate, a published row of the same
name under another setting, and the weights after the final epochs. They use fakes and tiny
problems only, so they run in the fast suite.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from helpers import planted
from swnas.errors import InputError
from swnas.scoring import score
from swnas.scoring.streaming import StreamingScorer
from swnas.selection import ILFSSelector, InfFSSelector, VIPSelector


# ------------------------------------------------------------------ selectors
@pytest.mark.parametrize("cls", [VIPSelector, InfFSSelector, ILFSSelector], ids=["vip", "inffs", "ilfs"])
def test_threshold_keeps_a_score_equal_to_it(cls):
    """``threshold``: features scoring *at least* it are kept, so one scoring exactly it is."""
    X, y = planted(300, 12, 3, seed=5)
    scores = cls(k="all", backend="numpy").fit(X, y).scores_
    at = float(np.sort(scores)[6])  # the 7th smallest: 6 features score at or above it... plus itself
    sel = cls(threshold=at, backend="numpy").fit(X, y)
    np.testing.assert_array_equal(sel.scores_, scores)  # the same scores, bit for bit
    kept = sel.get_support()
    assert kept[np.flatnonzero(scores == at)].all()
    assert kept.sum() == int(np.sum(scores >= at)) == 6
    # just above it: that feature goes
    above = cls(threshold=float(np.nextafter(at, np.inf)), backend="numpy").fit(X, y).get_support()
    assert above.sum() == 5 and not above[np.flatnonzero(scores == at)].any()


@pytest.mark.parametrize("extra", [1, -1], ids=["one-more-column", "one-fewer-column"])
@pytest.mark.parametrize(
    "make", [lambda: VIPSelector(k=3), lambda: InfFSSelector(k=3, corr="pearson")], ids=["vip", "inffs"]
)
def test_partial_fit_with_another_width_raises_and_keeps_the_fitted_state(make, extra):
    X, y = planted(400, 10, 3, seed=3)
    sel = make().partial_fit(X[:200], y[:200])
    scores, n_rows, mask = sel.scores_.copy(), sel._acc.n, sel.get_support().copy()
    bad = np.hstack([X[200:], X[200:, :1]]) if extra > 0 else X[200:, :-1]
    with pytest.raises(ValueError, match="features"):  # InputError is a ValueError, as scikit-learn's
        sel.partial_fit(bad, y[200:])
    assert sel.n_features_in_ == 10 and sel._acc.n == n_rows and sel._acc.n_features == 10
    np.testing.assert_array_equal(sel.scores_, scores)
    np.testing.assert_array_equal(sel.get_support(), mask)
    sel.partial_fit(X[200:], y[200:])  # and it goes on as if the bad chunk never came
    np.testing.assert_allclose(sel.scores_, make().fit(X, y).scores_, atol=1e-9, rtol=0)


# ------------------------------------------------------------------ StreamingScorer.all_reduce
class _ThreadGroup:
    """``torch.distributed`` for ranks that are threads of this process: all_reduce sums (or takes
    the minimum) over every rank's tensor, in rank order, as gloo would."""

    def __init__(self, world: int):
        self.world = world
        self.barrier = threading.Barrier(world, timeout=60)
        self.slots: dict[tuple[int, int], object] = {}
        self.local = threading.local()

    def all_reduce(self, tensor, op=None, group=None):
        import torch.distributed as dist

        call = self.local.calls = getattr(self.local, "calls", 0) + 1
        self.slots[(call, self.local.rank)] = tensor.clone()
        self.barrier.wait()
        parts = [self.slots[(call, r)] for r in range(self.world)]
        out = parts[0].clone()
        for t in parts[1:]:
            out = out.minimum(t) if op == dist.ReduceOp.MIN else out + t
        self.barrier.wait()
        tensor.copy_(out)


def test_all_reduce_agrees_on_the_smaller_scale_across_ranks_of_different_magnitude(monkeypatch):
    """Rank 0 holds values near 1e200 (scaled down by 2^k, k < 0), rank 1 values near 1e-300 (k > 0).
    The ranks must agree on the smaller exponent: the larger one overflows rank 0's squares."""
    torch = pytest.importorskip("torch")
    import torch.distributed as dist

    X, y = planted(600, 8, 3, seed=4)
    shards = [(X[:300] * 1e200, y[:300]), (X[300:] * 1e-300, y[300:])]
    group = _ThreadGroup(2)
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "all_reduce", group.all_reduce)
    accs = [StreamingScorer("pls", n_classes=3).update(Xr, yr) for Xr, yr in shards]
    scales = [a.log2_scale for a in accs]
    assert scales[0] < 0 < scales[1]
    errors: list[BaseException] = []

    def rank(r: int) -> None:
        group.local.rank = r
        try:
            accs[r].all_reduce()
        except BaseException as exc:  # reported below; the other rank must not hang
            errors.append(exc)
            group.barrier.abort()

    ts = [threading.Thread(target=rank, args=(r,)) for r in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    assert [a.log2_scale for a in accs] == [min(scales)] * 2 and [a.n for a in accs] == [600, 600]
    ref = score(np.vstack([s[0] for s in shards]), y, backend="numpy").features  # rescaled as a whole
    for a in accs:
        np.testing.assert_allclose(a.result().features, ref, atol=1e-9, rtol=0)
    assert torch.equal(accs[0].s2, accs[1].s2)  # the ranks end with the same statistics


def test_numpy_merge_of_accumulators_with_different_scales(monkeypatch):
    """Without PyTorch (NumPy statistics), merging accumulators of different 2^k scales rescales the
    other's sums first, as the torch path does."""
    from swnas.scoring import streaming

    monkeypatch.setattr(streaming, "_torch_or_none", lambda: None)
    X, y = planted(600, 8, 3, seed=2)
    Xs = np.vstack([X[:300] * 1e-300, X[300:] * 1e-290])
    a = StreamingScorer("pls").update(Xs[:300], y[:300])
    b = StreamingScorer("pls").update(Xs[300:], y[300:])
    assert isinstance(a.s2, np.ndarray) and a.log2_scale != b.log2_scale
    ref = score(Xs, y, backend="numpy").features
    np.testing.assert_allclose(a.merge(b).result().features, ref, atol=1e-9, rtol=0)


# ------------------------------------------------------------------ PLS-VIP above the rank of X
def test_more_components_than_the_rank_of_x_keep_vip_finite_and_unchanged():
    """X of rank 2 (8 columns): components 3..5 explain nothing, so VIP equals the 2-component VIP
    (kernel PLS stops when X'Y is exhausted, as scikit-learn does) and stays finite."""
    from swnas.scoring import available_backends
    from swnas.scoring.pls import pls_vip_regression

    rng = np.random.default_rng(0)
    y = np.arange(300) % 3
    Z = rng.standard_normal((300, 2)) + y[:, None] * np.array([1.0, -0.5])
    X = Z @ rng.standard_normal((2, 8)) + 5.0
    ref = score(X, y, backend="numpy", n_components=2).features
    assert np.all(np.isfinite(ref)) and ref.max() > 0.5
    for b in ["numpy"] + [b for b in ("cpp", "numba") if b in available_backends()]:
        got = score(X, y, backend=b, n_components=5).features
        np.testing.assert_allclose(got, ref, atol=1e-9, rtol=0, err_msg=b)
    acc = StreamingScorer("pls", n_classes=3, n_components=5).update(X, y)
    np.testing.assert_allclose(acc.result().features, ref, atol=1e-9, rtol=0)
    yc = y + 0.1 * rng.standard_normal(300)
    reg = pls_vip_regression(X, yc, n_components=5)
    np.testing.assert_allclose(reg, pls_vip_regression(X, yc, n_components=2), atol=1e-9, rtol=0)


# ------------------------------------------------------------------ searches with fake networks
def _toolkit(calls: dict | None = None, *, final: bool = True):
    """Dict networks in which every stage grows (the deeper network scores higher), so the sum of a
    network's stages names it (m0 = 1, delta = 1, 3 stages: A1 = 6, A2 = 9, A3 = 12).

    Validation and test rank the candidates differently, and the final epochs change the
    validation order: by validation after the final epochs A2 is best (neither first nor last),
    by validation before them A1, by test accuracy A3.
    """
    from swnas.search import Toolkit

    calls = calls if calls is not None else {}
    for k in ("train", "score", "final"):
        calls.setdefault(k, 0)
    val = {3: 0.10, 6: 0.90, 9: 0.50, 12: 0.60}
    top1 = {3: 0.05, 6: 0.10, 9: 0.20, 12: 0.30}
    final_val = {6: 0.50, 9: 0.90, 12: 0.60}
    final_top1 = {6: 0.40, 9: 0.45, 12: 0.95}

    def train(m, seed):
        calls["train"] += 1
        s = sum(m["stages"])
        return {"top1": top1[s], "top5": 1.0, "seconds": 0.0, "epochs": 1, "val_top1": val[s]}

    def final_train(m, seed, epochs, ckpt_dir):
        calls["final"] += 1
        m["final_epochs"] = epochs
        s = sum(m["stages"])
        return {"top1": final_top1[s], "top5": 1.0, "seconds": 0.0, "epochs": epochs, "val_top1": final_val[s]}

    def do_score(m):
        calls["score"] += 1
        return [float(s) for s in m["stages"]]

    return Toolkit(
        build=lambda stages, seed: {"stages": list(stages)},
        train=train,
        score=do_score,
        measure=lambda m, s: {
            "depth": 2 * sum(m["stages"]) + 2,
            "params": 100 * sum(m["stages"]),
            "macs": 1000 * sum(m["stages"]),
            "memory": 1,
            "peak_memory": 1,
            "latency": 0.0,
            "carbon": 0.0,
        },
        save=lambda m, p: Path(p).write_text(json.dumps(m)),
        load=lambda p: json.loads(Path(p).read_text()),
        spec=lambda m: {"module": "fake", "stages": m["stages"]},
        final_train=final_train if final else None,
    )


def _cfg(**kw):
    from swnas.search import SearchConfig

    base = dict(iterations=3, stages=3, m0=1, delta=1, dataset="digits", final_epochs=2, val_split=0.1)
    base.update(kw)
    return SearchConfig(**base)


def test_best_is_chosen_by_validation_after_the_final_epochs_not_test_nor_position(tmp_path):
    from swnas.search import run_search

    res = run_search(_cfg(), tmp_path / "s", toolkit=_toolkit(), echo=None)
    nets = res.networks
    assert res.candidates == [2, 4, 6] and res.state["final"] == 6
    assert res.best == 4  # A2: validation after the final epochs
    assert max(res.candidates, key=lambda i: nets[i]["metrics"]["val_top1"]) == 2  # before them: A1
    assert max(res.candidates, key=lambda i: nets[i]["final"]["top1"]) == 6  # on test: A3
    no_final = run_search(_cfg(final_epochs=0), tmp_path / "n", toolkit=_toolkit(final=False), echo=None)
    assert no_final.best == 2  # without final epochs: validation as trained, A1


def _summary(vals: list[float | None], finals: list[float | None] | None = None) -> dict:
    """A search.json of A0 and candidates with these validation accuracies, summarised."""
    from swnas.search.state import SearchState

    nets = [{"index": 0, "role": "A", "iteration": 0, "stages": [1], "metrics": {"val_top1": 0.99}}]
    for k, v in enumerate(vals, start=1):
        nets.append({"index": 2 * k - 1, "role": "T", "iteration": k, "stages": [1], "metrics": {"val_top1": 1.0}})
        net = {"index": 2 * k, "role": "A", "iteration": k, "stages": [1], "metrics": {"val_top1": v}}
        if finals is not None and finals[k - 1] is not None:
            net["final"] = {"epochs": 1, "val_top1": finals[k - 1]}
        nets.append(net)
    st = SearchState(
        {"networks": nets, "candidates": [2 * k for k in range(1, len(vals) + 1)], "iterations": [], "config": {}}
    )
    st.update_summary()
    return st.doc


def test_a_validation_tie_goes_to_the_earlier_candidate():
    assert _summary([0.5, 0.7, 0.7])["best"] == 4  # A2 and A3 tie: A2
    assert _summary([0.7, 0.5, 0.7])["best"] == 2  # A1 and A3 tie: A1
    assert _summary([0.5, 0.5, 0.5])["best"] == 2
    # the final epochs' accuracy decides when present, ties again to the earlier one
    assert _summary([0.9, 0.1, 0.1], finals=[0.3, 0.6, 0.6])["best"] == 4
    # A0 and the T networks never compete, however well they do on validation
    doc = _summary([0.2, 0.1])
    assert doc["best"] == 2 and doc["final"] == 4
    assert _summary([None, None])["best"] is None  # no validation split: no best


def test_resuming_a_search_that_stopped_early_trains_nothing(tmp_path):
    from swnas.search import comparable_state, run_search

    from dataclasses import replace

    def never_grows(calls=None):  # the deeper network always scores lower
        return replace(_toolkit(calls), score=lambda m: [1.0 / s for s in m["stages"]])

    first = run_search(_cfg(stop_early=True), tmp_path / "s", toolkit=never_grows(), echo=None)
    assert first.status == "stopped_early" and len(first.networks) == 2 and first.candidates == []
    calls: dict = {}
    again = run_search(None, tmp_path / "s", toolkit=never_grows(calls), resume=True, echo=None)
    assert calls == {"train": 0, "score": 0, "final": 0}
    assert again.status == "stopped_early" and len(again.networks) == 2
    assert comparable_state(again.state) == comparable_state(first.state)


# ------------------------------------------------------------------ the final epochs' learning rate
@pytest.mark.parametrize("epochs", [200, 4, 9])
def test_final_epochs_continue_at_the_schedules_last_rate(epochs):
    """``paper``: lr / 100 for every final epoch, the rate of the schedule's last step (not the
    base rate, nor a new schedule that drops again at its own milestones)."""
    from swnas.training.recipes import ScheduleFactor, get_recipe
    from swnas.search.toolkit import final_recipe

    rec = get_recipe("paper", epochs=epochs)
    steps = 7
    last = rec.lr * ScheduleFactor(rec, steps)(steps * rec.epochs - 1)
    assert last == pytest.approx(rec.lr * rec.gamma**2, rel=1e-15)
    fin = final_recipe(rec, 5)
    assert fin.epochs == 5 and fin.lr == pytest.approx(last, rel=1e-15)
    f = ScheduleFactor(fin, steps)
    assert {fin.lr * f(s) for s in range(steps * fin.epochs)} == {fin.lr}  # constant
    assert (fin.batch_size, fin.momentum, fin.weight_decay) == (rec.batch_size, rec.momentum, rec.weight_decay)


@pytest.mark.parametrize("epochs", [200, 6])
def test_final_epochs_continue_the_time_based_decay(epochs):
    """``original``: Keras' ``decay=1e-6`` divides the rate by ``1 + d * iteration``; the final
    epochs go on from the training's last iteration (the rate of step k of the final run is that
    of step T + k of one long run), not from iteration 0 (about 21% higher after 200 epochs)."""
    from swnas.training.recipes import ScheduleFactor, get_recipe
    from swnas.search.toolkit import final_recipe

    rec = get_recipe("original", epochs=epochs)
    steps = 1055  # 45,000 images x 3 copies / 128
    train = ScheduleFactor(rec, steps)
    fin = final_recipe(rec, 3)
    f = ScheduleFactor(fin, steps)
    total = steps * rec.epochs
    for k in (0, 1, steps, steps * fin.epochs - 1):
        assert fin.lr * f(k) == pytest.approx(rec.lr * train(total + k), rel=1e-12)
    assert fin.lr * f(0) < rec.lr * train(total - 1)  # below the training's last rate, never a jump up
    again = final_recipe(fin, 2)  # a second continuation counts both runs
    assert again.decay_offset_epochs == rec.epochs + fin.epochs


# ------------------------------------------------------------------ --track jsonl on resume
def test_track_jsonl_is_appended_to_on_resume(tmp_path, capsys, monkeypatch):
    import swnas.search as search_mod
    from test_reliability import SMALL, Calls, fake_factory, run

    out = tmp_path / "s"
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", fake_factory(Calls(), fail_score=1))
    assert run(["search", *SMALL, "--out", out, "--track", "jsonl"], capsys)[0] == 2
    first = (out / "track.jsonl").read_text()
    assert first.count('"event": "config"') == 1
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", fake_factory(Calls()))
    assert run(["search", "--resume", out, "--no-report", "--quiet", "--track", "jsonl"], capsys)[0] == 0
    after = (out / "track.jsonl").read_text()
    assert after.startswith(first) and after.count('"event": "config"') == 2  # the earlier events kept
    assert [json.loads(ln)["event"] for ln in after.splitlines()].count("scores") == 1


# ------------------------------------------------------------------ swnas report DIR1 DIR2
def test_compare_best_column_is_the_searchs_best_not_its_last_or_first(tmp_path, capsys):
    import csv

    from swnas.cli import main
    from swnas.search import run_search

    dirs = [tmp_path / "one", tmp_path / "two"]
    run_search(_cfg(), dirs[0], toolkit=_toolkit(), echo=None)
    run_search(_cfg(iterations=2, final_epochs=0), dirs[1], toolkit=_toolkit(final=False), echo=None)
    out = tmp_path / "cmp"
    assert main(["report", *map(str, dirs), "--out-compare", str(out)]) == 0, capsys.readouterr().err
    with open(out / "compare.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    best = {(r["search"], r["iteration"]) for r in rows if r["best"] == "True"}
    assert best == {("one", "2"), ("two", "1")}  # one: A2 of A1..A3; two (no final epochs): A1 of A1, A2
    one = [r for r in rows if r["search"] == "one"]
    assert [float(r["final_val_top1"]) for r in one] == [0.5, 0.9, 0.6]
    assert [float(r["val_top1"]) for r in one] == [0.9, 0.5, 0.6] and float(one[2]["final_top1"]) == 0.95
    md = (out / "compare.md").read_text()
    best_lines = [ln for ln in md.splitlines() if ln.rstrip().endswith("| **best** |")]
    assert [ln.split("|")[3].strip() for ln in best_lines] == ["2", "1"]
    assert "best: A2" in md and "best: A1" in md


# ------------------------------------------------------------------ paper tables
def test_a_measured_row_pairs_with_the_published_row_of_its_own_setting():
    """Table III prints it=3 under 'scratch' and under 'transfer': the measured transfer it=3 goes
    after the published transfer it=3, never after the scratch one of the same name."""
    from swnas.paper import side_by_side

    measured = [
        {"setting": "transfer", "row": "it=3", "top1": 11.0},
        {"setting": "scratch", "row": "it=3", "top1": 22.0},
    ]
    t = side_by_side("table3", measured)
    labels = [(r.source, r.values["setting"], r.values["row"]) for r in t.rows]
    for setting, top1 in (("transfer", 11.0), ("scratch", 22.0)):
        i = labels.index(("measured", setting, "it=3"))
        assert labels[i - 1] == ("paper", setting, "it=3") and t.rows[i].values["top1"] == top1


# ------------------------------------------------------------------ weights after the final epochs
def test_export_and_ensemble_load_the_weights_after_the_final_epochs(tmp_path, monkeypatch):
    """Real tiny networks whose 'final epochs' add 1 to every weight: export and the ensemble must
    read the final checkpoint, not the network as the search trained it."""
    torch = pytest.importorskip("torch")
    from swnas import models as M
    from swnas.reporting.report import export_candidate
    from swnas.search import Toolkit, final_record, load_recorded, run_search

    def build(stages, seed):
        torch.manual_seed(seed)
        return M.build(M.ArchSpec(module="basic", stages=list(stages), num_classes=10, input_size=8, in_channels=1))

    def final_train(m, seed, epochs, ckpt_dir):
        with torch.no_grad():
            for p in m.parameters():
                p.add_(1.0)
        return {"top1": 0.5, "top5": 1.0, "seconds": 0.0, "epochs": epochs, "val_top1": 0.5}

    def meas(m, s):
        return {
            "depth": m.spec.depth,
            "params": sum(p.numel() for p in m.parameters()),
            "macs": 1,
            "memory": 1,
            "peak_memory": None,
            "latency": None,
            "carbon": 0.0,
        }

    tk = Toolkit(
        build=build,
        train=lambda m, seed: {"top1": 0.1, "top5": 0.5, "seconds": 0.0, "epochs": 0, "val_top1": 0.4},
        score=lambda m: [float(len(s)) for s in m.stages],
        measure=meas,
        save=M.save_model,
        load=M.load,
        spec=lambda m: m.spec.to_dict(),
        final_train=final_train,
    )
    out = tmp_path / "s"
    res = run_search(_cfg(iterations=1, final_epochs=1), out, toolkit=tk, echo=None)
    net = res.networks[res.candidates[0]]
    assert net["final"]["checkpoint"] != net["checkpoint"]
    before = load_recorded(out, net).state_dict()
    after = load_recorded(out, final_record(net)).state_dict()
    (path,) = export_candidate(out, "A1", tmp_path / "a1.pt")
    got = M.load(path).state_dict()
    params = [k for k, _ in load_recorded(out, net).named_parameters()]
    assert params and all(torch.equal(got[k], after[k]) for k in after)
    assert all(torch.equal(after[k], before[k] + 1.0) for k in params)
    assert torch.load(path, map_location="cpu", weights_only=True)["extra"]["final_epochs"] is True
    import swnas.reporting.ensemble as ens_mod

    seen = []
    monkeypatch.setattr(ens_mod, "evaluate_ensemble_on", lambda models, *a, **k: seen.extend(models) or "done")
    assert ens_mod.ensemble_search(out, device="cpu", write=False) == "done"
    assert len(seen) == 1 and all(torch.equal(seen[0].state_dict()[k], after[k]) for k in after)


def test_a_final_record_of_other_epochs_is_trained_again(tmp_path):
    """A candidate's final record counts only for the ``final_epochs`` asked now (a state whose
    final_epochs was edited after the final training runs it again, never reuses the old one)."""
    from swnas.search import run_search

    out = tmp_path / "s"
    run_search(_cfg(iterations=2, final_epochs=2), out, toolkit=_toolkit(), echo=None)
    state = json.loads((out / "search.json").read_text())
    state["config"]["final_epochs"] = 3
    (out / "search.json").write_text(json.dumps(state))
    calls: dict = {}
    res = run_search(None, out, toolkit=_toolkit(calls), resume=True, echo=None)
    assert calls == {"train": 0, "score": 0, "final": 2}
    assert [res.networks[i]["final"]["epochs"] for i in res.candidates] == [3, 3]


# ------------------------------------------------------------------ the validation split
def test_stratified_split_keeps_a_training_sample_of_every_class():
    """Classes of 1, 2 and 3 samples at fraction 0.9: each keeps one training sample, and each of
    at least two samples gives at least one to validation."""
    from swnas.data import stratified_split

    labels = np.array([0, 1, 1, 2, 2, 2, 3] + [4] * 10)
    tr, va = stratified_split(labels, 0.9, seed=0)
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(len(labels)))
    assert set(labels[tr]) == {0, 1, 2, 3, 4}  # every class trains
    assert np.bincount(labels[va], minlength=5).tolist() == [0, 1, 2, 0, 9]
    tr, va = stratified_split(labels, 0.01, seed=0)
    assert np.bincount(labels[va], minlength=5).tolist() == [0, 1, 1, 0, 1]  # at least one where possible


def test_final_epochs_cannot_change_once_a_candidate_had_them(tmp_path):
    from swnas.search import resume_config, run_search

    out = tmp_path / "s"
    run_search(_cfg(iterations=1, final_epochs=2), out, toolkit=_toolkit(), echo=None)
    with pytest.raises(InputError, match="already had their final training"):
        resume_config(out, {"final_epochs": 5})
    assert resume_config(out, {"final_epochs": 2}).final_epochs == 2  # the same value is no change


# ------------------------------------------------------------------ the compiled statistics pass
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpp_statistics_pass_over_groups_of_several_chunks(dtype):
    """Few classes take the row-chunked pass (256-row chunks in at most 16 groups): 9,001 rows make
    groups of more than two chunks plus a partial one, which a problem of a few thousand rows
    never reaches."""
    from swnas.scoring import available_backends

    if "cpp" not in available_backends():
        pytest.skip("the compiled core is not built")
    from swnas.scoring.backends import core

    rng = np.random.default_rng(5)
    n, p, c = 9001, 6, 3
    y = rng.integers(0, c, n)
    X = (rng.standard_normal((n, p)) + 50.0).astype(dtype)
    colsum, sq, class_sums, counts = core().pls_stats(X, y.astype(np.int32), c)
    Xd = X.astype(np.float64)
    np.testing.assert_array_equal(counts, np.bincount(y, minlength=c))
    np.testing.assert_allclose(colsum, Xd.sum(axis=0), rtol=1e-13)
    np.testing.assert_allclose(sq, ((Xd - Xd.mean(axis=0)) ** 2).sum(axis=0), rtol=1e-9)
    np.testing.assert_allclose(class_sums, np.eye(c)[y].T @ Xd, rtol=1e-13)
