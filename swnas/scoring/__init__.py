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

__all__ = [
    "BACKENDS",
    "ScoreResult",
    "available_backends",
    "backend_status",
    "criteria",
    "score",
    "score_many",
]
