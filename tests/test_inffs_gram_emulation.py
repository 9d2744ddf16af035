"""NumPy emulation of the float32 rank Gram matrix of the GPU inf-FS backends (docs/backends.md,
"Precision of the GPU Gram matrix").

The CUDA kernel ``gram_splitk`` (csrc/cuda/inffs_cuda.cu) cannot run here, so its summation order
is replayed: every output entry is a chain of float32 fused multiply-adds over the rows it sums
(emulated as an exact float64 product-sum rounded once to float32), and partial sums meet in
float64. Feature maps after ReLU are half zeros, whose ranks tie, so the same product repeats
thousands of times in a row and float32 rounding builds a bias instead of averaging out. The old
order (4,096 rows per float32 chain) misses the 1e-6 the device check demands; the kernel's order
(16-row float32 tiles added into float64) does not. The CuPy path (``rank_gram_xp``) is run through
the NumPy stand-in for CuPy at the same scale.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import rankdata

from swnas.scoring._inffs_cupy import rank_gram_xp, solve_xp

SRC = Path(__file__).resolve().parents[1] / "csrc" / "cuda" / "inffs_cuda.cu"
OLD_CHAIN_ROWS = 4096  # rows per float32 chain before the fix (the kernel's former split-K chunk)


def kernel_constant(name: str) -> int:
    """A ``constexpr`` integer of the kernel source."""
    m = re.search(rf"constexpr\s+(?:int|int64_t)\s+{name}\s*=\s*(\d+)\s*;", SRC.read_text())
    assert m, f"{name} not found in {SRC.name}"
    return int(m.group(1))


def split_k_rows(n: int, p: int, tile: int, chunk_rows: int) -> int:
    """rank_gram()'s split-K plan: rows per block (kchunk), a whole number of tiles."""
    nt = (p + 63) // 64
    tiles = nt * (nt + 1) // 2
    nchunks = max(1, 2048 // tiles)
    nchunks = max(nchunks, -(-n // chunk_rows))
    nchunks = min(nchunks, max(1, -(-n // 256)))
    nchunks = min(nchunks, 65535)
    kchunk = -(-n // nchunks)
    return -(-kchunk // tile) * tile


def fma32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """float32 fused multiply-add: the product of two float32 values is exact in float64."""
    return (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(np.float32)


def chained_gram(Z: np.ndarray, chain: int) -> np.ndarray:
    """Z'Z with every run of ``chain`` rows summed as one float32 FMA chain (zero rows pad the last
    run, as the kernel's guarded loads do) and the runs' sums added in float64."""
    n, p = Z.shape
    runs = -(-n // chain)
    Zp = np.concatenate([Z, np.zeros((runs * chain - n, p), Z.dtype)]).reshape(runs, chain, p)
    acc = np.zeros((runs, p, p), np.float32)
    for r in range(chain):
        a = Zp[:, r, :]
        acc = fma32(a[:, :, None], a[:, None, :], acc)
    return acc.astype(np.float64).sum(axis=0)


def old_order_gram(Z: np.ndarray, p_plan: int = 2048) -> np.ndarray:
    """Before the fix: each block summed its whole split-K chunk in float32. The chunk depends on
    the matrix's width (``p_plan``): at 2,048 columns, the device check's scale, it is 4,096 rows.
    A Gram entry depends only on its two columns, so a few columns emulate the wide matrix."""
    return chained_gram(Z, split_k_rows(Z.shape[0], p_plan, 16, OLD_CHAIN_ROWS))


def kernel_order_gram(Z: np.ndarray) -> np.ndarray:
    """gram_splitk now: each tile of kGramTileRows rows is a float32 chain, tiles and chunks add up
    in float64 (their order changes only the last float64 bits, far below the tolerances here)."""
    return chained_gram(Z, kernel_constant("kGramTileRows"))


def relu_features(n: int, p: int, seed: int) -> np.ndarray:
    """Post-ReLU-like float32 features: half zeros, the columns correlated through a shared factor."""
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal((n, 1))
    return np.maximum(0.0, 0.6 * shared + 0.8 * rng.standard_normal((n, p))).astype(np.float32)


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


N = 1 << 18  # 64 former chunks of 4,096 rows: the bias is per chain, so more rows add nothing


@pytest.fixture(scope="module")
def spearman_case():
    X = relu_features(N, 8, seed=0)
    R = rankdata(X, axis=0) - (N + 1) / 2.0  # centred average ranks, float64
    Z = R.astype(np.float32)
    assert np.array_equal(Z, R)  # half-integers below 2^23: exact in float32, as on the device
    assert 0.45 < float((X == 0).mean()) < 0.55
    return X, Z, R.T @ R


def test_kernel_constants_and_plan():
    tile, chunk = kernel_constant("kGramTileRows"), kernel_constant("kGramChunkRows")
    assert tile == 16 and chunk % tile == 0
    text = SRC.read_text()
    assert re.search(r"double acc\[4\]\[4\];", text) and "acc[m][q] += double(part[m][q]);" in text
    # 2^31 rows would not fit the launch: the plan keeps nchunks <= 65,535 and whole tiles per block
    assert split_k_rows(N, 2048, 16, OLD_CHAIN_ROWS) == OLD_CHAIN_ROWS  # what old_order_gram replays
    for n, p in ((1, 1), (255, 3), (N, 8), (1_280_000, 2048), (1_280_000, 256), (2**31 - 1, 64)):
        k = split_k_rows(n, p, tile, chunk)
        assert k % tile == 0 and -(-n // k) <= 65535


def test_old_order_misses_and_kernel_order_meets_1e6(spearman_case):
    """Spearman (ranks tie at the zeros): the old chains drift ~2e-5, the tiled order ~7e-8; the
    inf-FS scores move 1e-6 against 2e-9."""
    X, Z, G = spearman_case
    G_old, G_new = old_order_gram(Z), kernel_order_gram(Z)
    assert rel(G_old, G) > 1e-5
    assert rel(G_new, G) < 2e-7
    std = X.astype(np.float64).std(axis=0, ddof=1)
    s = solve_xp(np, G, std, 0.5, 0.9)
    assert rel(solve_xp(np, G_old, std, 0.5, 0.9), s) > 5e-7
    assert rel(solve_xp(np, G_new, std, 0.5, 0.9), s) < 1e-8


def test_pearson_centred_values_too():
    """Pearson: the zeros become one repeated centred value, the same repetition."""
    X = relu_features(N, 6, seed=1)
    Z = (X - X.mean(axis=0, dtype=np.float64).astype(np.float32)).astype(np.float32)
    Zd = Z.astype(np.float64)
    G = Zd.T @ Zd
    assert rel(old_order_gram(Z), G) > 3 * rel(kernel_order_gram(Z), G)
    assert rel(kernel_order_gram(Z), G) < 2e-7


def test_cupy_path_gram_is_float64_accurate(cupy_standin, spearman_case):
    """The CuPy path through the NumPy stand-in: its row chunks must not be summed in float32."""
    import cupy

    X, _, G = spearman_case
    Gx, std = rank_gram_xp(cupy, cupy.asarray(X), "spearman")
    assert Gx.dtype == np.float64
    assert rel(np.asarray(Gx), G) < 1e-9
    np.testing.assert_allclose(np.asarray(std), X.astype(np.float64).std(axis=0, ddof=1), rtol=1e-10)
