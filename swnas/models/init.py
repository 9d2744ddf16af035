"""Weight initialisation schemes applied after :func:`swnas.models.build`.

``default`` keeps what the builders do (ResNets: Kaiming normal, fan-out; NASNet: PyTorch's
defaults). ``he_normal`` is the Keras ``he_normal`` of the paper's released code (Keras 2.1): every
convolution and dense kernel drawn from a normal distribution with standard deviation
``sqrt(2 / fan_in)``, truncated at two standard deviations, biases zero, BatchNorm scale 1 and
shift 0 (``docs/protocol.md``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from swnas.errors import InputError

__all__ = ["INIT_SCHEMES", "initialize"]

INIT_SCHEMES = ("default", "he_normal")


def _fan_in(weight: torch.Tensor) -> int:
    # conv: (out, in / groups, kh, kw); linear: (out, in)
    return int(weight[0].numel())


@torch.no_grad()
def initialize(model: nn.Module, scheme: str = "default", *, generator: torch.Generator | None = None) -> nn.Module:
    """Re-initialise ``model`` in place with ``scheme`` (see the module docstring); returns it.

    Parameters
    ----------
    model : torch.nn.Module
    scheme : {"default", "he_normal"}
    generator : torch.Generator, optional
        Source of randomness (default: the global generator, i.e. ``torch.manual_seed``).
    """
    if scheme not in INIT_SCHEMES:
        raise InputError(f"init: unknown initialisation {scheme!r}; choose one of {', '.join(INIT_SCHEMES)}")
    if not isinstance(model, nn.Module):
        raise InputError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if scheme == "default":
        return model
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            std = math.sqrt(2.0 / _fan_in(m.weight))
            nn.init.trunc_normal_(m.weight, 0.0, std, -2.0 * std, 2.0 * std, generator=generator)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            m.weight.fill_(1.0)
            m.bias.zero_()
    return model
