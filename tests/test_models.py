"""Architecture spec, builders (basic / bottleneck / nasnet), their costs against the paper, checkpoint I/O."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from swnas.errors import InputError
from swnas.metrics import count_macs, count_params
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
PAPER = [([9, 9, 9], 125e6, 0.86e6), ([18, 18, 18], 253e6, 1.7e6), ([10, 12, 6], 130e6, 0.69e6), ([10, 14, 8], 149e6, 0.88e6)]


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
