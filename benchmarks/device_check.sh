#!/usr/bin/env bash
# The one GPU session that proves the GPU half: build, GPU tests, sanitizers, scale, speed, training, a search.
#
# For an H100/H200 machine with 16 cores, no internet, python3 with torch, cupy, pybind11,
# scikit-build-core (and cmake) and pytest-benchmark. Before sending the checkout, pack the data it
# needs (the device has no ../shared):  python3 scripts/pack_cifar_subset.py   (-> device_data/, ~10 MB;
# ignored by git, so name it in the run's carry list). Then:
#     OUT=/path/to/out bash benchmarks/device_check.sh          (OUT defaults to ./device-out)
# Every step has its own timeout; they sum to 540 s (see the budget at the end of this file). Each step's result goes to $OUT/steps.tsv, its
# output to $OUT/<step>.log, its figures to $OUT/<step>.json; $OUT/summary.md gathers them all in a
# form ready to paste into benchmarks/RESULTS.md. DRY_RUN=1 prints the steps without running them.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$REPO/device-out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python3}
CHECK="$REPO/benchmarks/device_check.py"
DATA="$OUT/data"
export SWNAS_CUDA_ARCH=${SWNAS_CUDA_ARCH:-90}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-16}
T0=$(date +%s)
: >"$OUT/steps.tsv"
failed=0

# run NAME LIMIT_S COMMAND...: one step, its own timeout, logged to $OUT/NAME.log, recorded in steps.tsv
run() {
  local name=$1 limit=$2
  shift 2
  echo "=== [$(($(date +%s) - T0)) s] $name (limit ${limit} s): $*"
  if [ -n "${DRY_RUN:-}" ]; then
    printf '%s\tdry-run\t0\t%s\n' "$name" "$limit" >>"$OUT/steps.tsv"
    return 0
  fi
  local t=$(date +%s) rc
  timeout --kill-after=5 "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  tail -25 "$OUT/$name.log"
  local result=pass
  [ $rc -eq 124 ] && result=timeout
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && result="fail (rc $rc)"
  [ $rc -ne 0 ] && failed=1
  printf '%s\t%s\t%s\t%s\n' "$name" "$result" "$(($(date +%s) - t))" "$limit" >>"$OUT/steps.tsv"
  return $rc
}

# --- 1. environment (10 s) -------------------------------------------------------------------------
export PY
timeout 10 bash -c '{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -2
  "$PY" -V 2>&1
  nvcc --version 2>/dev/null | tail -1
  command -v compute-sanitizer || echo "compute-sanitizer: not found"
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1
  "$PY" -c "import cupy; print('cupy', cupy.__version__)" 2>&1 | tail -1
  nproc
}' >"$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"

# --- 2. offline build for sm_90, warnings printed (155 s) ------------------------------------------
cd "$REPO"
if ! run build 155 "$PY" -m pip install --no-build-isolation --no-deps -v .; then
  echo "BUILD FAILED: nothing else can run"
  "$PY" "$CHECK" summary "$OUT"
  exit 1
fi
echo "--- build warnings (compiler lines mentioning 'warning'):"
grep -iE "warning" "$OUT/build.log" | grep -vE "^\s*$|CMake Warning \(dev\)" | head -40 || echo "(none)"
cd "$OUT"  # from here on `import swnas` is the installed package with its compiled modules

# --- 3. data for the training and search steps (10 s) ----------------------------------------------
PACKED="$REPO/device_data/cifar10-subset.npz"
if [ -f "$PACKED" ]; then
  run unpack 10 "$PY" "$REPO/scripts/pack_cifar_subset.py" --unpack "$PACKED" "$DATA"
else
  echo "no $PACKED: run scripts/pack_cifar_subset.py before sending the checkout; synthetic data instead"
fi

# --- 4. every gpu-marked test, once (50 s) ---------------------------------------------------------
run gpu_tests 50 "$PY" -m pytest -m gpu "$REPO/tests" -p no:cacheprovider -q -rfEs -x \
  --junitxml="$OUT/gpu_tests.xml"

# --- 5. compute-sanitizer on small calls of every kernel (memcheck 35 s, racecheck 25 s) -----------
if command -v compute-sanitizer >/dev/null; then
  run memcheck 35 compute-sanitizer --tool memcheck --error-exitcode 9 "$PY" "$CHECK" sanitize
  run racecheck 25 compute-sanitizer --tool racecheck --error-exitcode 9 "$PY" "$CHECK" sanitize
else
  printf 'sanitizers\tskipped (no compute-sanitizer)\t0\t60\n' >>"$OUT/steps.tsv"
fi

# --- 6. scale: N = 1.28M x p = 2,048 (n*p > 2^31) and C = 1,000 vs float64 torch references (75 s) -
run scale 75 "$PY" "$CHECK" scale "$OUT"

# --- 7. scorer speed: cuda, cupy vs cpp and the memory floor (50 s) --------------------------------
run bench 50 "$PY" "$CHECK" bench "$OUT"

# --- 8. training throughput: swnas trainer vs torchvision DataLoader, ResNet-56 (50 s) -------------
[ -f "$DATA/cifar10.npz" ] && export SWNAS_DATA_DIR="$DATA"
SWNAS_BENCH_STEPS=60 run train_bench 50 "$PY" -m pytest "$REPO/benchmarks/bench_train.py" -m gpu \
  -p no:cacheprovider -q -s --benchmark-json="$OUT/train_bench.json"
run train 3 "$PY" "$CHECK" train "$OUT" "$OUT/train_bench.json"

# --- 9. a mini search on real CIFAR-10 on the GPU: PLS and a second criterion side by side (60 s) --
SECOND=random
timeout 5 "$PY" -m swnas search --help 2>/dev/null | grep -q "random" || SECOND=ilfs
DATA_ARGS=(--dataset cifar10)
[ -f "$DATA/cifar10.npz" ] && DATA_ARGS+=(--data "$DATA/cifar10.npz")
for crit in pls "$SECOND"; do
  run "search_$crit" 30 "$PY" -m swnas search "${DATA_ARGS[@]}" --criterion "$crit" --m0 2 --iterations 2 \
    --subset 4000 --epochs 2 --batch-size 256 --device cuda --out "$OUT/search-$crit" --no-report --quiet
done
run search 3 "$PY" "$CHECK" search "$OUT" "$OUT/search-pls" "$OUT/search-$SECOND"

# --- 10. summary (5 s) -----------------------------------------------------------------------------
run summary 5 "$PY" "$CHECK" summary "$OUT"
cat "$OUT/summary.md" 2>/dev/null
echo "=== done in $(($(date +%s) - T0)) s (failed=$failed); summary: $OUT/summary.md"
exit $failed

# Time budget (s), every limit counted: environment 10, build 155, unpack 10, gpu_tests 50,
# memcheck 35, racecheck 25, scale 75, bench 50, train_bench 50, train 3, search --help 5,
# search_pls 30, search_<second> 30, search 3, summary 5 = 536 (at most 540).
