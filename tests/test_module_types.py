"""The module-type registry and the type added through it alone: ``mbconv`` (MobileNetV2 inverted
residuals) builds, costs what a hand count says, grows by inheritance exactly, transfers, and
searches from the command line like ``basic``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from swnas import models as M
from swnas.cli import main
from swnas.errors import InputError
from swnas.models.metrics import count_macs, count_params
from swnas.models.grow import can_inherit, inherit
from swnas.models.mbconv import EXPANSION, InvertedResidual
from swnas.models.registry import MODULE_TYPES, module_type
from swnas.search import SearchConfig
from swnas.training.transfer import transfer_weights

ROOT = Path(__file__).resolve().parents[1]


def _tiny(module: str, stages: list[int]) -> M.ArchSpec:
    widths = [4, 8, 8, 8][: len(stages)] if module == "bottleneck" else None
    return M.ArchSpec(module=module, stages=stages, widths=widths, num_classes=5, input_size=16)


# ------------------------------------------------------------------------------- the registry
@pytest.mark.parametrize("name", sorted(MODULE_TYPES))
def test_every_registered_type_builds_with_its_rules(name):
    t = MODULE_TYPES[name]
    stages = [1, 2, 1, 1][: t.search_stages]
    spec = _tiny(name, stages)
    net = M.build(spec)
    assert net.spec is spec and [len(s) for s in net.stages] == stages
    assert spec.stage_widths[0] == (spec.widths[0] if spec.widths else t.base_width)
    assert spec.depth == t.depth(stages) and spec.resolved_stem_kind == t.stem_kind
    outs = M.stage_output_modules(net)
    assert len(outs) == len(stages)
    seen = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: seen.append(o.shape)) for m in outs]
    net.eval()(torch.zeros(2, 3, 16, 16))
    for h in hooks:
        h.remove()
    assert len(seen) == len(stages) and all(s[0] == 2 for s in seen)
    assert (can_inherit(name) is None) == (t.grow_bn is not None)


def test_an_unknown_module_type_lists_the_registered_ones():
    with pytest.raises(
        InputError, match="unknown module type 'dense'; choose one of basic, bottleneck, nasnet, mbconv"
    ):
        M.ArchSpec(module="dense")
    with pytest.raises(InputError, match="unknown module type"):
        module_type("dense")
    assert SearchConfig(module="mbconv", dataset="digits").resolved().stages == MODULE_TYPES["mbconv"].search_stages


def test_no_module_name_is_compared_with_a_literal_outside_the_registry():
    """Rules that depend on the module type read its record: no ``module == "basic"`` anywhere else."""
    pattern = re.compile(r"""module\s*(==|!=)\s*["']|["']\s*(==|!=)\s*\w*\.?module\b|module\s+(not\s+)?in\s+\(""")
    offenders = []
    for path in (ROOT / "swnas").rglob("*.py"):
        if path.name == "registry.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_guard_pattern_finds_a_literal_comparison():
    pattern = re.compile(r"""module\s*(==|!=)\s*["']""")
    assert pattern.search('    if spec.module == "nasnet":') and not pattern.search("if a.module != b.module:")


# ------------------------------------------------------------------------------- mbconv blocks
def test_an_inverted_residual_expands_six_times_filters_depthwise_and_adds_when_shapes_agree():
    b = InvertedResidual(8, 8, 1)
    assert EXPANSION == 6 and b.conv1.out_channels == 48 and b.conv2.groups == 48 and b.conv3.out_channels == 8
    assert b.residual and isinstance(b.preact, nn.Identity)
    for blk in (InvertedResidual(8, 8, 2), InvertedResidual(8, 16, 1)):
        assert not blk.residual and not hasattr(blk, "preact")
    # the projection is linear: with the branch's BN zeroed the block returns its input, negatives included
    with torch.no_grad():
        b.bn3.weight.zero_()
        b.bn3.bias.zero_()
    x = torch.randn(2, 8, 5, 5)
    assert torch.equal(b.eval()(x), x) and (x < 0).any()
    with torch.no_grad():
        b.bn3.bias.fill_(0.5)
    assert torch.allclose(b(x), x + 0.5)


def _hand_count(spec: M.ArchSpec) -> tuple[int, int]:
    """(parameters, MACs) of an mbconv network, counted from the architecture's rules."""
    side = spec.input_size
    c0 = spec.stem_width
    params = spec.in_channels * c0 * 9 + 2 * c0
    macs = side * side * spec.in_channels * c0 * 9
    cin = c0
    for i, (m, w) in enumerate(zip(spec.stages, spec.stage_widths)):
        for j in range(m):
            stride = 2 if (i > 0 and j == 0) else 1
            hid = 6 * cin
            out = (side + 2 - 3) // stride + 1
            params += cin * hid + 2 * hid + hid * 9 + 2 * hid + hid * w + 2 * w
            macs += side * side * cin * hid + out * out * hid * 9 + out * out * hid * w
            side, cin = out, w
    params += cin * spec.num_classes + spec.num_classes
    macs += cin * spec.num_classes
    return params, macs


@pytest.mark.parametrize(
    "spec",
    [
        M.ArchSpec(module="mbconv", stages=[2, 1, 2], num_classes=10, input_size=8, in_channels=1),
        M.ArchSpec(module="mbconv", stages=[1, 3, 1], widths=[8, 12, 24], stem=4, num_classes=7, input_size=15),
    ],
)
def test_mbconv_costs_match_a_hand_count(spec):
    net = M.build(spec)
    params, macs = _hand_count(spec)
    assert count_params(net) == params
    assert count_macs(net) == macs
    assert M.check_size(spec) == params  # the meta-device count the search's size check uses


def test_mbconv_costs_of_a_fixed_network():
    """Counted by hand once: stem 1*16*9 (+32 BN); stage 1 two 16->16 blocks at 8x8; stage 2 one
    16->32 stride-2 block; stage 3 a 32->64 stride-2 block and a 64->64 block at 2x2; fc 64->10."""
    net = M.build(M.ArchSpec(module="mbconv", stages=[2, 1, 2], num_classes=10, input_size=8, in_channels=1))
    assert net.spec.depth == 17 and M.paper_depth(net.spec) == 16  # 3 convolutions a block, stem (+ classifier)
    assert count_params(net) == 90778
    assert count_macs(net) == 1039744


# ------------------------------------------------------------------------------- growth, transfer
def _perturbed(spec: M.ArchSpec, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = M.build(spec)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    return net.eval()


@pytest.mark.parametrize("stages", [[3, 1, 2], [1, 3, 2], [2, 2, 4]])
def test_grown_mbconv_computes_the_parents_function(stages):
    spec = M.ArchSpec(module="mbconv", stages=[1, 1, 2], num_classes=5, input_size=16)
    parent = _perturbed(spec)
    child = inherit(parent, stages, seed=1)
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(child(x), parent(x), rtol=0, atol=1e-6)
        child.train()
        parent.train()
        assert torch.allclose(child(x), parent(x), rtol=0, atol=1e-5)  # batch statistics cancel too
    for i, m in enumerate(stages):
        for j in range(len(parent.stages[i]), m):
            block = child.stages[i][j]
            assert block.residual and float(block.bn3.weight.detach().abs().sum()) == 0.0
            assert float(block.conv1.weight.detach().abs().sum()) > 0  # only the last BN is zeroed


def test_a_grown_mbconv_block_learns():
    parent = _perturbed(M.ArchSpec(module="mbconv", stages=[1, 1, 1], num_classes=4, input_size=8))
    child = inherit(parent, [2, 1, 1]).train()
    child(torch.randn(8, 3, 8, 8)).square().sum().backward()
    assert float(child.stages[0][1].bn3.weight.grad.abs().sum()) > 0


def test_mbconv_transfer_of_the_donors_own_counts_reproduces_it():
    donor = _perturbed(M.ArchSpec(module="mbconv", stages=[2, 3, 2], num_classes=5, input_size=16))
    cand = transfer_weights(donor, donor.spec.with_stages([2, 3, 2]))
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(cand(x), donor(x))
    shallow = transfer_weights(donor, donor.spec.with_stages([1, 2, 1]), pick="spread")
    assert [len(s) for s in shallow.stages] == [1, 2, 1]


def test_mbconv_saves_and_loads(tmp_path):
    net = _perturbed(M.ArchSpec(module="mbconv", stages=[1, 2, 1], num_classes=5, input_size=16))
    M.save_model(net, tmp_path / "m.pt")
    back = M.load(tmp_path / "m.pt")
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(back(x), net(x))


# ------------------------------------------------------------------------------- the search
def _run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("extra", [[], ["--inherit"]])
def test_swnas_search_runs_with_module_mbconv_on_digits(tmp_path, capsys, extra):
    out = tmp_path / "s"
    code, o, err = _run(
        [
            "search",
            "--dataset",
            "digits",
            "--module",
            "mbconv",
            "--iterations",
            "1",
            "--m0",
            "1",
            "--delta",
            "1",
            "--epochs",
            "1",
            "--subset",
            "300",
            "--batch-size",
            "64",
            "--final-epochs",
            "0",
            "--device",
            "cpu",
            "--no-report",
            "--quiet",
            "--out",
            str(out),
            *extra,
        ],
        capsys,
    )
    assert code == 0, err
    state = json.loads((out / "search.json").read_text())
    assert state["config"]["module"] == "mbconv" and state["config"]["inherit"] == bool(extra)
    specs = [json.loads((out / n["spec"]).read_text()) for n in state["networks"]]
    assert specs and all(s["module"] == "mbconv" for s in specs)
    assert all(n["metrics"]["params"] > 0 and n["metrics"]["macs"] > 0 for n in state["networks"])
    assert len(state["iterations"]) == 1 and len(state["iterations"][0]["comparisons"]) == 3
