"""A NumPy stand-in for the ``cupy`` module, used only by the tests and only when CuPy itself is
absent: the CuPy backend modules then run their own array code on the CPU against the reference.

It emulates what those modules use: arrays with a ``device`` (always device 0), ``asarray`` /
``asnumpy`` / ``from_dlpack``, ``cuda.Device`` and ``cuda.runtime.getDeviceCount``, ``cupyx``'s
``solve_triangular``. It records the largest ``zeros``/``empty`` allocation, so tests can assert on
working-memory sizes.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import scipy.linalg


class ndarray(np.ndarray):  # mirrors cupy.ndarray
    """A NumPy array that says it lives on GPU 0."""

    @property
    def device(self) -> Device:
        return Device(0)

    def get(self) -> np.ndarray:
        return np.array(self, copy=True).view(np.ndarray)


class Device:
    def __init__(self, id: int = 0) -> None:  # cupy's name
        self.id = int(id)

    def __enter__(self) -> Device:
        if self.id != 0:
            raise RuntimeError(f"fake cupy: only device 0 exists, asked for {self.id}")
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


class _Recorder:
    """What the tests inspect: the largest allocation."""

    def __init__(self) -> None:
        self.peak_alloc = 0

    def alloc(self, a: np.ndarray) -> ndarray:
        self.peak_alloc = max(self.peak_alloc, int(a.nbytes))
        return a.view(ndarray)


record = _Recorder()


def zeros(shape, dtype=np.float64) -> ndarray:
    return record.alloc(np.zeros(shape, dtype=dtype))


def empty(shape, dtype=np.float64) -> ndarray:
    return record.alloc(np.empty(shape, dtype=dtype))


def asarray(a, dtype=None) -> ndarray:
    return np.asarray(a, dtype=dtype).view(ndarray)


def ascontiguousarray(a, dtype=None) -> ndarray:
    return np.ascontiguousarray(a, dtype=dtype).view(ndarray)


def asnumpy(a) -> np.ndarray:
    return np.array(a, copy=True).view(np.ndarray)


def from_dlpack(t) -> ndarray:
    return np.from_dlpack(t).view(ndarray)


int64 = np.int64  # a dtype and a scalar constructor, as in cupy
float32 = np.float32
float64 = np.float64


def _getattr(name: str) -> Any:
    return getattr(np, name)


def build_modules() -> dict[str, types.ModuleType]:
    """``{"cupy": ..., "cupyx": ..., "cupyx.scipy": ..., "cupyx.scipy.linalg": ...}`` to put in
    ``sys.modules``."""
    cp = types.ModuleType("cupy")
    me = sys.modules[__name__]
    for name in (
        "ndarray",
        "zeros",
        "empty",
        "asarray",
        "ascontiguousarray",
        "asnumpy",
        "from_dlpack",
        "int64",
        "float32",
        "float64",
        "record",
    ):
        setattr(cp, name, getattr(me, name))
    cp.__getattr__ = _getattr  # everything else: NumPy's function of the same name
    cp.cuda = types.SimpleNamespace(Device=Device, runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    cpx = types.ModuleType("cupyx")
    cpx_scipy = types.ModuleType("cupyx.scipy")
    cpx_linalg = types.ModuleType("cupyx.scipy.linalg")
    cpx_linalg.solve_triangular = scipy.linalg.solve_triangular
    cpx.scipy = cpx_scipy
    cpx_scipy.linalg = cpx_linalg
    return {"cupy": cp, "cupyx": cpx, "cupyx.scipy": cpx_scipy, "cupyx.scipy.linalg": cpx_linalg}
