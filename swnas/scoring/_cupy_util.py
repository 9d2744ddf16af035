"""What every ``cupy`` backend module needs: the lazy import, a zero-copy view of the input on its
own GPU, and the guard that makes that GPU current while the backend works."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from swnas.scoring._arrays import array_info, to_numpy

__all__ = ["cupy", "as_cupy", "on_device_of", "to_host"]


def cupy():
    """The ``cupy`` module (imported on first use only)."""
    import cupy as cp

    return cp


def as_cupy(X: Any):
    """A CuPy view of ``X``: CuPy arrays as they are, CUDA torch tensors zero-copy through DLPack
    (which orders torch's pending work on the tensor's stream before CuPy reads it), anything on
    the host uploaded once to the current device."""
    cp = cupy()
    info = array_info(X)
    if info.kind == "cupy" or isinstance(X, cp.ndarray):
        return X
    if info.kind == "torch" and info.device == "cuda":
        t = X.detach()
        with cp.cuda.Device(t.device.index or 0):
            return cp.from_dlpack(t)
    return cp.asarray(np.ascontiguousarray(to_numpy(X)))


@contextlib.contextmanager
def on_device_of(Xc: Any) -> Iterator[None]:
    """Make the GPU holding the CuPy array ``Xc`` current for the duration (data on GPU 1 while
    GPU 0 is current would otherwise be read by kernels launched on GPU 0)."""
    cp = cupy()
    with cp.cuda.Device(Xc.device.id):
        yield


def to_host(a: Any) -> np.ndarray:
    """A host NumPy copy of a CuPy array (or NumPy array, unchanged)."""
    return a if type(a) is np.ndarray else cupy().asnumpy(a)
