"""Stage features: hook points, reductions, streaming vs stored scoring, fused pooling kernels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from swnas.errors import InputError
from swnas.features import (
    parse_reduce,
    reduce_map,
    stage_features,
    stage_scores,
)
from swnas.models import ArchSpec, build
from swnas.pooling import avgpool_stats


def _trained_like(spec, seed=0):
    """A built network whose BN statistics are not the identity (one training-mode pass)."""
    torch.manual_seed(seed)
    net = build(spec)
    net.train()
    with torch.no_grad():
        net(torch.randn(8, spec.in_channels, spec.input_size, spec.input_size))
    return net.eval()


def _digits_like(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.integers(0, 17, (n, 8, 8, 1)).astype(np.float64)
    x[:, :4, :4, 0] += 6 * y[:, None, None]  # class-dependent signal
    return np.clip(x * 15, 0, 255).astype(np.uint8), y


# ----------------------------------------------------------------------------- reductions
def _np_avgpool(x, kh, kw):
    n, c, h, w = x.shape
    ho, wo = h // kh, w // kw
    x = x[:, :, : ho * kh, : wo * kw].reshape(n, c, ho, kh, wo, kw)
    return x.mean(axis=(3, 5)).reshape(n, -1)


def test_avgpool8_feature_counts_of_the_original():
    for (c, h), p in (((16, 32), 256), ((32, 16), 128), ((64, 8), 64)):
        assert reduce_map(torch.zeros(2, c, h, h)).shape == (2, p)
    # maps smaller than 8 (digits) pool with a min(8, H) window: a global average
    assert reduce_map(torch.zeros(2, 32, 4, 4)).shape == (2, 32)


def test_reductions_equal_numpy_float64_reference():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5, 16, 12)).astype(np.float32)
    t = torch.from_numpy(x)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(reduce_map(t, "avgpool8").numpy(), _np_avgpool(x64, 8, 8), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reduce_map(t, "avgpool4").numpy(), _np_avgpool(x64, 4, 4), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reduce_map(t, "gap").numpy(), x64.mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reduce_map(t, "gmp").numpy(), x64.max(axis=(2, 3)), rtol=0, atol=0)
    # grid:2 on 16x12 = 8x6 windows; the order is channel-major (c, i, j)
    np.testing.assert_allclose(reduce_map(t, "grid:2").numpy(), _np_avgpool(x64, 8, 6), rtol=1e-5, atol=1e-6)
    small = rng.standard_normal((2, 3, 4, 6)).astype(np.float32)
    np.testing.assert_allclose(
        reduce_map(torch.from_numpy(small)).numpy(), _np_avgpool(small.astype(np.float64), 4, 6), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("bad", ["avgpool0", "grid:", "max", "", 8])
def test_bad_reduce_is_input_error(bad):
    with pytest.raises(InputError, match="reduce"):
        parse_reduce(bad)


# ----------------------------------------------------------------------------- hooks
def _manual_stage_outputs(net, x):
    """Pre-ReLU residual sum of each stage's last block, computed by hand."""
    outs = []
    h = net.relu(net.bn1(net.conv1(x)))
    for stage in net.stages:
        for blk in stage[:-1]:
            h = blk(h)
        last = stage[-1]
        z = last.bn2(last.conv2(torch.relu(last.bn1(last.conv1(h))))) + last.shortcut(h)
        outs.append(z.clone())
        h = torch.relu(z)
    return outs


def test_stage_features_hook_the_pre_relu_residual_sum():
    spec = ArchSpec(stages=[2, 1, 2], input_size=16)
    net = _trained_like(spec)
    x = torch.randn(6, 3, 16, 16)
    feats = stage_features(net, x, batch_size=4)
    with torch.no_grad():
        ref = [reduce_map(o).numpy() for o in _manual_stage_outputs(net, x)]
    assert [f.shape for f in feats] == [(6, 16 * 4), (6, 32), (6, 64)]
    for f, r in zip(feats, ref):
        np.testing.assert_allclose(f, r, rtol=1e-5, atol=1e-5)
    assert any((f < 0).any() for f in feats)  # before the ReLU: negative values survive


def test_nasnet_and_bottleneck_stage_features():
    nas = _trained_like(ArchSpec(module="nasnet", stages=[2, 1, 1], widths=[4, 8, 16], input_size=16))
    f = stage_features(nas, torch.randn(3, 3, 16, 16), reduce="gap")
    assert [a.shape for a in f] == [(3, 20), (3, 40), (3, 80)]
    bott = _trained_like(ArchSpec(module="bottleneck", stages=[1, 1, 1, 1], widths=[4, 4, 8, 8],
                                  stem_kind="cifar", input_size=16))
    f = stage_features(bott, torch.randn(3, 3, 16, 16), reduce="grid:2")
    assert [a.shape for a in f] == [(3, 64), (3, 64), (3, 128), (3, 128)]


def test_uint8_nhwc_normalisation_matches_float_nchw():
    net = _trained_like(ArchSpec(stages=[1, 1, 1], input_size=8, in_channels=1))
    x, _ = _digits_like(20)
    mean, std = [0.3], [0.2]
    a = stage_features(net, x, mean=mean, std=std, batch_size=7)
    xf = (torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255 - 0.3) / 0.2
    b = stage_features(net, xf, batch_size=20)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-5)
    assert net.training is False
    net.train()
    stage_features(net, xf[:2])
    assert net.training is True  # the training flag is restored


def test_stage_features_input_errors():
    net = build(ArchSpec(stages=[1, 1, 1], input_size=8, in_channels=1))
    with pytest.raises(InputError, match="images"):
        stage_features(net, np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(InputError, match="images"):
        stage_features(net, np.zeros((4, 8, 8, 3), np.uint8))  # wrong channel count
    with pytest.raises(InputError, match="images"):
        stage_features(net, np.zeros((4, 1, 8, 8), np.int32))
    with pytest.raises(InputError, match="batch_size"):
        stage_features(net, np.zeros((4, 8, 8, 1), np.uint8), batch_size=0)
    with pytest.raises(InputError, match="std"):
        stage_features(net, np.zeros((4, 8, 8, 1), np.uint8), std=[0.0])
    with pytest.raises(InputError, match="labels"):
        stage_scores(net, np.zeros((4, 8, 8, 1), np.uint8), np.zeros(3, int))


# ----------------------------------------------------------------------------- scoring
def test_streaming_and_stored_scores_agree():
    net = _trained_like(ArchSpec(stages=[2, 2, 2], input_size=8, in_channels=1))
    x, y = _digits_like(150)
    stream = stage_scores(net, x, y, batch_size=32, streaming=True, mean=[0.5], std=[0.25])
    stored = stage_scores(net, x, y, batch_size=32, streaming=False, mean=[0.5], std=[0.25])
    auto = stage_scores(net, x, y, batch_size=64, mean=[0.5], std=[0.25])  # pls streams
    assert len(stream) == len(stored) == 3
    assert all(r.backend == "streaming" for r in stream) and all(r.backend == "streaming" for r in auto)
    for a, b, c in zip(stream, stored, auto):
        np.testing.assert_allclose(a.features, b.features, rtol=1e-6, atol=1e-6)
        assert abs(a.stage - b.stage) < 1e-6 and abs(a.stage - c.stage) < 1e-6
        assert np.isclose(np.sum(b.features**2), b.features.size, rtol=1e-6)  # VIP property
    # the stored path equals scoring the stage_features matrices directly
    from swnas.scoring import score

    feats = stage_features(net, x, mean=[0.5], std=[0.25])
    direct = [score(f, y).stage for f in feats]
    np.testing.assert_allclose(direct, [r.stage for r in stored], rtol=1e-6)


def test_streaming_refused_for_a_whole_matrix_criterion():
    net = build(ArchSpec(stages=[1, 1, 1], input_size=8, in_channels=1))
    x, y = _digits_like(30)
    with pytest.raises(InputError, match="streaming"):
        stage_scores(net, x, y, criterion="inffs", streaming=True)
    with pytest.raises(InputError, match="streaming"):
        stage_scores(net, x, y, streaming="yes")


# ----------------------------------------------------------------------------- fused kernels
def _ref_stats(x, k, labels, n_classes):
    pooled = _np_avgpool(x.astype(np.float64), k, k)
    cls = np.zeros((n_classes, pooled.shape[1]))
    np.add.at(cls, labels, pooled)
    return pooled, pooled.sum(0), cls


@pytest.mark.parametrize("shape, k", [((37, 16, 32, 32), 8), ((5, 32, 16, 16), 8), ((9, 3, 7, 9), 3), ((4, 2, 2, 2), 2)])
def test_cpp_fused_pooling_matches_reference(shape, k):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    labels = rng.integers(0, 5, shape[0])
    pooled, cs, ks = avgpool_stats(x, k, labels, 5, backend="cpp")
    rp, rcs, rks = _ref_stats(x, k, labels, 5)
    assert pooled.dtype == np.float32 and cs.dtype == np.float64 and ks.shape == (5, pooled.shape[1])
    np.testing.assert_allclose(pooled, rp, rtol=1e-5, atol=1e-6)
    # sums are float64 of the float32 pooled values: exact up to the float32 rounding of each value
    np.testing.assert_allclose(cs, pooled.astype(np.float64).sum(0), rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(ks, rks, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cs, rcs, rtol=1e-5, atol=1e-5)
    # torch input gives torch output; same values as the torch ops
    pt, cst, kst = avgpool_stats(torch.from_numpy(x), k, torch.from_numpy(labels), 5, backend="torch")
    np.testing.assert_allclose(pt.numpy(), pooled, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(kst.numpy(), ks, rtol=1e-6, atol=1e-5)
    only, none1, none2 = avgpool_stats(torch.from_numpy(x), k, backend="cpp")
    assert isinstance(only, torch.Tensor) and none1 is None and none2 is None
    np.testing.assert_allclose(only.numpy(), pooled, rtol=0, atol=0)


def test_fused_pooling_input_errors():
    x = np.zeros((2, 3, 8, 8), np.float32)
    with pytest.raises(InputError, match="k"):
        avgpool_stats(x, 9)
    with pytest.raises(InputError, match="labels"):
        avgpool_stats(x, 8, np.array([0, 7]), 5, backend="cpp")
    with pytest.raises(InputError, match="x"):
        avgpool_stats(np.zeros((2, 8, 8), np.float32), 8)
    with pytest.raises(InputError, match="float32"):
        avgpool_stats(x.astype(np.float64), 8, backend="cpp")
    with pytest.raises(InputError, match="backend"):
        avgpool_stats(x, 8, backend="fortran")


def _gpu_ok():
    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_ok(), reason="needs a CUDA device")
@pytest.mark.parametrize("backend", ["cuda", "cupy"])
def test_gpu_fused_pooling_matches_reference(backend):
    if backend == "cupy":
        pytest.importorskip("cupy")
    rng = np.random.default_rng(3)
    for shape, k in (((300, 16, 32, 32), 8), ((70, 64, 8, 8), 8), ((9, 3, 7, 9), 3)):
        x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
        labels = rng.integers(0, 10, shape[0])
        xt = torch.from_numpy(x).cuda()
        pooled, cs, ks = avgpool_stats(xt, k, labels, 10, backend=backend)
        rp, rcs, rks = _ref_stats(x, k, labels, 10)
        assert pooled.is_cuda and cs.dtype == torch.float64
        np.testing.assert_allclose(pooled.cpu().numpy(), rp, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(cs.cpu().numpy(), rcs, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(ks.cpu().numpy(), rks, rtol=1e-5, atol=1e-4)
        only, _, _ = avgpool_stats(xt, k, backend=backend)
        np.testing.assert_allclose(only.cpu().numpy(), rp, rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_ok(), reason="needs a CUDA device")
def test_gpu_stage_scores_stream_on_device_and_match_cpu():
    net = _trained_like(ArchSpec(stages=[2, 2, 2], input_size=8, in_channels=1))
    x, y = _digits_like(150)
    cpu = stage_scores(net, x, y, batch_size=32)
    gpu = stage_scores(net, x, y, batch_size=32, device="cuda")
    for a, b in zip(cpu, gpu):
        np.testing.assert_allclose(a.features, b.features, rtol=1e-4, atol=1e-4)
    assert next(net.parameters()).device.type == "cpu"  # moved back


def test_cupy_pooling_through_the_standin_matches_torch(cupy_standin):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 3, 16, 16)).astype(np.float32)
    labels = rng.integers(0, 4, 40)
    pooled, cs, ks = avgpool_stats(x, 8, labels, 4, backend="cupy")
    pt, cst, kst = avgpool_stats(torch.from_numpy(x), 8, torch.from_numpy(labels), 4, backend="torch")
    np.testing.assert_allclose(np.asarray(pooled), pt.numpy(), rtol=1e-6, atol=1e-6)
    p64 = np.asarray(pooled, dtype=np.float64)  # the sums are float64 sums of the pooled float32 values
    np.testing.assert_allclose(np.asarray(cs), p64.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(ks), np.eye(4)[labels].T @ p64, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(ks), kst.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_cupy_pooling_sums_keep_the_grid_legal_above_4m_rows(cupy_standin):
    """ceil(n / 64) > 65535 above 4.19M rows: the sums are launched per slab of rows."""
    from swnas.pooling import MAX_GRID_Y

    n = 64 * MAX_GRID_Y + 1000
    x = np.ones((n, 1, 1, 1), dtype=np.float32)
    x[-1] = 3.0
    labels = np.zeros(n, dtype=np.int64)
    labels[-1] = 1
    _, cs, ks = avgpool_stats(x, 1, labels, 2, backend="cupy")
    assert float(cs[0]) == n + 2.0
    assert ks[:, 0].tolist() == [n - 1.0, 3.0]
    grids = [g for name, g, _ in cupy_standin.launches if name == "swnas_sums"]
    assert len(grids) == 2 and max(g[1] for g in grids) <= MAX_GRID_Y


def test_pooling_honours_swnas_disable_cuda(monkeypatch):
    from swnas.errors import BackendUnavailableError
    from swnas.pooling import pooling_backend
    from swnas.scoring.backends import reset_probes

    monkeypatch.setenv("SWNAS_DISABLE_CUDA", "1")
    reset_probes()
    try:
        with pytest.raises(BackendUnavailableError, match="SWNAS_DISABLE_CUDA"):
            pooling_backend(np.zeros((1, 1, 8, 8), np.float32), "cuda")
        assert pooling_backend(np.zeros((1, 1, 8, 8), np.float32)) == "cpp"
    finally:
        monkeypatch.delenv("SWNAS_DISABLE_CUDA")
        reset_probes()
