"""Feature-importance scorers for stage features: PLS-VIP, inf-FS and il-FS on several backends.

>>> from swnas.scoring import score
>>> res = score(X, y, criterion="pls")          # doctest: +SKIP
>>> res.features.shape, res.stage               # doctest: +SKIP
"""
from __future__ import annotations

from swnas.scoring.api import ScoreResult, criteria, score, score_many
from swnas.scoring.backends import BACKENDS, available_backends, backend_status

# criteria register themselves (and their backends) on import
from swnas.scoring import pls as _pls  # noqa: E402,F401
from swnas.scoring import _pls_native as _pls_native  # noqa: E402,F401
from swnas.scoring import _pls_numba as _pls_numba  # noqa: E402,F401
from swnas.scoring import _pls_cupy as _pls_cupy  # noqa: E402,F401
from swnas.scoring import inffs as _inffs  # noqa: E402,F401
from swnas.scoring import ilfs as _ilfs  # noqa: E402,F401
from swnas.scoring import _inffs_native as _inffs_native  # noqa: E402,F401
from swnas.scoring import _ilfs_native as _ilfs_native  # noqa: E402,F401
from swnas.scoring import _inffs_numba as _inffs_numba  # noqa: E402,F401
from swnas.scoring import _ilfs_numba as _ilfs_numba  # noqa: E402,F401
from swnas.scoring import _inffs_ilfs_cupy as _inffs_ilfs_cupy  # noqa: E402,F401

__all__ = [
    "BACKENDS",
    "ScoreResult",
    "available_backends",
    "backend_status",
    "criteria",
    "score",
    "score_many",
]
