"""Benchmark suite set-up (pyproject collects ``bench_*.py``).

Run e.g. ``.venv/bin/pytest benchmarks/bench_pls.py --benchmark-json=out.json``; GPU groups with
``-m gpu`` (skipped cleanly without a usable CUDA backend).
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:  # the bench files import their helpers (e.g. _memory) by name
    sys.path.insert(0, str(_HERE))
