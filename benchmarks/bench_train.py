"""Training throughput of the CIFAR ResNet-56: the swnas trainer vs a plain PyTorch pipeline.

Both train ``swnas.models.build(ArchSpec("basic", [9, 9, 9]))`` with Nesterov SGD (the paper
recipe) on CIFAR-sized images (the real CIFAR-10 when ``$SWNAS_DATA_DIR/cifar10.npz`` or
``data/cifar10.npz`` exists, else random uint8 images) for a fixed number of steps of
batch 128, after one warm-up step each; the reported rate is batch / median step time (robust to
other load on a shared machine):

- ``swnas``: :func:`swnas.training.trainer.train` -- uint8 data resident on the device, vectorised on-device
  crop + flip, channels_last and bf16 autocast on GPU (float32 NCHW on CPU), no DataLoader;
- ``baseline``: a ``torch.utils.data.Dataset`` over the same uint8 arrays with torchvision
  ``RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor + Normalize`` per image, a
  ``DataLoader`` (workers: 0 on CPU, 8 on GPU), float32 NCHW.

On a shared CPU the two separate tests measure different load windows; the fair CPU comparison
is ``test_cpu_interleaved_swnas_vs_baseline``, which alternates one swnas step and one baseline
step (same augmentation work, same process and threads) and reports the ratio of median step times.

Steps: ``SWNAS_BENCH_STEPS`` (default 3 on CPU, 60 on GPU). ``SWNAS_BENCH_COMPILE=1`` adds
torch.compile to the swnas GPU run. Each test stores ``images_per_second`` in extra_info; the GPU
swnas test also stores the estimated GPU-hours of the paper's full from-scratch search
(:func:`swnas.training.recipes.estimate_training_hours`).

Run: ``.venv/bin/pytest benchmarks/bench_train.py --benchmark-only -s``.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch
import torch.nn as nn

from swnas.data import Dataset, channel_stats, load_npz_arrays
from swnas.training.recipes import estimate_training_hours
from swnas.training.trainer import train

BATCH = 128


def _steps(dev: str) -> int:
    return int(os.environ.get("SWNAS_BENCH_STEPS", 3 if dev == "cpu" else 60))


def _images(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    from swnas.data.loaders import _default_cifar_candidates

    for cand in _default_cifar_candidates():
        if cand.is_file():
            a = load_npz_arrays(cand, ("x_train", "y_train"))
            return a["x_train"][:n], a["y_train"][:n].astype(np.int64), "cifar10"
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), (np.arange(n) % 10).astype(np.int64), "synthetic")


def _resnet56() -> nn.Module:
    models = pytest.importorskip("swnas.models")
    torch.manual_seed(0)
    return models.build(models.ArchSpec(module="basic", stages=[9, 9, 9]))


def _dataset(x: np.ndarray, y: np.ndarray) -> Dataset:
    mean, std = channel_stats(x)
    return Dataset("cifar10", x, y, x[:16], y[:16], 10, 32, 3, mean, std)


def _run_swnas(dev: str, steps: int) -> dict:
    # CPU: one step per epoch over BATCH images, so the trainer's own per-epoch timings are
    # per-step timings; the first is the warm-up and the median of the rest is reported.
    # GPU: two epochs of `steps` steps (the first is the warm-up, cuDNN autotuning, compilation),
    # the second epoch's rate is reported (no host sync inside an epoch).
    model = _resnet56()
    comp = os.environ.get("SWNAS_BENCH_COMPILE", "0") == "1" and dev == "cuda"
    kw = dict(recipe="paper", batch_size=BATCH, device=dev, progress=False, compile=comp)
    if dev == "cpu":
        x, y, source = _images(BATCH)
        res = train(model, _dataset(x, y), epochs=steps + 1, **kw)
        rate = BATCH / float(np.median([h["seconds"] for h in res.history[1:]]))
    else:
        x, y, source = _images(steps * BATCH)
        res = train(model, _dataset(x, y), epochs=2, **kw)
        rate = res.history[1]["images_per_second"]
    return {
        "images_per_second": rate,
        "steps": steps,
        "batch": BATCH,
        "data": source,
        "amp": "bf16" if dev == "cuda" else "none",
        "compile": comp,
        "device": torch.cuda.get_device_name() if dev == "cuda" else f"cpu x{torch.get_num_threads()} threads",
    }


class _UInt8Images(torch.utils.data.Dataset):
    """Per-image torchvision pipeline over uint8 NHWC arrays (what a CIFAR10 Dataset does)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, transform) -> None:
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.x[i])), int(self.y[i])


def _run_baseline(dev: str, steps: int) -> dict:
    from torchvision import transforms as T

    x, y, source = _images((steps + 1) * BATCH)
    mean, std = channel_stats(x)
    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])
    workers = 0 if dev == "cpu" else min(8, os.cpu_count() or 1)
    loader = torch.utils.data.DataLoader(
        _UInt8Images(x, y, tf),
        batch_size=BATCH,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=dev == "cuda",
        persistent_workers=workers > 0,
    )
    model = _resnet56().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()

    def sync() -> None:
        if dev == "cuda":
            torch.cuda.synchronize()

    def step(xb: torch.Tensor, yb: torch.Tensor) -> None:
        xb, yb = xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)
        loss = loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    it = iter(loader)
    step(*next(it))  # warm-up
    sync()
    if dev == "cpu":  # median step time (a step includes fetching its batch from the loader)
        times = []
        t0 = time.perf_counter()
        for xb, yb in it:
            step(xb, yb)
            t1 = time.perf_counter()
            times.append(t1 - t0)
            t0 = t1
        secs = float(np.median(times))
    else:  # the remaining steps as one stretch, synchronised at the end only
        t0 = time.perf_counter()
        n = 0
        for xb, yb in it:
            step(xb, yb)
            n += 1
        sync()
        secs = (time.perf_counter() - t0) / n
    return {
        "images_per_second": BATCH / secs,
        "steps": steps,
        "batch": BATCH,
        "data": source,
        "workers": workers,
        "device": torch.cuda.get_device_name() if dev == "cuda" else f"cpu x{torch.get_num_threads()} threads",
    }


def _baseline_stepper(x: np.ndarray, y: np.ndarray, dev: str):
    """A function doing one timed baseline step (fetch + forward + backward + update) per call."""
    from torchvision import transforms as T

    mean, std = channel_stats(x)
    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])
    loader = torch.utils.data.DataLoader(
        _UInt8Images(x, y, tf), batch_size=BATCH, shuffle=True, drop_last=True, num_workers=0
    )
    model = _resnet56().to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    state = {"it": iter(loader)}

    def step() -> float:
        t0 = time.perf_counter()
        try:
            xb, yb = next(state["it"])
        except StopIteration:
            state["it"] = iter(loader)
            xb, yb = next(state["it"])
        loss = loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    return step


def _run_interleaved(dev: str, steps: int) -> dict:
    """swnas and baseline steps alternated one for one in this process (CPU).

    The swnas trainer runs one step per epoch over ``BATCH`` images; after each of its epochs a
    callback runs one baseline step, so both paths see the same machine load, thread count and
    allocator state. The first step of each is a warm-up; rates are ``BATCH`` / median step time.
    """
    x, y, source = _images((steps + 1) * BATCH)
    base_step = _baseline_stepper(x, y, dev)
    base_times: list[float] = []
    res = train(
        _resnet56(),
        _dataset(x[:BATCH], y[:BATCH]),
        epochs=steps + 1,
        recipe="paper",
        batch_size=BATCH,
        device=dev,
        progress=False,
        callbacks=[lambda epoch, stats: base_times.append(base_step())],
    )
    sw = [h["seconds"] for h in res.history[1:]]
    base = base_times[1:]
    pairs = [b / s for s, b in zip(sw, base)]
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - platforms without getloadavg
        load = float("nan")
    return {
        "images_per_second": BATCH / float(np.median(sw)),
        "baseline_images_per_second": BATCH / float(np.median(base)),
        "ratio_of_medians": float(np.median(base) / np.median(sw)),
        "median_pair_ratio": float(np.median(pairs)),
        "steps": steps,
        "batch": BATCH,
        "data": source,
        "load_average_1min": load,
        "swnas_seconds": sw,
        "baseline_seconds": base,
        "device": f"cpu x{torch.get_num_threads()} threads",
    }


@pytest.mark.benchmark(group="train-resnet56-cpu")
def test_cpu_interleaved_swnas_vs_baseline(benchmark):
    """Step-for-step alternation of the two CPU paths (the fair comparison on a shared machine)."""
    steps = int(os.environ.get("SWNAS_BENCH_STEPS", 6))
    out: dict = {}
    benchmark.pedantic(lambda: out.update(_run_interleaved("cpu", steps)), rounds=1, iterations=1)
    benchmark.extra_info.update(out)
    print(
        f"\ninterleaved on {out['device']}, load {out['load_average_1min']:.1f}: swnas "
        f"{out['images_per_second']:.1f} img/s, baseline {out['baseline_images_per_second']:.1f} img/s, "
        f"swnas/baseline speed {out['ratio_of_medians']:.3f} (median of per-pair ratios "
        f"{out['median_pair_ratio']:.3f}), {steps} timed steps each"
    )


def _bench(benchmark, fn, dev: str) -> dict:
    steps = _steps(dev)
    out: dict = {}
    benchmark.pedantic(lambda: out.update(fn(dev, steps)), rounds=1, iterations=1)
    benchmark.extra_info.update(out)
    print(
        f"\n{fn.__name__[5:]} on {out['device']}: {out['images_per_second']:.1f} images/s "
        f"({out['steps']} steps of {BATCH}, {out['data']} data)"
    )
    return out


@pytest.mark.benchmark(group="train-resnet56-cpu")
def test_cpu_swnas_trainer(benchmark):
    _bench(benchmark, _run_swnas, "cpu")


@pytest.mark.benchmark(group="train-resnet56-cpu")
def test_cpu_torchvision_dataloader_baseline(benchmark):
    _bench(benchmark, _run_baseline, "cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.benchmark(group="train-resnet56-gpu")
def test_gpu_swnas_trainer(benchmark):
    out = _bench(benchmark, _run_swnas, "cuda")
    hours = estimate_training_hours(out["images_per_second"])
    benchmark.extra_info["paper_search_gpu_hours"] = hours
    print(
        f"paper's full from-scratch search (11 x 200 + 5 x 100 epochs of 50k images) at this rate: "
        f"{hours:.1f} GPU-hours"
    )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.benchmark(group="train-resnet56-gpu")
def test_gpu_torchvision_dataloader_baseline(benchmark):
    _bench(benchmark, _run_baseline, "cuda")
