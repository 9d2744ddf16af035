"""Shared fixtures: the ``backend`` fixture over the backend table, the CuPy stand-in, planted
problems. Plain helpers live in ``tests/helpers.py`` (``from helpers import ...``)."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from helpers import planted
from swnas.scoring.backends import BACKEND_TABLE, backend_status, reset_probes


def _real_cupy_importable() -> bool:
    try:
        import cupy  # noqa: F401
    except Exception:  # noqa: BLE001 - absent or broken: the stand-in takes its place
        return False
    return True


#: True when the ``cupy`` backend runs through the NumPy stand-in (tests/fake_cupy.py)
CUPY_STANDIN = not _real_cupy_importable()


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
