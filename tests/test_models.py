"""Architecture spec, builders (basic / bottleneck / nasnet), their costs against the paper, checkpoint I/O."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from swnas.errors import InputError
from swnas.models.metrics import count_macs, count_params
from swnas.models import ArchSpec, build, load, save_model, stage_output_modules
from swnas.models.io import read_checkpoint


# ------------------------------------------------------------------------------------ spec
def test_spec_defaults_are_cifar10_resnet56():
    s = ArchSpec()
    assert (s.module, s.stages, s.num_classes, s.input_size, s.in_channels) == ("basic", [9, 9, 9], 10, 32, 3)
    assert s.stage_widths == [16, 32, 64] and s.stem_width == 16 and s.depth == 56
    assert ArchSpec(stages=[18, 18, 18]).depth == 110
    assert ArchSpec(module="bottleneck", stages=[3, 4, 6, 3]).depth == 50
    assert ArchSpec(module="bottleneck", stages=[3, 4, 6, 3]).stage_widths == [64, 128, 256, 512]
    assert ArchSpec(module="nasnet", stages=[6, 6, 6]).depth == 20


def test_spec_json_round_trip_and_variants():
    s = ArchSpec(module="nasnet", stages=[2, 3, 4], widths=[8, 16, 32], num_classes=100, drop_path=0.1)
    text = s.to_json()
    assert json.loads(text)["stages"] == [2, 3, 4]
    back = ArchSpec.from_json(text)
    assert back == s and ArchSpec.from_dict(s.to_dict()) == s
    d = s.deepened(2)
    assert d.stages == [4, 5, 6] and s.stages == [2, 3, 4]  # original untouched
    assert d.widths == [8, 16, 32] and d.num_classes == 100
    assert s.with_stages([1, 1, 1]).stages == [1, 1, 1]
    assert ArchSpec(stages=(np.int64(3), 4, 5)).stages == [3, 4, 5]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"stages": []}, "stages"),
        ({"stages": [3, 0, 3]}, "stages[1]"),
        ({"stages": [3, 3, -1]}, "stages[2]"),
        ({"stages": [3, 2.5, 3]}, "stages[1]"),
        ({"module": "resnext"}, "module"),
        ({"widths": [16, 32]}, "widths"),
        ({"num_classes": 1}, "num_classes"),
        ({"input_size": 0}, "input_size"),
        ({"shortcut": "B"}, "shortcut"),
    ],
)
def test_spec_validation_names_the_field(kwargs, field):
    with pytest.raises(InputError) as e:
        ArchSpec(**kwargs)
    assert str(e.value).startswith(field + ":")


def test_spec_from_dict_rejects_unknown_and_bad_json():
    with pytest.raises(InputError, match="unknown field"):
        ArchSpec.from_dict({"module": "basic", "stages": [1, 1, 1], "depth": 8})
    with pytest.raises(InputError, match="JSON"):
        ArchSpec.from_json("{not json")
    with pytest.raises(InputError, match="delta"):
        ArchSpec().deepened(-1)


# ------------------------------------------------------------------------------------ basic
# The paper's Table: MACs ("FLOPs") and parameters of the CIFAR-10 ResNets.
PAPER = [
    ([9, 9, 9], 125e6, 0.86e6),
    ([18, 18, 18], 253e6, 1.7e6),
    ([10, 12, 6], 130e6, 0.69e6),
    ([10, 14, 8], 149e6, 0.88e6),
]


def _meta(spec):
    """Build on the meta device: shapes only, so counting costs needs no arithmetic."""
    with torch.device("meta"):
        return build(spec)


@pytest.mark.parametrize("stages, macs, params", PAPER)
def test_basic_costs_match_the_paper(stages, macs, params):
    net = _meta(ArchSpec(stages=stages))
    got_macs = count_macs(net)
    got_params = count_params(net)
    assert abs(got_macs - macs) / macs < 0.02, got_macs
    assert abs(got_params - params) / params < 0.03, got_params


def _analytic_basic_macs(stages, size=32, cin=3):
    w = [16 * 2**i for i in range(len(stages))]
    total = size * size * cin * 16 * 9
    c, s = 16, size
    for i, m in enumerate(stages):
        for j in range(m):
            stride = 2 if (i > 0 and j == 0) else 1
            s = s // stride
            total += s * s * c * w[i] * 9 + s * s * w[i] * w[i] * 9
            if stride == 2:
                total += s * s * c * w[i]  # 1x1 projection
            c = w[i]
    return total + c * 10


def test_basic_macs_equal_the_closed_form():
    for stages in ([9, 9, 9], [1, 2, 3]):
        assert count_macs(_meta(ArchSpec(stages=stages))) == _analytic_basic_macs(stages)


def test_basic_structure_and_shortcuts():
    net = build(ArchSpec(stages=[2, 3, 4]))
    assert isinstance(net.stages, nn.ModuleList) and [len(s) for s in net.stages] == [2, 3, 4]
    assert all(isinstance(s, nn.Sequential) for s in net.stages)
    # the original: 1x1 stride-2 conv with bias, no BN, only on stage transitions
    sc = net.stages[1][0].shortcut
    assert isinstance(sc, nn.Conv2d) and sc.stride == (2, 2) and sc.bias is not None
    assert isinstance(net.stages[0][0].shortcut, nn.Identity) and isinstance(net.stages[1][1].shortcut, nn.Identity)
    p_proj = count_params(net)
    zeros = build(ArchSpec(stages=[2, 3, 4], shortcut="zeros"))
    bn = build(ArchSpec(stages=[2, 3, 4], shortcut="projection_bn"))
    assert p_proj - count_params(zeros) == (16 * 32 + 32) + (32 * 64 + 64)
    assert count_params(bn) - count_params(zeros) == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    x = torch.randn(2, 3, 32, 32)
    for m in (net, zeros, bn):
        assert m.eval()(x).shape == (2, 10)


def test_zero_pad_shortcut_pads_channels_and_subsamples():
    from swnas.models.resnet import ZeroPadShortcut

    x = torch.randn(2, 16, 8, 8)
    y = ZeroPadShortcut(16, 32, 2)(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, :8]) == 0 and torch.count_nonzero(y[:, 24:]) == 0


def test_tiny_digits_inputs():
    net = build(ArchSpec(module="basic", stages=[2, 2, 2], input_size=8, in_channels=1)).eval()
    assert net(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    nas = build(ArchSpec(module="nasnet", stages=[1, 1, 1], widths=[4, 8, 16], input_size=8, in_channels=1)).eval()
    assert nas(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_nasnet_reduces_maps_down_to_one_pixel():
    # five stages on 8 x 8 digits: the last reductions see 2 x 2 and 1 x 1 maps (a 0 x 0 map used to
    # crash the shifted branch of FactorizedReduce), as the residual networks already allowed
    nas = build(
        ArchSpec(module="nasnet", stages=[1, 1, 1, 1, 1], widths=[4, 8, 16, 32, 64], input_size=8, in_channels=1)
    ).eval()
    with torch.no_grad():
        assert nas(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("side", (1, 2, 5, 8, 9))
def test_factorized_reduce_equals_the_cropped_and_padded_form(side):
    # the zero-filled shift gives exactly the classic form (crop one pixel, then pad an odd output
    # back) wherever that form works, so trained NASNet checkpoints keep their outputs
    from swnas.models.nasnet import FactorizedReduce

    torch.manual_seed(0)
    fr = FactorizedReduce(3, 6).eval()
    x = torch.randn(2, 3, side, side)
    with torch.no_grad():
        got = fr(x)
        assert got.shape == (2, 6, (side + 1) // 2, (side + 1) // 2)
        if side < 2:
            return
        r = torch.relu(x)
        a, b = fr.conv_a(r), fr.conv_b(r[:, :, 1:, 1:])
        b = nn.functional.pad(b, (0, a.shape[-1] - b.shape[-1], 0, a.shape[-2] - b.shape[-2]))
        torch.testing.assert_close(got, fr.bn(torch.cat([a, b], dim=1)), rtol=0, atol=0)


def test_stage_output_points_are_pre_relu_sums():
    net = build(ArchSpec(stages=[1, 2, 1]))
    pts = stage_output_modules(net)
    assert pts == [net.stages[0][0].preact, net.stages[1][1].preact, net.stages[2][0].preact]
    with pytest.raises(InputError, match="model"):
        stage_output_modules(nn.Linear(2, 2))


# ------------------------------------------------------------------------------------ bottleneck
def test_bottleneck_is_torchvision_resnet50_compatible():
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    ref = tv.models.resnet50(weights=None)
    # give BN non-trivial statistics so a mismatch cannot hide
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
    ours = build(ArchSpec(module="bottleneck", stages=[3, 4, 6, 3], num_classes=1000, input_size=224))
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert set(ours.state_dict()) == set(ref.state_dict())
    ref.eval(), ours.eval()
    x = torch.randn(1, 3, 64, 64)  # any size works; 64 px keeps the test fast
    with torch.no_grad():
        assert torch.equal(ours(x), ref(x))
    assert [len(s) for s in ours.stages] == [3, 4, 6, 3]
    assert ours.stages[2] is ours.layer3


def test_bottleneck_costs_resnet50():
    net = _meta(ArchSpec(module="bottleneck", stages=[3, 4, 6, 3], num_classes=1000, input_size=224))
    assert count_params(net) == 25_557_032  # torchvision's resnet50
    assert abs(count_macs(net) - 4.09e9) / 4.09e9 < 0.02  # the usual 4.1 GMACs


# ------------------------------------------------------------------------------------ nasnet
def test_nasnet_structure():
    from swnas.models.nasnet import Cell

    spec = ArchSpec(module="nasnet", stages=[6, 6, 6])
    net = build(spec)
    assert [len(s) for s in net.stages] == [6, 6, 6] and len(net.reductions) == 2
    assert all(isinstance(c, Cell) and not c.reduction for s in net.stages for c in s)
    assert all(c.reduction for c in net.reductions)
    # normal cells concatenate 5 nodes, reduction cells 3; widths double at each reduction
    assert net.stages[0][-1].out_channels == 5 * 16 and net.reductions[1].out_channels == 3 * 64
    assert 0.5e6 < count_params(net) < 1.5e6
    small = build(ArchSpec(module="nasnet", stages=[2, 1, 3], widths=[4, 8, 16])).eval()
    with torch.no_grad():
        assert small(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_nasnet_drop_path_only_in_training():
    net = build(ArchSpec(module="nasnet", stages=[1, 1, 1], widths=[4, 8, 16], drop_path=0.5))
    x = torch.randn(2, 3, 16, 16)
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), net(x))


# ------------------------------------------------------------------------------------ I/O
def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    net = build(ArchSpec(stages=[1, 1, 1], input_size=8, in_channels=1))
    path = save_model(net, tmp_path / "sub" / "m.pt", extra={"top1": 0.5})
    back = load(path)
    assert back.spec == net.spec and not back.training
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(back(x), net.eval()(x))
    assert read_checkpoint(path)["extra"] == {"top1": 0.5}
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temporary file left


def test_load_errors_name_the_path(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(InputError, match="nope.pt"):
        load(missing)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(InputError, match="bad.pt"):
        load(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(InputError, match="not a swnas model"):
        load(foreign)
    with pytest.raises(InputError, match="model"):
        save_model(nn.Linear(2, 2), tmp_path / "x.pt")


# ------------------------------------------------------------------------------------ the paper's counting
# The authors' released CIFAR-10 NASNet candidates (models/CIFAR10/CellModules, Keras 2.1.2): stage
# counts with their trainable parameters and FLOPs as the authors' counter computes them on those
# Keras files (separable convolutions counted as full ones), and their convolution-layer depth.
RELEASED_CELLS = [
    ([2, 3, 2], 1_367_722, 1_895_669_248, 109),
    ([3, 3, 2], 1_395_946, 2_069_732_864, 121),
    ([3, 4, 2], 1_497_450, 2_243_796_480, 133),
    ([4, 4, 3], 1_908_906, 2_591_923_712, 157),
    ([5, 4, 4], 2_320_362, 2_940_050_944, 181),
    ([6, 5, 4], 2_450_090, 3_288_178_176, 205),
]


@pytest.mark.parametrize("stages, params, flops, depth", RELEASED_CELLS[::2] + RELEASED_CELLS[-1:])
def test_keras_cells_match_the_released_models(stages, params, flops, depth):
    from swnas.models.costs import keras_flops, paper_depth

    spec = ArchSpec(module="nasnet", stages=stages, cell="keras").with_width(32)
    net = _meta(spec)
    assert count_params(net) == params
    assert keras_flops(net) == flops
    assert paper_depth(spec) == depth
    # the true multiply-accumulates are far fewer: separable convolutions are cheap
    assert count_macs(net) < flops / 5


def test_paper_depth_of_the_residual_rows():
    from swnas.models.costs import baseline_name, paper_depth

    # Table III: [10, 12, 6] depth 59, [10, 14, 8] 67; weight transfer iteration 1 [6, 6, 6] 39
    assert [paper_depth(ArchSpec(stages=s)) for s in ([10, 12, 6], [10, 14, 8], [6, 6, 6])] == [59, 67, 39]
    assert paper_depth(ArchSpec(stages=[2, 2, 2], shortcut="zeros")) == 13  # no projection convolutions
    assert baseline_name(ArchSpec(stages=[7, 7, 7])) == "ResNet44"
    assert baseline_name(ArchSpec(stages=[10, 12, 6])) == "basic[10-12-6]"


def test_paper_nasnet_baselines():
    from swnas.models.costs import baseline_name, keras_flops

    names, params = [], []
    for n in (4, 5, 6):
        spec = ArchSpec(module="nasnet", stages=[n, n, n], cell="keras").with_width(32)
        names.append(baseline_name(spec))
        params.append(count_params(_meta(spec)))
    assert names == ["NASNet169", "NASNet205", "NASNet241"]
    # NASNet241 is NASNet-A (6 @ 768) of Zoph et al.: 3.3 M parameters
    assert abs(params[2] - 3.3e6) / 3.3e6 < 0.05
    assert params[0] < params[1] < params[2]
    # every added cell costs the same Keras FLOPs in every stage (H * W * C * C is constant)
    f = [
        keras_flops(_meta(ArchSpec(module="nasnet", stages=s, cell="keras").with_width(32)))
        for s in ([4, 4, 4], [5, 4, 4], [4, 5, 4])
    ]
    assert f[1] - f[0] == f[2] - f[0] > 0


def test_keras_flops_equal_macs_for_residual_networks():
    from swnas.models.costs import keras_flops

    for stages in ([9, 9, 9], [10, 14, 8]):
        net = _meta(ArchSpec(stages=stages))
        assert keras_flops(net) == count_macs(net)
    with pytest.raises(InputError, match="model"):
        keras_flops(nn.Sequential(nn.Conv2d(3, 4, 3)))


def test_cell_variant_and_width_options():
    darts = ArchSpec(module="nasnet", stages=[1, 1, 1], widths=[4, 8, 16])
    keras = ArchSpec(module="nasnet", stages=[1, 1, 1], cell="keras").with_width(4)
    assert keras.widths == [4, 8, 16] and keras.stem_width == 4 and darts.stem_width == 12
    assert "cell" not in darts.to_dict() and ArchSpec.from_json(keras.to_json()) == keras
    net = build(keras).eval()
    assert net.stages[0][0].out_channels == 6 * 4 and net.reductions[0].out_channels == 4 * 8
    assert isinstance(net.stages[0][0].preprocess0, nn.Identity)  # stem already has C channels
    with torch.no_grad():
        assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    with pytest.raises(InputError, match="^cell:"):
        ArchSpec(module="nasnet", stages=[1, 1, 1], cell="tf")
    with pytest.raises(InputError, match="^cell:"):
        ArchSpec(stages=[1, 1, 1], cell="keras")
    with pytest.raises(InputError, match="^width:"):
        ArchSpec().with_width(0)


def test_he_normal_initialisation_is_the_keras_one():
    from swnas.models import initialize

    net = build(ArchSpec(stages=[2, 2, 2]))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(0.5)
    g = torch.Generator().manual_seed(0)
    assert initialize(net, "he_normal", generator=g) is net
    conv = net.stages[2][1].conv2  # 64 x 64 x 3 x 3: fan-in 576
    std = (2.0 / 576) ** 0.5
    w = conv.weight
    assert abs(w.std().item() - 0.88 * std) < 0.05 * std  # a normal truncated at 2 sigma has std 0.88 sigma
    assert w.abs().max().item() <= 2 * std + 1e-7
    fc_std = (2.0 / net.fc.in_features) ** 0.5
    assert net.fc.weight.abs().max().item() <= 2 * fc_std + 1e-7
    assert torch.count_nonzero(net.fc.bias) == 0 and torch.count_nonzero(net.stages[1][0].shortcut.bias) == 0
    assert torch.all(net.bn1.weight == 1) and torch.count_nonzero(net.bn1.bias) == 0
    again = initialize(build(ArchSpec(stages=[2, 2, 2])), "he_normal", generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.stages[2][1].conv2.weight, w)
    before = [p.clone() for p in net.parameters()]
    initialize(net, "default")
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    with pytest.raises(InputError, match="^init:"):
        initialize(net, "glorot")
