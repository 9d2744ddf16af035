"""Reading a saved feature matrix and its labels for ``swnas score``.

Feature files: ``.npy`` (one 2-D array, or N x ... flattened per row), ``.npz`` (key ``X``,
``features`` or ``x``, or its only array; names from a ``feature_names`` or ``names`` key),
``.csv`` (comma-separated numbers; a first line that is not all numbers is the header of feature
names) and ``.parquet`` (numeric columns; the column names are the feature names; needs pandas
and pyarrow, ``pip install swnas[pandas]``). Label files: ``.npy``, ``.npz`` (key ``y``,
``labels`` or ``Y``), ``.txt``/``.csv`` (one label per line, integers or strings, an optional
header) and ``.parquet`` (one column); or the labels are one named column of the feature file
(:func:`load_labelled`, ``swnas score FILE --label COLUMN``). Every failure is an :class:`~swnas.errors.InputError`
naming the argument and the file. Arrays load with ``allow_pickle=False``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

import numpy as np

from swnas.errors import InputError

__all__ = ["FeatureTable", "load_features", "load_labels", "load_labelled"]

FEATURE_SUFFIXES = (".npy", ".npz", ".csv", ".parquet")
LABEL_SUFFIXES = (".npy", ".npz", ".txt", ".csv", ".parquet")


@dataclass(frozen=True)
class FeatureTable:
    """A feature matrix and, when the file names them, its feature names.

    Attributes
    ----------
    X : (N, p) numpy.ndarray
    names : list of str, or None
    """

    X: np.ndarray
    names: list[str] | None

    def name(self, j: int) -> str:
        """The name of feature ``j`` (its index when the file gave no names)."""
        return self.names[j] if self.names is not None else str(j)


def _file(path: str | Path, what: str, allowed: Sequence[str]) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what}: no such file: {path}")
    if p.suffix.lower() not in allowed:
        raise InputError(f"{what}: unsupported file type {p.suffix or '(none)'} for {path}; use {', '.join(allowed)}")
    return p


def _npz(p: Path, what: str, keys: Sequence[str], skip: Sequence[str] = ()) -> tuple[np.ndarray, list[str] | None]:
    with np.load(p, allow_pickle=False) as z:
        files = [k for k in z.files if k not in skip]
        names = next((z[k] for k in ("feature_names", "names") if k in files), None)
        data = [k for k in files if k not in ("feature_names", "names")]
        key = next((k for k in keys if k in data), data[0] if len(data) == 1 else None)
        if key is None:
            raise InputError(f"{what}: {p} holds arrays {files}; expected one of {list(keys)} or a single array")
        return z[key], None if names is None else [str(v) for v in np.asarray(names).reshape(-1)]


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _csv_features(p: Path) -> tuple[np.ndarray, list[str] | None]:
    with open(p, newline="") as f:
        first = next(csv.reader(f), None)
    if first is None:
        raise InputError(f"FEATURES: {p} is empty")
    header = not all(_is_number(c) for c in first)
    X = np.loadtxt(p, delimiter=",", skiprows=1 if header else 0, ndmin=2, dtype=np.float64)
    names = [c.strip() for c in first] if header else None
    if names is not None and len(names) != X.shape[1]:
        raise InputError(f"FEATURES: {p} has {len(names)} header names but {X.shape[1]} columns of numbers")
    return X, names


def _parquet(p: Path, what: str):
    try:
        import pandas as pd

        return pd.read_parquet(p)
    except ImportError as exc:
        raise InputError(
            f"{what}: reading .parquet needs pandas and pyarrow ({exc}); pip install swnas[pandas]"
        ) from None


def _parquet_features(p: Path) -> tuple[np.ndarray, list[str]]:
    df = _parquet(p, "FEATURES")
    bad = [str(c) for c in df.columns if df[c].dtype.kind not in "biuf"]
    if bad:
        raise InputError(f"FEATURES: {p} has non-numeric columns {bad[:5]}; keep only the features")
    dtype = np.float32 if all(df[c].dtype == np.float32 for c in df.columns) else np.float64
    return df.to_numpy(dtype=dtype), [str(c) for c in df.columns]


def load_features(path: str | Path) -> FeatureTable:
    """Read a feature matrix (N x p; N x ... arrays are flattened per row) and its feature names."""
    p = _file(path, "FEATURES", FEATURE_SUFFIXES)
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            X, names = np.load(p, allow_pickle=False), None
        elif suffix == ".npz":
            X, names = _npz(p, "FEATURES", ("X", "features", "x"))
        elif suffix == ".csv":
            X, names = _csv_features(p)
        else:
            X, names = _parquet_features(p)
    except InputError:
        raise
    except Exception as exc:  # corrupt or unreadable file
        raise InputError(f"FEATURES: cannot read {path} ({type(exc).__name__}: {exc})") from None
    if X.ndim < 2:
        raise InputError(f"FEATURES: expected a 2-D matrix (samples x features), got shape {X.shape}")
    if X.ndim > 2:
        X = X.reshape(X.shape[0], -1)
    if names is not None and len(names) != X.shape[1]:
        raise InputError(f"FEATURES: {path} names {len(names)} features but the matrix has {X.shape[1]}")
    return FeatureTable(X, names)


def _label_values(rows: list[str]) -> np.ndarray:
    """Text labels as integers when they all are (integral numbers), else floats or strings."""
    if rows and all(_is_number(r) for r in rows):
        vals = np.asarray([float(r) for r in rows])
        if np.all(vals == np.round(vals)):
            return vals.astype(np.int64)
        return vals  # refused later as non-integral, with the argument named
    return np.asarray(rows)


def load_labelled(path: str | Path, label: str) -> tuple[FeatureTable, np.ndarray]:
    """Read one file holding the features and, in the column named ``label``, the labels.

    ``.csv`` (a header line naming the columns; the label column may hold words), ``.parquet``
    (column names), or ``.npz`` (``label`` is the key of the label array).
    """
    p = _file(path, "FEATURES", FEATURE_SUFFIXES)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        raise InputError(f"--label: {path} is a bare array with no column names; give the labels as LABELS")
    if suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            if label not in z.files:
                raise InputError(f"--label: {path} holds no array {label!r} (it holds {list(z.files)})")
            y = z[label].reshape(-1)
        X, names = _npz(p, "FEATURES", ("X", "features", "x"), skip=(label,))
        if X.ndim > 2:
            X = X.reshape(X.shape[0], -1)
        return FeatureTable(X, names), y
    try:
        if suffix == ".csv":
            with open(p, newline="") as f:
                rows = [r for r in csv.reader(f) if r]
            if not rows:
                raise InputError(f"FEATURES: {p} is empty")
            names = [c.strip() for c in rows[0]]
            if label not in names:
                raise InputError(f"--label: {path} has no column {label!r}; its header names {names[:10]}")
            j = names.index(label)
            if any(len(r) != len(names) for r in rows[1:]):
                raise InputError(f"FEATURES: {p} has rows of different lengths")
            y = _label_values([r[j].strip() for r in rows[1:]])
            X = np.asarray([[float(v) for i, v in enumerate(r) if i != j] for r in rows[1:]], dtype=np.float64)
            X = X.reshape(len(rows) - 1, len(names) - 1)
            return FeatureTable(X, [n for i, n in enumerate(names) if i != j]), y
        df = _parquet(p, "FEATURES")
        if label not in [str(c) for c in df.columns]:
            raise InputError(
                f"--label: {path} has no column {label!r}; its columns are {[str(c) for c in df.columns][:10]}"
            )
        col = next(c for c in df.columns if str(c) == label)
        y = df[col].to_numpy()
        tmp_df = df.drop(columns=[col])
        bad = [str(c) for c in tmp_df.columns if tmp_df[c].dtype.kind not in "biuf"]
        if bad:
            raise InputError(f"FEATURES: {p} has non-numeric columns {bad[:5]} besides the label")
        dtype = np.float32 if all(tmp_df[c].dtype == np.float32 for c in tmp_df.columns) else np.float64
        return FeatureTable(tmp_df.to_numpy(dtype=dtype), [str(c) for c in tmp_df.columns]), y
    except InputError:
        raise
    except Exception as exc:  # corrupt file, a word among the features
        raise InputError(f"FEATURES: cannot read {path} ({type(exc).__name__}: {exc})") from None


def _text_labels(p: Path, n_samples: int | None) -> np.ndarray:
    delim = "," if p.suffix.lower() == ".csv" else None
    rows = [line.split(delim)[0].strip() for line in p.read_text().splitlines() if line.strip()]
    numeric_below = len(rows) > 1 and not _is_number(rows[0]) and all(_is_number(r) for r in rows[1:])
    if numeric_below or (n_samples is not None and len(rows) == n_samples + 1):
        rows = rows[1:]  # a header line above the labels
    return _label_values(rows)


def load_labels(path: str | Path, n_samples: int | None = None) -> np.ndarray:
    """Read a label vector; integers or strings (any values: swnas encodes them).

    A text file's first line is taken for a header when it is a word above numbers, or when the
    file holds one line more than ``n_samples`` (the number of feature rows).
    """
    p = _file(path, "LABELS", LABEL_SUFFIXES)
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            y = np.load(p, allow_pickle=False)
        elif suffix == ".npz":
            y = _npz(p, "LABELS", ("y", "labels", "Y"))[0]
        elif suffix == ".parquet":
            df = _parquet(p, "LABELS")
            if df.shape[1] != 1:
                raise InputError(f"LABELS: {path} has {df.shape[1]} columns; expected one column of labels")
            y = df.iloc[:, 0].to_numpy()
        else:
            y = _text_labels(p, n_samples)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"LABELS: cannot read {path} ({type(exc).__name__}: {exc})") from None
    if y.ndim == 2 and 1 in y.shape:
        y = y.reshape(-1)
    return y
