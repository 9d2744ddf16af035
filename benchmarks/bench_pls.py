"""PLS-VIP throughput and memory: swnas backends against scikit-learn, ikpls and the memory floor.

Problem: N = 50,000 rows, p = 2,048 float32 features, 10 classes, A = 2 components (the paper's
setting at CIFAR-10 size). Two data kinds:

* ``cifar10``: the first 2,048 of the 3,072 pixel columns of the CIFAR-10 training images
  (``$SWNAS_CIFAR10``, ``$SWNAS_DATA_DIR/cifar10.npz`` or ``data/cifar10.npz``; skipped when absent);
* ``synthetic``: Gaussian noise with 16 planted class-dependent columns.

Methods (same run, same data): swnas ``cpp``, ``numba`` and ``numpy`` (the float64 reference);
scikit-learn ``PLSRegression(n_components=2)`` with default settings plus the VIP formula; ikpls
(``ikpls.numpy.PLS``, improved kernel PLS algorithm 1) in float64 (``ikpls-alg1-f64``, as its docs
advise) and in float32 (``ikpls-alg1-f32``, the like-for-like comparison for float32 input), each
plus the VIP formula; and the floor: (1 + A) plain streaming reads of X (the compiled backends read
X once for the statistics and once per component: the projection's two halves share one read),
the fastest of a compiled OpenMP sum (``swnas._core.pls_stream_read``) and a BLAS ``X @ ones``.
Every method's VIP is checked against swnas's.

Peak extra memory (``extra_info["peak_extra_mib"]``): each method runs once more in a fresh
subprocess (``python bench_pls.py --peak METHOD DATA P``): after the data is built and a small
warm-up run (imports, numba compilation, thread pools), the kernel's peak-RSS counter is reset
(``/proc/self/clear_refs``) and the reported figure is VmHWM - VmRSS over the timed call: every
allocation (NumPy, C++, BLAS) counts, the input X does not.

GPU group (``-m gpu``; skipped without a usable CUDA backend): N = 50,000 x p = 2,048 (and 8,192)
float32 generated on the device; ``cuda`` on the torch tensor in place vs ``cpp`` on a host copy,
and the floor: 2A device reductions of X (``torch.sum``; the GPU kernels read X once for the
statistics, twice per component and once for the last).

``SWNAS_BENCH_LARGE=1`` adds the p = 8,192 CPU group (1.6 GB of float32; fast methods only).
``python benchmarks/bench_pls.py --summarise results.json`` prints a markdown table with ratios.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from collections.abc import Callable

import numpy as np
import pytest

N_ROWS = int(os.environ.get("SWNAS_BENCH_ROWS", 50_000))  # smaller only for smoke runs
N_CLASSES = 10
A = 2
PASSES = 2 * A  # the GPU floor: statistics + two kernels per component, one for the last
CPU_PASSES = 1 + A  # the CPU floor: statistics + one fused pass per component
LARGE = os.environ.get("SWNAS_BENCH_LARGE", "") not in ("", "0")


# ----------------------------------------------------------------------------------------------
# data


def cifar_path() -> Path:
    """``$SWNAS_CIFAR10``, else ``$SWNAS_DATA_DIR/cifar10.npz``, else ``data/cifar10.npz`` (torch-free)."""
    if os.environ.get("SWNAS_CIFAR10"):
        return Path(os.environ["SWNAS_CIFAR10"])
    return Path(os.environ.get("SWNAS_DATA_DIR", "data")) / "cifar10.npz"


def load_data(kind: str, p: int) -> tuple[np.ndarray, np.ndarray]:
    """(X float32 C-contiguous (N_ROWS, p), y int64) for ``kind`` in {"cifar10", "synthetic"}."""
    if kind == "cifar10":
        path = cifar_path()
        with np.load(path, allow_pickle=False) as z:
            x, y = z["x_train"], z["y_train"]
        flat = x.reshape(x.shape[0], -1)[:N_ROWS, :p]
        X = np.empty(flat.shape, dtype=np.float32)
        np.divide(flat, 255.0, out=X, casting="unsafe")
        return X, np.asarray(y).reshape(-1)[:N_ROWS].astype(np.int64)
    if kind == "synthetic":
        rng = np.random.default_rng(0)
        X = rng.standard_normal((N_ROWS, p), dtype=np.float32)
        y = rng.integers(0, N_CLASSES, N_ROWS)
        cols = rng.choice(p, 16, replace=False)
        for k, j in enumerate(cols):  # 16 planted columns, each shifted for one or two classes
            X[:, j] += 0.5 * (y == k % N_CLASSES) - 0.3 * (y == (k + 3) % N_CLASSES)
        return X, y
    raise ValueError(f"unknown data kind {kind!r}")


# ----------------------------------------------------------------------------------------------
# methods: each takes (X, y) and returns the VIP vector


def _vip(W: np.ndarray, T: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """VIP_j = sqrt(p sum_a SS_a (w_ja/||w_a||)^2 / sum_a SS_a), SS_a = (t_a't_a)(q_a'q_a)."""
    ss = (T * T).sum(axis=0) * (Q * Q).sum(axis=0)
    Wn = W / np.linalg.norm(W, axis=0)
    return np.sqrt(W.shape[0] * (Wn * Wn) @ ss / ss.sum())


def _onehot(y: np.ndarray) -> np.ndarray:
    classes, codes = np.unique(y, return_inverse=True)
    return np.eye(len(classes))[codes]


def m_swnas(backend: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def run(X, y):
        from swnas.scoring import score

        return score(X, y, criterion="pls", backend=backend, n_components=A).features

    return run


def m_sklearn(X, y):
    from sklearn.cross_decomposition import PLSRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pls = PLSRegression(n_components=A).fit(X, _onehot(y))
    return _vip(pls.x_weights_, pls.x_scores_, pls.y_loadings_)


def m_ikpls(dtype) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def run(X, y):
        from ikpls.numpy import PLS

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pls = PLS(algorithm=1, ddof=1, dtype=dtype).fit(X, _onehot(y).astype(dtype), A)
        return _vip(np.asarray(pls.W, np.float64), np.asarray(pls.T, np.float64), np.asarray(pls.Q, np.float64))

    return run


def m_floor_read(X, y):
    from swnas.scoring.backends import core

    read = core().pls_stream_read
    for _ in range(CPU_PASSES):
        read(X)


def m_floor_gemv(X, y):
    ones = np.ones(X.shape[1], dtype=X.dtype)
    for _ in range(CPU_PASSES):
        X @ ones


METHODS: dict[str, Callable] = {
    "swnas-cpp": m_swnas("cpp"),
    "swnas-numba": m_swnas("numba"),
    "swnas-numpy-ref": m_swnas("numpy"),
    "sklearn": m_sklearn,
    "ikpls-alg1-f64": m_ikpls(np.float64),
    "ikpls-alg1-f32": m_ikpls(np.float32),
    "floor-read": m_floor_read,
    "floor-gemv": m_floor_gemv,
}
#: warm calls after the cold first one (the steady state is their median; the cold call is kept
#: beside it as ``extra_info["cold_s"]``, docs/testing.md "Benchmarks")
ROUNDS = {"sklearn": 3, "ikpls-alg1-f64": 5, "ikpls-alg1-f32": 5, "swnas-numpy-ref": 3}
# scikit-learn's NIPALS power iterations stop at tol=1e-6 / max_iter=500 by default and can land
# far from the exact components when the leading eigenvalues are close (10 classes): its deviation
# is recorded (extra_info["max_abs_vip_diff_vs_swnas"]), not asserted. The other methods are exact.
# ikpls in float32 computes in float32 throughout (its centring and scaling included), so its VIP
# carries float32 rounding: recorded, not asserted, like scikit-learn's.
INEXACT = {"sklearn", "ikpls-alg1-f32"}


# ----------------------------------------------------------------------------------------------
# peak memory, measured in a fresh subprocess


def _proc_status(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _peak_child(method: str, kind: str, p: int) -> None:
    X, y = load_data(kind, p)
    fn = METHODS[method]
    fn(np.ascontiguousarray(X[:2000]), y[:2000])  # warm-up: imports, numba compilation, thread pools
    base = _proc_status("VmRSS")
    with open(f"/proc/{os.getpid()}/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current RSS
    fn(X, y)
    peak = _proc_status("VmHWM")
    print(json.dumps({"peak_extra_mib": (peak - base) / 2**20}))


def peak_extra_mib(method: str, kind: str, p: int) -> float | None:
    """Peak RSS above the resident data while ``method`` runs, in MiB (None if unmeasurable)."""
    if not Path("/proc/self/clear_refs").exists():
        return None
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run(
        [sys.executable, __file__, "--peak", method, kind, str(p)], capture_output=True, text=True, env=env, timeout=900
    )
    if out.returncode != 0:
        warnings.warn(f"peak memory of {method} not measured: {out.stderr[-500:]}", RuntimeWarning, stacklevel=2)
        return None
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_extra_mib"])


# ----------------------------------------------------------------------------------------------
# CPU benchmarks

_DATA: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
_EXPECTED: dict[tuple[str, int], np.ndarray] = {}


def _data(kind: str, p: int):
    if kind == "cifar10" and not cifar_path().exists():
        pytest.skip(f"CIFAR-10 not found at {cifar_path()} (set SWNAS_CIFAR10)")
    key = (kind, p)
    if key not in _DATA:
        _DATA.clear()  # one data set in memory at a time
        _EXPECTED.clear()
        _DATA[key] = load_data(kind, p)
    return _DATA[key]


def _expected(kind: str, p: int) -> np.ndarray:
    key = (kind, p)
    if key not in _EXPECTED:
        X, y = _data(kind, p)
        _EXPECTED[key] = METHODS["swnas-cpp"](X, y)
    return _EXPECTED[key]


CPU_CASES = [(kind, 2048, m) for kind in ("cifar10", "synthetic") for m in METHODS]
if LARGE:
    CPU_CASES += [("synthetic", 8192, m) for m in ("swnas-cpp", "swnas-numba", "floor-read", "floor-gemv")]


@pytest.mark.parametrize("kind,p,method", CPU_CASES, ids=[f"{k}-p{p}-{m}" for k, p, m in CPU_CASES])
def test_pls_cpu(benchmark, kind, p, method):
    X, y = _data(kind, p)
    benchmark.group = f"pls-cpu-{kind}-p{p}"
    fn = METHODS[method]
    rounds = ROUNDS.get(method, 7)
    t0 = time.perf_counter()
    fn(X, y)  # the cold first call (imports, JIT, thread pools, first-touch allocations)
    cold = time.perf_counter() - t0
    result = benchmark.pedantic(fn, args=(X, y), rounds=rounds, iterations=1, warmup_rounds=0)
    if result is not None:
        diff = float(np.max(np.abs(result - _expected(kind, p))))
        benchmark.extra_info["max_abs_vip_diff_vs_swnas"] = diff
        if method not in INEXACT:
            assert diff < 1e-4, f"{method}: VIP differs from swnas cpp by {diff}"
    benchmark.extra_info.update(
        {
            "method": method,
            "cold_s": cold,
            "data": kind,
            "n": X.shape[0],
            "p": p,
            "classes": N_CLASSES,
            "components": A,
            "dtype": "float32",
            "passes_floor": CPU_PASSES,
            "threads": os.cpu_count(),
            "peak_extra_mib": peak_extra_mib(method, kind, p),
            "peak_method": "VmHWM - VmRSS in a fresh subprocess, peak counter reset before the call",
        }
    )
    if method.startswith("floor"):
        benchmark.extra_info["read_gb_per_s"] = CPU_PASSES * X.nbytes / benchmark.stats.stats.median / 1e9


# ----------------------------------------------------------------------------------------------
# GPU benchmarks


def _gpu_ready():
    from swnas.scoring import backend_status

    ok, why = backend_status("cuda")
    if not ok:
        pytest.skip(f"backend 'cuda' is not available here: {why}")
    return pytest.importorskip("torch")


_GPU: dict[int, tuple] = {}


def _gpu_data(p: int):
    torch = _gpu_ready()
    if p not in _GPU:
        _GPU.clear()
        gen = torch.Generator(device="cuda").manual_seed(0)
        X = torch.randn((N_ROWS, p), device="cuda", dtype=torch.float32, generator=gen)
        y = np.random.default_rng(0).integers(0, N_CLASSES, N_ROWS)
        yt = torch.from_numpy(y).cuda()
        for k in range(16):  # planted class-dependent columns
            X[:, k * (p // 16)] += 0.5 * (yt == k % N_CLASSES).float()
        torch.cuda.synchronize()
        _GPU[p] = (X, y, X.cpu().numpy())
    return _GPU[p]


GPU_METHODS = ("swnas-cuda", "swnas-cuda-host-input", "swnas-cupy", "swnas-cpp", "floor-device-sum")
GPU_CASES = [(p, m) for p in (2048, 8192) for m in GPU_METHODS]


@pytest.mark.gpu
@pytest.mark.parametrize("p,method", GPU_CASES, ids=[f"p{p}-{m}" for p, m in GPU_CASES])
def test_pls_gpu(benchmark, p, method):
    torch = _gpu_ready()
    X, y, Xh = _gpu_data(p)
    benchmark.group = f"pls-gpu-synthetic-p{p}"
    from swnas.scoring import backend_status, score

    if method == "swnas-cupy" and not backend_status("cupy")[0]:
        pytest.skip(f"cupy: {backend_status('cupy')[1]}")

    def run():
        if method == "swnas-cuda":
            return score(X, y, backend="cuda", n_components=A).features
        if method == "swnas-cuda-host-input":
            return score(Xh, y, backend="cuda", n_components=A).features
        if method == "swnas-cupy":
            import cupy

            return score(cupy.asarray(X), y, backend="cupy", n_components=A).features
        if method == "swnas-cpp":
            return score(Xh, y, backend="cpp", n_components=A).features
        for _ in range(PASSES):
            X.sum()
        torch.cuda.synchronize()
        return None

    rounds = 3 if method == "swnas-cpp" else 10
    result = benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=1)
    if result is not None:
        ref = score(Xh, y, backend="cpp", n_components=A).features
        np.testing.assert_allclose(result, ref, rtol=0, atol=1e-4)
    benchmark.extra_info.update(
        {
            "method": method,
            "data": "synthetic",
            "n": N_ROWS,
            "p": p,
            "classes": N_CLASSES,
            "components": A,
            "device": torch.cuda.get_device_name(0),
        }
    )
    if method == "floor-device-sum":
        benchmark.extra_info["read_gb_per_s"] = PASSES * X.numel() * 4 / benchmark.stats.stats.min / 1e9


# ----------------------------------------------------------------------------------------------
# summary of a --benchmark-json file


def summarise(path: str) -> str:
    """Markdown table of a pytest-benchmark JSON file: warm medians, cold first calls, ratios.

    Ratios are of warm medians (the steady state); the cold first call of each method and the
    same ratio taken between cold calls stand beside them where a run recorded them.
    """
    data = json.loads(Path(path).read_text())
    groups: dict[str, list[dict]] = {}
    for b in data["benchmarks"]:
        groups.setdefault(b["group"] or "", []).append(b)
    refs = ("sklearn", "ikpls-alg1-f64", "ikpls-alg1-f32", "swnas-cpp")
    lines = []
    for g, bs in sorted(groups.items()):
        med = {b["extra_info"].get("method", b["name"]): b["stats"]["median"] for b in bs}
        cold = {b["extra_info"].get("method", b["name"]): b["extra_info"].get("cold_s") for b in bs}
        floor = min((v for k, v in med.items() if k.startswith("floor")), default=None)
        lines += [
            f"### {g}",
            "",
            "| method | median warm (ms) | min (ms) | cold first call (ms) | "
            + " | ".join(f"{r} / this warm (cold)" for r in refs)
            + " | this / floor (median) | peak extra (MiB) |",
            "| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in refs) + " | ---: | ---: |",
        ]
        for b in sorted(bs, key=lambda b: b["stats"]["median"]):
            m = b["extra_info"].get("method", b["name"])
            s, c = b["stats"], cold[m]
            ratios = []
            for r in refs:
                if r not in med:
                    ratios.append("-")
                    continue
                warm = f"{med[r] / s['median']:.1f}"
                ratios.append(warm + (f" ({cold[r] / c:.1f})" if c and cold.get(r) else ""))
            fl = f"{s['median'] / floor:.2f}" if floor else "-"
            peak = b["extra_info"].get("peak_extra_mib")
            lines.append(
                f"| {m} | {1e3 * s['median']:.1f} | {1e3 * s['min']:.1f} | {'-' if c is None else f'{1e3 * c:.1f}'} | "
                + " | ".join(ratios)
                + f" | {fl} | {'-' if peak is None else f'{peak:.0f}'} |"
            )
        lines.append("")
    return "\n".join(lines)


def profile_passes(repeats: int = 3, rounds: int = 5) -> str:
    """Each compiled pass of the ``cpp`` backend against one plain read, on the CIFAR-10 pixels.

    Min over ``rounds`` calls, ``repeats`` times in turn (so a burst of load on a shared machine
    shows as disagreeing repeats): a BLAS ``X @ ones`` read, the compiled streaming read, the
    statistics pass, one projection pass, the last component's pass (dot products only) and the
    whole score. Thread count from ``OMP_NUM_THREADS``.
    """
    import time

    from swnas.scoring import score
    from swnas.scoring.backends import core

    X, y = load_data("cifar10", 2048)
    codes, mod = y.astype(np.int32), core()
    ones, v = np.ones(X.shape[1], np.float32), np.random.default_rng(0).standard_normal(X.shape[1])
    steps = {
        "blas read": lambda: X @ ones,
        "compiled read": lambda: mod.pls_stream_read(X),
        "stats pass": lambda: mod.pls_stats(X, codes, N_CLASSES),
        "projection pass": lambda: mod.pls_project(X, v, 0.5),
        "last component's pass (no X't)": lambda: mod.pls_project(X, v, 0.5, loading=False),
        "cpp score (1 + A passes)": lambda: score(X, y, backend="cpp", n_components=A),
    }
    best: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for k, f in steps.items():
            ts = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                f()
                ts.append(time.perf_counter() - t0)
            best[k].append(1e3 * min(ts))
    read = min(best["blas read"])
    lines = [
        f"threads={os.environ.get('OMP_NUM_THREADS', 'all')} load={os.getloadavg()}",
        "| step | min per repeat (ms) | / one BLAS read |",
        "| --- | --- | ---: |",
    ]
    for k, ts in best.items():
        lines.append(f"| {k} | {', '.join(f'{t:.0f}' for t in ts)} | {min(ts) / read:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--passes":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's swnas
        print(profile_passes())
    elif len(sys.argv) == 5 and sys.argv[1] == "--peak":
        _peak_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--summarise":
        print(summarise(sys.argv[2]))
    else:
        sys.exit("usage: bench_pls.py --passes | --peak METHOD DATA P | --summarise RESULTS.json")
