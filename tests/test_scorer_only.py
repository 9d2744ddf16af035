"""What a scorer-only install (``pip install .``, no ``search`` extra) can do: import the scorers and
selectors and run ``swnas score`` / ``swnas backends`` without PyTorch; and what ``swnas backends``
says on a machine without a GPU.

This file imports no torch and runs in CI's scorer-only environment (``.ci/run``).
"""
from __future__ import annotations

import sys
import types

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
