"""Speed of inf-FS and il-FS at the paper's scale: N=50,000 samples x p=2,048 float32 features, 10 classes.

inf-FS: the compiled ``cpp`` path against the brute-force NumPy/SciPy computation
(scipy.stats.spearmanr + numpy.linalg.eigvals + numpy.linalg.inv), target >= 10x.
il-FS: ``cpp`` against the NumPy float64 reference. GPU functions (``-k gpu``) skip without a GPU.
Each method: a cold first call (``extra_info["cold_s"]``, with its peak resident memory), then warm
calls (2 for swnas, 1 for the slow baselines); ratios are of warm medians. Override the size with SWNAS_BENCH_N /
SWNAS_BENCH_P. Run: ``pytest benchmarks/bench_inffs_ilfs.py --benchmark-only``.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pytest
import scipy.stats

from _memory import peak_since_reset, reset_peak
from swnas.scoring import backend_status, score, score_many

N = int(os.environ.get("SWNAS_BENCH_N", 50_000))
P = int(os.environ.get("SWNAS_BENCH_P", 2_048))
C = 10


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    y = rng.integers(0, C, N)
    X = rng.standard_normal((N, P), dtype=np.float32)
    X *= rng.uniform(0.2, 3.0, P).astype(np.float32)
    X[:, :16] += (rng.normal(size=(C, 16)) * 1.5).astype(np.float32)[y]  # 16 class-dependent features
    np.maximum(X[:, P // 2 :], 0, out=X[:, P // 2 :])  # post-ReLU-like half: many ties at 0
    return X, y


def _run(benchmark, fn, *args, rounds: int = 2, **kw):
    """A cold first call, then ``rounds`` warm ones; extra_info gets the cold call's time and its peak
    resident memory above the RSS before it (every allocation counts: NumPy, C++, BLAS; the input
    X does not)."""
    base = reset_peak()
    t0 = time.perf_counter()
    fn(*args, **kw)
    benchmark.extra_info["cold_s"] = time.perf_counter() - t0
    benchmark.extra_info["peak_extra_mib"] = round((peak_since_reset() - base) / 2**20, 1)
    out = benchmark.pedantic(fn, args=args, kwargs=kw, rounds=rounds, iterations=1, warmup_rounds=0)
    benchmark.extra_info["shape"] = f"{N}x{P} float32, {C} classes"
    return out


def brute_force_inffs(X, alpha=0.5, factor=0.9):
    """The textbook inf-FS: spearmanr, a dense eigen-decomposition and an explicit inverse."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Cm = scipy.stats.spearmanr(X).statistic
    std = X.std(axis=0, ddof=1, dtype=np.float64)
    sig = np.maximum.outer(std, std)
    sig = (sig - sig.min()) / (sig.max() - sig.min())
    A = alpha * sig + (1 - alpha) * (1 - np.abs(Cm))
    A[~np.isfinite(A)] = 0.0
    r = factor / np.max(np.linalg.eigvals(A).real)
    eye = np.eye(A.shape[0])
    return (np.linalg.inv(eye - r * A) - eye).sum(axis=1)


problem_cache: dict = {}


def _need(backend):
    ok, why = backend_status(backend)
    if not ok:
        pytest.skip(f"backend {backend} unavailable: {why}")


@pytest.mark.benchmark(group="inffs")
def test_inffs_cpp(benchmark, problem):
    _need("cpp")
    X, y = problem
    res = _run(benchmark, score, X, y, "inffs", backend="cpp")
    assert res.features.shape == (P,)
    benchmark.extra_info["threads"] = os.cpu_count()
    problem_cache["inffs_cpp"] = res.features


@pytest.mark.benchmark(group="inffs")
def test_inffs_bruteforce_numpy_scipy(benchmark, problem):
    X, _ = problem
    out = _run(benchmark, brute_force_inffs, X, rounds=1)
    if "inffs_cpp" in problem_cache:
        err = float(np.max(np.abs(problem_cache["inffs_cpp"] - out)) / np.max(np.abs(out)))
        benchmark.extra_info["cpp_max_rel_err"] = err
        assert err < 1e-4


@pytest.mark.benchmark(group="ilfs")
def test_ilfs_cpp(benchmark, problem):
    _need("cpp")
    X, y = problem
    res = _run(benchmark, score, X, y, "ilfs", backend="cpp")
    problem_cache["ilfs_cpp"] = res.features


@pytest.mark.benchmark(group="ilfs")
def test_ilfs_numpy_reference(benchmark, problem):
    X, y = problem
    res = _run(benchmark, score, X, y, "ilfs", backend="numpy", rounds=1)
    if "ilfs_cpp" in problem_cache:
        err = float(np.max(np.abs(problem_cache["ilfs_cpp"] - res.features)) / np.max(np.abs(res.features)))
        benchmark.extra_info["cpp_max_rel_err"] = err
        assert err < 1e-10


@pytest.mark.gpu
@pytest.mark.benchmark(group="inffs-gpu")
@pytest.mark.parametrize("backend", ["cuda", "cupy"])
def test_inffs_gpu(benchmark, problem, backend):
    _need(backend)
    import torch

    X, y = problem
    Xt = torch.from_numpy(X).cuda()
    score(Xt[:2000], y[:2000], "inffs", backend=backend)  # warm-up: kernels load, memory pools fill
    torch.cuda.synchronize()
    res = benchmark.pedantic(score, args=(Xt, y, "inffs"), kwargs={"backend": backend}, rounds=3, iterations=1)
    benchmark.extra_info["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    benchmark.extra_info["device"] = torch.cuda.get_device_name()
    assert res.features.shape == (P,)


@pytest.mark.gpu
@pytest.mark.benchmark(group="ilfs-gpu")
@pytest.mark.parametrize("backend", ["cuda", "cupy"])
def test_ilfs_gpu(benchmark, problem, backend):
    _need(backend)
    import torch

    X, y = problem
    Xt = torch.from_numpy(X).cuda()
    score(Xt[:2000], y[:2000], "ilfs", backend=backend)
    torch.cuda.synchronize()
    res = benchmark.pedantic(score, args=(Xt, y, "ilfs"), kwargs={"backend": backend}, rounds=3, iterations=1)
    benchmark.extra_info["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    benchmark.extra_info["device"] = torch.cuda.get_device_name()
    assert res.features.shape == (P,)


@pytest.mark.gpu
@pytest.mark.benchmark(group="batched-gpu")
@pytest.mark.parametrize("criterion", ["inffs", "ilfs"])
def test_score_many_gpu(benchmark, problem, criterion):
    _need("cuda")
    import torch

    X, y = problem
    Xt = torch.from_numpy(X).cuda()
    probs = [(Xt[:, :256], y), (Xt[:, 256:384], y), (Xt[:, 384:448], y)] * 2  # 3 stages of A and T
    score_many(probs, criterion, backend="cuda")
    res = benchmark.pedantic(score_many, args=(probs, criterion), kwargs={"backend": "cuda"}, rounds=3, iterations=1)
    assert len(res) == 6
