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
        acc.update(X[i : i + chunk], y[i : i + chunk])
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
    np.testing.assert_allclose(got, ref, atol=1e-6, rtol=0)  # measured 1.0e-7


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
            acc.update(X[shard][i : i + 64], y[shard][i : i + 64])
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


# ------------------------------------------------------------------ streaming inf-FS (Pearson)
def _stream_inffs(X, chunk, **params):
    acc = StreamingScorer("inffs", corr="pearson", **params)
    y = np.arange(X.shape[0]) % 2  # inf-FS ignores the labels; two classes keep the checks content
    for i in range(0, X.shape[0], chunk):
        acc.update(X[i : i + chunk], y[i : i + chunk])
    return acc.result()


@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("factor", [0.5, 0.9])
def test_stream_inffs_equals_in_memory_reference(alpha, factor):
    # columns with very different spreads: the std term (not the variance) drives sigma
    X, y = planted(700, 14, 3, seed=11, mean=30.0)
    X[:, 4] = 2.5  # a constant column
    ref = score(X, y, criterion="inffs", corr="pearson", backend="numpy", alpha=alpha, factor=factor).features
    got = _stream_inffs(X, 128, alpha=alpha, factor=factor)
    np.testing.assert_allclose(got.features, ref, atol=1e-9, rtol=0)
    assert got.params["alpha"] == alpha and got.params["factor"] == factor


def test_stream_inffs_uses_std_and_alpha():
    """Guards against a streamed inf-FS that squares the std or drops the user's alpha."""
    from swnas.scoring.inffs import inffs_from_stats

    X, y = planted(600, 12, 3, seed=12)
    n = X.shape[0]
    Z = X - X.mean(axis=0)
    var = (Z * Z).sum(axis=0) / (n - 1)
    corr = np.corrcoef(X, rowvar=False)
    got = _stream_inffs(X, 100, alpha=0.8).features
    with_var = inffs_from_stats(var, corr, alpha=0.8)
    np.testing.assert_allclose(got, inffs_from_stats(np.sqrt(var), corr, alpha=0.8), atol=1e-9)
    assert np.max(np.abs(got - with_var) / np.abs(got)) > 0.01
    default_alpha = _stream_inffs(X, 100).features
    assert np.max(np.abs(got - default_alpha) / np.abs(got)) > 0.01


def test_stream_inffs_float32_large_mean():
    X, _ = planted(3000, 10, 3, seed=13, mean=500.0, dtype=np.float32)
    ref = score(X.astype(np.float64), np.arange(3000) % 3, criterion="inffs", corr="pearson", backend="numpy").features
    np.testing.assert_allclose(_stream_inffs(X, 512).features, ref, rtol=0, atol=2e-6)  # measured 2.0e-7


# ------------------------------------------------------------------ labels, pickling, bad chunks
def test_any_labels_grow_and_merge_by_value():
    import pickle

    X, y = planted(800, 9, 4, seed=14)
    names = np.array(["ant", "bee", "cow", "dog"])
    ref = score(X, y, backend="numpy").features
    a = StreamingScorer("pls")
    for i in range(0, 400, 80):
        a.update(X[i : i + 80], names[y[i : i + 80]])
    # b meets the classes in another order; a pickled copy travels and is merged by label value
    b = StreamingScorer("pls")
    order = np.argsort(-y[400:], kind="stable") + 400
    for i in range(0, 400, 50):
        b.update(X[order[i : i + 50]], names[y[order[i : i + 50]]])
    assert b._classes.labels[0] == "dog" and b._classes.labels != a._classes.labels
    merged = pickle.loads(pickle.dumps(a)).merge(pickle.loads(pickle.dumps(b)))
    assert list(merged.classes) == list(names) and merged.n == 800
    np.testing.assert_allclose(merged.result().features, ref, atol=1e-9)


def test_fixed_classes_and_sparse_integer_labels():
    X, y = planted(300, 6, 3, seed=15)
    labels = np.array([-5, 10, 999])[y]
    ref = score(X, labels, backend="numpy").features
    acc = StreamingScorer("pls", classes=[999, -5, 10])
    acc.update(X[:150], labels[:150]).update(torch.from_numpy(X[150:]), torch.from_numpy(labels[150:]))
    np.testing.assert_allclose(acc.result().features, ref, atol=1e-9)
    assert list(acc.classes) == [-5, 10, 999]
    with pytest.raises(InputError, match="labels must lie in -5, 10, 999; got 7"):
        acc.update(X[:2], np.array([7, 10]))


def test_pickle_roundtrip_keeps_state_and_scores():
    import pickle

    X, y = planted(400, 7, 3, seed=16)
    acc = _stream(X[:200], y[:200], 3, 50)
    clone = pickle.loads(pickle.dumps(acc))
    for sc in (acc, clone):
        sc.update(X[200:], y[200:])
    np.testing.assert_array_equal(clone.result().features, acc.result().features)
    assert clone.criterion == "pls" and clone.n == 400


@pytest.mark.parametrize(
    "X, y, msg",
    [
        (np.array([[1, "a"], [2, "b"]], dtype=object), np.array([0, 1]), "X: dtype object is not a real number type"),
        (np.array([["1.0", "2.0"], ["3", "4"]]), np.array([0, 1]), "X: dtype <U3 is not a real number type"),
        (np.zeros(3), np.array([0, 1, 0]), "X: expected a 2-D matrix"),
        (np.zeros((2, 2)), np.array([0, "b"], dtype=object), "y: labels must all be integers or all be strings"),
        (np.zeros((2, 2)), np.array([0.5, 1.0]), "y: labels must be class labels"),
        (np.zeros((2, 2)), np.array([None, 1], dtype=object), "y: labels must not be missing"),
        (np.zeros((2, 2)), np.array([1, 0, 1]), "y: expected 2 labels"),
    ],
)
def test_bad_chunks_are_clear_errors(X, y, msg):
    with pytest.raises(InputError, match=msg):
        StreamingScorer("pls").update(X, y)


def test_labels_of_one_kind_across_chunks_and_all_reduce_needs_fixed_classes():
    acc = StreamingScorer("pls")
    acc.update(np.ones((2, 2)), np.array(["a", "b"]))
    with pytest.raises(InputError, match="all be integers or all be strings across chunks"):
        acc.update(np.ones((2, 2)), np.array([0, 1]))
    with pytest.raises(InputError, match="n_classes or classes, not both"):
        StreamingScorer("pls", n_classes=2, classes=["a", "b"])


def test_huge_finite_values_get_an_honest_message():
    """A later chunk far larger than the first (whose magnitude fixed the scale) cannot be rescaled."""
    X, y = planted(100, 4, 2, seed=17)
    acc = StreamingScorer("pls").update(X[:50], y[:50]).update(X[50:] * 1e200, y[50:])
    with pytest.raises(InputError, match="finite values so large that their squares overflow") as err:
        acc.result()
    assert "NaN" not in str(err.value)


@pytest.mark.parametrize("factor", [1e-300, 1e-160, 1e200], ids=["1e-300", "1e-160", "1e200"])
@pytest.mark.parametrize(
    "crit", [{"criterion": "pls"}, {"criterion": "inffs", "corr": "pearson"}], ids=["pls", "inffs"]
)
def test_float64_far_from_one_scores_like_the_unscaled_data(factor, crit):
    """Squares of such values underflow (scores silently wrong) or overflow: streamed as X * 2**k."""
    import pickle

    X, y = planted(600, 8, 3, seed=1)
    ref = score(X, y, backend="numpy", **crit).features
    acc = StreamingScorer(**crit)
    for i in range(0, 600, 200):
        acc.update(X[i : i + 200] * factor, y[i : i + 200])
    assert acc.log2_scale != 0
    np.testing.assert_allclose(acc.result().features, ref, atol=1e-9, rtol=0)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(acc)).result().features, ref, atol=1e-9, rtol=0)


def test_merge_of_accumulators_with_different_scales():
    X, y = planted(600, 8, 3, seed=2)
    Xs = np.vstack([X[:300] * 1e-300, X[300:] * 1e-290])
    ref = score(Xs, y, backend="numpy").features  # score() rescales the whole matrix at once
    a = StreamingScorer("pls").update(Xs[:300], y[:300])
    b = StreamingScorer("pls").update(Xs[300:], y[300:])
    assert a.log2_scale != b.log2_scale
    np.testing.assert_allclose(a.merge(b).result().features, ref, atol=1e-9, rtol=0)
    c = StreamingScorer("pls").merge(StreamingScorer("pls").update(Xs[300:], y[300:]))  # empty adopts the scale
    np.testing.assert_allclose(
        c.merge(StreamingScorer("pls").update(Xs[:300], y[:300])).result().features, ref, atol=1e-9, rtol=0
    )
