"""The swnas command line: bad flags and paths give clear errors; score, backends, search/resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import swnas.search as search_mod
from swnas.cli import main
from swnas.search import Toolkit


def run(argv, capsys):
    """main(argv) -> (exit code, stdout, stderr); argparse's SystemExit becomes its code."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------- bad flags / paths
@pytest.mark.parametrize(
    "argv, needle",
    [
        (["search", "--criterion", "vip"], "invalid choice: 'vip'"),
        (["search", "--m0", "0"], "expected a positive integer"),
        (["search", "--iterations", "two"], "expected an integer >= 0"),
        (["search", "--lr", "-1"], "expected a positive number"),
        (["search", "--module", "dense"], "invalid choice: 'dense'"),
        (["search", "--param", "n_components"], "expected KEY=VALUE"),
        (["train", "--stages", "7,x,7", "--out", "o"], "comma-separated"),
        (["train", "--stages", "7,7,7"], "--out"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_flags_exit_2(argv, needle, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2
    assert needle in err


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["score", "{tmp}/missing.npy", "{tmp}/y.npy"], "FEATURES: no such file"),
        (["score", "{tmp}/X.npy", "{tmp}/missing.txt"], "LABELS: no such file"),
        (["score", "{tmp}/corrupt.npy", "{tmp}/y.npy"], "FEATURES: cannot read"),
        (["score", "{tmp}/X.xlsx", "{tmp}/y.npy"], "FEATURES: unsupported file type .xlsx"),
        (["score", "{tmp}/two.npz", "{tmp}/y.npy"], "holds arrays"),
        (["score", "{tmp}/X.npy", "{tmp}/y.npy", "--backend", "tpu"], "unknown backend 'tpu'"),
        (["score", "{tmp}/X.npy", "{tmp}/short.npy"], "y"),
        (["report", "{tmp}/nowhere"], "no such directory"),
        (["ensemble", "{tmp}"], "search state: no such file"),
        (["export", "{tmp}/nowhere", "--to", "{tmp}/m.pt"], "no such directory"),
        (["search", "--resume", "{tmp}/nowhere"], "no such directory"),
        (["search", "--data", "{tmp}/nowhere.npz", "--out", "{tmp}/s"], "data: no such file or directory"),
        (["search", "--transfer", "{tmp}/donor.pt", "--out", "{tmp}/s"], "donor checkpoint not found"),
        (["train", "--out", "{tmp}/t"], "give --spec"),
        (["train", "--spec", "{tmp}/missing.json", "--out", "{tmp}/t"], "--spec: no such file"),
    ],
)
def test_bad_values_and_paths_exit_2_without_traceback(argv, needle, tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "X.npy", rng.normal(size=(30, 4)))
    np.save(tmp_path / "y.npy", np.arange(30) % 3)
    np.save(tmp_path / "short.npy", np.arange(29) % 3)
    (tmp_path / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "X.xlsx").write_text("1,2\n")
    np.savez(tmp_path / "two.npz", a=np.zeros((3, 2)), b=np.zeros(3))
    code, out, err = run([a.format(tmp=tmp_path) for a in argv], capsys)
    assert code == 2, err
    assert needle in err
    assert "Traceback" not in err and err.startswith(f"swnas {argv[0]}: error:")


@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--param", "bogus=1"], "unknown parameter(s) bogus"),
        (["--device", "cuda:99"], "device: 'cuda:99'"),
        (["--backend", "nosuch"], "nosuch"),
    ],
)
def test_refused_search_options_leave_nothing_in_out(flags, needle, tmp_path, capsys):
    # options are checked before OUT gets its log or config.yaml: a refused run leaves no trace
    out = tmp_path / "s"
    code, _, err = run(["search", "--dataset", "digits", "--out", str(out), "--iterations", "1", *flags], capsys)
    assert code == 2 and needle in err and "Traceback" not in err, err
    assert not out.exists() or not any(out.iterdir()), sorted(p.name for p in out.iterdir())


def test_search_refused_after_loading_the_data_removes_the_out_it_made(tmp_path, capsys):
    # 3 images cannot hold out a validation split: refused once the data is loaded, after the log
    # and config.yaml were written; the directory this command made goes again
    out = tmp_path / "s"
    code, _, err = run(["search", "--dataset", "digits", "--out", str(out), "--subset", "3"], capsys)
    assert code == 2 and "holds out no samples" in err, err
    assert not out.exists()
    # a directory the user made is kept (emptied of nothing it held before)
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, err = run(["search", "--dataset", "digits", "--out", str(out), "--subset", "3"], capsys)
    assert code == 2 and (out / "notes.txt").read_text() == "mine"


def test_untrained_check_keeps_any_trained_work(tmp_path):
    from swnas.cli import _remove_untrained

    for i, (name, content) in enumerate(
        (
            ("checkpoints/00-A0.pt", b"x"),
            ("training/00-A0/last.pt", b"x"),
            ("search.json", b'{"networks": [{"tag": "00-A0"}]}'),
            ("search.json", b"{broken"),
        )
    ):
        out = tmp_path / f"run{i}"
        (out / name).parent.mkdir(parents=True)
        (out / name).write_bytes(content)
        _remove_untrained(out)
        assert (out / name).exists(), name
    out = tmp_path / "empty-state"
    (out / "checkpoints").mkdir(parents=True)
    (out / "search.json").write_text('{"networks": []}')
    _remove_untrained(out)
    assert not out.exists()


def test_missing_tracker_package_leaves_nothing_in_out(tmp_path, capsys, monkeypatch):
    import swnas.search.session as session
    from swnas.errors import BackendUnavailableError

    def refuse(*_a, **_k):
        raise BackendUnavailableError("--track mlflow needs the mlflow package (pip install mlflow)")

    monkeypatch.setattr(session, "make_tracker", refuse)
    out = tmp_path / "s"
    code, _, err = run(["search", "--dataset", "digits", "--out", str(out), "--track", "mlflow"], capsys)
    assert code == 2 and "needs the mlflow package" in err, err
    assert not out.exists() or not any(out.iterdir()), sorted(p.name for p in out.iterdir())


# ------------------------------------------------------------------------------- score / backends
def test_score_npz_and_txt_matches_library(tmp_path, capsys, planted_problem):
    from swnas.scoring import score

    X, y = planted_problem(80, 6, 3, seed=1)
    np.savez(tmp_path / "f.npz", X=X, y=y)
    np.savetxt(tmp_path / "labels.txt", y, fmt="%d")
    code, out, err = run(
        [
            "score",
            str(tmp_path / "f.npz"),
            str(tmp_path / "labels.txt"),
            "--json",
            "--param",
            "n_components=3",
            "--backend",
            "numpy",
            "--top",
            "3",
        ],
        capsys,
    )
    assert code == 0, err
    d = json.loads(out)
    ref = score(X, y, criterion="pls", backend="numpy", n_components=3)
    assert d["stage"] == pytest.approx(ref.stage, rel=1e-12)
    np.testing.assert_allclose(d["features"], ref.features, rtol=1e-12)
    assert [t["feature"] for t in d["top"]] == list(np.argsort(-ref.features, kind="stable")[:3])
    assert d["params"]["n_components"] == 3
    # plain text output names the stage score and the best feature
    np.save(tmp_path / "X.npy", X)
    code, out, err = run(["score", str(tmp_path / "X.npy"), str(tmp_path / "f.npz")], capsys)
    assert code == 0, err
    assert "stage score:" in out and f"feature {int(np.argmax(ref.features)):6d}" in out


def test_backends_lists_reasons(capsys):
    from swnas.scoring import BACKENDS, available_backends, backend_status

    code, out, err = run(["backends"], capsys)
    assert code == 0
    assert out.splitlines()[0] == "available: " + ", ".join(available_backends())
    for b in BACKENDS:
        ok, why = backend_status(b)
        assert any(line.split()[:2] == [b, "yes" if ok else "no"] for line in out.splitlines()[1:])
        if not ok:
            assert why in out


def test_python_dash_m_runs_the_cli(tmp_path):
    # run outside the source tree so that `-m swnas` finds the installed package
    r = subprocess.run(
        [sys.executable, "-m", "swnas", "search", "--stages", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 2 and "expected a positive integer" in r.stderr


# ------------------------------------------------------------------------------- search with fakes
def _fake_toolkit(cfg, progress=True):
    def score(m):
        return [float(s) if i == 0 else -float(s) for i, s in enumerate(m["stages"])]

    return Toolkit(
        build=lambda stages, seed: {"stages": list(stages), "seed": seed},
        train=lambda m, seed: {"top1": 0.5 + 0.01 * sum(m["stages"]), "top5": 0.9, "seconds": 0.0, "epochs": 1},
        score=score,
        measure=lambda m, s: {
            "depth": 2 * sum(m["stages"]) + 2,
            "params": sum(m["stages"]),
            "macs": 1,
            "memory": 1,
            "latency": 0.0,
            "carbon": 0.0,
        },
        save=lambda m, p: Path(p).write_text(json.dumps(m)),
        load=lambda p: json.loads(Path(p).read_text()),
        spec=lambda m: {"stages": m["stages"]},
    )


def test_search_cli_prints_result_and_resume_checks_flags(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", _fake_toolkit)
    out = tmp_path / "s"
    code, o, err = run(
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
            "--out",
            str(out),
            "--no-report",
            "--param",
            "n_components=3",
        ],
        capsys,
    )
    assert code == 0, err
    assert "found architecture (last A): A2: stages [3, 1, 1]" in o  # candidates are named A1..An everywhere
    assert "2 candidates (A1..A2; A0 is the starting network)" in o
    assert "[step 1/7] training initial network A" in o and "ETA" in o
    assert "iteration 2 stage 1: score A 2 vs T 3 -> grow by 1" in o
    state = json.loads((out / "search.json").read_text())
    assert state["config"]["m0"] == 1 and state["config"]["score_params"] == {"n_components": 3}
    assert state["config"]["stages"] == 3 and state["config"]["criterion"] == "pls"

    code, o, err = run(["search", "--resume", str(out), "--m0", "2"], capsys)
    assert code == 2 and "--m0 2 (stored 1)" in err and "Traceback" not in err
    code, o, err = run(["search", "--resume", str(out), "--param", "n_components=2"], capsys)
    assert code == 2 and "n_components" in err
    code, o, err = run(["search", "--resume", str(out), "--out", str(tmp_path / "other")], capsys)
    assert code == 2 and "differs from --resume" in err
    code, o, err = run(["search", "--out", str(out)], capsys)
    assert code == 2 and "already holds a search" in err
    # same values, the device and quiet may be given again
    code, o, err = run(
        ["search", "--resume", str(out), "--m0", "1", "--device", "cpu", "--quiet", "--no-report"], capsys
    )
    assert code == 0, err
    assert "resuming" not in o and "search complete: 5 networks trained, 2 candidates" in o
    assert json.loads((out / "search.json").read_text()) == state


# ------------------------------------------------------------------------------- real modules, tiny
def test_train_baseline_appears_in_report(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(search_mod.toolkit, "default_toolkit", _fake_toolkit)
    out = tmp_path / "s"
    assert (
        run(
            [
                "search",
                "--dataset",
                "digits",
                "--iterations",
                "1",
                "--m0",
                "1",
                "--delta",
                "1",
                "--out",
                str(out),
                "--quiet",
                "--no-report",
            ],
            capsys,
        )[0]
        == 0
    )
    spec = json.loads((out / "search.json").read_text())
    code, o, err = run(
        [
            "train",
            "--module",
            "basic",
            "--stages",
            "1,1,1",
            "--dataset",
            "digits",
            "--subset",
            "200",
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "--device",
            "cpu",
            "--name",
            "ResNet-8",
            "--out",
            str(out / "baselines" / "resnet8"),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads((out / "baselines" / "resnet8" / "train.json").read_text())
    assert res["stages"] == [1, 1, 1] and res["depth"] == 8 and res["spec"]["input_size"] == 8
    assert (out / "baselines" / "resnet8" / "model.pt").is_file()
    assert f"top-1 {100 * res['metrics']['top1']:.2f}%" in o
    code, o, err = run(["report", str(out), "--no-ensemble"], capsys)
    assert code == 0, err
    line = next(ln for ln in o.splitlines() if ln.startswith("| ResNet-8 |"))
    assert f"{100 * res['metrics']['top1']:.2f}" in line and "| 8 |" in line
    assert len(spec["candidates"]) == 1  # A_1 only: A0 is the starting network


def test_transfer_toolkit_builds_from_the_donor(tmp_path):
    torch = pytest.importorskip("torch")
    from swnas import models as M
    from swnas.errors import InputError
    from swnas.search import SearchConfig, default_toolkit

    torch.manual_seed(3)
    donor = M.build(M.ArchSpec(module="basic", stages=[3, 3, 3], num_classes=10, input_size=8, in_channels=1))
    M.save_model(donor, tmp_path / "donor.pt")
    cfg = SearchConfig(dataset="digits", m0=1, delta=2, transfer=str(tmp_path / "donor.pt"), device="cpu").resolved()
    tk = default_toolkit(cfg, progress=False)
    net = tk.build([1, 3, 2], 0)
    assert net.spec.stages == [1, 3, 2]
    for i, n in enumerate([1, 3, 2]):
        for j in range(n):  # the first modules of each donor stage
            for (k, a), b in zip(net.stages[i][j].state_dict().items(), donor.stages[i][j].state_dict().values()):
                torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    dsd = donor.state_dict()
    outside = [k for k in net.state_dict() if not k.startswith("stages.")]
    assert outside  # stem and head
    for k in outside:
        torch.testing.assert_close(net.state_dict()[k], dsd[k], rtol=0, atol=0, msg=k)
    with pytest.raises(InputError, match="too shallow"):
        default_toolkit(SearchConfig(dataset="digits", m0=2, delta=2, transfer=str(tmp_path / "donor.pt")).resolved())
    with pytest.raises(InputError, match="give --module basic --stages 3"):
        default_toolkit(
            SearchConfig(dataset="digits", m0=1, delta=1, stages=4, transfer=str(tmp_path / "donor.pt")).resolved()
        )
