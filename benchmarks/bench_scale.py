"""ImageNet-size scoring on the CPU: 1,281,167 x 2,048 float32 features, 1,000 classes.

A ResNet-50's pooled features of the ImageNet-1k training set, synthetic: post-ReLU Gaussian
columns with a class signal planted in 64 of them. The matrix (9.8 GiB) is generated once, chunk
by chunk, into a ``.npy`` file and reused by later runs (``SWNAS_SCALE_DIR``, default the
temporary directory; delete the file to regenerate). Every test times a cold first call, then
``SWNAS_SCALE_ROUNDS`` warm calls (pytest-benchmark's statistics; the steady state is the median)
and records the cold call as ``extra_info["cold_s"]``, each floor measured in the same run, and the
peak extra anonymous memory (``RssAnon`` sampled every 5 ms: file pages of a memory-mapped X do
not count, every allocation does). Groups:

- ``pls``: PLS-VIP ``cpp`` (A = 2) against its floor, 1 + A compiled plain reads of X, with X in
  memory, memory-mapped with the page cache warm, and memory-mapped cold (the file's pages
  dropped with ``posix_fadvise(DONTNEED)`` before each call);
- ``inffs``: inf-FS Pearson against one BLAS float32 ``X.T @ X``, Spearman against that GEMM plus
  one sort of every column (``np.sort(X, axis=0)``), on the first ``SWNAS_SCALE_INFFS_ROWS`` rows;
- ``ilfs``: il-FS ``cpp`` (O(N p C): at C = 1,000 its cost is 1,000 distance evaluations per
  value), on the first ``SWNAS_SCALE_ILFS_ROWS`` rows, against one plain read of them;
- ``streaming``: ``StreamingScorer("pls")`` over 64 k-row chunks of the memory-mapped file (one
  pass, Gram form, O(N p^2)) and ``score_pls_chunks`` over the same chunks (re-read: 1 + A passes)
  on the first ``SWNAS_SCALE_STREAM_ROWS`` rows, against the in-memory ``cpp`` score of the same rows;
- ``dask``: ``score`` of a Dask array of 64 k-row chunks of the same file (threaded scheduler),
  built by ``swnas.scoring.dask.from_npy`` and, once, by ``dask.array.from_array`` of the memory
  map (which hashes and copies the file), against the in-memory ``cpp`` score.

Skipped unless asked for: ``SWNAS_BENCH_SCALE=1`` or ``-m scale``. Sizes: ``SWNAS_SCALE_ROWS``
(default 1,281,167); the per-group row limits default to all rows. E.g.::

    SWNAS_BENCH_SCALE=1 SWNAS_SCALE_ROWS=320000 pytest benchmarks/bench_scale.py -k pls \
        --benchmark-json=scale.json
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

P = 2048
CLASSES = 1000
A = 2
PLANTED = 64
CHUNK = 65_536
ROWS = int(os.environ.get("SWNAS_SCALE_ROWS", 1_281_167))
ROUNDS = int(os.environ.get("SWNAS_SCALE_ROUNDS", 3))
INFFS_ROWS = min(ROWS, int(os.environ.get("SWNAS_SCALE_INFFS_ROWS", ROWS)))
ILFS_ROWS = min(ROWS, int(os.environ.get("SWNAS_SCALE_ILFS_ROWS", ROWS)))
STREAM_ROWS = min(ROWS, int(os.environ.get("SWNAS_SCALE_STREAM_ROWS", ROWS)))
DIR = Path(os.environ.get("SWNAS_SCALE_DIR", tempfile.gettempdir()))

pytestmark = pytest.mark.scale


@pytest.fixture(autouse=True)
def _asked_for(request):
    if os.environ.get("SWNAS_BENCH_SCALE") != "1" and "scale" not in (request.config.getoption("-m") or ""):
        pytest.skip("ImageNet-size benchmark: set SWNAS_BENCH_SCALE=1 or pass -m scale")


# ----------------------------------------------------------------------------------------------
# data


def data_path(rows: int = ROWS) -> Path:
    """The float32 ``.npy`` of ``rows`` x 2,048 features (labels beside it), made once."""
    path = DIR / f"swnas-scale-{rows}x{P}-c{CLASSES}.npy"
    labels = path.with_suffix(".labels.npy")
    if path.exists() and labels.exists():
        X = np.load(path, mmap_mode="r")
        if X.shape == (rows, P) and X.dtype == np.float32:
            return path
    rng = np.random.default_rng(0)
    y = rng.integers(0, CLASSES, rows)
    cols = rng.choice(P, PLANTED, replace=False)
    shift = rng.standard_normal((CLASSES, PLANTED), dtype=np.float32)
    tmp = path.with_suffix(".partial.npy")
    X = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(rows, P))
    for b in range(0, rows, CHUNK):
        e = min(rows, b + CHUNK)
        Z = rng.standard_normal((e - b, P), dtype=np.float32)
        Z[:, cols] += shift[y[b:e]]
        np.maximum(Z, 0.0, out=Z)
        X[b:e] = Z
    X.flush()
    del X
    np.save(path.with_suffix(".cols.npy"), cols)
    np.save(labels, y)
    tmp.replace(path)
    return path


def labels(path: Path) -> np.ndarray:
    return np.load(path.with_suffix(".labels.npy"))


def planted(path: Path) -> np.ndarray:
    return np.load(path.with_suffix(".cols.npy"))


_MEM: dict[str, np.ndarray] = {}


def in_memory(path: Path) -> np.ndarray:
    """X read into memory once (one copy per process)."""
    if "X" not in _MEM:
        _MEM["X"] = np.load(path)
    return _MEM["X"]


def drop_cache(path: Path) -> bool:
    """Drop the file's pages from the page cache (Linux; only pages no mapping holds)."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


# ----------------------------------------------------------------------------------------------
# measuring


def _rss_anon() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return -1


class PeakAnon:
    """Peak of ``RssAnon`` above its value at entry, sampled every 5 ms in a thread (bytes)."""

    def __enter__(self) -> PeakAnon:
        self.base = self.peak = _rss_anon()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_anon())

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_anon())
        self.extra = self.peak - self.base


def run(
    benchmark,
    group: str,
    method: str,
    fn: Callable[[], Any],
    x_bytes: int,
    rounds: int = ROUNDS,
    before: Callable[[], Any] | None = None,
    **info: Any,
) -> Any:
    """Cold first call (with its peak extra memory), then ``rounds`` warm calls through pytest-benchmark."""
    benchmark.group = group
    if before is not None:
        before()
    with PeakAnon() as mem:
        t0 = time.perf_counter()
        out = fn()
        cold = time.perf_counter() - t0
    if before is not None:

        def setup() -> None:  # pytest-benchmark wants None (or (args, kwargs)) back
            before()

        benchmark.pedantic(fn, setup=setup, rounds=rounds, iterations=1, warmup_rounds=0)
    else:
        benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update(
        {
            "method": method,
            "cold_s": cold,
            "peak_extra_mib": mem.extra / 2**20,
            "peak_extra_fraction_of_x": mem.extra / x_bytes,
            "x_gib": x_bytes / 2**30,
            "load_avg_1min": os.getloadavg()[0],
            "threads": os.environ.get("OMP_NUM_THREADS", os.cpu_count()),
            "classes": CLASSES,
            "p": P,
            **info,
        }
    )
    return out


def floor_reads(X: np.ndarray, passes: int) -> None:
    from swnas.scoring.backends import core

    read = core().pls_stream_read
    for _ in range(passes):
        read(X)


def cpp_pls(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    from swnas.scoring import score

    return score(X, y, criterion="pls", backend="cpp", n_components=A).features


def _check_planted(benchmark, vip: np.ndarray, path: Path) -> None:
    """Record how many planted columns rank in the top 64; with >= 100 rows per class, assert all but 2."""
    found = len(set(np.argsort(vip)[-PLANTED:].tolist()) & set(planted(path).tolist()))
    benchmark.extra_info["planted_in_top"] = found
    if len(vip) and ROWS >= 100 * CLASSES:
        assert found >= PLANTED - 2, f"only {found} of the {PLANTED} planted columns rank on top"


# ----------------------------------------------------------------------------------------------
# PLS-VIP at C = 1,000


PLS_CASES = ["floor-mem", "cpp-mem", "floor-mmap-warm", "cpp-mmap-warm", "floor-mmap-cold", "cpp-mmap-cold"]


@pytest.mark.parametrize("case", PLS_CASES)
def test_pls(benchmark, case):
    path = data_path()
    y = labels(path)
    where = case.split("-", 1)[1]
    if where == "mem":
        X = in_memory(path)
    else:
        _MEM.clear()  # the in-memory copy would compete with the page cache
        X = np.load(path, mmap_mode="r")
    before = None
    if where == "mmap-cold":
        if not drop_cache(path):
            pytest.skip("posix_fadvise is not available")
        before = lambda: drop_cache(path)  # noqa: E731
    n_rows, x_bytes = X.shape[0], X.nbytes
    if where == "mmap-cold":
        del X  # a page some mapping holds cannot be dropped: every call maps the file afresh

        def data() -> np.ndarray:
            return np.load(path, mmap_mode="r")
    else:

        def data() -> np.ndarray:
            return X

    if case.startswith("floor"):
        run(
            benchmark,
            f"pls-{where}",
            case,
            lambda: floor_reads(data(), 1 + A),
            x_bytes,
            before=before,
            passes=1 + A,
            n=n_rows,
        )
        benchmark.extra_info["read_gb_per_s"] = (1 + A) * x_bytes / benchmark.stats.stats.median / 1e9
    else:
        vip = run(
            benchmark, f"pls-{where}", case, lambda: cpp_pls(data(), y), x_bytes, before=before, components=A, n=n_rows
        )
        _check_planted(benchmark, vip, path)


# ----------------------------------------------------------------------------------------------
# inf-FS and il-FS


def _gemm(X: np.ndarray) -> np.ndarray:
    return X.T @ X


def _gemm_sort(X: np.ndarray) -> None:
    _gemm(X)
    np.sort(X, axis=0)


INFFS_CASES = ["floor-gemm", "cpp-pearson", "floor-gemm-sort", "cpp-spearman"]


@pytest.mark.parametrize("case", INFFS_CASES)
def test_inffs(benchmark, case):
    from swnas.scoring import score

    path = data_path()
    # memory-mapped (page cache warm after the cold call): inf-FS and the sort each hold one float32
    # copy of X, and an in-memory X beside it would not fit 24 GiB at full size
    _MEM.clear()
    X = np.load(path, mmap_mode="r")[:INFFS_ROWS]
    y = labels(path)[:INFFS_ROWS]
    rounds = max(1, ROUNDS - 1)  # each call is a GEMM of minutes at full size
    if case == "floor-gemm":
        run(benchmark, "inffs", case, lambda: _gemm(X), X.nbytes, rounds=rounds, n=len(X))
    elif case == "floor-gemm-sort":
        run(benchmark, "inffs", case, lambda: _gemm_sort(X), X.nbytes, rounds=rounds, n=len(X))
    else:
        corr = case.split("-")[1]
        run(
            benchmark,
            "inffs",
            case,
            lambda: score(X, y, "inffs", backend="cpp", corr=corr).features,
            X.nbytes,
            rounds=rounds,
            n=len(X),
            corr=corr,
        )
        # accuracy against the float64 reference on a 1/10 subsample (the reference's own cost)
        sub = slice(0, max(2, len(X) // 10))
        ref = score(np.asarray(X[sub], np.float64), y[sub], "inffs", backend="numpy", corr=corr).features
        got = score(X[sub], y[sub], "inffs", backend="cpp", corr=corr).features
        err = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
        benchmark.extra_info["rel_err_vs_float64_on_tenth"] = err
        assert err < 1e-6


@pytest.mark.parametrize("case", ["floor-read", "cpp-ilfs"])
def test_ilfs(benchmark, case):
    from swnas.scoring import score

    path = data_path()
    X = in_memory(path)[:ILFS_ROWS]
    y = labels(path)[:ILFS_ROWS]
    if case == "floor-read":
        run(benchmark, "ilfs", case, lambda: floor_reads(X, 1), X.nbytes, n=len(X))
    else:
        run(benchmark, "ilfs", case, lambda: score(X, y, "ilfs", backend="cpp").features, X.nbytes, rounds=1, n=len(X))


# ----------------------------------------------------------------------------------------------
# streaming and Dask against the in-memory cpp score


def _stream(path: Path, rows: int) -> np.ndarray:
    from swnas.scoring.streaming import StreamingScorer

    X = np.load(path, mmap_mode="r")
    y = labels(path)
    acc = StreamingScorer("pls", n_classes=CLASSES, n_components=A)
    for b in range(0, rows, CHUNK):
        e = min(rows, b + CHUNK)
        # a copy of the chunk (as a reader would hand it over): torch warns on read-only mmap views
        acc.update(np.array(X[b:e]), y[b:e])
    return acc.result().features


def _chunks(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``score_pls_chunks`` over 64 k-row blocks of X (one memory map, opened once like the
    ``cpp-mmap-warm`` case's: a fresh map per call would fault every page in again)."""
    from swnas.scoring.chunked import score_pls_chunks

    blocks = [X[b : b + CHUNK] for b in range(0, len(X), CHUNK)]
    return score_pls_chunks(blocks, y, n_components=A).features


def _dask(path: Path, naive: bool = False) -> np.ndarray:
    import dask
    import dask.array as da

    from swnas.scoring import score
    from swnas.scoring.dask import from_npy

    if naive:  # what the Dask documentation's first example does: hashes and copies the file
        X = da.from_array(np.load(path, mmap_mode="r"), chunks=(CHUNK, P))
    else:
        X = from_npy(path, chunk_rows=CHUNK)
    with dask.config.set(scheduler="threads"):
        return score(X, labels(path), criterion="pls", n_components=A).features


@pytest.mark.parametrize("case", ["cpp-mem", "streaming-mmap", "chunks-mmap"])
def test_streaming(benchmark, case):
    path = data_path()
    if case != "cpp-mem":
        # the file's pages, not an in-memory copy beside them (at full size the two do not fit
        # 24 GiB, and the page cache would lose the file: the chunks would come from disk)
        _MEM.clear()
        X = np.load(path, mmap_mode="r")[:STREAM_ROWS]
    else:
        X = in_memory(path)[:STREAM_ROWS]
    if case == "cpp-mem":
        y = labels(path)[:STREAM_ROWS]
        run(benchmark, "streaming", case, lambda: cpp_pls(X, y), X.nbytes, n=len(X))
    elif case == "chunks-mmap":
        y = labels(path)[:STREAM_ROWS]
        vip = run(benchmark, "streaming", case, lambda: _chunks(X, y), X.nbytes, n=len(X), chunk_rows=CHUNK)
        diff = float(np.max(np.abs(vip - cpp_pls(X, labels(path)[:STREAM_ROWS]))))
        benchmark.extra_info["max_abs_vip_diff_vs_cpp"] = diff
        assert diff < 1e-9
    else:
        vip = run(
            benchmark,
            "streaming",
            case,
            lambda: _stream(path, STREAM_ROWS),
            X.nbytes,
            rounds=1,
            n=len(X),
            chunk_rows=CHUNK,
        )
        # the Gram form multiplies each float32 chunk in float32 (docs/scorers.md): recorded, and
        # held only to the ranking-level agreement (20,000 rows, 1,000 classes: 6e-5)
        diff = float(np.max(np.abs(vip - cpp_pls(X, labels(path)[:STREAM_ROWS]))))
        benchmark.extra_info["max_abs_vip_diff_vs_cpp"] = diff
        assert diff < 1e-3


@pytest.mark.parametrize("case", ["cpp-mem", "dask-mmap", "dask-from-array"])
def test_dask(benchmark, case):
    pytest.importorskip("dask.array")
    path = data_path()
    if case == "cpp-mem":
        X = in_memory(path)
        run(benchmark, "dask", case, lambda: cpp_pls(X, labels(path)), X.nbytes, n=len(X))
    else:
        _MEM.clear()
        x_bytes = ROWS * P * 4
        naive = case == "dask-from-array"
        vip = run(
            benchmark,
            "dask",
            case,
            lambda: _dask(path, naive),
            x_bytes,
            chunk_rows=CHUNK,
            n=ROWS,
            **({"rounds": 1} if naive else {}),
        )
        _check_planted(benchmark, vip, path)
        diff = float(np.max(np.abs(vip - cpp_pls(np.load(path, mmap_mode="r"), labels(path)))))
        benchmark.extra_info["max_abs_vip_diff_vs_cpp"] = diff
        assert diff < 1e-9


# ----------------------------------------------------------------------------------------------
# summary of a --benchmark-json file


def summarise(path: str) -> str:
    """Markdown table of a ``--benchmark-json`` file: median, cold call, ratio to the group's floor."""
    import json

    data = json.loads(Path(path).read_text())
    groups: dict[str, list[dict]] = {}
    for b in data["benchmarks"]:
        groups.setdefault(b["group"] or "", []).append(b)
    lines = [
        "| group | method | rows | median (s) | min (s) | cold first call (s) | / floor or base (median) "
        "| peak extra (MiB, % of X) | load |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for g, bs in groups.items():
        med = {b["extra_info"]["method"]: b["stats"]["median"] for b in bs}
        for b in bs:
            m, s, e = b["extra_info"]["method"], b["stats"], b["extra_info"]
            base = {
                "pls": f"floor-{g[4:]}",
                "inffs": "floor-gemm-sort" if "spearman" in m else "floor-gemm",
                "ilfs": "floor-read",
                "streaming": "cpp-mem",
                "dask": "cpp-mem",
            }.get(g.split("-")[0], "")
            ratio = f"{s['median'] / med[base]:.2f}" if base in med and base != m else "-"
            lines.append(
                f"| {g} | {m} | {e.get('n', '-')} | {s['median']:.3f} | {s['min']:.3f} | {e['cold_s']:.3f} "
                f"| {ratio} | {e['peak_extra_mib']:.0f} ({100 * e['peak_extra_fraction_of_x']:.2f}%) "
                f"| {e['load_avg_1min']:.1f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "--summarise":
        print(summarise(sys.argv[2]))
    else:
        sys.exit("usage: bench_scale.py --summarise RESULTS.json")
