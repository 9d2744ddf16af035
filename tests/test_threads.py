"""The one-BLAS-thread guard around the PLS algebra (swnas/scoring/_threads.py)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController, threadpool_info

from conftest import planted
from swnas.scoring import score
from swnas.scoring._threads import blas_single_thread


def _blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def _in_thread(fn) -> None:
    t = threading.Thread(target=fn)
    t.start()
    t.join()


@pytest.fixture(autouse=True)
def two_blas_threads():
    """Start every test at 2 BLAS threads: at 1 (OMP_NUM_THREADS=1, a 1-core CI machine) a guard that
    limits nothing would pass every check here. Set and restored from a helper thread: OpenBLAS
    ignores a later change from any other thread once the main thread has set a count (measured
    with the scipy-openblas builds; swnas/scoring/_threads.py describes the same rule)."""
    limiter = []
    _in_thread(lambda: limiter.append(ThreadpoolController().limit(limits=2, user_api="blas")))
    counts = _blas_threads()
    assert counts and all(n == 2 for n in counts), counts
    yield
    _in_thread(limiter[0].restore_original_limits)


def test_limits_blas_inside_and_restores_after_nesting():
    before = _blas_threads()
    with blas_single_thread():
        with blas_single_thread():
            assert all(n == 1 for n in _blas_threads())
        assert all(n == 1 for n in _blas_threads())  # the outer block still holds
    assert _blas_threads() == before


def test_concurrent_blocks_restore_the_original_count():
    before = _blas_threads()
    inside = threading.Barrier(3)
    seen: list[list[int]] = []

    def work() -> None:
        with blas_single_thread():
            inside.wait()
            seen.append(_blas_threads())
            inside.wait()

    ts = [threading.Thread(target=work) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(seen) == 3 and all(all(n == 1 for n in s) for s in seen)  # all inside: the first one's limit
    assert _blas_threads() == before
    with blas_single_thread():  # and a later block can limit again
        assert all(n == 1 for n in _blas_threads())
    assert _blas_threads() == before


def test_restored_after_an_error():
    before = _blas_threads()
    with pytest.raises(RuntimeError):
        with blas_single_thread():
            raise RuntimeError("boom")
    assert _blas_threads() == before


@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_pls_scoring_leaves_blas_threads_as_they_were(backend):
    before = _blas_threads()
    X, y = planted(300, 20, 3, seed=1)
    got = score(X.astype(np.float32), y, criterion="pls", backend=backend).features
    ref = score(X.astype(np.float32), y, criterion="pls", backend="numpy").features
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
    assert _blas_threads() == before
