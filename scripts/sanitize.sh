#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build of the compiled CPU core (`swnas._core`), and
# the C++-facing tests run against it (docs/testing.md "Sanitizer build").
#
# Usage: scripts/sanitize.sh [BUILD_DIR] [-- PYTEST_ARGS...]
#   PYTHON=/path/to/python (default: .venv/bin/python, else python3)
#
# The core is built with -fsanitize=address,undefined in BUILD_DIR (default build-asan) and
# installed into a throw-away copy of the tracked files, so the tree's own swnas/_core*.so is left
# alone. The Python interpreter is not instrumented, so the ASan runtime is preloaded (LD_PRELOAD)
# and leak detection is off (CPython keeps memory until exit by design). Any ASan report or UBSan
# error aborts the test process, so a clean exit status means no finding.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-asan
if [[ $# -gt 0 && $1 != "--" ]]; then build=$1; shift; fi
[[ ${1:-} == "--" ]] && shift
py=${PYTHON:-.venv/bin/python}
[[ -x $py ]] || py=$(command -v python3)
py="$(cd "$(dirname "$py")" && pwd)/$(basename "$py")"  # absolute, not resolved: a venv's python is a link
cxx=${CXX:-g++}

# the tests that call into _core (scorers, selectors, the NumPy bridge, threads)
tests=(tests/test_csrc.py tests/test_pls_backends.py tests/test_pls_reference.py
  tests/test_pls_many_classes.py tests/test_inffs.py tests/test_inffs_gram_tiles.py tests/test_ilfs.py
  tests/test_scoring_api.py tests/test_selection.py tests/test_labels.py tests/test_threads.py)
[[ $# -gt 0 ]] && tests=("$@")

san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_CXX_FLAGS="$san" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DPython_EXECUTABLE="$py" -Dpybind11_DIR="$("$py" -m pybind11 --cmakedir)" \
  -DSWNAS_DISABLE_CUDA=ON -DSWNAS_NATIVE=ON >/dev/null
cmake --build "$build" -j2

# a copy of the tracked files with the sanitized core in it
tree=$(realpath "$build")/tree
rm -rf "$tree" && mkdir -p "$tree"
git ls-files -z | xargs -0 cp --parents -t "$tree"
cp "$build"/_core*.so "$tree/swnas/"
ldd "$tree"/swnas/_core*.so | grep -q libasan || { echo "the sanitized _core does not link libasan" >&2; exit 1; }

asan=$("$cxx" -print-file-name=libasan.so)
ubsan=$("$cxx" -print-file-name=libubsan.so)
cd "$tree"
logs="$tree/sanitizer-logs"
mkdir -p "$logs"
echo "== sanitized _core: $(ls swnas/_core*.so); ${#tests[@]} test files"
# the reports go to files in $logs (printed below), since pytest would capture file descriptor 2 and
# lose it when the process aborts; --capture=sys leaves the fatal-error trace on the terminal
status=0
LD_PRELOAD="$asan $ubsan" \
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:symbolize=1:log_path=$logs/asan" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan" \
  OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" \
  "$py" -m pytest -q -p no:cacheprovider --capture=sys -m "not slow and not gpu" "${tests[@]}" || status=$?
if compgen -G "$logs/*" >/dev/null; then
  echo "== sanitizer reports ($logs):"
  cat "$logs"/*
  status=${status/#0/1}
fi
if [[ $status -ne 0 ]]; then
  echo "sanitizer run: FAILED (exit status $status)" >&2
  exit "$status"
fi
echo "sanitizer run: clean (the tests passed, no report)"
