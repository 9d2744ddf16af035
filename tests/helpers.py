"""Helpers shared by the tests (import with ``from helpers import ...``): planted problems, the
float64 PLS reference on raw labels, and the relative error the scorer tests use."""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["planted", "make_problem", "pls_reference", "rel_err", "GPU_BACKENDS", "on_real_gpu"]

#: backends that compute on a GPU (from the backend table)
GPU_BACKENDS: tuple[str, ...] = ("cuda", "cupy")


def planted(
    n: int,
    p: int,
    n_classes: int,
    *,
    seed: int = 0,
    signal: int = 3,
    strength: float = 1.5,
    mean: float = 0.0,
    dtype=np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian features of varied scale with ``signal`` class-dependent columns."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    y[:n_classes] = np.arange(n_classes)  # every class present
    X = rng.normal(size=(n, p)) * rng.uniform(0.2, 3.0, p) + mean
    centres = rng.normal(size=(n_classes, signal)) * strength
    X[:, :signal] += centres[y]
    return X.astype(dtype), y


def make_problem(
    n: int,
    p: int,
    n_classes: int,
    *,
    dtype=np.float64,
    seed: int = 0,
    mean: float = 0.0,
    noise: float = 1.0,
    constant_cols: tuple[int, ...] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian features, three of them shifted by the class, optional constant columns."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    rng.shuffle(y)
    X = mean + noise * rng.standard_normal((n, p))
    for k, j in enumerate(range(min(3, p))):
        X[:, j] += noise * (k + 1) * (y == (k % n_classes))
    for j in constant_cols:
        X[:, j] = mean + 0.5
    return X.astype(dtype), y


def pls_reference(X, y, n_components: int = 2) -> np.ndarray:
    """The float64 NumPy PLS-VIP reference on X cast to float64, for raw labels ``y``."""
    from swnas.scoring.pls import pls_vip_reference

    classes, codes = np.unique(y, return_inverse=True)
    return pls_vip_reference(np.asarray(X, dtype=np.float64), codes.astype(np.int32), len(classes), n_components)


def rel_err(a, b) -> float:
    """Largest absolute difference relative to the largest magnitude of ``b``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def on_real_gpu(backend: str) -> bool:
    """Whether ``backend`` computes on an actual GPU (not the NumPy stand-in for cupy)."""
    if backend == "cupy":
        return not hasattr(sys.modules.get("cupy"), "record")  # tests/fake_cupy.py has a recorder
    return backend in GPU_BACKENDS
