"""DDP on the CPU: two Gloo processes train like one process with the same global batch.

The model has no BatchNorm (per-rank batch statistics would make the two runs differ by design)
and no dropout, so the only difference between 2 ranks x batch B/2 and 1 process x batch B is the
order of floating-point summation in the averaged gradient: weights agree to 1e-5 (float32), and
the two ranks end with bit-identical weights (DDP all-reduces the same gradient into both).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import torch
import torch.multiprocessing as mp
import torch.nn as nn

from swnas.training import distributed as D
from swnas.data import Dataset, channel_stats
from swnas.training.trainer import CHECKPOINT_NAME, load_checkpoint, train

EPOCHS, BATCH, LR, SEED = 2, 16, 0.05, 3


def _data() -> Dataset:
    rng = np.random.default_rng(0)
    y = np.arange(64) % 4
    x = rng.integers(0, 120, (64, 8, 8, 1)).astype(np.int64)
    for c in range(4):
        r, q = divmod(c, 2)
        x[y == c, r * 4 : r * 4 + 4, q * 4 : q * 4 + 4] += 120
    x = x.clip(0, 255).astype(np.uint8)
    mean, std = channel_stats(x)
    return Dataset("synthetic", x, y, x[:16], y[:16], 4, 8, 1, mean, std)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6 * 16, 4))


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    assert D.init_from_env() and D.world_size() == world and D.rank() == rank
    assert D.is_main() == (rank == 0)
    t = torch.tensor([float(rank + 1)])
    assert float(D.all_reduce_sum(t)) == sum(range(1, world + 1))
    model = _model()
    res = train(
        model,
        _data(),
        epochs=EPOCHS,
        batch_size=BATCH,
        lr=LR,
        seed=SEED,
        device="cpu",
        progress=False,
        checkpoint_dir=Path(out) / "ck",
    )
    torch.save(
        {
            "state": model.state_dict(),
            "loss": [h["loss"] for h in res.history],
            "top1": res.top1,
            "world": res.world_size,
        },
        Path(out) / f"rank{rank}.pt",
    )
    D.barrier()
    D.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_single_process_helpers_are_no_ops(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert D.init_from_env() is False
    assert (D.rank(), D.world_size(), D.is_main(), D.local_rank()) == (0, 1, True, 0)
    t = torch.tensor([2.0])
    assert float(D.all_reduce_mean(D.all_reduce_sum(t))) == 2.0
    assert D.broadcast_object({"a": 1}) == {"a": 1}
    D.barrier()
    assert D.device_for_rank("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_two_gloo_ranks_match_single_process_with_same_global_batch(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["world"] == 2
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k  # ranks stay in lock-step
    assert r0["loss"] == r1["loss"]  # epoch statistics are all-reduced

    single = _model()
    res = train(single, _data(), epochs=EPOCHS, batch_size=BATCH, lr=LR, seed=SEED, device="cpu", progress=False)
    moved = 0.0
    for k, v in single.state_dict().items():
        torch.testing.assert_close(r0["state"][k], v, rtol=0, atol=1e-5)
        moved = max(moved, float((v - _model().state_dict()[k]).abs().max()))
    assert moved > 1e-2  # training did change the weights, so the comparison means something
    np.testing.assert_allclose(r0["loss"], [h["loss"] for h in res.history], rtol=1e-5)
    # rank 0 wrote the checkpoint; it holds the same weights
    ck = load_checkpoint(tmp_path / "ck" / CHECKPOINT_NAME)
    assert ck["epoch"] == EPOCHS
    for k, v in ck["model"].items():
        assert torch.equal(v, r0["state"][k])
