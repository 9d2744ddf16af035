"""PLS-VIP of a Dask array on a LocalCluster against the in-memory ``cpp`` score, in one run.

X: the first 2,048 of the 3,072 flattened (H, W, C) uint8 pixels of CIFAR-10's 50,000 training
images, as float32 0..255 (400 MB; SWNAS_CIFAR10 names the .npz, default
``$SWNAS_DATA_DIR/cifar10.npz`` or ``data/cifar10.npz``). It is written once to a .npy file that
the workers read by row chunks (5,000 rows each, ``swnas.scoring.dask.from_npy``), so X never
enters the client process during the Dask run. The cluster
is 2 worker processes with 1 thread each. Reported: equality with the in-memory ``cpp`` result,
the client's peak extra RSS during the Dask score (goal < 25% of X), and both times.

Run: ``pytest benchmarks/bench_dask.py -s`` (needs ``swnas[dask]`` and the CIFAR-10 file).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from _memory import peak_since_reset, reset_peak

CIFAR = Path(os.environ.get("SWNAS_CIFAR10") or Path(os.environ.get("SWNAS_DATA_DIR", "data")) / "cifar10.npz")
P = 2048
CHUNK = 5000


def _write_pixels(tmp: Path) -> tuple[Path, np.ndarray, int]:
    with np.load(CIFAR, allow_pickle=False) as z:
        x = z["x_train"]
        y = z["y_train"].astype(np.int64)
    X = x.reshape(x.shape[0], -1)[:, :P].astype(np.float32)
    path = tmp / "cifar_pixels.npy"
    np.save(path, X)
    n = X.shape[0]
    del X, x
    return path, y, n


def _median_time(fn, rounds: int = 3) -> tuple[float, object]:
    """Median wall time of ``rounds`` warm calls, and the last result."""
    times, out = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


@pytest.mark.skipif(not CIFAR.is_file(), reason=f"CIFAR-10 not found at {CIFAR}")
def test_dask_cifar_pixels_vs_in_memory(tmp_path):
    distributed = pytest.importorskip("distributed")
    from swnas.scoring import score
    from swnas.scoring.dask import from_npy

    path, y, n = _write_pixels(tmp_path)
    x_bytes = n * P * 4
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        import importlib

        client.run(importlib.import_module, "swnas.scoring.dask")  # warm-up: imports on every worker
        dX = from_npy(path, chunk_rows=CHUNK)
        score(dX[: 2 * CHUNK], y[: 2 * CHUNK])  # warm-up: first calls
        base = reset_peak()
        t0 = time.perf_counter()
        res_cold = score(dX, y)  # the workers read X from the file
        t_cold = time.perf_counter() - t0
        dX = client.persist(dX)  # X in the workers' memory, as X is in memory for the cpp score
        distributed.wait(dX)
        with distributed.get_task_stream(client) as ts:
            t_dask, res_dask = _median_time(lambda: score(dX, y))
        ts.data[:] = ts.data[: len(ts.data) // 3]  # the task compute time of one call
        client_peak = peak_since_reset() - base
        busy = sum(sum(s["stop"] - s["start"] for s in t["startstops"] if s["action"] == "compute") for t in ts.data)
    X = np.load(path)
    score(X[:CHUNK], y[:CHUNK], backend="cpp")
    t_mem, res_mem = _median_time(lambda: score(X, y, backend="cpp"))
    diff = float(np.max(np.abs(res_dask.features - res_mem.features)))
    assert np.array_equal(res_cold.features, res_dask.features)
    print(
        f"\nX: {n} x {P} float32 ({x_bytes / 2**20:.0f} MiB), chunks of {CHUNK} rows, "
        f"LocalCluster 2 workers x 1 thread; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"dask score, X read from the file by the workers (first call after a warm-up): {t_cold:.2f} s")
    print(
        f"dask score, X held by the workers, median of 3: {t_dask:.2f} s "
        f"({busy:.2f} s of task compute on the workers); "
        f"client peak extra RSS over both runs {client_peak / 2**20:.0f} MiB ({100 * client_peak / x_bytes:.1f}% of X)"
    )
    print(f"in-memory cpp score, median of 3: {t_mem:.2f} s; dask / cpp = {t_dask / t_mem:.2f}")
    print(f"max |VIP dask - VIP cpp| = {diff:.2e} (VIP max {res_mem.features.max():.3f})")
    assert diff < 1e-4
    assert client_peak < 0.25 * x_bytes
