#!/usr/bin/env bash
# The one prepared command for a lent GPU machine (H100/H200, 16 cores, no internet): proves the GPU
# half in at most 480 s or says what failed. Run from the checkout's root:
#     bash benchmarks/device_check.sh            # quick mode, steps sum to 480 s
#     bash benchmarks/device_check.sh --full     # adds racecheck and every criterion's speed, 590 s
#     bash benchmarks/device_check.sh --dry-run  # the steps and their limits, nothing run
# Results: $OUT (default ./device-out) gets summary.md, steps.tsv, scale.json, bench.json,
# search.json, gpu_tests.xml and logs.tgz only; the build and the logs live in $WORK
# (default /tmp/swnas-device-check). Nothing needs carrying: the checkout travels and the device
# image has torch, cupy, pytest, pybind11 and scikit-build-core. Exit status 0 only when every step
# passed. The steps, their limits and the rules are in benchmarks/device_check_driver.py.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null || { echo "device check: no $PY"; exit 1; }
export PYTHONUNBUFFERED=1
exec "$PY" "$HERE/device_check_driver.py" "$@"
