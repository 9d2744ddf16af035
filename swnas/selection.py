"""scikit-learn feature selectors backed by swnas's scorers: PLS-VIP, inf-FS and il-FS.

Each selector scores every feature of X for predicting y with one criterion (the scorers of
:mod:`swnas.scoring`: :mod:`~swnas.scoring.pls`, :mod:`~swnas.scoring.inffs`,
:mod:`~swnas.scoring.ilfs`) and keeps the ``k`` best, or those scoring at least ``threshold``. They are
ordinary scikit-learn transformers: they work in ``Pipeline`` and ``GridSearchCV``, keep a pandas
DataFrame's column names, accept any class labels (strings, negative or sparse integers), pickle,
and take Dask arrays chunked by rows (scored on the Dask workers, see :mod:`swnas.scoring.dask`).
NumPy float32/float64 input reaches the compiled scorers without a copy; torch tensors and CuPy
arrays are scored where they live.

>>> from sklearn.pipeline import make_pipeline                   # doctest: +SKIP
>>> from sklearn.linear_model import LogisticRegression           # doctest: +SKIP
>>> pipe = make_pipeline(VIPSelector(k=20), LogisticRegression()) # doctest: +SKIP
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from swnas.errors import InputError
from swnas.scoring import score
from swnas.scoring.api import Criterion, get_criterion
from swnas.scoring._arrays import array_info, as_float_matrix, encode_labels, to_numpy

__all__ = ["VIPSelector", "InfFSSelector", "ILFSSelector", "DEFAULT_K"]

#: features kept when neither ``k`` nor ``threshold`` is given
DEFAULT_K = 10


def _is_dask(X: Any) -> bool:
    from swnas.scoring.dask import is_dask_array

    return is_dask_array(X)


def _native(X: Any) -> bool:
    """torch tensors and CuPy arrays go to the scorers as they are (sklearn would copy them to NumPy)."""
    if isinstance(X, (np.ndarray, list, tuple)):
        return False
    try:
        return array_info(X).kind in ("torch", "cupy")
    except InputError:
        return False


class _ScoreSelector(SelectorMixin, BaseEstimator):
    """Shared machinery: validation, scoring, the ``k`` / ``threshold`` rule and streaming updates.

    Subclasses set ``_criterion`` and ``_param_names`` (the criterion's parameters, which are also
    the estimator's constructor arguments).
    """

    _criterion = ""
    _param_names: tuple[str, ...] = ()
    n_features_in_: int
    _acc: Any  # the StreamingScorer of partial_fit (None before the first call)

    # ------------------------------------------------------------------ fitting
    def _criterion_params(self) -> dict:
        return {name: getattr(self, name) for name in self._param_names}

    def _k(self) -> Any:
        """``k`` in force: its default (``None``) keeps :data:`DEFAULT_K` unless ``threshold`` is set."""
        return DEFAULT_K if self.k is None and self.threshold is None else self.k

    def _check_rule(self) -> None:
        k, thr = self.k, self.threshold
        if thr is not None:
            if k is not None:
                raise InputError(f"k: give k or threshold, not both (k={k!r}, threshold={thr!r})")
            if isinstance(thr, bool) or not isinstance(thr, numbers.Real) or not np.isfinite(float(thr)):
                raise InputError(f"threshold: must be a finite number, got {thr!r}")
            return
        k = self._k()
        if k != "all" and (isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0):
            raise InputError(f"k: must be a non-negative integer or 'all', got {k!r}")

    def _warn_k(self) -> None:
        """Warn, as ``SelectKBest`` does, when ``k`` asks for more features than X has."""
        k = self._k()
        if self.threshold is None and k != "all" and k > self.n_features_in_:
            warnings.warn(
                f"k={k} is greater than n_features={self.n_features_in_}. All the features will be kept.",
                UserWarning,
                stacklevel=3,
            )

    def _unlabelled(self, X: Any) -> Any:
        """Stand-in labels for a criterion that reads none (inf-FS): two classes, as the checks ask."""
        if _is_dask(X):
            import dask.array as da

            return da.arange(X.shape[0], chunks=(X.chunks[0],)) % 2
        return np.arange(array_info(X).shape[0]) % 2

    def _validate_X(self, X: Any, y: Any, reset: bool) -> tuple[Any, Any]:
        """Return (X for the scorer, y); records n_features_in_ (and feature_names_in_ for frames)."""
        if _is_dask(X) or _native(X):
            if _is_dask(X):
                if X.ndim != 2:
                    raise InputError(f"X: expected a 2-D matrix (samples x features), got shape {X.shape}")
                p = int(X.shape[1])  # dtype and chunking are checked where the chunks are scored
            else:
                X, info = as_float_matrix(X, "X")
                p = info.shape[1]
            if not reset and p != self.n_features_in_:
                raise InputError(
                    f"X: has {p} features, but {type(self).__name__} was fitted with {self.n_features_in_}"
                )
            self.n_features_in_ = p
            if reset and hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            return X, y
        checks = dict(
            reset=reset, dtype=[np.float64, np.float32], order=None, ensure_all_finite=False, ensure_min_samples=2
        )
        if y is None:
            return validate_data(self, X, **checks), None
        X, y = validate_data(self, X, y, y_numeric=False, **checks)
        return X, y

    def _regression(self, X: Any, y: Any) -> bool:
        """Whether ``y`` is a continuous response (PLS regression; only :class:`VIPSelector`)."""
        if y is None or _is_dask(y) or _is_dask(X):
            return False
        from sklearn.utils.multiclass import type_of_target

        kind = type_of_target(to_numpy(y) if _native(y) else y, input_name="y")
        if kind not in ("continuous", "continuous-multioutput"):
            return False
        if not self._supervised:  # inf-FS reads no labels: any y is ignored
            return False
        if self._record().regression is None:
            raise InputError(
                f"y: {type(self).__name__} needs class labels, got a continuous response; "
                "VIPSelector scores a continuous y by PLS regression"
            )
        if kind == "continuous-multioutput":
            raise InputError("y: expected one response column, got several")
        return True

    def fit(self, X: Any, y: Any = None) -> _ScoreSelector:
        """Score every feature of ``X`` (n_samples, n_features) for the class labels ``y``.

        :class:`VIPSelector` also takes a continuous ``y`` (PLS regression on one response column);
        :class:`InfFSSelector` reads no labels, so ``y`` may be left out.
        """
        self._check_rule()
        if y is None and self._supervised:
            raise InputError(f"y: {type(self).__name__} requires y to be passed, but the target y is None")
        X, y = self._validate_X(X, y, reset=True)
        self._warn_k()
        self._acc = None
        params = self._criterion_params()
        labelled = y is not None
        if not labelled:
            y = self._unlabelled(X)
        regression = self._record().regression
        if self._regression(X, y) and regression is not None:  # (None: _regression raised)
            self._set_scores(regression(to_numpy(X), to_numpy(y), **params), None)
            return self
        if _is_dask(X):  # scored on the Dask workers; only the labels' classes are found here
            from swnas.scoring.dask import dask_classes

            classes = dask_classes(y) if labelled else None
            res = score(X, y, criterion=self._criterion, backend=self.backend, **params)
        else:
            codes, classes = encode_labels(y, array_info(X).shape[0], "y")
            res = score(X, codes, criterion=self._criterion, backend=self.backend, **params)
            if res.n_iter is not None:  # il-FS's EM iterations (scikit-learn's n_iter_)
                self.n_iter_ = res.n_iter
            classes = classes if labelled else None
        self._set_scores(res.features, classes)
        return self

    def _set_scores(self, scores: np.ndarray, classes: np.ndarray | None) -> None:
        self.scores_ = np.asarray(scores, dtype=np.float64)
        if classes is None:  # a regression, or inf-FS fitted without labels
            self.__dict__.pop("classes_", None)
        else:
            self.classes_ = np.asarray(classes)
        order = np.argsort(-self.scores_, kind="stable")
        self.ranking_ = np.empty(order.size, dtype=np.int64)
        self.ranking_[order] = np.arange(1, order.size + 1)

    def _stream_update(self, X: Any, y: Any, classes: Any) -> _ScoreSelector:
        from swnas.scoring.streaming import StreamingScorer

        first = getattr(self, "_acc", None) is None
        if first:
            self._check_rule()
        if y is None and self._supervised:
            raise InputError(f"y: {type(self).__name__} requires y to be passed, but the target y is None")
        X, y = self._validate_X(X, y, reset=first)
        if first:
            self._warn_k()
            self._labelled = y is not None
        if y is None:
            y = self._unlabelled(X)
        elif self._regression(X, y):
            raise InputError("y: partial_fit takes class labels; a continuous response is scored by fit")
        params = self._criterion_params()
        if first:
            self._acc = StreamingScorer(self._criterion, classes=classes, **params)
        if _is_dask(X):  # the chunk's statistics come from the Dask workers
            from swnas.scoring.dask import stream_dask

            self._acc.merge(stream_dask(X, y, self._criterion, **params))
        else:
            self._acc.update(X, y)
        res = self._acc.result() if self._ready() else None
        if res is not None:
            self._set_scores(res.features, self._acc.classes if self._labelled else None)
        return self

    def _ready(self) -> bool:
        """Whether the rows seen so far can be scored (two classes, enough samples)."""
        acc = self._acc
        present = int((acc.counts > 0).sum())
        return present >= 2 and acc.n > self._criterion_params().get("n_components", 1)

    # ------------------------------------------------------------------ selecting
    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "scores_")
        p = self.scores_.shape[0]
        if self.threshold is not None:
            return self.scores_ >= self.threshold
        k = self._k()
        k = p if k == "all" else min(int(k), p)
        mask = np.zeros(p, dtype=bool)
        mask[self.ranking_ <= k] = True
        return mask

    def _record(self) -> Criterion:
        """The criterion's record (what it needs, whether it streams)."""
        return get_criterion(self._criterion)

    @property
    def _supervised(self) -> bool:
        """Whether the criterion reads the labels (inf-FS does not)."""
        return self._record().needs_labels

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = self._supervised
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _streams(selector: _ScoreSelector) -> bool:
    """Whether ``partial_fit`` exists: the criterion streams with the selector's parameters."""
    crit = selector._record()
    params = selector._criterion_params()
    if not crit.streams(params):
        why = crit.stream_refusal(params) or f"{crit.name} needs every row at once"
        fix = f", or {type(selector).__name__}({crit.stream_hint})" if crit.stream_hint else ""
        raise AttributeError(f"partial_fit: {why}; use fit{fix}")
    return True


class VIPSelector(_ScoreSelector):
    """Keep the features with the largest PLS-VIP (variable importance in projection).

    Parameters
    ----------
    k : int or "all", optional
        How many of the best features to keep (all of them, with a warning, when there are fewer).
        Default: 10, or none of that rule when ``threshold`` is given.
    threshold : float, optional
        Keep the features scoring at least this much instead of the ``k`` best (the classic VIP
        rule is 1.0: the mean squared VIP is 1).
    n_components : int, default 2
        PLS components.
    scale : bool, default True
        Standardise the columns of X (scikit-learn ``PLSRegression(scale=True)``).
    backend : str, default "auto"
        A :func:`swnas.scoring.score` backend.

    Attributes
    ----------
    scores_ : (n_features,) float64 VIP of each feature
    ranking_ : (n_features,) int, 1 for the best feature
    n_features_in_, feature_names_in_, classes_ : as in scikit-learn (no ``classes_`` after a
        continuous ``y``)

    Notes
    -----
    ``y`` holds class labels (PLS on their one-hot columns, the paper's use; any compiled backend)
    or one continuous response (PLS regression, VIP's classic use; float64 NumPy, equal to
    scikit-learn's ``PLSRegression``). Integer-valued floats are class labels.
    """

    _criterion = "pls"
    _param_names = ("n_components", "scale")

    def __init__(
        self,
        k: Any = None,
        *,
        threshold: float | None = None,
        n_components: int = 2,
        scale: bool = True,
        backend: str = "auto",
    ):
        self.k = k
        self.threshold = threshold
        self.n_components = n_components
        self.scale = scale
        self.backend = backend

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> VIPSelector:
        """Add a chunk of rows; the scores are exact for all rows seen (Gram-form streaming)."""
        return self._stream_update(X, y, classes)


class InfFSSelector(_ScoreSelector):
    """Keep the features with the largest inf-FS score (Roffo et al., ICCV 2015; unsupervised).

    Parameters
    ----------
    k, threshold, backend :
        As :class:`VIPSelector`.
    alpha : float, default 0.5
        Weight of the spread term against the correlation term.
    factor : float, default 0.9
        The series parameter r as a fraction of 1 / (largest eigenvalue).
    corr : {"spearman", "pearson"}, default "spearman"
        ``pearson`` allows :meth:`partial_fit` and Dask arrays.

    inf-FS is unsupervised: ``fit(X)`` and ``partial_fit(X)`` need no ``y`` (one given is ignored),
    and there is no ``classes_``.
    """

    _criterion = "inffs"
    _param_names = ("alpha", "factor", "corr")

    def __init__(
        self,
        k: Any = None,
        *,
        threshold: float | None = None,
        alpha: float = 0.5,
        factor: float = 0.9,
        corr: str = "spearman",
        backend: str = "auto",
    ):
        self.k = k
        self.threshold = threshold
        self.alpha = alpha
        self.factor = factor
        self.corr = corr
        self.backend = backend

    @available_if(_streams)
    def partial_fit(self, X: Any, y: Any = None, classes: Any = None) -> InfFSSelector:
        """Add a chunk of rows (``corr="pearson"`` only); the scores are exact for all rows seen."""
        return self._stream_update(X, y, classes)


class ILFSSelector(_ScoreSelector):
    """Keep the features with the largest il-FS score (Roffo et al., ICCV 2017, multi-class).

    il-FS needs every row at once (its tokens depend on the class means), so it has no
    ``partial_fit`` and refuses Dask arrays.

    Parameters
    ----------
    k, threshold, backend :
        As :class:`VIPSelector`.
    TT : int, default 4
        Token bins.
    max_iter : int, default 1000
    tol : float, default 1e-6
        EM stopping rule.

    Attributes
    ----------
    n_iter_ : int
        EM iterations the fit ran (at most ``max_iter``).
    """

    _criterion = "ilfs"
    _param_names = ("TT", "max_iter", "tol")

    def __init__(
        self,
        k: Any = None,
        *,
        threshold: float | None = None,
        TT: int = 4,
        max_iter: int = 1000,
        tol: float = 1e-6,
        backend: str = "auto",
    ):
        self.k = k
        self.threshold = threshold
        self.TT = TT
        self.max_iter = max_iter
        self.tol = tol
        self.backend = backend
