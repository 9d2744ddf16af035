"""``swnas study``: settings checked and stored, resumable, a refused change of settings, and the summary's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swnas.errors import InputError
from swnas.experiments.study import StudyConfig, _verdict, run_study, summarize


def _tiny(**kw) -> StudyConfig:
    base = dict(
        dataset="digits",
        seeds=[0, 1],
        arms=["pls-inherit", "random-inherit", "baselines"],
        subset=200,
        epochs=2,
        iterations=1,
        batch_size=50,
        lr=0.05,
        baseline_depths=[1],
        final_epochs=1,
    )
    base.update(kw)
    return StudyConfig(**base)


@pytest.mark.slow  # 44 s under load (real trainings of 2 arms x 2 seeds + baselines); CI runs it
def test_study_runs_every_arm_and_seed_then_resumes_without_training(tmp_path, monkeypatch):
    monkeypatch.setenv("SWNAS_PROGRESS", "lines")
    out = tmp_path / "study"
    run_study(_tiny(), out, echo=None)
    for arm in ("pls-inherit", "random-inherit"):
        for seed in (0, 1):
            s = json.loads((out / arm / f"seed{seed}" / "search.json").read_text())
            assert s["status"] == "complete" and s["config"]["seed"] == seed and s["config"]["inherit"] is True
            assert s["config"]["criterion"] == arm.split("-")[0]
    b = json.loads((out / "baselines" / "seed1" / "uniform-1" / "train.json").read_text())
    # the baseline trains as long as a candidate with its final epochs, on the search's training images
    assert b["metrics"]["epochs"] == 3 and b["options"]["val_split"] == 0.1 and b["metrics"]["val_top1"] is not None
    s0 = json.loads((out / "pls-inherit" / "seed1" / "search.json").read_text())
    assert b["metrics"]["images_trained"] == 3 * s0["networks"][0]["metrics"]["images_trained"] // 2
    md = (out / "summary.md").read_text()
    assert "## pls-inherit" in md and "## Answers" in md and "paired by seed, n = 2" in md
    assert (out / "accuracy_vs_macs.png").stat().st_size > 0 and (out / "accuracy_vs_images.png").is_file()
    rows = (out / "summary.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 2 + 2  # header, 2 search arms x 2 seeds, 1 baseline x 2 seeds
    before = {p: p.stat().st_mtime_ns for p in out.rglob("checkpoints/*.pt")}
    run_study(_tiny(), out, echo=None)  # everything is done: nothing trains again
    assert {p: p.stat().st_mtime_ns for p in out.rglob("checkpoints/*.pt")} == before


def test_study_refuses_other_settings_in_the_same_directory(tmp_path):
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.json").write_text(json.dumps({"format": "swnas-study/1", "config": _tiny().checked().to_dict()}))
    with pytest.raises(InputError, match="other settings.*seeds: stored \\[0, 1\\], asked \\[5\\]"):
        run_study(_tiny(seeds=[5]), out, echo=None)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a study directory"):
        run_study(_tiny(), tmp_path / "busy", echo=None)
    with pytest.raises(InputError, match="unknown arm"):
        _tiny(arms=["pls-inherit", "nope"]).checked()
    with pytest.raises(InputError, match="nasnet cannot grow"):
        _tiny(module="nasnet").checked()


def _fake_search(d: Path, seed: int, top1: float, stages: list, ratio: float = 0.5) -> None:
    d.mkdir(parents=True)
    net = lambda i, it, st, t: {  # noqa: E731
        "index": i,
        "role": "A",
        "iteration": it,
        "stages": st,
        "metrics": {"macs": 1e6 * sum(st), "params": 1e4 * sum(st), "train_seconds": 1.0},
        "final": {"top1": t, "val_top1": t - 0.01},
    }
    doc = {
        "status": "complete",
        "initial": 0,
        "candidates": [1],
        "best": 1,
        "networks": [net(0, 0, [1, 1, 1], 0.1), net(1, 1, stages, top1)],
        "cost": {"images_trained": 1000, "ratio": ratio, "growth_ratio": ratio / 2},
    }
    (d / "search.json").write_text(json.dumps(doc))


def test_summary_pairs_arms_by_seed_and_reports_the_difference(tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    cfg = _tiny(seeds=[0, 1, 2], arms=["pls-inherit", "random-inherit", "pls-scratch"]).checked()
    (out / "study.json").write_text(json.dumps({"format": "swnas-study/1", "config": cfg.to_dict()}))
    for seed, (p, r, s) in enumerate([(0.60, 0.50, 0.61), (0.62, 0.51, 0.60), (0.61, 0.52, 0.62)]):
        _fake_search(out / "pls-inherit" / f"seed{seed}", seed, p, [1, 2, 1])
        _fake_search(out / "random-inherit" / f"seed{seed}", seed, r, [2, 1, 1])
        _fake_search(out / "pls-scratch" / f"seed{seed}", seed, s, [1, 2, 1] if seed else [1, 1, 2], ratio=1.0)
    md = summarize(out).read_text()
    assert "PLS − control = +10.00 points (sd 1.00)" in md and "PLS better" in md
    assert "inherit − scratch = -0.00 points" in md or "inherit − scratch = +0.00 points" in md
    assert "the same growth path in 2 of 3 seed(s)" in md
    assert "Mean ± sd over 3 seed(s): test top-1 61.00 ± 1.00 %" in md


def test_verdict_needs_more_than_the_noise():
    assert "no verdict" in _verdict(0.05, None, None, 1)
    assert "within the seed-to-seed noise" in _verdict(0.01, 0.02, 0.01, 3)
    assert "PLS better" in _verdict(0.05, 0.01, 0.01, 3)
    assert "the control better" in _verdict(-0.05, 0.01, 0.01, 3)
    assert "within" in _verdict(0.05, 0.01, 0.06, 3)  # smaller than the seed-to-seed spread of accuracy
