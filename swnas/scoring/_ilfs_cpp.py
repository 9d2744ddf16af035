"""il-FS on the ``cpp`` backend (``swnas._core``; docs/scorers.md, section 4).

The class means and the token counts n(t, f) are computed in C++ (OpenMP over feature blocks),
and the PLSA EM and the Sherman-Morrison closed form run in C++ too, the same arithmetic as the
NumPy reference. ``score_many`` is one compiled call for the whole batch.
"""

from __future__ import annotations

import numpy as np

from swnas.errors import InputError
from swnas.scoring._arrays import to_numpy
from swnas.scoring.backends import core, register

__all__ = ["ilfs_cpp", "ilfs_cpp_many"]


def _unpack(res, name: str = "X") -> np.ndarray:
    scores, v, loglik, counts, ok = res
    if not ok:
        raise InputError(f"{name}: contains NaN or Inf values")
    from swnas.scoring.ilfs import with_n_iter

    return with_n_iter(scores, len(loglik))  # one log-likelihood per EM iteration


def _host(X):
    return np.ascontiguousarray(to_numpy(X))


def ilfs_cpp(X, codes, n_classes, TT: int = 4, max_iter: int = 1000, tol: float = 1e-6) -> np.ndarray:
    res = core().ilfs_run(
        _host(X), np.ascontiguousarray(codes, dtype=np.int32), int(n_classes), int(TT), int(max_iter), float(tol)
    )
    return _unpack(res)


def ilfs_cpp_many(problems, TT: int = 4, max_iter: int = 1000, tol: float = 1e-6) -> list:
    batch = [(_host(X), np.ascontiguousarray(c, dtype=np.int32), int(k)) for X, c, k in problems]
    outs = core().ilfs_many(batch, int(TT), int(max_iter), float(tol))
    return [_unpack(r, f"problems[{i}].X") for i, r in enumerate(outs)]


register("ilfs", "cpp")(ilfs_cpp)
register("ilfs", "cpp", batched=True)(ilfs_cpp_many)
