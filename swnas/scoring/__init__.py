"""Feature-importance scorers for stage features: PLS-VIP, inf-FS and il-FS on several backends.

>>> from swnas.scoring import score
>>> res = score(X, y, criterion="pls")          # doctest: +SKIP
>>> res.features.shape, res.stage               # doctest: +SKIP

Importing this package registers every criterion (:data:`CRITERION_MODULES`) and, for each
criterion and each backend of the table in :mod:`swnas.scoring.backends`, the implementation module
``_<criterion>_<backend>.py`` when it exists (docs/backends.md).
"""

from __future__ import annotations

import importlib
import importlib.util

from swnas.scoring.api import ScoreResult, check_params, criteria, score, score_many
from swnas.scoring.backends import BACKEND_TABLE, BACKENDS, available_backends, backend_status, check_backend

#: the criterion modules; each registers its criterion and its float64 NumPy reference on import
CRITERION_MODULES: tuple[str, ...] = ("pls", "inffs", "ilfs")


def _load_implementations() -> None:
    for crit in CRITERION_MODULES:
        importlib.import_module(f"{__name__}.{crit}")
        for rec in BACKEND_TABLE:
            name = f"{__name__}._{crit}_{rec.name}"
            if importlib.util.find_spec(name) is not None:
                importlib.import_module(name)


_load_implementations()

__all__ = [
    "BACKENDS",
    "ScoreResult",
    "available_backends",
    "backend_status",
    "check_backend",
    "check_params",
    "criteria",
    "score",
    "score_many",
]
