"""Array plumbing shared by every scorer: where data lives, zero-copy views and input validation."""

from __future__ import annotations

from dataclasses import dataclass
import numbers
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
    "check_finite_stats",
    "class_labels",
    "fit_float64_range",
    "float64_range_shift",
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
        # bfloat16 (AMP features) has no NumPy dtype: described as a 2-byte float, it is promoted to
        # float32 like float16 (as_float_matrix)
        dt = {
            t.float32: np.float32,
            t.float64: np.float64,
            t.float16: np.float16,
            t.bfloat16: np.float16,
            t.int64: np.int64,
            t.int32: np.int32,
            t.int16: np.int16,
            t.int8: np.int8,
            t.uint8: np.uint8,
            t.bool: np.bool_,
        }.get(a.dtype)
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
    raise InputError(f"{name}: expected a NumPy array, torch tensor or CuPy array, got {type(a).__name__}")


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


def _label_array(y: Any, name: str) -> np.ndarray:
    """Host NumPy view of a label vector: NumPy, torch, CuPy, pandas, lists and tuples."""
    if isinstance(y, np.ndarray) or _is_torch(y) or _is_cupy(y):
        array_info(y, name)  # rejects unsupported torch dtypes with a clear message
        return to_numpy(y)
    try:
        return np.asarray(y)
    except (ValueError, TypeError) as exc:  # ragged or exotic containers
        raise InputError(f"{name}: could not be read as a vector of class labels ({exc})") from None


def _check_object_labels(arr: np.ndarray, name: str) -> None:
    """Reject missing values and types that cannot be ordered in an object label array."""
    for v in arr:
        if v is None or (isinstance(v, (float, np.floating)) and v != v):
            raise InputError(f"{name}: labels must not be missing (found {v!r})")
    kinds = {type(v) for v in arr}
    numeric = all(issubclass(k, (numbers.Integral, np.integer, bool, np.bool_)) for k in kinds)
    strings = all(issubclass(k, (str, np.str_)) for k in kinds)
    if not (numeric or strings):
        names = ", ".join(sorted(k.__name__ for k in kinds))
        raise InputError(f"{name}: labels must all be integers or all be strings, got a mix of {names}")


def class_labels(y: Any, name: str = "y") -> np.ndarray:
    """``y`` as a 1-D host array of class labels (integers, booleans or strings), checked.

    Integral floats (``1.0``) are read as integers; other floats are refused (they look like a
    regression target). Object arrays must hold only integers or only strings, none missing.
    """
    arr = _label_array(y, name)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InputError(f"{name}: expected a 1-D vector of class labels, got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InputError(
                f"{name}: labels must be class labels; got non-integral or non-finite floats "
                "(a regression target cannot be scored)"
            )
        return arr.astype(np.int64)
    if kind == "O":
        _check_object_labels(arr, name)
        return arr
    if kind not in "biuUS":
        raise InputError(f"{name}: labels must be integers or strings, got dtype {arr.dtype}")
    return arr


def encode_labels(y: Any, n_samples: int, name: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Map arbitrary class labels (integers of any values, strings, booleans) to 0..C-1.

    Like scikit-learn's ``LabelEncoder``: the classes are the distinct labels, sorted, and code c
    stands for ``classes[c]``.

    Returns
    -------
    codes : int32 array of length N
    classes : the distinct original labels, sorted
    """
    arr = class_labels(y, name)
    if arr.shape[0] != n_samples:
        raise InputError(f"{name}: has {arr.shape[0]} labels but X has {n_samples} samples; they must agree")
    fast = _encode_small_integers(arr)
    classes, codes = fast if fast is not None else np.unique(arr, return_inverse=True)
    if classes.shape[0] < 2:
        raise InputError(f"{name}: needs at least 2 classes to score features, found {classes.shape[0]}")
    return codes.reshape(-1).astype(np.int32, copy=False), classes


def _encode_small_integers(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``np.unique(arr, return_inverse=True)`` in O(N) for non-negative integers below 2**16.

    The usual labels (0..C-1) are counted instead of sorted: a tenth of the time on 50,000 labels.
    Returns None for anything else (the caller sorts).
    """
    if arr.dtype.kind not in "iu" or arr.size == 0:
        return None
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= 1 << 16:
        return None
    present = np.bincount(arr, minlength=hi + 1) > 0
    classes = np.flatnonzero(present).astype(arr.dtype, copy=False)
    if classes.shape[0] == hi + 1:  # every value 0..hi occurs: the labels are their own codes
        return classes, arr.astype(np.int32)  # a copy: codes never alias the caller's labels
    lut = np.cumsum(present) - 1
    return classes, lut[arr]


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
        raise InputError(f"{xname}: has {n} samples; this criterion needs at least {min_samples}")
    codes, classes = encode_labels(y, n, yname)
    return X, info, codes, int(classes.shape[0])


def _columns(cols: np.ndarray) -> str:
    return ", ".join(map(str, cols[:8])) + (" ..." if cols.size > 8 else "")


def _nonfinite_columns(X: Any, cols: np.ndarray, rows: int = 8192) -> np.ndarray:
    """Which of ``cols`` of ``X`` really hold a NaN or Inf (read in row blocks; failure path only)."""
    Xn = to_numpy(X)
    bad = np.zeros(cols.size, dtype=bool)
    for i in range(0, Xn.shape[0], rows):
        bad |= ~np.isfinite(Xn[i : i + rows, cols]).all(axis=0)
    return cols[bad]


def check_finite_stats(colsum: np.ndarray, colsq: np.ndarray, name: str = "X", X: Any = None) -> None:
    """Raise if the column statistics are not finite, saying truthfully why.

    ``colsum`` holds each column's sum (or mean) and ``colsq`` its sum of squared deviations. A
    NaN or Inf in the data makes the column's sum non-finite; finite values beyond about 1e154
    make only the sum of squares overflow. With ``X`` given, the columns are read back to tell the
    two apart for certain (only on this failure path).
    """
    colsum = np.asarray(colsum, dtype=np.float64)
    colsq = np.asarray(colsq, dtype=np.float64)
    bad = ~(np.isfinite(colsum) & np.isfinite(colsq))
    if not np.any(bad):
        return
    cols = np.flatnonzero(bad)
    if X is not None:
        nonfinite = _nonfinite_columns(X, cols)
    else:  # a NaN or Inf always reaches the plain sum; an overflowing square alone does not
        nonfinite = cols[~np.isfinite(colsum[cols])]
    if nonfinite.size:  # without X: a sum overflows only for values beyond ~1e308 / N, taken for Inf
        raise InputError(f"{name}: contains NaN or Inf values (in columns {_columns(nonfinite)})")
    raise InputError(
        f"{name}: holds finite values so large that their squares overflow float64 (in columns "
        f"{_columns(cols)}); every criterion is unchanged by a global scale of X, so divide X by a "
        "power of two (for example np.ldexp(X, -k)) until its largest magnitude is near 1"
    )


#: float64 data is rescaled when its largest magnitude is below 2**_SMALL_EXP (about 8.6e-78): the
#: squares of values a few orders of magnitude under it would fall to subnormals and lose digits
_SMALL_EXP = -256


def float64_range_shift(absmax: float, n: int) -> int:
    """The power of two ``k`` to multiply float64 data by so that its squares neither overflow nor underflow.

    ``absmax`` is the largest magnitude in X and ``n`` its number of rows. Returns 0 when the data
    is already in range, or when ``absmax`` is 0, NaN or Inf (left for the scorer to report);
    otherwise ``k`` brings the largest magnitude into [0.5, 1).
    """
    if not np.isfinite(absmax) or absmax <= 0.0:
        return 0
    # sums of N squared differences (each at most (2 absmax)^2) must stay below 2**1023
    big_exp = (1021 - int(np.ceil(np.log2(max(n, 2))))) // 2
    exp = int(np.frexp(absmax)[1])
    if _SMALL_EXP < exp <= big_exp:
        return 0
    return int(np.clip(-exp, -1022, 1023))  # 2**k itself must be a normal float64


def fit_float64_range(X: Any, info: ArrayInfo) -> Any:
    """Rescale float64 ``X`` by a power of two when its squares would overflow or underflow.

    Every criterion is unchanged when X is multiplied by a positive constant (PLS-VIP standardises
    or normalises its weights, inf-FS min-max normalises its std term and uses correlations, il-FS
    uses ratios of distances), and a power of two changes no digit of any value (short of values
    2**1000 times smaller than the largest, which fall to subnormals). So data with
    magnitudes near 1e200 (whose squares overflow) or 1e-100 (whose squares fall towards subnormals) is
    multiplied by ``2**k`` to bring its largest magnitude near 1, in a copy; data already in range,
    float32 data (its squares always fit a float64) and data holding NaN or Inf (reported by the
    scorer itself) are returned unchanged, without a copy. (The ``cpp`` PLS backend does the same
    inside its statistics pass, without a copy: :mod:`swnas.scoring._pls_cpp`.)
    """
    if info.dtype != np.float64 or 0 in info.shape:
        return X
    if info.kind == "torch":
        lo, hi = (float(v) for v in _torch().aminmax(X))
    else:
        lo, hi = float(X.min(axis=0).min()), float(X.max(axis=0).max())
    k = float64_range_shift(max(abs(lo), abs(hi)), info.shape[0])
    if k == 0:
        return X
    if info.kind == "torch":
        return _torch().ldexp(X, _torch().tensor(float(k), dtype=X.dtype, device=X.device))
    if info.kind == "cupy":
        import cupy

        return cupy.ldexp(X, k)
    return np.ldexp(X, k)
