"""One epoch over a folder of 224 px JPEGs: swnas streaming against torchvision ImageFolder + DataLoader.

Both sides use the same transforms (training: random resized crop to 224 + horizontal flip;
evaluation: resize to 256 + centre crop 224), the same batch and the same number of worker
processes. torchvision is measured twice: with ``PILToTensor`` (uint8 batches, like swnas) and
with the usual ``ToTensor + Normalize`` (float32 batches). Every loader runs in a fresh process;
the peak memory is that of the whole process tree (main + workers), sampled every 20 ms from
/proc (sum of RSS, and sum of PSS, which counts shared pages once).

Needs a folder made by ``scripts/make_jpeg_folder.py`` (``SWNAS_JPEG_DIR``, default
``/tmp/swnas-jpeg224``); without it the benchmark is skipped. Run it with::

    scripts/bench_imagefolder.sh            # makes the folder when missing, then this file
    python benchmarks/bench_imagefolder.py DIR --workers 2 --batch 256 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

LOADERS = ("swnas", "torchvision-uint8", "torchvision-float")
DEFAULT_DIR = os.environ.get("SWNAS_JPEG_DIR", "/tmp/swnas-jpeg224")


# ------------------------------------------------------------------------------ memory of a process tree


def _tree(pid: int) -> list[int]:
    out = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                for child in fh.read().split():
                    out += _tree(int(child))
    except OSError:
        pass
    return out


def _rss_pss(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, pss


class TreeMemory:
    """Samples the summed RSS and PSS of this process and its descendants in a thread."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.peak_rss = self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = pss = 0
            for pid in _tree(os.getpid()):
                r, p = _rss_pss(pid)
                rss, pss = rss + r, pss + p
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# ------------------------------------------------------------------------------ the loaders


def _torchvision_loader(root: Path, train: bool, batch: int, workers: int, as_float: bool, size: int):
    import torch
    from torchvision import datasets, transforms as T

    if train:
        ops = [T.RandomResizedCrop(size), T.RandomHorizontalFlip()]
    else:
        ops = [T.Resize(round(size * 256 / 224)), T.CenterCrop(size)]
    ops += [T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))] if as_float else [T.PILToTensor()]
    ds = datasets.ImageFolder(str(root / ("train" if train else "val")), transform=T.Compose(ops))
    return ds, torch.utils.data.DataLoader(
        ds,
        batch_size=batch,
        shuffle=train,
        drop_last=train,
        num_workers=workers,
        prefetch_factor=2 if workers else None,
    )


def _swnas_loader(root: Path, train: bool, batch: int, workers: int, size: int):
    from swnas.data.decode import DiskBatches
    from swnas.data.folder import open_imagefolder

    ds = open_imagefolder(root, input_size=size)
    split = ds.train if train else ds.test
    return ds, DiskBatches(split, input_size=size, batch_size=batch, train=train, workers=workers).epoch(0)


def measure(loader: str, root: Path, *, train: bool, batch: int, workers: int, size: int = 224) -> dict:
    """Open the folder, then read one epoch with ``loader``.

    ``open_seconds`` covers imports, indexing and (swnas) the channel statistics; ``epoch_seconds``
    and ``images_per_second`` cover the epoch alone; the peak memory covers both.
    """
    with TreeMemory() as mem:
        t0 = time.perf_counter()
        if loader == "swnas":
            _, it = _swnas_loader(root, train, batch, workers, size)
        else:
            _, it = _torchvision_loader(root, train, batch, workers, loader.endswith("float"), size)
        t_open = time.perf_counter() - t0
        images = 0
        for _x, y in it:
            images += len(y)
        seconds = time.perf_counter() - t0 - t_open
    return {
        "loader": loader,
        "split": "train" if train else "eval",
        "workers": workers,
        "batch": batch,
        "images": images,
        "open_seconds": t_open,
        "epoch_seconds": seconds,
        "images_per_second": images / seconds,
        "load_average": os.getloadavg()[0],
        "peak_tree_rss_mb": mem.peak_rss / 2**20,
        "peak_tree_pss_mb": mem.peak_pss / 2**20,
    }


def _run_isolated(loader: str, root: Path, train: bool, batch: int, workers: int) -> dict:
    cmd = [sys.executable, __file__, str(root), "--one", loader, "--batch", str(batch), "--workers", str(workers)]
    if not train:
        cmd.append("--eval")
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]),
    )
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(root: Path, *, batch: int, workers: int, repeats: int, train: bool) -> list[dict]:
    """Every loader ``repeats`` times, interleaved, each in a fresh process."""
    rows = []
    for r in range(repeats):
        order = LOADERS if r % 2 == 0 else tuple(reversed(LOADERS))
        for name in order:
            rows.append(_run_isolated(name, root, train, batch, workers) | {"repeat": r})
    return rows


# ------------------------------------------------------------------------------ pytest-benchmark entry


def test_imagefolder_epoch(benchmark):
    import pytest

    root = Path(DEFAULT_DIR)
    if not (root / "train").is_dir():
        pytest.skip(f"no JPEG folder at {root}; make one with scripts/make_jpeg_folder.py (SWNAS_JPEG_DIR)")
    workers = min(4, os.cpu_count() or 1)
    rows = benchmark.pedantic(
        compare, args=(root,), kwargs=dict(batch=256, workers=workers, repeats=1, train=True), rounds=1, iterations=1
    )
    by = {r["loader"]: r for r in rows}
    benchmark.extra_info.update(
        {f"{k}_{m}": v[m] for k, v in by.items() for m in ("images_per_second", "peak_tree_pss_mb")}
    )
    assert by["swnas"]["images"] == by["torchvision-uint8"]["images"]
    assert by["swnas"]["peak_tree_pss_mb"] < 1536  # goal: under 1.5 GB for the whole process tree


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="swnas streaming vs torchvision ImageFolder, one epoch")
    p.add_argument("root", nargs="?", default=DEFAULT_DIR)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--eval", action="store_true", help="the evaluation transform over val/ instead of training")
    p.add_argument("--one", choices=LOADERS, help="(internal) measure one loader in this process")
    a = p.parse_args(argv)
    root = Path(a.root)
    if a.one:
        print(json.dumps(measure(a.one, root, train=not a.eval, batch=a.batch, workers=a.workers)))
        return 0
    for row in compare(root, batch=a.batch, workers=a.workers, repeats=a.repeats, train=not a.eval):
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
