"""Streaming (Gram-form) scoring: sum statistics chunk by chunk, never store the feature matrix.

PLS-VIP needs only X'X, X'Y, the column sums and N (docs/scorers.md, sections 1 and 2), and inf-FS
with Pearson correlation needs only X'X and the column sums (section 3), so both can be fed batch by
batch — straight from a forward pass, on the device that ran it — and merged across processes with
one all-reduce.

Numerics: every chunk is shifted by a fixed reference row (the first chunk's column means) before
its products are taken, and the products are accumulated in float64. ``X'X - N mu mu'`` computed
naively in float32 cancels catastrophically for post-ReLU activations or pixels; shifted sums do not.

The statistics are torch tensors on the chunks' device where PyTorch is installed (the ``search``
extra), and NumPy arrays on the host where it is not (``pip install .``: the scorers alone); both
give the same sums.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from swnas.errors import InputError
from swnas.scoring._arrays import as_float_matrix, check_finite_stats, class_labels, float64_range_shift, to_numpy
from swnas.scoring._pls_algebra import ShiftedSums
from swnas.scoring.registry import _CRITERIA, Criterion, ScoreResult, _criterion

__all__ = ["StreamingScorer", "supports_streaming", "streamable"]


def supports_streaming(criterion: str, **params: Any) -> bool:
    """Whether ``criterion`` (with ``params``) can be computed from streamed statistics (``False``
    for an unknown name: scoring it reports that)."""
    crit = _CRITERIA.get(criterion) if isinstance(criterion, str) else None
    return crit is not None and crit.streams(params)


def streamable(prefix: str = "") -> str:
    """The criteria that stream, for refusals: ``'pls' or 'inffs' with corr='pearson'``.

    ``prefix`` goes before each name (``"criterion="``).
    """
    names = [f"{prefix}{c.name!r}" + (f" with {c.stream_hint}" if c.stream_hint else "") for c in _streaming()]
    return " or ".join(names)


def _streaming() -> list[Criterion]:
    """The registered criteria with streamed statistics, in registration order."""
    return [c for c in _CRITERIA.values() if c.from_stats is not None]


def _torch_or_none():
    """PyTorch, or ``None`` where it is not installed (the statistics are then NumPy arrays)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def _torch():
    torch = _torch_or_none()
    if torch is None:
        raise ModuleNotFoundError(
            "this needs PyTorch, which the scorer-only install (pip install .) leaves out; "
            'install the search extra: pip install "swnas[search]"',
            name="torch",
        )
    return torch


def _host(a: Any) -> np.ndarray:
    """A statistic as a host NumPy array (torch tensors are copied off their device)."""
    return a if isinstance(a, np.ndarray) else a.cpu().numpy()


def _as_torch(X: Any, name: str):
    """Zero-copy torch view of a NumPy / torch / CuPy matrix (float32 or float64)."""
    torch = _torch()
    X, info = as_float_matrix(X, name)  # clear errors for object, string, complex or 1-D chunks
    if info.kind == "numpy":
        return torch.from_numpy(np.ascontiguousarray(X))
    if info.kind == "torch":
        return X.detach()
    return torch.from_dlpack(X)  # cupy: DLPack keeps it on the GPU


class _ClassIndex:
    """Label value -> row of the per-class statistics, fixed up front or grown as labels arrive.

    Attributes
    ----------
    labels : list
        Python label values in code order.
    fixed : bool
        Whether the labels were given up front (unknown labels are then an error).
    contiguous : bool
        Whether the labels are exactly ``0 .. C-1`` (integer codes pass through untouched).
    """

    def __init__(self, labels: list, fixed: bool) -> None:
        self.labels = list(labels)
        self.fixed = fixed
        self.index = {v: i for i, v in enumerate(self.labels)}

    @property
    def contiguous(self) -> bool:
        return self.fixed and self.labels == list(range(len(self.labels)))

    def codes(self, y: Any, name: str = "y") -> np.ndarray:
        """int64 codes of the label vector ``y`` (host), registering new labels unless fixed."""
        arr = class_labels(y, name)
        uniq, inv = np.unique(arr, return_inverse=True)
        values = [u.item() if isinstance(u, np.generic) else u for u in uniq]
        self._check_kind(values, name)
        missing = [v for v in values if v not in self.index]
        if missing and self.fixed:
            known = (
                f"0..{len(self.labels) - 1}"
                if self.contiguous
                else ", ".join(map(repr, self.labels[:8])) + (" ..." if len(self.labels) > 8 else "")
            )
            raise InputError(f"{name}: labels must lie in {known}; got {missing[0]!r}")
        for v in missing:
            self.index[v] = len(self.labels)
            self.labels.append(v)
        return np.asarray([self.index[v] for v in values], dtype=np.int64)[inv.reshape(-1)]

    def _check_kind(self, values: list, name: str) -> None:
        if not self.labels or not values:
            return
        if isinstance(self.labels[0], str) != isinstance(values[0], str):
            raise InputError(
                f"{name}: labels must all be integers or all be strings across chunks; "
                f"earlier chunks had {self.labels[0]!r}, this one {values[0]!r}"
            )

    def sorted_labels(self) -> np.ndarray:
        return np.asarray(sorted(self.labels))


def _chunk_codes(index: _ClassIndex, y: Any, b: int, device):
    """A chunk's labels as int64 codes on ``device``; integer tensors of 0..C-1 stay on their device."""
    torch = _torch()
    if isinstance(y, torch.Tensor) and index.contiguous and not y.is_floating_point() and y.dtype != torch.bool:
        yt = y.detach()
        if yt.ndim != 1 or yt.shape[0] != b:
            raise InputError(f"y: expected {b} labels for a chunk of {b} rows, got shape {tuple(yt.shape)}")
        yt = yt.to(device=device, dtype=torch.long)
        lo, hi = int(yt.min()), int(yt.max())
        c = len(index.labels)
        if lo < 0 or hi >= c:
            raise InputError(f"y: labels must lie in 0..{c - 1}, got values in {lo}..{hi}")
        return yt
    codes = index.codes(y)
    if codes.shape[0] != b:
        raise InputError(f"y: expected {b} labels for a chunk of {b} rows, got {codes.shape[0]}")
    return torch.from_numpy(codes).to(device)


class StreamingScorer:
    """Accumulate scoring statistics over chunks of rows; score without storing X.

    Instances pickle (they hold the criterion's name and plain tensors), so accumulators can be
    built in worker processes and merged where the result is wanted.

    Parameters
    ----------
    criterion : str
        One whose record streams (:meth:`~swnas.scoring.api.Criterion.streams`): ``pls``, or
        ``inffs`` with ``corr="pearson"``.
    n_classes : int, optional
        Labels are the integers ``0 .. n_classes-1`` (the fast path: codes stay on their device).
    backend : str
        Kept for API symmetry; the statistics live on the device of the chunks (torch does the
        GEMM there) and the final small solve runs in float64 NumPy.
    classes : sequence, optional
        The label values (integers or strings) when they are known up front; a label outside them
        is an error. With neither ``n_classes`` nor ``classes``, any labels are accepted and the
        classes grow as they arrive (as in scikit-learn, their order does not change the scores).
    **params
        Criterion parameters (``n_components``, ``scale`` for PLS; ``alpha``, ``factor`` for inf-FS).

    Examples
    --------
    >>> acc = StreamingScorer("pls")                                # doctest: +SKIP
    >>> for xb, yb in batches: acc.update(xb, yb)                  # doctest: +SKIP
    >>> acc.result().stage                                          # doctest: +SKIP
    """

    log2_scale = 0  # (class default: accumulators pickled before the attribute existed unpickle)

    def __init__(
        self,
        criterion: str = "pls",
        n_classes: int | None = None,
        backend: str = "auto",
        *,
        classes: Any = None,
        **params: Any,
    ):
        crit = _criterion(criterion)
        if not crit.streams(params):
            raise InputError(
                f"criterion: {criterion!r} with {params or 'default parameters'} needs the whole feature "
                f"matrix; stream only {streamable()}"
            )
        self.criterion = crit.name  # the name only: Criterion objects hold lambdas, which do not pickle
        self.backend = backend
        self.params = dict(params)
        self._classes = _class_index(n_classes, classes)
        self.n = 0
        self.shift: Any = None  # (p,) float64 torch tensor on the statistics' device
        self.s1: Any = None  # sum of (x - shift)
        self.s2: Any = None  # sum of (x - shift)(x - shift)'
        self.cs: Any = None  # (C, p) per-class sums of (x - shift)
        self.counts: Any = None  # (C,) float64
        # float64 data far from 1 is accumulated as X * 2**log2_scale (exact; docs/scorers.md section 2),
        # fixed by the first chunk; 0 for float32 data and data in range
        self.log2_scale = 0

    # ------------------------------------------------------------------ updates
    @property
    def n_features(self) -> int | None:
        return None if self.shift is None else int(self.shift.shape[0])

    @property
    def n_classes(self) -> int:
        """How many classes the statistics hold rows for."""
        return len(self._classes.labels)

    @property
    def classes(self) -> np.ndarray:
        """The class label values, sorted (those given up front, or those seen so far)."""
        return self._classes.sorted_labels()

    def _init_state(self, p: int, device, shift):
        if device is None:  # NumPy statistics (no PyTorch)
            self.shift = np.array(shift, dtype=np.float64)
            self.s1 = np.zeros(p)
            self.s2 = np.zeros((p, p))
            self.cs = np.zeros((self.n_classes, p))
            self.counts = np.zeros(self.n_classes)
            return
        torch = _torch()
        f64 = torch.float64
        self.shift = shift.to(device=device, dtype=f64)
        self.s1 = torch.zeros(p, dtype=f64, device=device)
        self.s2 = torch.zeros((p, p), dtype=f64, device=device)
        self.cs = torch.zeros((self.n_classes, p), dtype=f64, device=device)
        self.counts = torch.zeros(self.n_classes, dtype=f64, device=device)

    def _grow_classes(self) -> None:
        """Add zero rows for classes registered since the statistics were allocated."""
        extra = self.n_classes - self.cs.shape[0]
        if extra > 0 and isinstance(self.cs, np.ndarray):
            self.cs = np.concatenate([self.cs, np.zeros((extra, self.cs.shape[1]))])
            self.counts = np.concatenate([self.counts, np.zeros(extra)])
        elif extra > 0:
            torch = _torch()
            dev = self.cs.device
            self.cs = torch.cat([self.cs, torch.zeros((extra, self.cs.shape[1]), dtype=self.cs.dtype, device=dev)])
            self.counts = torch.cat([self.counts, torch.zeros(extra, dtype=self.counts.dtype, device=dev)])

    def update(self, X: Any, y: Any) -> StreamingScorer:
        """Add a chunk of rows ``X`` (b x p) with labels ``y`` (b,)."""
        torch = _torch_or_none()
        if torch is None:
            return self._update_numpy(X, y)
        self._to_torch()
        t = _as_torch(X, "X")
        b, p = t.shape
        if b == 0:
            return self
        if self.shift is not None and p != self.shift.shape[0]:
            raise InputError(f"X: chunk has {p} features, earlier chunks had {self.shift.shape[0]}")
        yt = _chunk_codes(self._classes, y, b, t.device)
        if self.shift is None and t.dtype == torch.float64:
            self.log2_scale = float64_range_shift(float(t.abs().max()), _ROW_BUDGET)
        if self.log2_scale:  # (a copy, for such data only)
            t = torch.ldexp(
                t.to(torch.float64), torch.tensor(float(self.log2_scale), dtype=torch.float64, device=t.device)
            )
        if self.shift is None:
            self._init_state(p, t.device, t.mean(dim=0, dtype=torch.float64))
        elif t.device != self.shift.device:
            raise InputError(f"X: chunk is on {t.device}, the statistics are on {self.shift.device}")
        self._grow_classes()
        z = t - self.shift.to(t.dtype)
        self.s1 += z.sum(dim=0, dtype=torch.float64)
        self.s2 += torch.mm(z.T, z).to(torch.float64)  # the GEMM: float32 products of shifted rows
        # per-class sums of this chunk in the chunk's dtype (few rows each), then into float64
        cs = torch.zeros((self.n_classes, p), dtype=z.dtype, device=z.device)
        cs.index_add_(0, yt, z)
        self.cs += cs.to(torch.float64)
        self.counts += torch.bincount(yt, minlength=self.n_classes).to(torch.float64)
        self.n += b
        return self

    def _update_numpy(self, X: Any, y: Any) -> StreamingScorer:
        """:meth:`update` without PyTorch: the same shifted sums, in NumPy on the host."""
        X, info = as_float_matrix(X, "X")
        X = np.asarray(to_numpy(X)) if info.kind != "numpy" else X
        b, p = X.shape
        if b == 0:
            return self
        if self.shift is not None and p != self.shift.shape[0]:
            raise InputError(f"X: chunk has {p} features, earlier chunks had {self.shift.shape[0]}")
        codes = self._classes.codes(y)
        if codes.shape[0] != b:
            raise InputError(f"y: expected {b} labels for a chunk of {b} rows, got {codes.shape[0]}")
        if self.shift is None and X.dtype == np.float64:
            self.log2_scale = float64_range_shift(float(np.abs(X).max()), _ROW_BUDGET)
        if self.log2_scale:  # (a copy, for such data only)
            X = np.ldexp(X.astype(np.float64), self.log2_scale)
        if self.shift is None:
            self._init_state(p, None, X.mean(axis=0, dtype=np.float64))
        self._grow_classes()
        z = X - self.shift.astype(X.dtype)
        self.s1 += z.sum(axis=0, dtype=np.float64)
        self.s2 += (z.T @ z).astype(np.float64)  # the GEMM: float32 products of shifted rows
        cs = np.zeros((self.n_classes, p), dtype=z.dtype)
        np.add.at(cs, codes.astype(np.intp), z)
        self.cs += cs.astype(np.float64)
        self.counts += np.bincount(codes, minlength=self.n_classes).astype(np.float64)
        self.n += b
        return self

    def _to_torch(self) -> None:
        """Turn NumPy statistics (made where PyTorch was missing, then pickled) into CPU tensors."""
        if isinstance(self.shift, np.ndarray):
            torch = _torch()
            for k in ("shift", "s1", "s2", "cs", "counts"):
                setattr(self, k, torch.from_numpy(getattr(self, k)))

    def _state_at(self, shift):
        """(s1, s2, cs) re-expressed relative to ``shift``."""
        return _reshift(self.n, self.shift, self.s1, self.s2, self.cs, self.counts, shift)

    def _rescaled(self, log2_scale: int) -> StreamingScorer:
        """A shallow copy whose statistics are those of X * 2**log2_scale (self if already so)."""
        k = log2_scale - self.log2_scale
        if k == 0:
            return self
        f = float(2.0**k)
        out = copy.copy(self)
        out.shift, out.s1, out.cs, out.s2 = self.shift * f, self.s1 * f, self.cs * f, self.s2 * (f * f)
        out.log2_scale = log2_scale
        return out

    def merge(self, other: StreamingScorer) -> StreamingScorer:
        """Add ``other``'s statistics into this accumulator (the shifts and class orders may differ)."""
        if not isinstance(other, StreamingScorer):
            raise InputError(f"other: expected a StreamingScorer, got {type(other).__name__}")
        if (other.criterion, other.params) != (self.criterion, self.params):
            raise InputError("other: accumulators of different criteria or parameters cannot be merged")
        if other.n == 0:
            return self
        rows = self._classes.codes(np.asarray(other._classes.labels, dtype=object), "other")
        if _torch_or_none() is None:
            return self._merge_numpy(other, rows)
        other = copy.copy(other)
        other._to_torch()
        if self.n == 0:
            self.log2_scale = other.log2_scale
            self._init_state(other.shift.shape[0], other.shift.device, other.shift)
        self._to_torch()
        if other.shift.shape != self.shift.shape:
            raise InputError(f"other: has {other.shift.shape[0]} features, this has {self.shift.shape[0]}")
        self._grow_classes()
        s1, s2, cs = other._rescaled(self.log2_scale)._state_at(self.shift.to(other.shift.device))
        dev = self.shift.device
        idx = _torch().from_numpy(rows).to(dev)
        self.s1 += s1.to(dev)
        self.s2 += s2.to(dev)
        self.cs.index_add_(0, idx, cs.to(dev))
        self.counts.index_add_(0, idx, other.counts.to(dev))
        self.n += other.n
        return self

    def _merge_numpy(self, other: StreamingScorer, rows: np.ndarray) -> StreamingScorer:
        if self.n == 0:
            self.log2_scale = other.log2_scale
            self._init_state(other.shift.shape[0], None, other.shift)
        if other.shift.shape != self.shift.shape:
            raise InputError(f"other: has {other.shift.shape[0]} features, this has {self.shift.shape[0]}")
        self._grow_classes()
        s1, s2, cs = other._rescaled(self.log2_scale)._state_at(self.shift)
        idx = rows.astype(np.intp)
        self.s1 += s1
        self.s2 += s2
        np.add.at(self.cs, idx, cs)
        np.add.at(self.counts, idx, other.counts)
        self.n += other.n
        return self

    def all_reduce(self, group=None) -> StreamingScorer:
        """Sum the statistics of every process of ``torch.distributed`` (in place).

        A tiny all-reduce agrees on a common shift (the global column mean); then the whole state
        travels in one all-reduce of a single packed float64 buffer. Every rank must call this, and
        must have seen at least one chunk or know ``n_features`` from a peer (ranks with no rows
        contribute zeros).
        """
        torch = _torch_or_none()
        if torch is None:  # no PyTorch, so no process group: one process holds everything
            return self
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        self._to_torch()
        if not self._classes.fixed:
            raise InputError("all_reduce: give n_classes= or classes= so that every process numbers the classes alike")
        if self.shift is None:
            raise InputError("all_reduce: this process saw no rows; give every rank a shard")
        dev = self.shift.device
        # one exponent for every rank: the smallest (a larger one could overflow a rank's squares)
        k = torch.tensor([float(self.log2_scale)], dtype=torch.float64, device=dev)
        dist.all_reduce(k, op=dist.ReduceOp.MIN, group=group)
        scaled = self._rescaled(int(k.item()))
        self.log2_scale, self.shift, self.s1, self.s2, self.cs = (
            scaled.log2_scale,
            scaled.shift,
            scaled.s1,
            scaled.s2,
            scaled.cs,
        )
        head = torch.cat(
            [torch.tensor([float(self.n)], dtype=torch.float64, device=dev), self.s1 + self.n * self.shift]
        )
        dist.all_reduce(head, group=group)
        n_all = float(head[0])
        common = head[1:] / n_all
        s1, s2, cs = self._state_at(common)
        packed = torch.cat([s1, s2.reshape(-1), cs.reshape(-1), self.counts])
        dist.all_reduce(packed, group=group)
        p, c = s1.shape[0], self.n_classes
        self.shift = common
        self.s1 = packed[:p].clone()
        self.s2 = packed[p : p + p * p].reshape(p, p).clone()
        self.cs = packed[p + p * p : p + p * p + c * p].reshape(c, p).clone()
        self.counts = packed[p + p * p + c * p :].clone()
        self.n = int(round(n_all))
        return self

    # ------------------------------------------------------------------ results
    def statistics(self) -> dict[str, Any]:
        """Host float64 copies: ``n, mean, scatter`` (centred X'X), ``class_sums_centred``, ``counts``.

        They describe ``X * 2**log2_scale`` (also returned): float64 data whose squares would
        overflow or underflow is accumulated scaled by a power of two, which no criterion sees.
        """
        if self.n == 0:
            raise InputError("X: no rows were given to the accumulator")
        sums = ShiftedSums(
            n=self.n,
            shift=_host(self.shift),
            s1=_host(self.s1),
            s2=_host(self.s2),
            class_sums=_host(self.cs),
            counts=_host(self.counts),
        )
        check_finite_stats(sums.s1, np.diag(sums.s2))
        return {
            "n": self.n,
            "mean": sums.mean(),
            "scatter": sums.centred_squares(),
            "class_sums_centred": sums.centred_class_sums(),
            "counts": sums.counts,
            "log2_scale": self.log2_scale,
        }

    def result(self) -> ScoreResult:
        """Score the accumulated rows; equals ``score(X_all, y_all, ...)`` up to rounding."""
        st = self.statistics()
        n, p = st["n"], st["mean"].shape[0]
        present = st["counts"] > 0
        if present.sum() < 2:
            raise InputError(f"y: needs at least 2 classes to score features, found {int(present.sum())}")
        crit = _criterion(self.criterion)
        params = crit.check(dict(self.params), n, p, int(present.sum()))
        if n < crit.min_samples(params):
            raise InputError(f"X: has {n} samples; this criterion needs at least {crit.min_samples(params)}")
        assert crit.from_stats is not None  # (checked in __init__)
        feats = np.asarray(crit.from_stats(st, params), dtype=np.float64)
        return ScoreResult(
            features=feats, stage=float(feats.mean()), criterion=self.criterion, backend="streaming", params=params
        )


def _reshift(n: int, old, s1, s2, cs, counts, shift):
    """Sums of ``x - old`` (s1, s2 = sum of outer products, per-class cs) as sums of ``x - shift``."""
    d = old - shift
    m = float(n)
    s1n = s1 + m * d
    s2n = s2 + s1[:, None] * d[None, :] + d[:, None] * s1[None, :] + m * d[:, None] * d[None, :]
    return s1n, s2n, cs + counts[:, None] * d[None, :]


#: Rows a float64 stream is assumed to reach when its scale is fixed from the first chunk: sums of up
#: to 2**40 squares stay finite
_ROW_BUDGET = 1 << 40


def _class_index(n_classes: Any, classes: Any) -> _ClassIndex:
    if classes is not None:
        if n_classes is not None:
            raise InputError("classes: give n_classes or classes, not both")
        arr = class_labels(classes, "classes")
        values = [v.item() if isinstance(v, np.generic) else v for v in np.unique(arr)]
        if len(values) < 2 or len(values) != arr.shape[0]:
            raise InputError(f"classes: expected at least 2 distinct labels, got {list(arr)!r}")
        return _ClassIndex(values, fixed=True)
    if n_classes is None:
        return _ClassIndex([], fixed=False)
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise InputError(f"n_classes: must be an integer >= 2, got {n_classes!r}")
    return _ClassIndex(list(range(int(n_classes))), fixed=True)
