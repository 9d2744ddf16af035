"""Shared fixtures: the ``backend`` fixture over the backend table, the CuPy stand-in, planted
problems. Plain helpers live in ``tests/helpers.py`` (``from helpers import ...``)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from helpers import planted
from swnas.scoring.backends import BACKEND_TABLE, backend_status, reset_probes


def _real_cupy_importable() -> bool:
    try:
        import cupy  # noqa: F401
    except Exception:  # absent or broken: the stand-in takes its place
        return False
    return True


#: True when the ``cupy`` backend runs through the NumPy stand-in (tests/fake_cupy.py)
CUPY_STANDIN = not _real_cupy_importable()

#: Set by the device check (benchmarks/device_check_driver.py): on a GPU machine a skipped GPU test
#: is a failure, and the NumPy stand-in must not replace a CuPy that fails to import.
REQUIRE_GPU = os.environ.get("SWNAS_REQUIRE_GPU", "") not in ("", "0")


def pytest_configure(config) -> None:
    if REQUIRE_GPU and CUPY_STANDIN:
        raise pytest.UsageError(
            "SWNAS_REQUIRE_GPU=1 but cupy does not import (with warnings as errors): "
            "the tests would run the NumPy stand-in instead of CuPy"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if REQUIRE_GPU and rep.skipped and item.get_closest_marker("gpu") is not None:
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"SWNAS_REQUIRE_GPU=1: GPU test skipped ({reason})"


def _backend_param(name: str, device: str):
    if name == "cupy" and CUPY_STANDIN:
        return pytest.param(name, id="cupy-standin")
    return pytest.param(name, id=name, marks=[pytest.mark.gpu] if device == "cuda" else [])


#: every backend but the reference, as fixture parameters (GPU ones marked ``gpu``)
BACKEND_PARAMS = [_backend_param(r.name, r.device) for r in BACKEND_TABLE if r.name != "numpy"]


@pytest.fixture
def cupy_standin(monkeypatch):
    """Install the NumPy stand-in for ``cupy`` (only when CuPy is absent); yields its recorder."""
    if not CUPY_STANDIN:
        pytest.skip("real CuPy is installed: the stand-in is not used")
    import fake_cupy

    for name, mod in fake_cupy.build_modules().items():
        monkeypatch.setitem(sys.modules, name, mod)
    reset_probes()
    fake_cupy.record.__init__()
    with np.errstate(all="ignore"):  # a GPU raises no floating-point warnings; neither does the stand-in
        yield fake_cupy.record
    monkeypatch.undo()
    reset_probes()


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request) -> str:
    """Each non-reference backend of the table; skips with the reason where it cannot run."""
    name = request.param
    if name == "cupy" and CUPY_STANDIN:
        request.getfixturevalue("cupy_standin")
    ok, why = backend_status(name)
    if not ok:
        pytest.skip(f"backend {name!r} is not available here: {why}")
    return name


@pytest.fixture
def planted_problem():
    return planted


@pytest.fixture
def on_device(request):
    """``on_device(backend, X)``: ``X`` where ``backend`` reads it. A CUDA tensor for a GPU backend
    (skipping with the reason where it cannot run), or, for ``cupy`` while CuPy is absent, ``X`` itself
    with the NumPy stand-in installed: a GPU test of the cupy backend then runs its code on the CPU
    instead of skipping (``on_device(...) is X`` tells the two apart)."""

    def put(backend: str, X: np.ndarray):
        if backend == "cupy" and CUPY_STANDIN:
            request.getfixturevalue("cupy_standin")
            return X
        ok, why = backend_status(backend)
        if not ok:
            pytest.skip(f"backend {backend} unavailable: {why}")
        import torch

        return torch.from_numpy(X).cuda()

    return put
