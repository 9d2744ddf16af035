#!/usr/bin/env python3
"""Pack a small, class-balanced CIFAR-10 subset as JPEG so that it travels with a checkout (the device
machine has no data and no internet), and unpack it there into the ``cifar10.npz`` layout swnas reads.

    python3 scripts/pack_cifar_subset.py   # $SWNAS_DATA_DIR/cifar10.npz (or data/) -> device_data/cifar10-subset.npz
    python3 scripts/pack_cifar_subset.py --unpack device_data/cifar10-subset.npz OUT_DIR   # -> OUT_DIR/cifar10.npz

Defaults: 8,000 training images (800 per class: enough for 60 steps of batch 128 in the training
throughput check) and 1,000 test images, JPEG quality 90: about 12 MB. The packed file holds one
byte buffer of concatenated JPEGs, their offsets, the labels and the split sizes.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SRC = Path(os.environ.get("SWNAS_DATA_DIR", ROOT / "data")) / "cifar10.npz"
DEFAULT_DST = ROOT / "device_data" / "cifar10-subset.npz"


def balanced_indices(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """``per_class`` indices of each class (fewer if a class has fewer), in a fixed shuffled order."""
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return rng.permutation(np.concatenate(picks))


def encode(images: np.ndarray, quality: int) -> tuple[np.ndarray, np.ndarray]:
    """JPEG-encode uint8 NHWC images: (concatenated bytes, offsets of length N + 1)."""
    from PIL import Image

    blobs = []
    for im in images:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format="JPEG", quality=quality)
        blobs.append(buf.getvalue())
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    return np.frombuffer(b"".join(blobs), dtype=np.uint8), offsets


def decode(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    from PIL import Image

    raw = data.tobytes()
    return np.stack(
        [
            np.asarray(Image.open(io.BytesIO(raw[offsets[i] : offsets[i + 1]])).convert("RGB"))
            for i in range(len(offsets) - 1)
        ]
    )


def pack(src: Path, dst: Path, n_train: int, n_test: int, quality: int) -> Path:
    with np.load(src, allow_pickle=False) as z:
        xtr, ytr, xte, yte = (z[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    ytr, yte = ytr.reshape(-1), yte.reshape(-1)
    itr = balanced_indices(ytr, n_train // 10)
    ite = balanced_indices(yte, n_test // 10, seed=1)
    images = np.concatenate([xtr[itr], xte[ite]])
    data, offsets = encode(images, quality)
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        dst,
        jpeg=data,
        offsets=offsets,
        labels=np.concatenate([ytr[itr], yte[ite]]).astype(np.uint8),
        n_train=np.int64(len(itr)),
        n_test=np.int64(len(ite)),
    )
    return dst


def unpack(src: Path, out_dir: Path) -> Path:
    with np.load(src, allow_pickle=False) as z:
        images = decode(z["jpeg"], z["offsets"])
        labels, n_train = z["labels"], int(z["n_train"])
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir / "cifar10.npz"
    np.savez(dst, x_train=images[:n_train], y_train=labels[:n_train], x_test=images[n_train:], y_test=labels[n_train:])
    return dst


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC)
    ap.add_argument("--dst", type=Path, default=DEFAULT_DST)
    ap.add_argument("--train", type=int, default=8000)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--unpack", nargs=2, metavar=("PACKED", "OUT_DIR"), type=Path)
    a = ap.parse_args(argv)
    if a.unpack:
        dst = unpack(*a.unpack)
        print(f"unpacked {a.unpack[0]} -> {dst}")
        return 0
    if not a.src.is_file():
        print(f"no CIFAR-10 at {a.src}", file=sys.stderr)
        return 1
    dst = pack(a.src, a.dst, a.train, a.test, a.quality)
    print(f"packed {a.train} + {a.test} images -> {dst} ({dst.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
