"""Weight transfer: donors reproduce themselves, shallower candidates take the picked blocks, errors."""

from __future__ import annotations

import pytest
import torch

from swnas.errors import InputError
from swnas.models import ArchSpec, build, save_model
from swnas.training.transfer import load_donor, pick_indices, transfer_weights


def _donor(spec, seed=0):
    torch.manual_seed(seed)
    net = build(spec)
    net.train()
    with torch.no_grad():  # non-trivial BN statistics
        net(torch.randn(8, spec.in_channels, spec.input_size, spec.input_size))
    return net.eval()


@pytest.mark.parametrize(
    "spec",
    [
        ArchSpec(stages=[3, 2, 4], input_size=8, in_channels=1),
        ArchSpec(stages=[2, 2, 2], shortcut="zeros", input_size=16),
        ArchSpec(module="nasnet", stages=[3, 2, 2], widths=[4, 8, 16], input_size=16),
        ArchSpec(module="bottleneck", stages=[2, 1, 1, 2], widths=[4, 4, 8, 8], stem_kind="cifar", input_size=16),
    ],
)
def test_candidate_with_donor_counts_reproduces_the_donor(spec):
    donor = _donor(spec)
    cand = transfer_weights(donor, spec)
    assert cand is not donor and not cand.training
    x = torch.randn(3, spec.in_channels, spec.input_size, spec.input_size)
    with torch.no_grad():
        assert torch.equal(cand(x), donor(x))


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_shallower_candidate_takes_first_or_spread_blocks():
    spec = ArchSpec(stages=[5, 4, 3], input_size=8, in_channels=1)
    donor = _donor(spec)
    cand = transfer_weights(donor, spec.with_stages([2, 4, 1]))
    assert [len(s) for s in cand.stages] == [2, 4, 1]
    for i, idx in enumerate([[0, 1], [0, 1, 2, 3], [0]]):
        for j, k in enumerate(idx):
            assert _same(cand.stages[i][j], donor.stages[i][k])
    assert _same(cand.conv1, donor.conv1) and _same(cand.bn1, donor.bn1) and _same(cand.fc, donor.fc)
    spread = transfer_weights(donor, spec.with_stages([3, 2, 2]), pick="spread")
    for i, idx in enumerate([[0, 2, 4], [0, 3], [0, 2]]):
        for j, k in enumerate(idx):
            assert _same(spread.stages[i][j], donor.stages[i][k])
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert spread(x).shape == (2, 10)


def test_pick_indices():
    assert pick_indices(9, 3) == [0, 1, 2]
    assert pick_indices(9, 3, "spread") == [0, 4, 8]
    assert pick_indices(9, 1, "spread") == [0]
    assert pick_indices(4, 4, "spread") == [0, 1, 2, 3]
    with pytest.raises(InputError, match="pick"):
        pick_indices(4, 2, "random")


def test_nasnet_spread_keeps_position_specific_cells():
    spec = ArchSpec(module="nasnet", stages=[4, 4, 4], widths=[4, 8, 8], input_size=8)
    donor = _donor(spec)
    cand = transfer_weights(donor, spec.with_stages([2, 3, 2]), pick="spread")
    assert _same(cand.stages[0][1], donor.stages[0][1])  # the cell after the stem cannot take cell 3
    assert _same(cand.stages[1][2], donor.stages[1][3])
    with pytest.raises(InputError, match="at least 2 cells"):
        transfer_weights(donor, spec.with_stages([1, 2, 2]))


def test_transfer_errors():
    spec = ArchSpec(stages=[2, 2, 2], input_size=8, in_channels=1)
    donor = _donor(spec)
    with pytest.raises(InputError, match=r"stages\[1\] = 3 is deeper"):
        transfer_weights(donor, spec.with_stages([2, 3, 2]))
    with pytest.raises(InputError, match="module"):
        transfer_weights(donor, ArchSpec(module="nasnet", stages=[1, 1, 1], input_size=8, in_channels=1))
    with pytest.raises(InputError, match="stages"):
        transfer_weights(donor, ArchSpec(stages=[1, 1], input_size=8, in_channels=1))
    with pytest.raises(InputError, match="num_classes"):
        transfer_weights(donor, ArchSpec(stages=[1, 1, 1], num_classes=100, input_size=8, in_channels=1))
    with pytest.raises(InputError, match="donor"):
        transfer_weights(torch.nn.Linear(2, 2), spec)
    with pytest.raises(InputError, match="pick"):
        transfer_weights(donor, spec, pick="last")


def test_load_donor_round_trip_and_errors(tmp_path):
    spec = ArchSpec(stages=[2, 1, 2], input_size=8, in_channels=1)
    donor = _donor(spec)
    path = save_model(donor, tmp_path / "donor.pt")
    loaded = load_donor(path)
    cand = transfer_weights(loaded, spec.with_stages([1, 1, 1]))
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), donor(x))
        assert cand(x).shape == (2, 10)
    with pytest.raises(InputError, match="missing.pt"):
        load_donor(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match="corrupt.pt"):
        load_donor(corrupt)


def test_crafted_donor_spec_is_refused_before_allocating(tmp_path):
    """A donor (or any model file) whose spec asks for a million channels is refused on the meta device."""
    import json

    from swnas.models import load

    spec = ArchSpec(stages=[1, 1, 1], input_size=8, in_channels=1)
    path = save_model(_donor(spec), tmp_path / "donor.pt")
    payload = torch.load(path, weights_only=True)
    forged = json.loads(payload["spec"])
    forged["widths"] = [10**6] * 3
    payload["spec"] = json.dumps(forged)
    torch.save(payload, path)
    for loader in (load_donor, load):
        with pytest.raises(InputError, match=r"donor\.pt.*spec does not match its weights"):
            loader(path)
