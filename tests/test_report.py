"""Report files hold the numbers of search.json; the ensemble averages softmax; export round-trips."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from swnas.reporting.ensemble import evaluate_ensemble, softmax, topk_accuracy
from swnas.errors import InputError
from swnas.reporting.report import export_candidate, write_report
from swnas.search import SearchConfig, Toolkit, run_search

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _fake_toolkit():
    def score(m):
        # stage 1 keeps growing, the others never
        return [float(s) if i == 0 else -float(s) for i, s in enumerate(m["stages"])]

    def measure(m, seconds):
        s = sum(m["stages"])
        return {
            "depth": 2 * s + 2,
            "params": 12_345 * s,
            "macs": 678_901 * s,
            "memory": 4 * 12_345 * s,
            "peak_memory": 999 * s,
            "latency": 0.1 * s,
            "carbon": 1e-6 * s,
        }

    return Toolkit(
        build=lambda stages, seed: {"stages": list(stages), "seed": seed},
        train=lambda m, seed: {
            "top1": 0.80 + 0.0123 * m["stages"][0] + 0.0001 * seed,
            "top5": 0.99,
            "seconds": 0.5,
            "epochs": 1,
        },
        score=score,
        measure=measure,
        save=lambda m, p: Path(p).write_text(json.dumps(m)),
        load=lambda p: json.loads(Path(p).read_text()),
        spec=lambda m: {"stages": m["stages"]},
    )


@pytest.fixture
def fake_search(tmp_path):
    out = tmp_path / "search"
    run_search(
        SearchConfig(iterations=2, stages=3, m0=1, delta=1, dataset="digits"), out, toolkit=_fake_toolkit(), echo=None
    )
    return out


def test_report_files_hold_the_numbers(fake_search):
    out = fake_search
    base = out / "baselines" / "resnet-8"
    base.mkdir(parents=True)
    (base / "train.json").write_text(
        json.dumps(
            {
                "name": "ResNet-8",
                "stages": [1, 1, 1],
                "depth": 8,
                "metrics": {
                    "params": 77_777,
                    "macs": 5_555_555,
                    "memory": 311_108,
                    "latency": 0.25,
                    "carbon": 2e-6,
                    "top1": 0.7654,
                    "top5": 0.98,
                },
            }
        )
    )
    rep = write_report(out, ensemble=False)
    for p in (rep.table_md, rep.table_csv, rep.depth_png, rep.accuracy_png):
        assert p.is_file() and p.parent == out / "report"
    assert rep.depth_png.read_bytes()[:8] == PNG_MAGIC and rep.accuracy_png.read_bytes()[:8] == PNG_MAGIC

    state = json.loads((out / "search.json").read_text())
    with open(rep.table_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    cands = [r for r in rows if r["kind"] == "candidate"]
    assert len(cands) == len(state["candidates"]) == 2  # A_1, A_2 (A0 is the starting network)
    md = rep.table_md.read_text()
    for row, idx in zip(cands, state["candidates"]):
        net = state["networks"][idx]
        m = net["metrics"]
        assert int(row["params"]) == m["params"] and int(row["macs"]) == m["macs"]
        assert int(row["depth"]) == net["depth"] and row["stages"] == "-".join(map(str, net["stages"]))
        assert float(row["top1"]) == pytest.approx(m["top1"], abs=1e-12)
        assert float(row["latency_ms"]) == pytest.approx(m["latency"])
        assert f"{100 * m['top1']:.2f}" in md
        assert f"{m['params'] / 1e3:.1f} k" in md
    # the candidates' stage 1 grew each iteration
    assert [r["stages"] for r in cands] == ["2-1-1", "3-1-1"]
    bl = [r for r in rows if r["kind"] == "baseline"]
    assert len(bl) == 1 and bl[0]["name"] == "ResNet-8" and float(bl[0]["top1"]) == 0.7654
    assert "| ResNet-8 |" in md and "76.54" in md
    # decisions are listed
    assert "iteration 1: [1, 1, 1] -> [2, 1, 1]" in md


def test_report_says_why_the_ensemble_is_missing(fake_search):
    rep = write_report(fake_search, ensemble=True)
    assert rep.ensemble is None
    assert "Ensemble not evaluated" in rep.markdown


def test_report_errors(tmp_path):
    with pytest.raises(InputError, match="no such directory"):
        write_report(tmp_path / "missing")
    (tmp_path / "d").mkdir()
    with pytest.raises(InputError, match="search state: no such file"):
        write_report(tmp_path / "d")


# ---------------------------------------------------------------------------------- ensemble
def test_ensemble_averages_softmax():
    labels = np.array([0, 1, 2, 1])
    a = np.array([[5.0, 0, 0], [2.0, 1.9, 0], [0, 3, 0], [0, 4, 0]])  # right on 0 and 3
    b = np.array([[0, 1.0, 0], [0, 4.0, 0], [0, 0, 6.0], [1, 0, 0]])  # right on 1 and 2
    models = [a, b]
    res = evaluate_ensemble(models, np.zeros((4, 1)), labels, logits_fn=lambda m, x: m)
    avg = (softmax(a) + softmax(b)) / 2
    assert res.member_top1 == [0.5, 0.5]
    assert res.top1 == pytest.approx(float((avg.argmax(1) == labels).mean()))
    assert res.top1 == 1.0  # the average fixes every single-model error here
    assert res.top5 == 1.0 and res.n_test == 4
    assert topk_accuracy(a, labels, 2) == 0.75
    with pytest.raises(InputError, match="at least one"):
        evaluate_ensemble([], np.zeros((1, 1)), [0], logits_fn=lambda m, x: m)
    with pytest.raises(InputError, match="predictions"):
        evaluate_ensemble([a[:3]], np.zeros((4, 1)), labels, logits_fn=lambda m, x: m)


# ---------------------------------------------------------------------------------- real checkpoints
@pytest.fixture(scope="module")
def real_search(tmp_path_factory):
    """A search whose networks are real (untrained) tiny ResNets: checkpoints, specs and metrics."""
    torch = pytest.importorskip("torch")
    from swnas import models as M

    def build(stages, seed):
        torch.manual_seed(seed)
        return M.build(M.ArchSpec(module="basic", stages=list(stages), num_classes=10, input_size=8, in_channels=1))

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

    tk = Toolkit(
        build=build,
        train=lambda m, s: {"top1": 0.1, "top5": 0.5, "seconds": 0.0, "epochs": 0},
        score=lambda m: [float(len(s)) for s in m.stages],
        measure=meas,
        save=M.save_model,
        load=M.load,
        spec=lambda m: m.spec.to_dict(),
    )
    out = tmp_path_factory.mktemp("real") / "search"
    run_search(SearchConfig(iterations=2, stages=3, m0=1, delta=1, dataset="digits"), out, toolkit=tk, echo=None)
    return out


def test_export_round_trip(real_search, tmp_path):
    torch = pytest.importorskip("torch")
    from swnas import models as M

    state = json.loads((real_search / "search.json").read_text())
    paths = export_candidate(real_search, "A2", tmp_path / "exp" / "best.pt", torchscript=True)
    assert paths[0] == tmp_path / "exp" / "best.pt" and paths[1].name == "best.torchscript.pt"
    net = M.load(paths[0])
    ref = M.load(real_search / state["networks"][state["candidates"][1]]["checkpoint"])
    assert net.spec == ref.spec
    # the training normalisation travels with the export: the search's training split, per channel
    from swnas.data import load_dataset

    ds = load_dataset("digits", val_split=0.1)
    assert net.normalization["kind"] == "channel" and ref.normalization is None
    np.testing.assert_allclose(net.normalization["mean"].numpy(), np.asarray(ds.mean), rtol=1e-6)
    np.testing.assert_allclose(net.normalization["std"].numpy(), np.asarray(ds.std), rtol=1e-6)
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(net(x), ref(x), rtol=0, atol=0)
        with warnings.catch_warnings():  # TorchScript is deprecated upstream; loading still works
            warnings.simplefilter("ignore", FutureWarning)
            ts = torch.jit.load(str(paths[1]))
        torch.testing.assert_close(ts(x), ref(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="not a candidate of this search"):
        export_candidate(real_search, "A5", tmp_path / "x.pt")


def test_export_with_normalized_inputs(real_search, tmp_path):
    torch = pytest.importorskip("torch")
    from swnas import models as M

    state = json.loads((real_search / "search.json").read_text())
    paths = export_candidate(real_search, "A1", tmp_path / "n.pt", torchscript=True, normalize_inputs=True)
    ref = M.load(real_search / state["networks"][state["candidates"][0]]["checkpoint"])
    norm = M.load(paths[0]).normalization
    x01 = torch.rand(3, 1, 8, 8)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        ts = torch.jit.load(str(paths[1]))
        want = ref((x01 - norm["mean"].reshape(1, -1, 1, 1)) / norm["std"].reshape(1, -1, 1, 1))
        torch.testing.assert_close(ts(x01), want, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(ts(x01), ref(x01))  # the wrapper does change the input
    with pytest.raises(InputError, match="--normalize-inputs"):
        export_candidate(real_search, "A1", tmp_path / "m.pt", normalize_inputs=True)


def test_normalized_inputs_with_a_mean_image():
    torch = pytest.importorskip("torch")
    from swnas.models import NormalizedInputs

    mean = torch.rand(4, 5, 3)  # (H, W, C), as the original recipe's mean image
    wrapped = NormalizedInputs(torch.nn.Identity(), {"mean": mean, "std": torch.ones(3)})
    x = torch.rand(2, 3, 4, 5)
    torch.testing.assert_close(wrapped(x), x - mean.permute(2, 0, 1)[None], rtol=0, atol=0)


def test_export_normalization_of_the_original_recipe_is_the_mean_image():
    from swnas.data import load_dataset
    from swnas.reporting.report import export_normalization

    cfg = {"dataset": "digits", "data": None, "subset": None, "seed": 0, "val_split": 0.2, "recipe": "original"}
    norm = export_normalization(cfg)
    ds = load_dataset("digits", val_split=0.2)
    assert norm["kind"] == "pixel_mean" and tuple(norm["mean"].shape) == ds.x_train.shape[1:]
    np.testing.assert_allclose(norm["mean"].numpy(), ds.x_train.astype(np.float64).mean(axis=0) / 255, atol=1e-6)
    assert norm["std"].tolist() == [1.0] * ds.x_train.shape[-1]
    assert export_normalization(dict(cfg, dataset="cifar10", data="/nonexistent/c.npz")) is None


def test_export_onnx_needs_the_package(real_search, tmp_path):
    from swnas.reporting.report import require_onnx

    try:  # onnx and onnxscript (the onnx extra); tests/test_onnx_export.py hides them to test the message
        require_onnx()
    except InputError:
        with pytest.raises(InputError, match=r"swnas\[onnx\]"):
            export_candidate(real_search, "A1", tmp_path / "m.pt", onnx=True)
    else:  # pragma: no cover - depends on the environment
        paths = export_candidate(real_search, "A1", tmp_path / "m.pt", onnx=True)
        assert paths[-1].suffix == ".onnx" and paths[-1].stat().st_size > 0


def test_ensemble_of_real_checkpoints_in_report(real_search):
    from swnas import models as M
    from swnas.data import load_dataset
    from swnas.training.trainer import predict_logits

    rep = write_report(real_search, ensemble=True, device="cpu")
    ens = rep.ensemble
    assert ens is not None and ens["members"] == [2, 4]
    state = json.loads((real_search / "search.json").read_text())
    ds = load_dataset("digits", val_split=state["config"]["val_split"])  # the statistics of the training part
    probs = [
        softmax(
            predict_logits(
                M.load(real_search / state["networks"][i]["checkpoint"]), ds.x_test, mean=ds.mean, std=ds.std
            ).numpy()
        )
        for i in ens["members"]
    ]
    expect = float((np.mean(probs, axis=0).argmax(1) == ds.y_test).mean())
    assert ens["top1"] == pytest.approx(expect, abs=1e-12)
    assert ens["n_test"] == len(ds.y_test)
    assert (real_search / "ensemble.json").is_file()
    assert f"{100 * ens['top1']:.2f}" in rep.markdown and "ensemble of 2" in rep.markdown
