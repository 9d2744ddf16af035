"""The streaming (Gram-form) accumulator equals the batch scorer, merges, and all-reduces."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import planted
from swnas.errors import InputError
from swnas.scoring import score
from swnas.scoring.streaming import StreamingScorer, supports_streaming


def _stream(X, y, c, chunk, **params):
    acc = StreamingScorer("pls", n_classes=c, **params)
    for i in range(0, X.shape[0], chunk):
        acc.update(X[i:i + chunk], y[i:i + chunk])
    return acc


@pytest.mark.parametrize("chunk", [1, 97, 1000])
@pytest.mark.parametrize("a", [1, 3])
def test_stream_equals_batch_float64(chunk, a):
    X, y = planted(900, 25, 4, seed=chunk + a)
    X[:, 5] = 0.1  # constant column
    ref = score(X, y, backend="numpy", n_components=a).features
    got = _stream(X, y, 4, chunk, n_components=a).result()
    np.testing.assert_allclose(got.features, ref, atol=1e-9, rtol=0)
    assert got.features[5] == 0.0
    assert got.stage == pytest.approx(ref.mean(), abs=1e-9)


def test_stream_large_mean_float32_does_not_cancel():
    # post-ReLU/pixel-like features: mean 1000x their spread
    X, y = planted(4000, 30, 5, seed=3, mean=1000.0, dtype=np.float32)
    ref = score(X.astype(np.float64), y, backend="numpy").features
    got = _stream(X, y, 5, 512).result().features
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)


def test_merge_with_different_shifts_and_torch_chunks():
    X, y = planted(1200, 18, 3, seed=8, mean=50.0)
    ref = score(X, y, backend="numpy").features
    a = _stream(X[:400], y[:400], 3, 128)
    b = StreamingScorer("pls", n_classes=3)
    b.update(torch.from_numpy(X[400:] + 0.0), torch.from_numpy(y[400:]))
    merged = a.merge(b)
    assert merged.n == 1200
    np.testing.assert_allclose(merged.result().features, ref, atol=1e-9)


def test_unscaled_and_class_absent_from_some_chunks():
    X, y = planted(600, 12, 3, seed=2)
    order = np.argsort(y, kind="stable")  # chunks that hold one class each
    Xs, ys = X[order], y[order]
    ref = score(X, y, backend="numpy", scale=False).features
    np.testing.assert_allclose(_stream(Xs, ys, 3, 50, scale=False).result().features, ref, atol=1e-9)


def test_errors():
    acc = StreamingScorer("pls", n_classes=3)
    with pytest.raises(InputError, match="no rows"):
        acc.result()
    with pytest.raises(InputError, match="labels must lie in 0..2"):
        acc.update(np.zeros((4, 3)), np.array([0, 1, 2, 3]))
    acc.update(np.random.default_rng(0).normal(size=(4, 3)), np.array([0, 1, 2, 0]))
    with pytest.raises(InputError, match="features"):
        acc.update(np.zeros((4, 5)), np.array([0, 1, 2, 0]))
    with pytest.raises(InputError, match="4 labels"):
        acc.update(np.zeros((4, 3)), np.array([0, 1]))
    bad = StreamingScorer("pls", n_classes=2)
    bad.update(np.array([[1.0, np.nan], [2.0, 1.0], [0.5, 0.2]]), np.array([0, 1, 0]))
    with pytest.raises(InputError, match="NaN or Inf"):
        bad.result()
    with pytest.raises(InputError, match="criterion"):
        StreamingScorer("ilfs", n_classes=2)
    with pytest.raises(InputError, match="n_classes"):
        StreamingScorer("pls", n_classes=1)
    assert supports_streaming("pls") and not supports_streaming("ilfs")
    assert supports_streaming("inffs", corr="pearson") and not supports_streaming("inffs")


def _ddp_worker(rank, world, port, X, y, out):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        shard = slice(rank, None, world)
        acc = StreamingScorer("pls", n_classes=4)
        for i in range(0, X[shard].shape[0], 64):
            acc.update(X[shard][i:i + 64], y[shard][i:i + 64])
        acc.all_reduce()
        out[rank] = torch.from_numpy(acc.result().features)
    finally:
        dist.destroy_process_group()


def test_all_reduce_across_two_gloo_processes():
    import socket

    import torch.multiprocessing as mp

    X, y = planted(500, 10, 4, seed=6, mean=20.0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_ddp_worker, args=(2, port, X, y, out), nprocs=2, join=True)
    ref = score(X, y, backend="numpy").features
    for r in range(2):
        np.testing.assert_allclose(out[r].numpy(), ref, atol=1e-9)
