"""Write CIFAR-10 images, upscaled to 224 px, as an ImageFolder tree of JPEG files.

Used by ``benchmarks/bench_imagefolder.py`` to have ImageNet-sized files on disk when ImageNet is
not at hand::

    python scripts/make_jpeg_folder.py data/cifar10.npz /tmp/jpeg224 --train 10000 --val 1000

The tree is ``OUT/train/<class>/<k>.jpg`` and ``OUT/val/<class>/<k>.jpg`` with per-class balanced
picks (the first images of each class in the npz order). Writing is split over ``--threads``.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _pick(labels: np.ndarray, count: int) -> np.ndarray:
    per = -(-count // len(CLASSES))
    idx = np.concatenate([np.flatnonzero(labels == c)[:per] for c in range(len(CLASSES))])
    return np.sort(idx)[:count] if len(idx) > count else idx


def write_split(images: np.ndarray, labels: np.ndarray, out: Path, size: int, quality: int, threads: int) -> int:
    """Write ``images`` (uint8 NHWC) upscaled to ``size`` under ``out/<class>/``; returns bytes written."""
    from PIL import Image

    for c in CLASSES:
        (out / c).mkdir(parents=True, exist_ok=True)

    def one(k: int) -> int:
        path = out / CLASSES[int(labels[k])] / f"{k:05d}.jpg"
        Image.fromarray(images[k]).resize((size, size), Image.BICUBIC).save(path, quality=quality)
        return path.stat().st_size

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return int(sum(pool.map(one, range(len(images)))))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("npz", help="CIFAR-10 .npz (x_train, y_train, x_test, y_test)")
    p.add_argument("out", help="output directory (created)")
    p.add_argument("--train", type=int, default=10000, help="training images (default 10000)")
    p.add_argument("--val", type=int, default=1000, help="validation images (default 1000)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--quality", type=int, default=90)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    with np.load(a.npz, allow_pickle=False) as z:
        xtr, ytr, xte, yte = (z[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    ytr, yte = ytr.reshape(-1), yte.reshape(-1)
    out = Path(a.out)
    total = 0
    for name, x, y, n in (("train", xtr, ytr, a.train), ("val", xte, yte, a.val)):
        idx = _pick(y, n)
        total += write_split(x[idx], y[idx], out / name, a.size, a.quality, a.threads)
        print(f"{name}: {len(idx)} images", file=sys.stderr)
    print(f"wrote {total / 1e6:.1f} MB of JPEG under {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
