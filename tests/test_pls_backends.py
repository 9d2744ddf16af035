"""PLS-VIP backends (cpp, numba, cuda, cupy) against the float64 NumPy reference.

Tolerances: VIP within 1e-9 (absolute) of ``pls_vip_reference`` for float64 and float32 X (the
reference runs on the same float32 values cast to float64; every backend accumulates in float64).
The ``backend`` fixture (tests/conftest.py) runs every backend of the table, skipping with the
reason where one cannot run; ``cupy`` runs through a NumPy stand-in when CuPy is absent.
"""

from __future__ import annotations

import numpy as np
import pytest

from swnas.errors import BackendUnavailableError, InputError
from swnas.scoring import backend_status, score, score_many
from swnas.scoring._host import host_matrix
from swnas.scoring._pls_algebra import run_lockstep
from swnas.scoring._pls_cpp import pls_vip_cpp, pls_vip_cpp_many
from swnas.scoring.backends import core

from helpers import GPU_BACKENDS, make_problem, pls_reference

#: float64 X: the reference's own rounding. float32 X: the reference runs on the same float32 values
#: cast to float64 and every backend accumulates in float64, so they agree to ~1e-12; a float32
#: accumulation (errors ~3e-7 and up) fails this bound.
TOL = {np.float32: 1e-9, np.float64: 1e-9}
#: batched and single CUDA calls sum with atomics in different orders: ~1e-13 apart, never bit-equal
CUDA_ORDER_TOL = 1e-10


def _param(name: str):
    return pytest.param(name, id=name, marks=[pytest.mark.gpu] if name in GPU_BACKENDS else [])


@pytest.fixture(params=[_param(b) for b in ("cpp", "cuda")])
def batched_backend(request) -> str:
    ok, why = backend_status(request.param)
    if not ok:
        pytest.skip(f"backend {request.param!r} is not available here: {why}")
    return request.param


reference = pls_reference


CASES = [
    # (n, p, classes, components, constant columns)
    (120, 8, 2, 2, ()),
    (200, 40, 5, 3, (7,)),
    (40, 150, 3, 2, (0, 149)),  # p > N
    (333, 21, 10, 1, ()),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("n,p,n_classes,a,const", CASES, ids=[f"{c[0]}x{c[1]}c{c[2]}a{c[3]}" for c in CASES])
def test_matches_reference(backend, dtype, n, p, n_classes, a, const):
    X, y = make_problem(n, p, n_classes, dtype=dtype, seed=n + p, constant_cols=const)
    res = score(X, y, criterion="pls", backend=backend, n_components=a)
    ref = reference(X, y, a)
    assert res.backend == backend
    np.testing.assert_allclose(res.features, ref, rtol=0, atol=TOL[dtype])
    assert abs(float(np.sum(res.features**2)) - p) < 1e-6 * p  # sum_j VIP_j^2 = p
    for j in const:
        assert res.features[j] == 0.0  # constant columns score exactly 0 on every backend


def test_large_mean_float32_does_not_cancel(backend):
    # pixel-like columns: mean 1000, spread 0.05, a class signal in the first three columns.
    X, y = make_problem(2000, 24, 4, dtype=np.float32, seed=3, mean=1000.0, noise=0.05)
    ref = reference(X, y, 2)
    res = score(X, y, backend=backend)
    np.testing.assert_allclose(res.features, ref, rtol=0, atol=1e-9)
    # the signal columns must stand out, as they do in the reference
    assert res.features[:3].min() > 2.0 * np.median(res.features[3:])


def test_matches_scikit_learn_pls(backend):
    from sklearn.cross_decomposition import PLSRegression

    X, y = make_problem(150, 12, 3, seed=11)
    pls = PLSRegression(n_components=2, scale=True, tol=1e-14, max_iter=5000).fit(X, np.eye(3)[y])
    W, T, Q = pls.x_weights_, pls.x_scores_, pls.y_loadings_
    ss = (T * T).sum(axis=0) * (Q * Q).sum(axis=0)
    vip = np.sqrt(X.shape[1] * ((W / np.linalg.norm(W, axis=0)) ** 2) @ ss / ss.sum())
    np.testing.assert_allclose(score(X, y, backend=backend).features, vip, rtol=0, atol=1e-6)


def test_non_contiguous_input(backend):
    X, y = make_problem(90, 30, 3, seed=5)
    ref = reference(X[:, ::2], y, 2)
    np.testing.assert_allclose(score(X[:, ::2], y, backend=backend).features, ref, atol=1e-9, rtol=0)
    np.testing.assert_allclose(
        score(np.asfortranarray(X), y, backend=backend).features, reference(X, y, 2), atol=1e-9, rtol=0
    )


def test_torch_cpu_tensor_is_read_in_place(backend):
    torch = pytest.importorskip("torch")
    X, y = make_problem(100, 16, 4, dtype=np.float32, seed=9)
    t = torch.from_numpy(X.copy())
    np.testing.assert_allclose(
        score(t, torch.from_numpy(y), backend=backend).features, reference(X, y, 2), atol=1e-9, rtol=0
    )
    if backend == "cupy":
        return  # the cupy backend uploads host data to the GPU: no shared memory to check
    assert np.shares_memory(host_matrix(t), t.numpy())  # the CPU backends see the tensor's own memory
    assert np.shares_memory(host_matrix(X), X)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_nan_inf_raise_input_error(backend, bad):
    X, y = make_problem(50, 6, 2, dtype=np.float32, seed=1)
    X[7, 4] = bad
    with pytest.raises(InputError, match=r"X: contains NaN or Inf values.*\(in columns 4\)"):
        score(X, y, backend=backend)


def test_nan_in_batch_names_the_problem(batched_backend):
    X, y = make_problem(50, 6, 2, seed=1)
    Xb = X.copy()
    Xb[0, 2] = np.nan  # the shift row itself
    with pytest.raises(InputError, match=r"problems\[1\]\.X: contains NaN"):
        score_many([(X, y), (Xb, y)], backend=batched_backend)


def test_batched_equals_single(batched_backend):
    problems = [
        make_problem(300, 64, 10, dtype=np.float32, seed=1),
        make_problem(120, 20, 3, dtype=np.float64, seed=2),
        make_problem(40, 90, 4, dtype=np.float32, seed=3, mean=1000.0, noise=0.1),
    ]
    # a problem whose features are all constant: X'Y = 0, kernel PLS stops before any pass
    problems.append((np.full((30, 5), 2.5), np.arange(30) % 2))
    many = score_many(problems, backend=batched_backend, n_components=3)
    assert [r.backend for r in many] == [batched_backend] * 4
    for (X, y), r in zip(problems, many):
        single = score(X, y, backend=batched_backend, n_components=3).features
        if batched_backend == "cpp":
            np.testing.assert_array_equal(r.features, single)  # same grouping, same order: bit for bit
        else:  # atomics: both are order-dependent (docs/backends.md, "Determinism")
            np.testing.assert_allclose(r.features, single, atol=CUDA_ORDER_TOL, rtol=0)
        np.testing.assert_allclose(r.features, reference(X, y, 3), atol=1e-9, rtol=0)
    np.testing.assert_array_equal(many[3].features, np.zeros(5))


def test_cpp_batched_parallel_modes_agree():
    problems = []
    for seed, (n, p) in enumerate([(500, 48), (260, 16), (700, 8)]):
        X, y = make_problem(n, p, 5, dtype=np.float32, seed=seed)
        problems.append((X, (y % 5).astype(np.int32), 5))
    by_rows = pls_vip_cpp_many(problems, n_components=2, scale=True, parallel="rows")
    by_problems = pls_vip_cpp_many(problems, n_components=2, scale=True, parallel="problems")
    for a, b in zip(by_rows, by_problems):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="parallel"):
        pls_vip_cpp_many(problems, parallel="threads")


# widths around the 4- and 8-lane vector loops (AVX2 path in csrc/cpu/pls_avx2.h) and their tails
PASS_WIDTHS = (1, 3, 4, 7, 8, 19, 37, 64, 67)


@pytest.mark.parametrize("p", PASS_WIDTHS)
def test_cpp_stats_pass_against_numpy(p):
    X, y = make_problem(1001, p, 6, dtype=np.float32, seed=4, mean=1000.0, noise=0.01)
    colsum, sq, class_sums, counts = core().pls_stats(X, y.astype(np.int32), 6)
    Xd = X.astype(np.float64)
    np.testing.assert_allclose(colsum, Xd.sum(axis=0), rtol=1e-13)
    np.testing.assert_allclose(sq, ((Xd - Xd.mean(axis=0)) ** 2).sum(axis=0), rtol=1e-9)
    np.testing.assert_allclose(class_sums, np.eye(6)[y].T @ Xd, rtol=1e-13)
    np.testing.assert_array_equal(counts, np.bincount(y, minlength=6))
    if p < 8:
        return
    # the naive float32 formula loses the spread to cancellation; the shifted pass does not
    naive = (X * X).sum(axis=0, dtype=np.float32) - X.sum(axis=0, dtype=np.float32) ** 2 / X.shape[0]
    assert np.max(np.abs(naive - sq) / sq) > 0.1


@pytest.mark.parametrize("n", (1, 3, 257))
@pytest.mark.parametrize("p", PASS_WIDTHS)
def test_cpp_project_pass_against_numpy(p, n):
    X, _ = make_problem(max(n, 2), p, 2, dtype=np.float32, seed=6)
    X = np.ascontiguousarray(X[:n])
    v = np.random.default_rng(0).standard_normal(p)
    g, tsum, tt = core().pls_project(X, v, 0.25)
    t = X.astype(np.float64) @ v - 0.25
    np.testing.assert_allclose(g, X.T.astype(np.float64) @ t, rtol=1e-12, atol=1e-12)
    assert tsum == pytest.approx(t.sum(), rel=1e-12, abs=1e-12)
    assert tt == pytest.approx(t @ t, rel=1e-12)


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("n", (1, 3, 257))
@pytest.mark.parametrize("p", PASS_WIDTHS)
def test_cpp_project_pass_without_loading(p, n, dtype):
    # the last component's pass: the dot products alone, t'1 and t't as the full pass gives them
    X, _ = make_problem(max(n, 2), p, 2, dtype=dtype, seed=7)
    X = np.ascontiguousarray(X[:n])
    v = np.random.default_rng(1).standard_normal(p)
    g, tsum, tt = core().pls_project(X, v, 0.25, loading=False)
    t = X.astype(np.float64) @ v - 0.25
    assert g is None
    assert tsum == pytest.approx(t.sum(), rel=1e-12, abs=1e-12)
    assert tt == pytest.approx(t @ t, rel=1e-12)
    [(g2, tsum2, tt2)] = core().pls_project_many([X], [v], [0.25], loading=False)
    assert g2 is None and (tsum2, tt2) == (tsum, tt)


def _record_loading(monkeypatch, mod, name):
    calls = []
    real = getattr(mod, name)

    def spy(*args, loading=True, **kwargs):
        calls.append(loading)
        return real(*args, loading=loading, **kwargs)

    monkeypatch.setattr(mod, name, spy)
    return calls


@pytest.mark.parametrize("a", (1, 2, 3))
def test_last_component_skips_the_loading(monkeypatch, a):
    # kernel PLS never uses the last component's X't: the cpp and numba backends read X for it
    # with the dot products alone, one pass per component all the same
    import swnas.scoring._pls_numba as nb

    X, y = make_problem(300, 24, 4, dtype=np.float32, seed=8)
    codes = y.astype(np.int32)
    calls = _record_loading(monkeypatch, core(), "pls_project")
    np.testing.assert_allclose(pls_vip_cpp(X, codes, 4, n_components=a), reference(X, y, a), atol=1e-9, rtol=0)
    assert calls == [True] * (a - 1) + [False]
    calls_many = _record_loading(monkeypatch, core(), "pls_project_many")
    many = pls_vip_cpp_many([(X, codes, 4), (X[:200], codes[:200], 4)], n_components=a)
    np.testing.assert_allclose(many[1], reference(X[:200], y[:200], a), atol=1e-9, rtol=0)
    assert calls_many == [True] * (a - 1) + [False]
    if backend_status("numba")[0]:
        calls_nb = _record_loading(monkeypatch, nb, "pls_project_numba")
        np.testing.assert_allclose(nb.pls_vip_numba(X, codes, 4, n_components=a), reference(X, y, a), atol=1e-9, rtol=0)
        assert calls_nb == [True] * (a - 1) + [False]


def test_cpp_passes_reject_bad_arguments():
    X = np.ones((10, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        core().pls_stats(np.asfortranarray(np.ones((10, 4), np.float32)), np.zeros(10, np.int32), 2)
    with pytest.raises(ValueError, match="codes must lie in"):
        core().pls_stats(X, np.full(10, 2, np.int32), 2)
    with pytest.raises(ValueError, match="float32 or float64"):
        core().pls_project(np.ones((10, 4), np.int64), np.ones(4), 0.0)
    with pytest.raises(ValueError, match="one entry per column"):
        core().pls_project(X, np.ones(3), 0.0)


def test_lockstep_batches_calls_and_lets_tasks_stop_early():
    calls: list[list[int]] = []

    def project_many(batch):
        calls.append(sorted(batch))
        return {i: args[0] * 10 for i, args in batch.items()}

    def task(rounds):
        def run(project):
            return [project(r) for r in range(rounds)]

        return run

    out = run_lockstep([task(3), task(1), task(0), task(2)], project_many)
    assert out == [[0, 10, 20], [0], [], [0, 10]]
    assert calls == [[0, 1, 3], [0, 3], [0]]  # one batched call per round, finished tasks drop out


def test_lockstep_propagates_errors():
    def project_many(batch):
        raise RuntimeError("pass failed")

    with pytest.raises(RuntimeError, match="pass failed"):
        run_lockstep([lambda project: project(1), lambda project: 5], project_many)


def test_unavailable_gpu_backend_says_why():
    for name in GPU_BACKENDS:
        ok, why = backend_status(name)
        if ok:
            continue
        X, y = make_problem(20, 3, 2)
        with pytest.raises(BackendUnavailableError, match=name):
            score(X, y, backend=name)
        assert why


@pytest.mark.gpu
def test_cuda_reads_torch_and_cupy_device_data_in_place():
    ok, why = backend_status("cuda")
    if not ok:
        pytest.skip(f"backend 'cuda' is not available here: {why}")
    torch = pytest.importorskip("torch")
    from swnas.scoring._pls_cuda import cuda_matrix
    from swnas.scoring.backends import cuda_module

    X, y = make_problem(3000, 130, 7, dtype=np.float32, seed=8, mean=500.0, noise=0.5)
    ref = reference(X, y, 2)
    Xt = torch.from_numpy(X).cuda()
    np.testing.assert_allclose(score(Xt, y, backend="cuda").features, ref, atol=1e-9, rtol=0)
    np.testing.assert_allclose(score(Xt, y, backend="auto").features, ref, atol=1e-9, rtol=0)
    M = cuda_matrix(cuda_module(), Xt)
    assert M.shape == (3000, 130) and not M.is_double
    # a strided view is made contiguous once on the GPU; then the kernels of the float32 case above,
    # asserted to 1e-9 (the cpp backend on the same data: 1.3e-14 strided, 3.2e-14 in float64)
    np.testing.assert_allclose(
        score(Xt[:, ::2], y, backend="cuda").features, reference(X[:, ::2], y, 2), atol=1e-9, rtol=0
    )
    np.testing.assert_allclose(score(Xt.double(), y, backend="cuda").features, ref, atol=1e-9, rtol=0)
    try:
        import cupy
    except Exception as exc:  # cupy is optional; a skip shows (and fails the device check)
        pytest.skip(f"cupy does not import ({type(exc).__name__}: {exc}): its arrays were not tried")
    np.testing.assert_allclose(score(cupy.asarray(X), y, backend="cuda").features, ref, atol=1e-9, rtol=0)


class _FakeCudaModule:
    """Stands in for swnas._cuda with the CPU passes, to exercise the cuda glue without a GPU."""

    def __init__(self, expect_device: int = 0) -> None:
        self.expect_device = expect_device

    class Matrix:
        def __init__(self, A):
            self.A, self.shape, self.calls = A, A.shape, []

        def stats(self, codes, n_classes):
            return core().pls_stats(self.A, codes, n_classes)

        def project(self, v, c, loading=True):
            self.calls.append(loading)
            return core().pls_project(self.A, v, c, loading=loading)

    def pls_matrix_from_host(self, A, device=0):
        assert A.flags.c_contiguous and device == self.expect_device
        self.matrices = getattr(self, "matrices", []) + [self.Matrix(A)]
        return self.matrices[-1]

    def pls_stats_many(self, ms, codes, n_classes):
        return [m.stats(c, k) for m, c, k in zip(ms, codes, n_classes)]

    def pls_project_many(self, ms, vs, cs, loading=True):
        return [m.project(v, c, loading) for m, v, c in zip(ms, vs, cs)]


def test_cuda_glue_with_cpu_passes(monkeypatch):
    import swnas.scoring._pls_cuda as native

    fake = _FakeCudaModule()
    monkeypatch.setattr(native, "cuda_module", lambda: fake)
    problems = [make_problem(150, 12, 3, dtype=np.float32, seed=1), make_problem(80, 30, 4, seed=2)]
    coded = [(X, np.unique(y, return_inverse=True)[1].astype(np.int32), len(np.unique(y))) for X, y in problems]
    single = [native.pls_vip_cuda(X, c, k, n_components=2) for X, c, k in coded]
    many = native.pls_vip_cuda_many(coded, n_components=2)
    for (X, y), s, m in zip(problems, single, many):
        np.testing.assert_allclose(s, reference(X, y, 2), atol=1e-9, rtol=0)
        np.testing.assert_array_equal(s, m)
    # the last component's projection skips the X't kernel, single and batched
    assert [m.calls for m in fake.matrices] == [[True, False]] * 4


def test_cuda_host_data_goes_to_the_current_device(monkeypatch):
    """Host data is uploaded to torch's current device (each torchrun rank's own), not always GPU 0."""
    torch = pytest.importorskip("torch")

    import swnas.scoring._pls_cuda as cuda_glue

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    monkeypatch.setattr(cuda_glue, "cuda_module", lambda: _FakeCudaModule(expect_device=3))
    X, y = make_problem(60, 7, 3, seed=4)
    got = cuda_glue.pls_vip_cuda(X, y.astype(np.int32), 3, n_components=2)
    np.testing.assert_allclose(got, reference(X, y, 2), atol=1e-9, rtol=0)


def test_cupy_one_hot_block_stays_within_budget(cupy_standin, monkeypatch):
    """Many classes and few features: the one-hot block counts towards the block budget."""
    import swnas.scoring._pls_cupy as pls_cupy

    budget = 256 << 10
    monkeypatch.setattr(pls_cupy, "_BLOCK_BYTES", budget)
    X, y = make_problem(3000, 4, 300, seed=2)
    got = score(X, y, backend="cupy").features
    np.testing.assert_allclose(got, reference(X, y, 2), atol=1e-9, rtol=0)
    assert cupy_standin.peak_alloc <= budget
    assert pls_cupy.block_rows(64, 1000) * (64 + 1000) * 8 <= pls_cupy._BLOCK_BYTES


def test_float32_subnormal_column_is_not_flushed(backend):
    """A float32 column that is 0 except 3e-39 (a subnormal) for one class carries the class: every
    backend must score it as the reference does (fast-math on the GPU would flush it to 0)."""
    X, y = make_problem(400, 6, 3, dtype=np.float32, seed=12)
    X[:, 5] = np.where(y == 1, np.float32(3e-39), np.float32(0.0))
    assert 0 < float(X[:, 5].max()) < np.finfo(np.float32).tiny  # really subnormal
    ref = reference(X, y, 2)
    assert ref[5] > 1.0
    np.testing.assert_allclose(score(X, y, backend=backend).features, ref, atol=1e-9, rtol=0)


@pytest.mark.parametrize("factor", [1e-300, 1e-160, 1e200], ids=["1e-300", "1e-160", "1e200"])
def test_float64_far_from_one_matches_reference_on_unscaled_data(backend, factor):
    """PLS-VIP is unchanged by a global scale of X: float64 data near 1e-300 (squares underflow to 0;
    VIP was off by 2.3), 1e-160 (squares subnormal) or 1e200 (squares overflow) must score as the
    reference scores the same data near 1."""
    X, y = make_problem(300, 12, 3, dtype=np.float64, seed=21)
    ref = reference(X, y, 2)
    np.testing.assert_allclose(score(X * factor, y, backend=backend).features, ref, atol=1e-9, rtol=0)


@pytest.mark.parametrize("factor", [1e-300, 1e200], ids=["1e-300", "1e200"])
def test_cpp_batched_rescales_only_the_problems_that_need_it(factor):
    X, y = make_problem(250, 9, 4, dtype=np.float64, seed=22)
    X2, y2 = make_problem(180, 7, 2, dtype=np.float32, seed=23)
    outs = pls_vip_cpp_many([(X * factor, y, 4), (X2, y2, 2), (X, y, 4)], n_components=2)
    np.testing.assert_allclose(outs[0], reference(X, y, 2), atol=1e-9, rtol=0)
    np.testing.assert_allclose(outs[1], reference(X2, y2, 2), atol=1e-9, rtol=0)
    np.testing.assert_allclose(outs[2], outs[0], atol=1e-9, rtol=0)


def test_cpp_stats_pass_scales_in_place_and_reports_the_largest_magnitude():
    X, y = make_problem(301, 11, 3, dtype=np.float64, seed=24)
    X[17, 4] = -7.5 * np.abs(X).max()  # the largest magnitude is negative, mid-matrix
    codes = y.astype(np.int32)
    plain = core().pls_stats(X, codes, 3, with_absmax=True)
    assert plain[4] == np.abs(X).max()
    assert core().pls_stats(X.astype(np.float32), codes, 3, with_absmax=True)[4] == -1.0  # not computed
    tiny = X * 2.0**-1000
    scaled = core().pls_stats(tiny, codes, 3, scale=2.0**1000)
    for got, want in zip(scaled, plain[:4]):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-12)
    with pytest.raises(ValueError, match="scale: must be a positive power of two"):
        core().pls_stats(X, codes, 3, scale=3.0)
    with pytest.raises(ValueError, match=r"scales\[1\]: must be a positive power of two"):
        core().pls_stats_many([X, X], [codes, codes], [3, 3], "auto", [1.0, -2.0])


def test_unpickled_float64_array_is_read_in_place_by_the_cpp_passes():
    """An unpickled array carries an equal but distinct dtype object: the binding compares dtypes by
    equality, so it takes the array itself (no view or copy in between)."""
    import pickle

    from swnas.scoring._arrays import as_float_matrix

    X, y = make_problem(90, 6, 3, dtype=np.float64, seed=25)
    X2 = pickle.loads(pickle.dumps(X))
    assert X2.dtype == np.float64 and X2.dtype is not np.dtype(np.float64)
    assert as_float_matrix(X2)[0] is X2  # no workaround view any more
    stats = core().pls_stats(X2, y.astype(np.int32), 3)  # used to raise "dtype must be float32 or float64"
    np.testing.assert_array_equal(stats[0], core().pls_stats(X, y.astype(np.int32), 3)[0])
    np.testing.assert_array_equal(score(X2, y, backend="cpp").features, score(X, y, backend="cpp").features)
    with pytest.raises(ValueError, match="float32 or float64"):  # equality, not just the kind: byte order
        core().pls_stats(X.astype(">f8"), y.astype(np.int32), 3)
