"""``swnas export --onnx``: the ``onnx`` extra, a message naming it when onnx or onnxscript is missing
(always tested, by hiding the packages), and an exported file that onnxruntime runs (when installed)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from swnas.cli import main
from swnas.errors import InputError
from swnas.reporting.report import ONNX_PACKAGES, require_onnx
from swnas.search import SearchConfig, Toolkit, run_search

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


def _toolkit() -> Toolkit:
    """Real (untrained) tiny ResNets on digits' shape, without training: the export is what is tested."""
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

    return Toolkit(
        build=build,
        train=lambda m, seed: {"top1": 0.5, "top5": 0.9, "val_top1": 0.5, "seconds": 0.0, "epochs": 0},
        score=lambda m: [float(len(s)) for s in m.stages],
        measure=meas,
        save=M.save_model,
        load=M.load,
        spec=lambda m: m.spec.to_dict(),
    )


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx") / "s"
    run_search(SearchConfig(iterations=1, stages=3, m0=1, delta=1, dataset="digits"), d, toolkit=_toolkit(), echo=None)
    return d


def test_the_onnx_extra_holds_both_packages():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {r.split(">")[0].split("=")[0].split("[")[0].strip() for r in extras["onnx"]}
    assert names == set(ONNX_PACKAGES) == {"onnx", "onnxscript"}
    assert any("onnx" in r for r in extras["test"])  # the full test install runs the export test


@pytest.mark.parametrize("hidden", [("onnx",), ("onnxscript",), ("onnx", "onnxscript")])
def test_missing_package_names_the_extra(search, tmp_path, capsys, monkeypatch, hidden):
    for name in hidden:
        monkeypatch.setitem(sys.modules, name, None)  # ``import name`` raises ImportError
    with pytest.raises(InputError) as err:
        require_onnx()
    msg = str(err.value)
    assert 'pip install "swnas[onnx]"' in msg and "missing: " + ", ".join(hidden) in msg
    # the command: a message and exit 2 before anything is written, no traceback
    to = tmp_path / "m.pt"
    code = main(["export", str(search), "--to", str(to), "--onnx"])
    out, errtext = capsys.readouterr()
    assert code == 2 and "swnas[onnx]" in errtext and "Traceback" not in errtext + out
    assert not to.exists() and not to.with_suffix(".onnx").exists() and list(tmp_path.iterdir()) == []


def test_a_broken_install_is_named_too(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **kw):
        if name == "onnxscript":
            raise AttributeError("module 'onnx' has no attribute 'something'")
        return real(name, *a, **kw)

    monkeypatch.delitem(sys.modules, "onnxscript", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(InputError, match=r"onnxscript \(installed, but importing it fails: AttributeError"):
        require_onnx()


@pytest.mark.parametrize("normalize", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_exported_onnx_runs_in_onnxruntime_as_the_network(search, tmp_path, capsys, normalize):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    from swnas import models as M

    to = tmp_path / "m.pt"
    argv = ["export", str(search), "--to", str(to), "--onnx"] + (["--normalize-inputs"] if normalize else [])
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"wrote {to}" in out and f"wrote {tmp_path / 'm.onnx'}" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.pt"]
    net = M.load(to).eval()
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["images"] and [o.name for o in sess.get_outputs()] == ["logits"]
    rng = np.random.default_rng(0)
    for batch in (1, 5):  # any batch size
        x = rng.random((batch, 1, 8, 8), dtype=np.float32)
        (got,) = sess.run(None, {"images": x})
        with torch.no_grad():
            inp = torch.from_numpy(x)
            if normalize:  # the file applies the training normalisation to [0, 1] images itself
                norm = net.normalization
                inp = (inp - torch.as_tensor(norm["mean"]).reshape(1, -1, 1, 1)) / torch.as_tensor(norm["std"]).reshape(
                    1, -1, 1, 1
                )
            want = net(inp).numpy()
        assert got.shape == (batch, 10)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    if normalize:  # the normalisation is really in the graph: raw inputs give other logits
        with torch.no_grad():
            raw = net(torch.from_numpy(x)).numpy()
        assert not np.allclose(got, raw, atol=1e-3)
