#!/usr/bin/env bash
# Make >= 10,000 224 px JPEGs from CIFAR-10 (outside the repository) when missing, then compare one
# epoch of swnas streaming with torchvision ImageFolder + DataLoader (benchmarks/bench_imagefolder.py).
# Usage: scripts/bench_imagefolder.sh [CIFAR10.npz] [DIR] [WORKERS]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
npz="${1:-${SWNAS_DATA_DIR:-$here/data}/cifar10.npz}"
dir="${2:-${SWNAS_JPEG_DIR:-/tmp/swnas-jpeg224}}"
workers="${3:-$(nproc)}"
if [ ! -d "$dir/train" ]; then
    python "$here/scripts/make_jpeg_folder.py" "$npz" "$dir" --train 10000 --val 1000
fi
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" python "$here/benchmarks/bench_imagefolder.py" "$dir" \
    --workers "$workers" --repeats 2
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" python "$here/benchmarks/bench_imagefolder.py" "$dir" \
    --workers "$workers" --repeats 1 --eval
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
