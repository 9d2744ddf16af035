"""Streaming PLS-VIP at ImageNet size: rows made chunk by chunk, never stored (Gram form).

By default 1/5 of ImageNet-1k's 1,281,167 training rows (SWNAS_STREAM_ROWS overrides) of
p = 2,048 float32 features, 1,000 classes. Reports the time, the peak extra RSS, and the achieved
X'X-update rate against the machine's float32 GEMM rate measured in the same run.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch

from _memory import peak_since_reset, reset_peak
from swnas.scoring.streaming import StreamingScorer

P = 2048
CLASSES = 1000
CHUNK = 8192
ROWS = int(os.environ.get("SWNAS_STREAM_ROWS", 1_281_167 // 5))


def _gemm_rate(p: int, rows: int) -> float:
    """Achieved float32 FLOP/s of z'z for one chunk, best of 3 (the roof for the X'X update)."""
    z = torch.rand(rows, p)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        torch.mm(z.T, z)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * rows * p * p / best


@pytest.mark.benchmark(group="streaming-pls")
def test_stream_imagenet_slice(benchmark):
    gen = torch.Generator().manual_seed(0)
    buf = torch.empty(CHUNK, P)
    labels = torch.empty(CHUNK, dtype=torch.long)
    planted = torch.randn(CLASSES, 8, generator=gen) * 0.5

    def run():
        acc = StreamingScorer("pls", n_classes=CLASSES)
        made = 0
        gen_seconds = 0.0
        while made < ROWS:
            b = min(CHUNK, ROWS - made)
            t0 = time.perf_counter()
            x = buf[:b]
            torch.rand(b, P, generator=gen, out=x)  # post-ReLU-like: non-negative, mean 0.5
            y = labels[:b]
            torch.randint(0, CLASSES, (b,), generator=gen, out=y)
            x[:, :8] += planted[y]
            gen_seconds += time.perf_counter() - t0
            acc.update(x, y)
            made += b
        t0 = time.perf_counter()
        res = acc.result()
        return res, gen_seconds, time.perf_counter() - t0

    base = reset_peak()
    t0 = time.perf_counter()
    res, gen_s, solve_s = benchmark.pedantic(run, rounds=1, iterations=1)
    total = time.perf_counter() - t0
    peak_extra = peak_since_reset() - base
    rate = _gemm_rate(P, CHUNK)
    update_s = total - gen_s - solve_s
    achieved = 2.0 * ROWS * P * P / update_s
    benchmark.extra_info.update(
        rows=ROWS,
        p=P,
        classes=CLASSES,
        chunk=CHUNK,
        data_gb=ROWS * P * 4 / 1e9,
        seconds_total=total,
        seconds_generating=gen_s,
        seconds_updating=update_s,
        seconds_solving=solve_s,
        peak_extra_rss_mb=peak_extra / 2**20,
        gemm_gflops=rate / 1e9,
        achieved_update_gflops=achieved / 1e9,
        fraction_of_gemm_rate=achieved / rate,
        rows_per_second=ROWS / update_s,
        full_imagenet_seconds_estimate=update_s * 1_281_167 / ROWS + solve_s,
    )
    assert res.features.shape == (P,)
    assert np.isfinite(res.features).all()
    assert np.argsort(res.features)[-8:].tolist() and set(np.argsort(res.features)[-8:]) == set(range(8))
    assert peak_extra < 1 << 30  # goal: under 1 GB
