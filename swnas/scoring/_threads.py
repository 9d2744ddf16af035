"""One BLAS thread for the small float64 algebra that runs between compiled passes over X.

The PLS-VIP backends alternate OpenMP (or numba) passes over X with a few tiny BLAS products on
p x C matrices. With a multi-threaded BLAS those products wake its thread pool, whose threads keep
spinning for a while afterwards and take the cores from the next pass's threads: on the 2-core
reference machine this cost a quarter of a 50,000 x 2,048 PLS-VIP (benchmarks/RESULTS.md). The
products are far too small to gain from threads, so the algebra runs with the BLAS limited to one
thread. The limit is process-wide while it holds (threadpoolctl), and is restored on exit.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["blas_single_thread"]

_lock = threading.Lock()
_controller: Any = None
_owner: threading.Thread | None = None  # the thread whose block set the limit that holds now


def _get_controller() -> Any:
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


@contextlib.contextmanager
def blas_single_thread() -> Iterator[None]:
    """Limit the BLAS libraries loaded so far to one thread inside the block.

    The first block to enter sets the limit and restores the previous thread counts when it leaves,
    in its own thread (threadpoolctl lets only the thread that set an OpenBLAS limit change it).
    Blocks entered while a limit holds (nested ones, or other threads') add nothing: a thread still
    inside when the owner leaves runs the rest of its algebra without the limit, which costs speed,
    never results.
    """
    global _owner
    limiter = None
    with _lock:
        if _owner is None:
            _owner = threading.current_thread()
            limiter = _get_controller().limit(limits=1, user_api="blas")
            limiter.__enter__()
    try:
        yield
    finally:
        if limiter is not None:
            with _lock:
                limiter.__exit__(None, None, None)
                _owner = None
