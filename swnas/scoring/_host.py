"""Host-side views of input matrices for the compiled CPU passes (cpp and numba backends)."""

from __future__ import annotations

from typing import Any

import numpy as np

from swnas.scoring._arrays import to_numpy

__all__ = ["host_matrix", "host_codes"]


def host_matrix(X: Any) -> np.ndarray:
    """Host NumPy view of ``X`` for the compiled CPU passes.

    Zero-copy for C-contiguous NumPy arrays and CPU torch tensors. Anything else is copied ONCE
    into a C-contiguous array, because the compiled passes stream whole rows and need them
    contiguous (a Fortran-ordered or strided X would otherwise be read with a stride per element).
    GPU data given to the ``cpp`` backend is copied to the host (use ``cuda`` to keep it there).
    """
    A = to_numpy(X)
    if not A.flags.c_contiguous:
        A = np.ascontiguousarray(A)
    return A


def host_codes(codes: Any) -> np.ndarray:
    """Class codes as the C-contiguous int32 array the compiled passes take."""
    return np.ascontiguousarray(codes, dtype=np.int32)
