"""What a scorer-only install (``pip install .``, no ``search`` extra) can do: import the scorers and
selectors and run ``swnas score`` / ``swnas backends`` without PyTorch; and what ``swnas backends``
says on a machine without a GPU.

This file imports no torch and runs in CI's scorer-only environment (``.ci/run``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from swnas.cli import main
from swnas.scoring.backends import reset_probes


def run(argv, capsys):
    """main(argv) -> (exit code, stdout, stderr); argparse's SystemExit becomes its code."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------- no GPU (backends)
@pytest.fixture
def probes(monkeypatch):
    """Fresh backend probes, with SWNAS_DISABLE_CUDA unset; forgotten again afterwards."""
    monkeypatch.delenv("SWNAS_DISABLE_CUDA", raising=False)
    reset_probes()
    yield monkeypatch
    monkeypatch.undo()
    reset_probes()


def _fake_cuda(monkeypatch, error: str) -> None:
    mod = types.ModuleType("swnas._cuda")
    mod.device_error = lambda: error
    monkeypatch.setitem(sys.modules, "swnas._cuda", mod)
    import swnas

    monkeypatch.setattr(swnas, "_cuda", mod, raising=False)


def _fake_cupy(monkeypatch, error: str) -> None:
    def count():
        raise RuntimeError(error)

    mod = types.ModuleType("cupy")
    mod.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=count))
    monkeypatch.setitem(sys.modules, "cupy", mod)


def _line(out: str, backend: str) -> str:
    return next(line for line in out.splitlines() if line.split()[:1] == [backend])


INSUFFICIENT = "CUDA driver version is insufficient for CUDA runtime version"


def test_backends_says_no_gpu_where_there_is_no_driver(probes, capsys):
    from swnas.scoring import backends

    _fake_cuda(probes, INSUFFICIENT)
    _fake_cupy(probes, f"cudaErrorInsufficientDriver: {INSUFFICIENT}")
    probes.setattr(backends, "_nvidia_driver_present", lambda: False)
    code, out, err = run(["backends"], capsys)
    assert code == 0, err
    for b in ("cuda", "cupy"):
        line = _line(out, b)
        assert line.split()[1] == "no" and "no GPU" in line and "insufficient" not in line, line


def test_backends_says_no_gpu_where_a_driver_sees_no_device(probes, capsys):
    from swnas.scoring import backends

    _fake_cuda(probes, "no CUDA-capable device is detected")
    probes.setattr(backends, "_nvidia_driver_present", lambda: True)
    code, out, err = run(["backends"], capsys)
    assert code == 0, err
    assert "no GPU (no CUDA device is visible)" in _line(out, "cuda")


def test_backends_keeps_the_runtime_words_for_an_old_driver(probes, capsys):
    from swnas.scoring import backends

    _fake_cuda(probes, INSUFFICIENT)
    probes.setattr(backends, "_nvidia_driver_present", lambda: True)
    code, out, err = run(["backends"], capsys)
    assert code == 0, err
    line = _line(out, "cuda")
    assert "no usable GPU" in line and INSUFFICIENT in line and "no GPU (" not in line


def test_driver_probe_looks_at_device_files_and_libcuda(monkeypatch):
    import ctypes.util

    from swnas.scoring import backends

    monkeypatch.setattr(backends, "_DRIVER_PATHS", ())
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert backends._nvidia_driver_present() is False
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "libcuda.so.1" if name == "cuda" else None)
    assert backends._nvidia_driver_present() is True


# ------------------------------------------------------------------------------- no torch (pip install .)
#: what the ``search`` extra installs; a scorer-only install has none of it
SEARCH_EXTRA = ("torch", "torchvision", "tqdm", "matplotlib", "yaml")


#: a ``sitecustomize`` that makes the named top-level packages look uninstalled (as pip would leave them)
_BLOCKER = """import sys


class _Absent:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] in {names!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _Absent)
"""


def _python(tmp_path, code: str, *args: str, block: bool = True) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (cwd ``tmp_path``); with ``block``, importing any module of
    the ``search`` extra fails there as if it were not installed."""
    import swnas

    paths = [str(Path(swnas.__file__).resolve().parent.parent)]
    if block:
        site = tmp_path / "block"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(_BLOCKER.format(names=SEARCH_EXTRA))
        paths.insert(0, str(site))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "SWNAS_DISABLE_CUDA": "1"}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
    )


def test_the_blocker_blocks(tmp_path):
    r = _python(tmp_path, "import torch")
    assert r.returncode != 0 and "torch" in r.stderr


def test_scorers_and_selectors_import_without_torch(tmp_path):
    code = (
        "import sys, swnas, swnas.scoring, swnas.selection, swnas.scoring.files, swnas.cli\n"
        f"bad = sorted(m for m in {SEARCH_EXTRA!r} if sys.modules.get(m) is not None)\n"
        "assert not bad, bad\n"
    )
    r = _python(tmp_path, code)
    assert r.returncode == 0, r.stderr
    r = _python(tmp_path, code, block=False)  # torch installed: still not imported
    assert r.returncode == 0, r.stderr


CLI = "import sys; from swnas.cli import main; sys.exit(main(sys.argv[1:]))"


def test_score_and_backends_run_without_torch(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    y = np.arange(60) % 3
    X[:, 2] += 2 * y
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    for block in (True, False):
        r = _python(
            tmp_path, CLI + "\nassert 'torch' not in sys.modules", "score", "X.npy", "y.npy", "--json", block=block
        )
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["top"][0]["feature"] == 2
    r = _python(tmp_path, CLI, "backends")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("available: numpy") and "cpp" in r.stdout
    r = _python(tmp_path, CLI, "--help")
    assert r.returncode == 0 and "search" in r.stdout and "score" in r.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "--dataset", "digits", "--out", "runs/s"],
        ["train", "--stages", "1,1,1", "--out", "runs/t"],
        ["ensemble", "runs/s"],
    ],
)
def test_torch_commands_name_the_search_extra(tmp_path, argv):
    r = _python(tmp_path, CLI, *argv)
    assert r.returncode == 1, r.stderr
    assert 'pip install "swnas[search]"' in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists()


def test_streaming_and_partial_fit_run_without_torch(tmp_path):
    code = """
import numpy as np
from swnas.scoring import score
from swnas.scoring.streaming import StreamingScorer
from swnas.selection import VIPSelector

rng = np.random.default_rng(3)
X = rng.normal(size=(300, 6)).astype(np.float32) + 4.0
y = rng.integers(0, 3, 300)
X[:, 1] += y
a = StreamingScorer("pls").update(X[:100], y[:100]).update(X[100:200], y[100:200])
b = StreamingScorer("pls").update(X[200:], y[200:])
got = a.merge(b).all_reduce().result().features
np.testing.assert_allclose(got, score(X, y, backend="numpy").features, rtol=1e-5)
sel = VIPSelector(k=2).partial_fit(X[:150], y[:150]).partial_fit(X[150:], y[150:])
assert sel.get_support(indices=True).tolist()[:1] == [1] or 1 in sel.get_support(indices=True)
print(type(a.s2).__module__)
"""
    r = _python(tmp_path, code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "numpy"


@pytest.mark.parametrize(
    "criterion, params", [("pls", {}), ("pls", {"n_components": 3}), ("inffs", {"corr": "pearson"})]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_statistics_equal_score(monkeypatch, criterion, params, dtype):
    from swnas.scoring import score
    from swnas.scoring import streaming

    monkeypatch.setattr(streaming, "_torch_or_none", lambda: None)
    rng = np.random.default_rng(5)
    X = (rng.normal(size=(240, 7)) * 3 + 100).astype(dtype)
    y = np.array(["b", "a", "c"])[rng.integers(0, 3, 240)]
    y[:3] = ["a", "b", "c"]
    X[:, 4] += 2 * (y == "a")
    a = streaming.StreamingScorer(criterion, **params)
    for lo in range(0, 160, 40):
        a.update(X[lo : lo + 40], y[lo : lo + 40])
    b = streaming.StreamingScorer(criterion, **params).update(X[160:], y[160:])
    a.merge(b)
    assert isinstance(a.s2, np.ndarray) and a.n == 240
    ref = score(X.astype(np.float64), y, criterion=criterion, backend="numpy", **params).features
    np.testing.assert_allclose(a.result().features, ref, rtol=1e-5 if dtype == np.float32 else 1e-9, atol=1e-12)


def test_numpy_statistics_of_huge_float64_are_rescaled(monkeypatch):
    from swnas.scoring import score
    from swnas.scoring import streaming

    monkeypatch.setattr(streaming, "_torch_or_none", lambda: None)
    rng = np.random.default_rng(6)
    X = rng.normal(size=(90, 4)) * 2.0**600
    y = np.arange(90) % 2
    acc = streaming.StreamingScorer("pls").update(X[:50], y[:50]).update(X[50:], y[50:])
    assert acc.log2_scale != 0
    np.testing.assert_allclose(acc.result().features, score(X, y, backend="numpy").features, rtol=1e-9)


def test_numpy_statistics_merge_into_torch_ones(monkeypatch):
    """An accumulator filled where PyTorch is missing, pickled, continues where it is installed."""
    import pickle

    from swnas.scoring import score
    from swnas.scoring import streaming

    pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 5))
    y = rng.integers(0, 4, 200)
    monkeypatch.setattr(streaming, "_torch_or_none", lambda: None)
    host = pickle.loads(pickle.dumps(streaming.StreamingScorer("pls").update(X[:80], y[:80])))
    host2 = streaming.StreamingScorer("pls").update(X[80:100], y[80:100])
    monkeypatch.undo()
    acc = streaming.StreamingScorer("pls").update(X[120:], y[120:]).merge(host)
    assert type(acc.s2).__module__ == "torch"
    host2.update(X[100:120], y[100:120])  # a NumPy accumulator continues with torch
    acc.merge(host2)
    np.testing.assert_allclose(acc.result().features, score(X, y, backend="numpy").features, rtol=1e-9)
