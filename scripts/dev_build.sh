#!/usr/bin/env bash
# Developer build: compiles the extensions into swnas/ in place (for `pip install -e`-free work).
# Usage: scripts/dev_build.sh [BUILD_DIR]   (SWNAS_DISABLE_CUDA=1 skips the CUDA module)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-dev}
py=${PYTHON:-.venv/bin/python}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DPython_EXECUTABLE="$(realpath "$py")" \
  -Dpybind11_DIR="$($py -m pybind11 --cmakedir)" \
  -DSWNAS_DISABLE_CUDA="${SWNAS_DISABLE_CUDA:-OFF}" \
  -DCMAKE_INSTALL_PREFIX="$PWD" >/dev/null
cmake --build "$build" -j2
cmake --install "$build" >/dev/null
ls swnas/*.so
