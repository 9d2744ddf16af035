"""One name per candidate (A1, A2, ...) in every output; ``swnas export --candidate best`` exports the best."""

from __future__ import annotations

import json

import pytest

from swnas.cli import main
from swnas.errors import InputError
from swnas.reporting.report import export_candidate, write_report
from swnas.search import SearchConfig, Toolkit, candidate_name, pick_candidate, run_search

torch = pytest.importorskip("torch")


def _toolkit(val: bool) -> Toolkit:
    """Real (untrained) tiny ResNets; validation accuracy falls with depth, so A1 is best, not A2 (the last)."""
    from swnas import models as M

    def build(stages, seed):
        torch.manual_seed(seed)
        return M.build(M.ArchSpec(module="basic", stages=list(stages), num_classes=10, input_size=8, in_channels=1))

    def train(m, seed):
        s = sum(len(st) for st in m.stages)
        res = {"top1": 0.5 + 0.01 * s, "top5": 0.9, "seconds": 0.0, "epochs": 0}
        if val:
            res["val_top1"] = 0.9 - 0.05 * s
        return res

    def meas(model, seconds):
        params = sum(p.numel() for p in model.parameters())
        return {
            "depth": model.spec.depth,
            "params": params,
            "macs": 100 * params,
            "memory": 4 * params,
            "peak_memory": None,
            "latency": None,
            "carbon": 0.0,
        }

    return Toolkit(
        build=build,
        train=train,
        score=lambda m: [float(len(s)) for s in m.stages],
        measure=meas,
        save=M.save_model,
        load=M.load,
        spec=lambda m: m.spec.to_dict(),
    )


@pytest.fixture(scope="module")
def searches(tmp_path_factory):
    base = tmp_path_factory.mktemp("cands")
    out = {}
    for val in (True, False):
        d = base / ("val" if val else "noval")
        run_search(
            SearchConfig(iterations=2, stages=3, m0=1, delta=1, dataset="digits", val_split=0.1 if val else 0.0),
            d,
            toolkit=_toolkit(val),
            echo=None,
        )
        out[val] = d
    return out


def _state(d):
    return json.loads((d / "search.json").read_text())


def _exported_index(path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["extra"]["network"])


def test_best_is_not_the_last_in_this_fixture(searches):
    st = _state(searches[True])
    assert st["candidates"] == [2, 4] and st["best"] == 2  # A1 is best, A2 is last
    assert [candidate_name(st["networks"][i]) for i in st["candidates"]] == ["A1", "A2"]
    assert pick_candidate(st, "best") == 2 and pick_candidate(st, None) == 2
    assert pick_candidate(st, "last") == 4 and pick_candidate(st, "A2") == 4 and pick_candidate(st, "a1") == 2
    nobest = _state(searches[False])
    assert nobest["best"] is None and pick_candidate(nobest, "best") == 4  # no validation split: the last
    with pytest.raises(InputError, match="name the candidate.*A2"):
        pick_candidate(st, "2")
    with pytest.raises(InputError, match="A1, A2"):
        pick_candidate(st, "A3")


def test_export_default_is_the_best_candidate(searches, tmp_path, capsys):
    d = searches[True]
    st = _state(d)
    assert main(["export", str(d), "--to", str(tmp_path / "best.pt")]) == 0
    out = capsys.readouterr().out
    assert _exported_index(tmp_path / "best.pt") == st["best"] == 2
    net = st["networks"][2]
    assert f"exported A1 (best): stages {net['stages']}" in out
    assert f"{100 * net['metrics']['val_top1']:.2f}%" in out and f"{100 * net['metrics']['top1']:.2f}%" in out
    assert main(["export", str(d), "--candidate", "A2", "--to", str(tmp_path / "a2.pt")]) == 0
    out = capsys.readouterr().out
    assert _exported_index(tmp_path / "a2.pt") == 4 and "exported A2: stages" in out and "(best)" not in out
    # the exported file names the candidate as the report does
    extra = torch.load(tmp_path / "a2.pt", map_location="cpu", weights_only=True)["extra"]
    assert extra["candidate"] == "A2"


def test_export_refuses_positions(searches, tmp_path, capsys):
    code = main(["export", str(searches[True]), "--candidate", "2", "--to", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err
    assert code == 2 and "--candidate A2" in err and not (tmp_path / "x.pt").exists()
    with pytest.raises(InputError, match="candidate name"):
        export_candidate(searches[True], 1, tmp_path / "y.pt")


def test_export_without_validation_takes_the_last(searches, tmp_path, capsys):
    assert main(["export", str(searches[False]), "--to", str(tmp_path / "l.pt")]) == 0
    assert _exported_index(tmp_path / "l.pt") == 4
    assert "exported A2: stages" in capsys.readouterr().out


def test_report_names_candidates_a1_to_an_and_marks_the_best(searches):
    rep = write_report(searches[True], ensemble=False)
    cands = [r for r in rep.rows if r["kind"] == "candidate"]
    assert [r["name"] for r in cands] == ["A1", "A2"] and [r["best"] for r in cands] == [True, False]
    assert "| A1 (best) |" in rep.markdown and "| A2 |" in rep.markdown and "C0" not in rep.markdown
    csv = rep.table_csv.read_text().splitlines()
    assert csv[0].endswith(",best") and csv[1].startswith("A1,") and csv[1].endswith(",True")
