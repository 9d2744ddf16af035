"""Array plumbing shared by every scorer: where data lives, zero-copy views and input validation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from swnas.errors import InputError

__all__ = [
    "ArrayInfo",
    "array_info",
    "to_numpy",
    "as_float_matrix",
    "encode_labels",
    "check_problem",
]


@dataclass(frozen=True)
class ArrayInfo:
    """Where an array lives and what it holds.

    Attributes
    ----------
    kind : {"numpy", "torch", "cupy"}
    device : {"cpu", "cuda"}
    dtype : numpy.dtype
    shape : tuple of int
    """

    kind: str
    device: str
    dtype: np.dtype
    shape: tuple[int, ...]


def _torch():
    import sys

    return sys.modules.get("torch")


def _is_torch(a: Any) -> bool:
    t = _torch()
    return t is not None and isinstance(a, t.Tensor)


def _is_cupy(a: Any) -> bool:
    return type(a).__module__.startswith("cupy") and hasattr(a, "__cuda_array_interface__")


def array_info(a: Any, name: str = "X") -> ArrayInfo:
    """Describe ``a`` (NumPy array, torch tensor or CuPy array) without copying it."""
    if isinstance(a, np.ndarray):
        return ArrayInfo("numpy", "cpu", a.dtype, tuple(a.shape))
    if _is_torch(a):
        t = _torch()
        dt = {t.float32: np.float32, t.float64: np.float64, t.float16: np.float16,
              t.int64: np.int64, t.int32: np.int32, t.int16: np.int16, t.int8: np.int8,
              t.uint8: np.uint8, t.bool: np.bool_}.get(a.dtype)
        if dt is None:
            raise InputError(f"{name}: torch dtype {a.dtype} is not supported")
        return ArrayInfo("torch", "cuda" if a.is_cuda else "cpu", np.dtype(dt), tuple(a.shape))
    if _is_cupy(a):
        return ArrayInfo("cupy", "cuda", np.dtype(a.dtype), tuple(a.shape))
    if isinstance(a, (list, tuple)):
        try:
            arr = np.asarray(a)
        except ValueError as exc:  # ragged
            raise InputError(f"{name}: could not be read as an array ({exc})") from None
        return ArrayInfo("numpy", "cpu", arr.dtype, tuple(arr.shape))
    raise InputError(
        f"{name}: expected a NumPy array, torch tensor or CuPy array, got {type(a).__name__}"
    )


def to_numpy(a: Any) -> np.ndarray:
    """Host NumPy view (zero-copy for NumPy and CPU torch) or copy (GPU data) of ``a``."""
    if isinstance(a, np.ndarray):
        return a
    if _is_torch(a):
        return a.detach().cpu().numpy() if a.is_cuda else a.detach().numpy()
    if _is_cupy(a):
        return a.get()
    return np.asarray(a)


def as_float_matrix(X: Any, name: str = "X") -> tuple[Any, ArrayInfo]:
    """Check that ``X`` is a 2-D real matrix; return it (float32 or float64, never copied if so)."""
    info = array_info(X, name)
    if isinstance(X, (list, tuple)):
        X = np.asarray(X)
    if len(info.shape) != 2:
        raise InputError(f"{name}: expected a 2-D matrix (samples x features), got shape {info.shape}")
    if info.shape[1] < 1:
        raise InputError(f"{name}: has no features (shape {info.shape})")
    dt = info.dtype
    if dt.kind not in "fiu" or dt.kind == "b":
        raise InputError(f"{name}: dtype {dt} is not a real number type (use float32 or float64)")
    if dt not in (np.float32, np.float64):
        # integers and float16 are promoted once; float32/float64 are never copied
        target = np.float32 if dt.itemsize <= 2 and dt.kind == "f" else np.float64
        if info.kind == "numpy":
            X = X.astype(target)
        elif info.kind == "torch":
            X = X.to(_torch().float32 if target == np.float32 else _torch().float64)
        else:
            X = X.astype(target)
        info = ArrayInfo(info.kind, info.device, np.dtype(target), info.shape)
    return X, info


def encode_labels(y: Any, n_samples: int, name: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Map labels to 0..C-1.

    Returns
    -------
    codes : int32 array of length N
    classes : the distinct original labels, sorted
    """
    info = array_info(y, name)
    arr = to_numpy(y) if not isinstance(y, (list, tuple)) else np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InputError(f"{name}: expected a 1-D vector of class labels, got shape {info.shape}")
    if arr.shape[0] != n_samples:
        raise InputError(
            f"{name}: has {arr.shape[0]} labels but X has {n_samples} samples; they must agree"
        )
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InputError(f"{name}: labels must be integers (got non-integral floats)")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iub":
        raise InputError(f"{name}: labels must be integers, got dtype {arr.dtype}")
    classes, codes = np.unique(arr, return_inverse=True)
    if classes.shape[0] < 2:
        raise InputError(
            f"{name}: needs at least 2 classes to score features, found {classes.shape[0]}"
        )
    return codes.astype(np.int32, copy=False), classes


def check_problem(X: Any, y: Any, *, min_samples: int = 2, xname: str = "X", yname: str = "y"):
    """Validate one scoring problem.

    Returns
    -------
    X : the matrix (float32 or float64, same library and device as given)
    info : ArrayInfo of X
    codes : int32 labels 0..C-1 (host)
    n_classes : int
    """
    X, info = as_float_matrix(X, xname)
    n = info.shape[0]
    if n < min_samples:
        raise InputError(
            f"{xname}: has {n} samples; this criterion needs at least {min_samples}"
        )
    codes, classes = encode_labels(y, n, yname)
    return X, info, codes, int(classes.shape[0])


def check_finite_stats(colsum: np.ndarray, colsq: np.ndarray, name: str = "X") -> None:
    """Raise if column statistics show a NaN or Inf in the data (free finiteness check)."""
    bad = ~(np.isfinite(colsum) & np.isfinite(colsq))
    if np.any(bad):
        cols = np.flatnonzero(bad)
        shown = ", ".join(map(str, cols[:8])) + (" ..." if cols.size > 8 else "")
        raise InputError(f"{name}: contains NaN or Inf values (in columns {shown})")
