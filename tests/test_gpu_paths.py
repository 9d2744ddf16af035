"""GPU tests of the risky kernel paths (docs/backends.md, "The device check"); they skip cleanly
without a GPU, and the device check counts any skip as a failure. The 1.28 M x 2,048 Spearman case
(more than 2^31 packed items, several column blocks) runs in the device check's scale step; these
are the small, fast versions of every other path: ranks exactly against torch ``sort`` (float32
packed keys, float64 two-pass), the float32 Gram against float64 with tied ReLU zeros, PLS float4
loads and global class atomics (C > 48), il-FS with more than 64 token rows and beyond one grid's
rows, half-precision features."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import planted, rel_err
from swnas.scoring import backend_status, score, score_many

pytestmark = pytest.mark.gpu

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
try:
    from device_check import average_ranks_torch  # the device check's torch reference
finally:
    sys.path.pop(0)


def _need(backend: str) -> None:
    ok, why = backend_status(backend)
    if not ok:
        pytest.skip(f"backend {backend} unavailable: {why}")


def _relu(n: int, p: int, seed: int, dtype=np.float32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal((n, 1))
    return np.maximum(0.0, 0.6 * shared + 0.8 * rng.standard_normal((n, p))).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_ranks_equal_torch_average_ranks(dtype):
    """float32: one packed (column, value) sort; float64: the two-pass dense-id path. Ties: ReLU
    zeros, -0.0 next to +0.0, and a column of one repeated value."""
    _need("cuda")
    import torch

    from swnas.scoring._inffs_cuda import _gram_buffers
    from swnas.scoring._torch_cuda import dtype_code
    from swnas.scoring.backends import cuda_module

    X = _relu(50_000, 70, seed=1, dtype=dtype)
    X[::7, 5] = -0.0
    X[:, 6] = 2.5
    X[:, 7] = np.round(X[:, 7] * 4) / 4  # many ties off zero
    t = torch.from_numpy(X).cuda()
    n, p = X.shape
    Z, G, std = _gram_buffers(t)
    cuda_module().inffs_rank_gram(
        t.data_ptr(),
        dtype_code(t),
        n,
        p,
        True,
        Z.data_ptr(),
        G.data_ptr(),
        std.data_ptr(),
        torch.cuda.current_stream().cuda_stream,
    )
    torch.cuda.synchronize()
    R = average_ranks_torch(t)
    assert torch.equal(R.to(Z.dtype), Z)
    Zd = Z.double()
    G64 = Zd.T @ Zd
    assert float((G - G64).abs().max() / G64.abs().max()) < (1e-12 if dtype == np.float64 else 2e-7)


@pytest.mark.parametrize("backend", ["cuda", "cupy"])
@pytest.mark.parametrize("corr", ["spearman", "pearson"])
def test_float32_gram_with_tied_zeros_meets_float64(backend, corr, on_device):
    """2^18 ReLU rows: the old float32 chains were 2e-5 off here (tests/test_inffs_gram_emulation.py).
    cupy without CuPy: its code through the NumPy stand-in (tests/conftest.py ``on_device``)."""
    X = _relu(1 << 18, 8, seed=0)
    y = np.arange(X.shape[0]) % 2  # unused by inf-FS; the API wants two classes
    ref = score(X.astype(np.float64), y, "inffs", backend="numpy", corr=corr).features
    got = score(on_device(backend, X), y, "inffs", backend=backend, corr=corr).features
    assert rel_err(got, ref) < 1e-7


@pytest.mark.parametrize("backend", ["cuda", "cupy"])
@pytest.mark.parametrize("p,c", [(40, 5), (40, 60), (37, 60)])
def test_pls_float4_loads_and_global_class_sums(backend, p, c, on_device):
    """p % 4 == 0 (float4 loads) and not; C > 48 (the class sums leave shared memory). cupy without
    CuPy: its code through the NumPy stand-in (tests/conftest.py ``on_device``)."""
    X, y = planted(4000, p, c, seed=p + c, dtype=np.float32)
    ref = score(X, y, "pls", backend="numpy").features
    got = score(on_device(backend, X), y, "pls", backend=backend).features
    assert rel_err(got, ref) < 1e-6


@pytest.mark.parametrize("TT", [4, 80])
def test_ilfs_token_rows_beyond_shared_memory(TT):
    """TT = 80 > 64 token rows: the histogram leaves shared memory (global atomics)."""
    _need("cuda")
    import torch

    X, y = planted(3000, 40, 60, seed=TT)
    ref = score(X, y, "ilfs", backend="numpy", TT=TT).features
    got = score(torch.from_numpy(X).cuda(), y, "ilfs", backend="cuda", TT=TT).features
    assert rel_err(got, ref) < 1e-9


def test_ilfs_rows_beyond_one_grid():
    """More rows than 65,535 blocks of 512 (grid.y): the kernels loop over slabs."""
    _need("cuda")
    import torch

    n = 65535 * 512 + 1001
    g = torch.Generator(device="cuda").manual_seed(0)
    y = torch.randint(0, 3, (n,), device="cuda", generator=g)
    X = torch.randn((n, 2), device="cuda", generator=g) + y[:, None].float()
    yh = y.cpu().numpy()
    got = score(X, yh, "ilfs", backend="cuda").features
    want = score(X.cpu().numpy(), yh, "ilfs", backend="cpp").features
    assert rel_err(got, want) < 1e-9


@pytest.mark.parametrize("criterion", ["pls", "inffs", "ilfs"])
@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_half_precision_features_are_promoted(criterion, half):
    _need("cuda")
    import torch

    X, y = planted(2000, 24, 4, seed=9, dtype=np.float32)
    Xh = torch.from_numpy(X).to(getattr(torch, half))
    want = score(Xh.float().numpy(), y, criterion, backend="numpy").features
    got = score(Xh.cuda(), y, criterion, backend="cuda").features
    assert rel_err(got, want) < 1e-6
    many = score_many([(Xh.cuda(), y), (Xh[:500].cuda(), y[:500])], criterion, backend="cuda")
    assert rel_err(many[0].features, want) < 1e-6
