"""NumPy emulation of the CUDA inf-FS ranking (csrc/cuda/inffs_cuda.cu, docs/scorers.md section 3).

The kernels cannot run here, so their index arithmetic is replayed step by step: the order-preserving
float keys, the (column, value) key packing with its bit range, the device-wide radix sort (a stable
sort on the same bits), the float64 two-pass path through dense value ids, the column-block sizing
and the run search that gives tie-averaged ranks. The result is compared with scipy.stats.rankdata.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import rankdata

SRC = Path(__file__).resolve().parents[1] / "csrc" / "cuda" / "inffs_cuda.cu"
U64 = np.uint64


def ordered_bits(v: np.ndarray) -> np.ndarray:
    """ordered_bits(): -0.0 -> +0.0, then flip all bits of negatives and the sign bit of the rest."""
    v = np.where(v == 0, np.zeros((), v.dtype), v)
    if v.dtype == np.float32:
        u = v.view(np.uint32).astype(U64)
        return np.where(u >> U64(31), ~u & U64(0xFFFFFFFF), u | U64(0x80000000))
    u = v.view(U64)
    return np.where(u >> U64(63), ~u, u | (U64(1) << U64(63)))


def bits_for(x: int) -> int:
    """bits_for(): bits needed to write 0..x."""
    return int(x).bit_length()


def column_block(n: int, p: int, bytes_per_item: int, free_bytes: int) -> int:
    """column_block(): half the free memory, and n * cb below 2^31."""
    by_memory = (free_bytes // 2 // bytes_per_item) // max(n, 1)
    by_index = (1 << 31) // max(n, 1) - 1
    return max(1, min(p, by_memory, by_index))


def radix_sort_pairs(keys: np.ndarray, rows: np.ndarray, end_bit: int) -> tuple[np.ndarray, np.ndarray]:
    """cub::DeviceRadixSort::SortPairs on bits [0, end_bit): stable, full keys come out unchanged."""
    mask = U64((1 << end_bit) - 1) if end_bit < 64 else U64(0xFFFFFFFFFFFFFFFF)
    order = np.argsort(keys & mask, kind="stable")
    return keys[order], rows[order]


def block_items(X: np.ndarray, j0: int, nb: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k = i*cb + b, read in X's row-major order (the coalesced gather)."""
    k = np.arange(X.shape[0] * nb, dtype=np.int64)
    i, b = k // nb, k % nb
    return k, i, X[i, j0 + b]


def sorted_block(X: np.ndarray, j0: int, nb: int) -> tuple[np.ndarray, np.ndarray]:
    """The packed keys of one column block after the sort(s), and the row of each."""
    n = X.shape[0]
    k, i, v = block_items(X, j0, nb)
    if X.dtype == np.float32:  # pack_keys_f32 + one sort
        keys = (k % nb).astype(U64) << U64(32) | ordered_bits(v)
        return radix_sort_pairs(keys, i.astype(np.int32), 32 + bits_for(nb - 1))
    # value_keys_f64, sort on 64 bits, value_change_flags + inclusive sum, column_keys_f64, sort
    skeys, sflat = radix_sort_pairs(ordered_bits(v), k.astype(np.int32), 64)
    flags = np.concatenate([[0], (skeys[1:] != skeys[:-1]).astype(np.uint32)]).astype(np.uint32)
    vid = np.cumsum(flags, dtype=np.uint32)
    m = n * nb
    gbits = bits_for(m - 1)
    keys = (sflat.astype(np.int64) % nb).astype(U64) << U64(gbits) | vid.astype(U64)
    assert int(keys.max()) < (1 << 63)
    return radix_sort_pairs(keys, (sflat // nb).astype(np.int32), gbits + bits_for(nb - 1))


def ranks_from_runs(skeys: np.ndarray, srows: np.ndarray, n: int, p: int, j0: int, nb: int, Z: np.ndarray) -> None:
    """ranks_from_runs(): two bounded binary searches per element, vectorised over all elements."""
    k = np.arange(n * nb, dtype=np.int64)
    b, pos = k // n, k % n
    base, key = b * n, skeys
    a, e = np.zeros_like(pos), pos.copy()
    while np.any(a < e):
        live = a < e
        mid = (a + e) // 2
        less = skeys[base + np.minimum(mid, n - 1)] < key
        a = np.where(live & less, mid + 1, a)
        e = np.where(live & ~less, mid, e)
    lo = a
    a, e = pos + 1, np.full_like(pos, n)
    while np.any(a < e):
        live = a < e
        mid = (a + e) // 2
        le = skeys[base + np.minimum(mid, n - 1)] <= key
        a = np.where(live & le, mid + 1, a)
        e = np.where(live & ~le, mid, e)
    Z.reshape(-1)[srows.astype(np.int64) * p + j0 + b] = 0.5 * (lo + a - n)


def emulate_ranks(X: np.ndarray, free_bytes: int) -> tuple[np.ndarray, int]:
    """rank_columns(): centred average ranks of every column, block by block; returns Z and cb."""
    n, p = X.shape
    per_item = 2 * 8 + 2 * 4 + (0 if X.dtype == np.float32 else 4)
    cb = column_block(n, p, per_item, free_bytes)
    Z = np.full((n, p), np.nan, dtype=X.dtype)
    for j0 in range(0, p, cb):
        nb = min(cb, p - j0)
        skeys, srows = sorted_block(X, j0, nb)
        ranks_from_runs(skeys, srows, n, p, j0, nb, Z)
    return Z, cb


def awkward_matrix(dtype: type, n: int = 57, seed: int = 0) -> np.ndarray:
    """Ties, a constant column, negative zeros next to positive zeros, negatives, extremes and infinities."""
    rng = np.random.default_rng(seed)
    cols = [
        rng.integers(-3, 4, n).astype(np.float64),  # many ties, negatives
        np.full(n, 2.5),  # constant
        rng.choice([-0.0, 0.0, -1.0, 1.0], n),  # -0.0 must tie with +0.0
        rng.standard_normal(n),  # distinct
        rng.choice([-np.inf, np.inf, -1e30, 1e-30, -1e-30, 0.0], n),
        np.full(n, -0.0),  # constant of negative zeros
        rng.standard_normal(n) * 1e-3 - 5.0,  # all negative
    ]
    return np.stack(cols, axis=1).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("free_bytes", [1 << 40, 57 * 24 * 2 * 3, 1])
def test_packed_ranks_match_rankdata(dtype: type, free_bytes: int) -> None:
    X = awkward_matrix(dtype)
    Z, cb = emulate_ranks(X, free_bytes)
    want = rankdata(X.astype(np.float64), axis=0) - (X.shape[0] + 1) / 2
    assert not np.isnan(Z).any(), "every element of Z must be written exactly once"
    np.testing.assert_array_equal(Z.astype(np.float64), want)
    assert 1 <= cb <= X.shape[1]


def test_block_sizes_cover_one_column_to_all() -> None:
    X = awkward_matrix(np.float32)
    assert emulate_ranks(X, 1 << 40)[1] == X.shape[1]
    assert emulate_ranks(X, 57 * 24 * 2 * 3)[1] == 3  # a partial last block (7 = 3 + 3 + 1)
    assert emulate_ranks(X, 1)[1] == 1


@pytest.mark.parametrize("n", [1, 1_280_000, (1 << 30) + 7, (1 << 31) - 1])
def test_block_items_stay_below_2_to_31(n: int) -> None:
    cb = column_block(n, 100_000, 24, 1 << 50)
    assert cb >= 1 and n * cb < (1 << 31)
    assert bits_for(n * cb - 1) + bits_for(cb - 1) <= 64
    assert 32 + bits_for(cb - 1) <= 64


def test_float64_path_separates_values_one_ulp_apart() -> None:
    x = np.array([1.0, np.nextafter(1.0, 2.0), 1.0, np.nextafter(1.0, 0.0)])
    X = np.stack([x, -x], axis=1)
    Z, _ = emulate_ranks(X, 1 << 40)
    np.testing.assert_array_equal(Z, rankdata(X, axis=0) - 2.5)


def test_kernel_source_uses_the_device_wide_sort() -> None:
    text = SRC.read_text()
    assert "DeviceSegmentedRadixSort" not in text
    for name in (
        "pack_keys_f32",
        "value_keys_f64",
        "value_change_flags",
        "column_keys_f64",
        "ranks_from_runs",
        "column_block",
        "DeviceRadixSort::SortPairs",
    ):
        assert name in text, name
