"""Backend-neutral PLS-VIP algebra: everything between the passes over X (docs/scorers.md, section 1).

Every PLS backend (numpy, numba, cpp, cuda, cupy, and the streaming accumulator) computes the
same few statistics of X and hands them to the float64 code here, so all of them run exactly the
same improved kernel PLS:

- :class:`ShiftedSums` turns sums of rows shifted by a reference row (the numerically safe way to
  accumulate in one pass, docs/scorers.md section 2) into column sums, centred sums of squares (or
  the centred scatter matrix) and class sums.
- :func:`standardised_cross` folds centring and scaling into X_s'Y_s; :func:`kernel_pls_vip` runs
  improved kernel PLS given one product with the standardised Gram operator; :func:`vip_from_components`
  is the VIP formula.
- :class:`PlsAlgebra` packages one problem's standardisation for the batch backends, and
  :func:`run_lockstep` runs many problems' algebra side by side so that each round of passes over
  all of them is one compiled call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from swnas.scoring._arrays import check_finite_stats

__all__ = [
    "ShiftedSums",
    "onehot_stats",
    "standardised_cross",
    "constant_columns",
    "vip_from_components",
    "kernel_pls_vip",
    "dominant_direction",
    "PlsAlgebra",
    "run_lockstep",
]


@dataclass(frozen=True)
class ShiftedSums:
    """Sums of rows shifted by a reference row, and what they finish into.

    Accumulating ``x - shift`` instead of ``x`` keeps ``sum (x - mean)^2`` from cancelling when a
    column's mean is large against its spread (docs/scorers.md, section 2).

    Attributes
    ----------
    n : int
        Rows summed.
    shift : (p,) float64
        The reference row.
    s1 : (p,) float64
        ``sum_i (x_i - shift)``.
    s2 : (p,) or (p, p) float64
        ``sum_i (x_i - shift)^2`` per column, or the full ``sum_i (x_i - shift)(x_i - shift)'``.
    class_sums : (C, p) float64
        Per-class ``sum (x_i - shift)``.
    counts : (C,) float64
        Rows per class.
    """

    n: int
    shift: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    class_sums: np.ndarray
    counts: np.ndarray

    def mean(self) -> np.ndarray:
        return self.shift + self.s1 / self.n

    def colsum(self) -> np.ndarray:
        return self.s1 + self.n * self.shift

    def centred_squares(self) -> np.ndarray:
        """``sum (x - mean)^2`` per column (clipped at 0; NaN/Inf kept so that they can be reported),
        or the centred scatter matrix when ``s2`` is full."""
        s1 = self.s1
        with np.errstate(invalid="ignore", over="ignore"):
            if self.s2.ndim == 2:
                return self.s2 - np.outer(s1, s1) / self.n
            sq = self.s2 - s1 * (s1 / self.n)
        return np.where(np.isfinite(sq), np.maximum(sq, 0.0), sq)

    def raw_class_sums(self) -> np.ndarray:
        """Per-class sums of x itself."""
        return self.class_sums + self.counts[:, None] * self.shift[None, :]

    def centred_class_sums(self) -> np.ndarray:
        """Per-class sums of ``x - mean``."""
        return self.class_sums - np.outer(self.counts, self.s1 / self.n)

    def pls_stats(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(colsum, centred sum of squares, class sums (C, p), counts)``, what :class:`PlsAlgebra` takes."""
        sq = self.centred_squares()
        if sq.ndim == 2:
            sq = np.diag(sq).copy()
        return self.colsum(), sq, self.raw_class_sums(), self.counts


def onehot_stats(counts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and ddof=1 std of each column of the one-hot label matrix, from the class counts."""
    counts = np.asarray(counts, dtype=np.float64)
    ymean = counts / n
    yvar = counts * (n - counts) / (n * (n - 1.0))
    ystd = np.sqrt(yvar)
    ystd[ystd == 0] = 1.0
    return ymean, ystd


def standardised_cross(
    colsum: np.ndarray,
    colsq_centred: np.ndarray,
    class_sums: np.ndarray,
    counts: np.ndarray,
    n: int,
    scale: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From one pass of statistics, the column means, the column scales and X_s'Y_s (p x C).

    ``class_sums[c, j]`` is the sum of column j over the rows of class c; ``colsq_centred`` the sum
    of squared deviations from the column mean.
    """
    mu = colsum / n
    constant = constant_columns(colsum, colsq_centred, n)
    if scale:
        sd = np.sqrt(np.maximum(colsq_centred, 0.0) / (n - 1.0))
        sd[(sd == 0) | constant] = 1.0
    else:
        sd = np.ones_like(mu)
    ymean, ystd = onehot_stats(counts, n)
    # X_s'Y_s[:, c] = D^-1 (X'y_c - colsum * ymean_c) / ystd_c   (Y_s is centred, so mu drops out),
    # in place, in the class sums' own (C, p) layout, returned as its transpose (an F-ordered p x C
    # view): at C = 1,000 these are 16 MB arrays, and a transposed read of them costs more than the
    # arithmetic. Every element sees the same operations in the same order as in p x C layout.
    t = np.multiply.outer(ymean, colsum)
    np.subtract(class_sums, t, out=t)
    t[:, constant] = 0.0
    if scale:
        np.divide(t, ystd[:, None], out=t)
        np.divide(t, sd[None, :], out=t)
    xy = t.T
    return mu, sd, xy


def constant_columns(colsum: np.ndarray, colsq_centred: np.ndarray, n: int) -> np.ndarray:
    """Mask of zero-variance columns (legal, as in scikit-learn; they score exactly 0)."""
    mu = colsum / n
    # a spread below 1e-12 of the mean is rounding in the mean itself, not information
    return colsq_centred <= n * (1e-12 * np.abs(mu)) ** 2


def vip_from_components(W: np.ndarray, ss: np.ndarray) -> np.ndarray:
    """VIP_j = sqrt(p * sum_a SS_a (w_ja/||w_a||)^2 / sum_a SS_a)."""
    p = W.shape[0]
    total = float(ss.sum())
    if total <= 0.0 or not np.isfinite(total):
        return np.zeros(p)
    norms = np.sqrt((W * W).sum(axis=0))
    norms[norms == 0] = 1.0
    Wn = W / norms
    return np.sqrt(p * (Wn * Wn) @ ss / total)


def q_of(xy: np.ndarray, r: np.ndarray, tt: float) -> np.ndarray:
    """The y-loadings Y_s't / t't of t = X_s r: r'(deflated X'Y) equals r'X'Y."""
    return (xy.T @ r) / tt


#: X'Y (p x C) with both sides at least this large takes the iterative eigensolver
ITERATIVE_MIN_SIDE = 256


#: ``gram(s, x, right) -> s's x`` (``right``) or ``s s'x``: a compiled product with the Gram operator
GramProduct = Callable[[np.ndarray, np.ndarray, bool], np.ndarray]


def dominant_direction(s: np.ndarray, gram: GramProduct | None = None) -> np.ndarray:
    """The dominant left singular vector of ``s`` (p x C) times its singular value.

    This is ``s @ v`` for the top eigenvector ``v`` of ``s's``: kernel PLS's weight direction before
    normalisation (its norm is compared with ``||X'Y||`` to stop). Small problems use a full
    ``numpy.linalg.eigh`` of the C x C product. When p and C are both at least
    :data:`ITERATIVE_MIN_SIDE` (ImageNet's 1,000 classes), the full eigendecomposition of a
    1,000 x 1,000 matrix costs about as much as a pass over 320,000 x 2,048 float32 X, per
    component; there the top eigenpair of the smaller of ``s's`` and ``ss'`` is found by Lanczos
    iteration (ARPACK ``eigsh``, tolerance 0: converged to machine precision, from a fixed start
    vector so that results are reproducible), which needs only products with ``s`` (measured:
    0.13 s against 1.0 s for ``eigh`` on a loaded 2-core machine, same direction to 4e-15;
    benchmarks/RESULTS.md). ARPACK failing to converge falls back to LAPACK's ``syevr`` for the top
    eigenpair alone. ``gram``, when given, computes the iteration's products (the ``cpp`` backend's
    threaded kernel reads ``s`` once per product instead of twice); otherwise NumPy does.
    """
    p, c = s.shape
    if c == 1:
        return s[:, 0].copy()
    if min(p, c) < ITERATIVE_MIN_SIDE:
        evals, evecs = np.linalg.eigh(s.T @ s)
        return s @ evecs[:, -1]
    if not np.any(s):
        return np.zeros(p)
    import scipy.linalg
    import scipy.sparse.linalg as spla

    # s stored as the transpose of a C-contiguous M (standardised_cross's layout): iterate on
    # ss' = M'M, whose product is one fused read of M; otherwise on the smaller of s's and ss'
    transposed = gram is not None and not s.flags.c_contiguous and s.T.flags.c_contiguous
    small_right = c <= p and not transposed  # s's (C x C) when C <= p, else ss' (p x p)
    m = c if small_right else p

    def matvec(x: np.ndarray) -> np.ndarray:
        x = np.ravel(x)
        if gram is not None:
            x = np.ascontiguousarray(x, dtype=np.float64)
            return gram(s.T, x, True) if transposed else gram(s, x, small_right)
        return s.T @ (s @ x) if small_right else s @ (s.T @ x)

    op = spla.LinearOperator((m, m), matvec=matvec, dtype=np.float64)
    v0 = np.random.default_rng(0).standard_normal(m)
    try:
        _, vecs = spla.eigsh(op, k=1, which="LA", tol=0, v0=v0)
        u = vecs[:, 0]
    except (spla.ArpackNoConvergence, spla.ArpackError):
        g = s.T @ s if small_right else s @ s.T
        u = scipy.linalg.eigh(g, subset_by_index=[m - 1, m - 1])[1][:, 0]
    if small_right:
        return s @ u
    return u * np.linalg.norm(s.T @ u)


def kernel_pls_vip(
    xy: np.ndarray,
    n_components: int,
    project: Callable[[np.ndarray], tuple[np.ndarray, float]],
    constant: np.ndarray | None = None,
    project_tt: Callable[[np.ndarray], float] | None = None,
    gram: GramProduct | None = None,
) -> np.ndarray:
    """Improved kernel PLS on the standardised cross-product ``xy`` = X_s'Y_s, returning VIP.

    Parameters
    ----------
    xy : (p, C) float64
    n_components : int
    project : callable
        ``project(r) -> (X_s'X_s r, r'X_s'X_s r)``: one product with the standardised data's Gram
        operator. The batch form computes it with two passes over X (t = X_s r, then X_s't); the
        Gram form multiplies by the accumulated X'X.
    constant : (p,) bool, optional
        Zero-variance columns: their loadings are set to exactly 0 (rounding would leave ~1e-17).
    project_tt : callable, optional
        ``project_tt(r) -> r'X_s'X_s r`` alone, for the last component: its loading X_s't only
        deflates X'Y for a next component, so a backend that can skip it reads X once more without
        the X't half (docs/scorers.md, section 1). Without it the last component calls ``project``.
    gram : callable, optional
        The Gram products of :func:`dominant_direction` (compiled on the ``cpp`` backend).
    """
    p, c = xy.shape
    s = xy.copy(order="K")  # keeps standardised_cross's layout
    W = np.zeros((p, n_components))
    R = np.zeros((p, n_components))
    P = np.zeros((p, n_components))
    ss = np.zeros(n_components)
    s0_norm = np.linalg.norm(xy)
    for a in range(n_components):
        w = dominant_direction(s, gram)
        wn = np.linalg.norm(w)
        if wn <= 1e-12 * max(float(s0_norm), 1e-300):
            break  # X'Y exhausted: the remaining components explain nothing (sklearn stops too)
        w = w / wn
        r = w - R[:, :a] @ (P[:, :a].T @ w)
        if project_tt is not None and a == n_components - 1:
            tt = project_tt(r)
            if not tt > 0.0:
                break
            q = q_of(xy, r, tt)
            W[:, a] = w
            ss[a] = tt * float(q @ q)
            break
        g, tt = project(r)
        if not tt > 0.0:
            break
        pa = g / tt
        if constant is not None:
            pa[constant] = 0.0
        q = q_of(xy, r, tt)
        if s.flags.c_contiguous:
            d = np.outer(pa, q)
            d *= tt
            s -= d
        else:  # the transposed layout: the same products, written in s's memory order
            dt = np.outer(q, pa)
            dt *= tt
            st = s.T
            st -= dt
        W[:, a], R[:, a], P[:, a] = w, r, pa
        ss[a] = tt * float(q @ q)
    return vip_from_components(W, ss)


#: ``project_raw(v, c) -> (X't, sum(t), t't)`` with ``t = X v - c``: one compiled projection pass
ProjectRaw = Callable[[np.ndarray, float], tuple[np.ndarray, float, float]]


@dataclass(frozen=True)
class PlsAlgebra:
    """The standardisation of one problem, from its statistics pass.

    Attributes
    ----------
    mu, sd : (p,) float64
        Column means and scales (ddof=1 std, 1 where it is 0 or ``scale=False``).
    xy : (p, C) float64
        X_s'Y_s, the standardised cross-product that kernel PLS deflates.
    """

    mu: np.ndarray
    sd: np.ndarray
    xy: np.ndarray
    constant: np.ndarray | None = None

    @classmethod
    def from_stats(cls, stats: Sequence[np.ndarray], n: int, scale: bool, name: str = "X") -> PlsAlgebra:
        """``stats = (colsum, centred sum of squares, class_sums (C, p), counts)``; raises on NaN/Inf."""
        colsum, sq, class_sums, counts = (np.asarray(s, dtype=np.float64) for s in stats)
        check_finite_stats(colsum, sq, name)
        mu, sd, xy = standardised_cross(colsum, sq, class_sums, counts, n, scale)
        return cls(mu, sd, xy, constant_columns(colsum, sq, n))

    def vip(
        self,
        n_components: int,
        project_raw: ProjectRaw,
        tt_raw: ProjectRaw | None = None,
        gram: GramProduct | None = None,
    ) -> np.ndarray:
        """VIP by kernel PLS; the Gram product of the standardised X comes from ``project_raw``.

        ``tt_raw(v, c)``, when given, is the same pass without X't (its first item is ignored): the
        last component needs only t't. ``gram``: see :func:`dominant_direction`.
        """
        mu, sd = self.mu, self.sd

        def project(r: np.ndarray) -> tuple[np.ndarray, float]:
            v = r / sd
            g_raw, tsum, tt = project_raw(np.ascontiguousarray(v), float(mu @ v))
            return (np.asarray(g_raw) - mu * tsum) / sd, float(tt)

        def project_tt(r: np.ndarray) -> float:
            assert tt_raw is not None  # only passed on when given
            v = r / sd
            return float(tt_raw(np.ascontiguousarray(v), float(mu @ v))[2])

        tt = project_tt if tt_raw is not None else None
        return kernel_pls_vip(self.xy, n_components, project, self.constant, tt, gram)


class _Failure:
    """An exception raised by a batched projection, handed to every waiting problem."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def run_lockstep(
    tasks: Sequence[Callable[[Callable[..., Any]], Any]], project_many: Callable[[dict[int, tuple]], dict[int, Any]]
) -> list[Any]:
    """Run ``tasks[i](project)`` side by side, batching their ``project`` calls.

    Each task runs in its own thread; its ``project(*args)`` blocks until every unfinished task is
    also waiting in ``project``, then the main thread answers all of them with one
    ``project_many({i: args})`` call (one compiled call over all problems). Tasks that stop early
    (kernel PLS stops when X'Y is exhausted) simply drop out. Exceptions propagate.
    """
    k = len(tasks)
    cond = threading.Condition()
    pending: dict[int, tuple] = {}
    answers: dict[int, Any] = {}
    results: dict[int, Any] = {}
    errors: dict[int, BaseException] = {}

    def make_project(i: int) -> Callable[..., Any]:
        def project(*args: Any) -> Any:
            with cond:
                pending[i] = args
                cond.notify_all()
                cond.wait_for(lambda: i in answers)
                ans = answers.pop(i)
            if isinstance(ans, _Failure):
                raise ans.exc
            return ans

        return project

    def worker(i: int) -> None:
        try:
            out = tasks[i](make_project(i))
        except BaseException as exc:  # re-raised in the caller's thread
            errors[i] = exc
            out = None
        with cond:
            results[i] = out
            cond.notify_all()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True, name=f"swnas-pls-{i}") for i in range(k)]
    for t in threads:
        t.start()
    while True:
        with cond:
            cond.wait_for(lambda: len(pending) + len(results) == k)
            if not pending:
                break
            batch = dict(pending)
            pending.clear()
        try:
            out = project_many(batch)
        except BaseException as exc:  # delivered to the tasks, then re-raised
            out = {i: _Failure(exc) for i in batch}
        with cond:
            answers.update(out)
            cond.notify_all()
    for t in threads:
        t.join()
    if errors:
        raise errors[min(errors)]
    return [results[i] for i in range(k)]
