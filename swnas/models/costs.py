"""Depth and FLOPs as the Stage-Wise NAS paper's tables count them (``docs/protocol.md``).

The paper's code counts costs on its Keras models:

* **depth** of a found network is the number of convolution layers: the stem, every convolution
  of every block or cell, the 1x1 projection shortcuts and the 1x1 cell-input adjustments, with a
  separable convolution (depthwise + pointwise) counted once; the classifier is not counted. The
  residual rows of Table III check it: ``[10, 12, 6]`` has depth 59, ``[10, 14, 8]`` 67, ``[6, 6, 6]``
  39 (``2 * sum(m) + 3`` for three stages). The hand-designed baselines keep their names
  (ResNet-56 is ``[9, 9, 9]``, whose count would be 57). The uniform NASNets named by this count
  are NASNet169 = ``[4, 4, 4]``, NASNet205 = ``[5, 5, 5]`` and NASNet241 = ``[6, 6, 6]`` (Keras cells).
* **FLOPs** sum ``H_out * W_out * C_in * C_out * k * k`` over every layer the code recognises as a
  convolution, plus ``in * out`` per dense layer. In the Keras version of the paper's code a
  separable convolution is a subclass of the convolution layer, so it is counted as a *full*
  ``k x k`` convolution of the same channels: for residual networks the figure equals the true
  multiply-accumulates (:func:`swnas.models.metrics.count_macs`), for NASNet it is several times larger.
"""

from __future__ import annotations

import torch
from torch import nn

from swnas.errors import InputError
from swnas.models.registry import MODULE_TYPES
from swnas.models.spec import ArchSpec

__all__ = ["paper_depth", "keras_flops", "baseline_name"]


def _meta_build(spec: ArchSpec) -> nn.Module:
    from swnas.models.builder import build

    with torch.device("meta"):
        return build(spec)


def _separable_pairs(model: nn.Module) -> dict[int, nn.Conv2d]:
    """id(pointwise conv) -> its depthwise partner, for every separable convolution in ``model``."""
    pairs: dict[int, nn.Conv2d] = {}
    for m in model.modules():
        for dw, pw in getattr(m, "separable_pairs", ()):
            pairs[id(pw)] = dw
    return pairs


def paper_depth(spec: ArchSpec) -> int:
    """Convolution layers as the paper's tables count them (separable = 1 layer, no classifier).

    Examples
    --------
    >>> paper_depth(ArchSpec(stages=[10, 12, 6]))
    59
    """
    if not isinstance(spec, ArchSpec):
        raise InputError(f"spec: expected an ArchSpec, got {type(spec).__name__}")
    model = _meta_build(spec)
    depthwise = {id(dw) for dw in _separable_pairs(model).values()}
    return sum(1 for m in model.modules() if isinstance(m, nn.Conv2d) and id(m) not in depthwise)


def keras_flops(model: nn.Module, input_size: int | None = None, in_channels: int | None = None) -> int:
    """The paper's "FLOPs": every convolution as a full one, separable ones included, plus dense layers.

    A separable convolution (depthwise k x k then pointwise 1 x 1) counts as
    ``H_out * W_out * C_in * C_out * k * k`` at the depthwise layer's output resolution, as the
    Keras counter of the paper's code does; use :func:`swnas.models.metrics.count_macs` for the true
    multiply-accumulates.
    """
    spec = getattr(model, "spec", None)
    if input_size is None or in_channels is None:
        if not isinstance(spec, ArchSpec):
            raise InputError("model: pass input_size and in_channels, or a network built by swnas.models.build")
        input_size = spec.input_size if input_size is None else input_size
        in_channels = spec.in_channels if in_channels is None else in_channels
    pairs = _separable_pairs(model)
    depthwise = {id(dw) for dw in pairs.values()}
    out_hw: dict[int, tuple[int, int]] = {}
    hooks = []

    def record(mod: nn.Module, _inp, out: torch.Tensor) -> None:
        out_hw[id(mod)] = (int(out.shape[-2]), int(out.shape[-1]))

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(record))
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        with torch.no_grad():
            model(torch.zeros(1, in_channels, input_size, input_size, device=device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    total = 0
    for m in model.modules():
        if isinstance(m, nn.Linear):
            total += m.in_features * m.out_features
        elif isinstance(m, nn.Conv2d) and id(m) not in depthwise and id(m) in out_hw:
            h, w = out_hw[id(m)]
            kh, kw = pairs[id(m)].kernel_size if id(m) in pairs else m.kernel_size
            total += h * w * m.in_channels * m.out_channels * kh * kw
    return total


def baseline_name(spec: ArchSpec) -> str:
    """The name a paper table gives a uniform network: ``ResNet56``, ``NASNet241``; else ``spec.name``.

    The module type's ``baseline`` rule (:class:`swnas.models.registry.ModuleType`) gives the
    prefix, which depth follows it and when it applies.
    """
    rule = MODULE_TYPES[spec.module].baseline
    if len(set(spec.stages)) == 1 and rule is not None:
        prefix, depth_rule, applies = rule
        if applies(spec):
            return f"{prefix}{paper_depth(spec) if depth_rule == 'paper' else spec.depth}"
    return spec.name
