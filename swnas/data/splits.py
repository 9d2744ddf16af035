"""Seeded, per-class splits of a label vector: a balanced subset and a stratified held-out fraction."""

from __future__ import annotations

import numpy as np

from swnas.errors import InputError

__all__ = ["balanced_subset", "stratified_split"]


def balanced_subset(labels: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """Indices of a reproducible subset of ``k`` samples balanced across classes.

    Each class gets ``k // C`` samples (the first ``k % C`` classes one more); a class with too few
    samples gives all it has and the shortfall is taken from the other classes. The returned
    indices are sorted.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"subset must be a positive integer, got {k!r}")
    n = len(labels)
    if k >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    quota = np.full(len(classes), k // len(classes))
    quota[: k % len(classes)] += 1
    sizes = np.array([len(p) for p in pools])
    take = np.minimum(quota, sizes)
    short = k - int(take.sum())
    while short > 0:  # hand the shortfall to classes that still have samples, round robin
        for i in np.flatnonzero(sizes > take):
            if short == 0:
                break
            take[i] += 1
            short -= 1
    return np.sort(np.concatenate([p[:t] for p, t in zip(pools, take)]))


def stratified_split(labels: np.ndarray, fraction: float, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (train, held_out) with ``fraction`` of each class held out, seeded.

    Every class keeps at least one training sample; classes with at least two samples give at
    least one held-out sample. Both index arrays are sorted.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (float, int)) or not 0.0 < fraction < 1.0:
        raise InputError(f"val_split must be a fraction in (0, 1), got {fraction!r}")
    rng = np.random.default_rng(seed + 1)
    held = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        m = int(round(fraction * len(idx)))
        m = min(max(m, 1 if len(idx) >= 2 else 0), len(idx) - 1)
        held.append(idx[:m])
    held_idx = np.sort(np.concatenate(held))
    if len(held_idx) == 0:
        raise InputError(f"val_split={fraction} holds out no samples of {len(labels)}")
    mask = np.ones(len(labels), bool)
    mask[held_idx] = False
    return np.flatnonzero(mask), held_idx
