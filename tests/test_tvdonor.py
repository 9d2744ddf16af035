"""torchvision ResNets as donors: found in the torch cache, loaded into swnas bottleneck networks, clear errors."""

from __future__ import annotations

import pytest
import torch

from swnas.errors import InputError
from swnas.training.torchvision_donor import is_torchvision_donor, load_torchvision_donor, weights_file


def test_cached_weights_load_into_the_swnas_network(tmp_path, monkeypatch):
    from torchvision.models import resnet50

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(InputError, match="nothing is downloaded.*resnet50"):
        weights_file("torchvision:resnet50")
    torch.manual_seed(0)
    tv = resnet50(weights=None)  # torchvision's own network, random weights: same names and shapes
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(tv.state_dict(), cache / "resnet50-0676ba61.pth")  # the IMAGENET1K_V1 file name
    assert weights_file("torchvision:resnet50").name == "resnet50-0676ba61.pth"
    donor = load_torchvision_donor("torchvision:resnet50")
    assert donor.spec.stages == [3, 4, 6, 3] and donor.spec.module == "bottleneck"
    for k, v in tv.state_dict().items():
        assert torch.equal(donor.state_dict()[k], v)
    x = torch.randn(1, 3, 64, 64)
    tv.eval()
    assert torch.allclose(donor(x), tv(x), atol=1e-5)


def test_names_and_search_option(tmp_path, monkeypatch):
    from swnas.search import SearchConfig

    assert is_torchvision_donor("torchvision:resnet101") and not is_torchvision_donor("donor.pt")
    with pytest.raises(InputError, match="unknown torchvision donor"):
        weights_file("torchvision:vgg16")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "resnet152-f82ba261.pth").write_bytes(b"truncated")
    with pytest.raises(InputError, match="does not hold torchvision:resnet152"):
        load_torchvision_donor("torchvision:resnet152")
    # the search accepts the name without a file (the donor is looked up when the search starts)
    assert (
        SearchConfig(module="bottleneck", transfer="torchvision:resnet50").resolved().transfer == "torchvision:resnet50"
    )
