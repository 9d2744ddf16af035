"""Shared fixtures: small planted classification problems."""
from __future__ import annotations

import numpy as np
import pytest


def planted(n: int, p: int, n_classes: int, *, seed: int = 0, signal: int = 3, strength: float = 1.5,
            mean: float = 0.0, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian features of varied scale with ``signal`` class-dependent columns."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    y[:n_classes] = np.arange(n_classes)  # every class present
    X = rng.normal(size=(n, p)) * rng.uniform(0.2, 3.0, p) + mean
    centres = rng.normal(size=(n_classes, signal)) * strength
    X[:, :signal] += centres[y]
    return X.astype(dtype), y


@pytest.fixture
def planted_problem():
    return planted
