"""Stage features: hook points, reductions, streaming vs stored scoring, the scoring pass's precision."""

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
    bott = _trained_like(
        ArchSpec(module="bottleneck", stages=[1, 1, 1, 1], widths=[4, 4, 8, 8], stem_kind="cifar", input_size=16)
    )
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


def _gpu_ok():
    return torch.cuda.is_available()


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


def _flag_recorder(net):
    seen = []

    def hook(_m, _inp, _out):
        seen.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))

    first_conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_hook(hook)
    return seen


@pytest.fixture
def tf32_on():
    """TF32 allowed for cuDNN and matmuls (what training may run with); the flags restored after."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize("path", ["arrays", "data source"])
def test_scoring_forward_pass_runs_without_tf32_and_restores_the_flags(path, tf32_on):
    """GPU stage features must match CPU ones: cuDNN and matmul TF32 are off while scoring."""
    from swnas.data import Dataset
    from swnas.features import stage_scores_of

    net = _trained_like(ArchSpec(stages=[1, 1, 1], input_size=8, in_channels=1))
    seen = _flag_recorder(net)
    x, y = _digits_like(40)
    if path == "arrays":
        got = stage_scores(net, x, y, batch_size=16, mean=[0.5], std=[0.25])
    else:
        ds = Dataset(
            name="digits",
            x_train=x,
            y_train=y,
            x_test=x[:4],
            y_test=y[:4],
            num_classes=10,
            input_size=8,
            in_channels=1,
            mean=(0.5,),
            std=(0.25,),
        )
        got = stage_scores_of(net, ds, batch_size=16)
    assert len(got) == 3 and len(seen) == 3  # three batches of 16, 16, 8 images
    assert seen == [(False, False)] * 3
    assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32  # restored after
    net(torch.zeros(1, 1, 8, 8))  # an ordinary forward pass afterwards keeps the caller's flags
    assert seen[-1] == (True, True)


def test_data_source_and_array_stage_scores_agree():
    from swnas.data import Dataset
    from swnas.features import stage_scores_of

    net = _trained_like(ArchSpec(stages=[1, 1, 1], input_size=8, in_channels=1))
    x, y = _digits_like(60)
    y = np.where(y == 3, 7, y)  # a class absent from the split: coded away as stage_scores codes it
    ds = Dataset(
        name="digits",
        x_train=x,
        y_train=y,
        x_test=x[:4],
        y_test=y[:4],
        num_classes=10,
        input_size=8,
        in_channels=1,
        mean=(0.5,),
        std=(0.25,),
    )
    for crit, params in (("pls", {"n_components": 2}), ("inffs", {})):
        want = stage_scores(net, x, y, crit, batch_size=16, mean=[0.5], std=[0.25], **params)
        got = stage_scores_of(net, ds, crit, batch_size=16, **params)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a.features, b.features)
