#!/usr/bin/env bash
# One prepared GPU session for the PLS-VIP CUDA backend: build for sm_90, GPU tests, GPU benchmarks.
#
# For a machine with an NVIDIA H100/H200, no internet, Python 3.12 with torch, cupy, pybind11,
# scikit-build-core (and cmake) and pytest-benchmark installed. Run from anywhere:
#     OUT=/path/to/out bash benchmarks/device_check.sh
# Everything is tee'd into $OUT/device_check.log; also $OUT/pip_install.log, $OUT/gpu_tests_pls.xml,
# $OUT/bench_gpu.json and $OUT/bench_gpu.md (the summary table: cuda vs cpp, and vs the floor of
# 1 + 2A device reductions of X). Needs nothing outside the repository. Takes about 4-6 minutes.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$REPO/device-out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
exec > >(tee -a "$OUT/device_check.log") 2>&1
PY=${PYTHON:-python}
T0=$(date +%s)
step() { echo; echo "=== [$(( $(date +%s) - T0 )) s] $*"; }
status=0

step "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
"$PY" -V
for tool in nvcc cmake ninja; do printf '%s: ' "$tool"; command -v "$tool" || echo "not found"; done
nvcc --version 2>/dev/null | tail -1 || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())" || true
"$PY" -c "import cupy; print('cupy', cupy.__version__)" || echo "cupy: not importable"

step "build and install (SWNAS_CUDA_ARCH=${SWNAS_CUDA_ARCH:-90})"
export SWNAS_CUDA_ARCH=${SWNAS_CUDA_ARCH:-90}
cd "$REPO"
if ! timeout 420 "$PY" -m pip install --no-build-isolation --no-deps -v . >"$OUT/pip_install.log" 2>&1; then
  tail -80 "$OUT/pip_install.log"
  echo "BUILD FAILED: nothing else can run"
  exit 1
fi
grep -E "swnas: |Successfully installed" "$OUT/pip_install.log" || true

# From here on run outside the repository, so that `import swnas` is the installed package (with
# its compiled modules) and not the source tree.
cd "$OUT"

step "import and smoke check"
timeout 120 "$PY" - <<'EOF' || status=1
import numpy as np
import swnas
import swnas.scoring as S
print("swnas from", swnas.__file__)
print("available backends:", S.available_backends())
for b in ("cpp", "cuda", "cupy", "numba"):
    print(f"  {b}: {S.backend_status(b)}")
from swnas import _cuda
print("device:", _cuda.device_name(0))
rng = np.random.default_rng(0)
X = (rng.standard_normal((5000, 300)) + 100).astype(np.float32)
y = rng.integers(0, 7, 5000)
X[:, 5] += y
ref = S.score(X, y, backend="numpy").features
for b in ("cpp", "cuda"):
    d = np.abs(S.score(X, y, backend=b).features - ref).max()
    print(f"  {b} vs numpy reference: max |dVIP| = {d:.3g}", "OK" if d < 1e-4 else "MISMATCH")
    assert d < 1e-4
import torch
Xt = torch.from_numpy(X).cuda()
d = np.abs(S.score(Xt, y, backend="auto").features - ref).max()
print(f"  cuda on a torch CUDA tensor (auto -> {S.score(Xt, y).backend}): max |dVIP| = {d:.3g}")
assert d < 1e-4
EOF

step "GPU tests: tests/test_pls_backends.py"
timeout 240 "$PY" -m pytest -m gpu "$REPO/tests/test_pls_backends.py" -p no:cacheprovider -q -rA \
  --junitxml="$OUT/gpu_tests_pls.xml" || { echo "PLS GPU TESTS FAILED"; status=1; }

step "GPU tests: every gpu-marked test in tests/"
timeout 150 "$PY" -m pytest -m gpu "$REPO/tests" -p no:cacheprovider -q -rfEs || { echo "SOME GPU TESTS FAILED (or timed out)"; status=1; }

step "GPU benchmarks (N=50,000 x p=2,048 and 8,192 float32, A=2)"
timeout 240 "$PY" -m pytest "$REPO/benchmarks/bench_pls.py" -m gpu -p no:cacheprovider -q \
  --benchmark-json="$OUT/bench_gpu.json" --benchmark-columns=min,median,max,rounds \
  || { echo "GPU BENCHMARKS FAILED"; status=1; }
if [ -s "$OUT/bench_gpu.json" ]; then
  "$PY" "$REPO/benchmarks/bench_pls.py" --summarise "$OUT/bench_gpu.json" | tee "$OUT/bench_gpu.md"
fi

step "done (status $status)"
sleep 1
exit $status
