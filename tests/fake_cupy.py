"""A NumPy stand-in for the ``cupy`` module, used only by the tests and only when CuPy itself is
absent: the CuPy backend modules then run their own array code on the CPU against the reference.

It emulates what those modules use: arrays with a ``device`` (always device 0), ``asarray`` /
``asnumpy`` / ``from_dlpack``, ``cuda.Device`` and ``cuda.runtime.getDeviceCount``, ``cupyx``'s
``solve_triangular``, and ``RawModule`` for the two pooling kernels of :mod:`swnas.pooling`
(emulated in NumPy, with CUDA's launch limits checked). It records the largest ``zeros``/``empty``
allocation and every kernel launch, so tests can assert on working-memory sizes and grids.
"""
from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import scipy.linalg


class ndarray(np.ndarray):  # noqa: N801 - mirrors cupy.ndarray
    """A NumPy array that says it lives on GPU 0."""

    @property
    def device(self) -> "Device":
        return Device(0)

    def get(self) -> np.ndarray:
        return np.array(self, copy=True).view(np.ndarray)


class Device:
    def __init__(self, id: int = 0) -> None:  # noqa: A002 - cupy's name
        self.id = int(id)

    def __enter__(self) -> "Device":
        if self.id != 0:
            raise RuntimeError(f"fake cupy: only device 0 exists, asked for {self.id}")
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


class _Recorder:
    """What the tests inspect: the largest allocation and every kernel launch."""

    def __init__(self) -> None:
        self.peak_alloc = 0
        self.launches: list[tuple[str, tuple, tuple]] = []

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


def _check_launch(grid: tuple, block: tuple) -> None:
    grid = tuple(grid) + (1,) * (3 - len(grid))
    block = tuple(block) + (1,) * (3 - len(block))
    if not (1 <= grid[0] <= 2**31 - 1 and 1 <= grid[1] <= 65535 and 1 <= grid[2] <= 65535):
        raise RuntimeError(f"fake cupy: invalid grid {grid} (CUDA_ERROR_INVALID_VALUE)")
    if not (1 <= block[0] * block[1] * block[2] <= 1024):
        raise RuntimeError(f"fake cupy: invalid block {block}")


def _pool(x, out, n, c, h, w, k, ho, wo) -> None:
    n, c, k, ho, wo = int(n), int(c), int(k), int(ho), int(wo)
    v = np.asarray(x)[:, :, :ho * k, :wo * k].reshape(n, c, ho, k, wo, k).mean(axis=(3, 5), dtype=np.float32)
    np.asarray(out)[...] = v.reshape(n, -1)


def _sums(feats, labels, colsum, clssum, n, p, rows) -> None:
    f = np.asarray(feats)[:int(n)].astype(np.float64)
    np.asarray(colsum)[...] += f.sum(axis=0)
    np.add.at(np.asarray(clssum), np.asarray(labels)[:int(n)], f)


_KERNELS = {"swnas_pool": _pool, "swnas_sums": _sums}


class RawModule:
    def __init__(self, code: str = "", **_: Any) -> None:
        self.code = code

    def get_function(self, name: str):
        if name not in _KERNELS or name not in self.code:
            raise KeyError(f"fake cupy: no emulation for kernel {name!r}")

        def launch(grid, block, args):
            _check_launch(grid, block)
            record.launches.append((name, tuple(grid), tuple(block)))
            _KERNELS[name](*args)

        return launch


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
    for name in ("ndarray", "zeros", "empty", "asarray", "ascontiguousarray", "asnumpy", "from_dlpack",
                 "RawModule", "int64", "float32", "float64", "record"):
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
