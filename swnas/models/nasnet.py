"""NASNet-A for CIFAR: normal cells stacked per stage, a reduction cell between stages.

The cells follow the NASNet-A genotype as the DARTS code base writes it: each cell takes the
outputs of the two previous cells, builds 5 nodes, each the sum of two operations on earlier
states, and concatenates the nodes that no other node consumes (normal: all 5; reduction: 3).
The stem is a 3x3 convolution + BN to ``3 * C`` channels; channels double at each reduction.

``spec.cell == "keras"`` renders the same genotype as the Keras NASNet-A of the paper's released
models: normal cells concatenate the (adjusted) previous-previous input with their 5 nodes, reduction
cells concatenate 4 nodes (all but the first), the previous-previous input is adjusted only when its
resolution or channels differ from the cell's, the stem has ``C`` channels and a ReLU precedes the
pooling head (``docs/protocol.md``).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from swnas.models.spec import ArchSpec

__all__ = ["NASNET_NORMAL", "NASNET_REDUCE", "Cell", "NASNetCifar"]

# (operation, input state) pairs; node k (k = 2..6) sums pairs 2(k-2) and 2(k-2)+1.
# States 0 and 1 are the previous-previous and previous cell outputs.
NASNET_NORMAL: tuple[tuple[str, int], ...] = (
    ("sep_conv_5x5", 1),
    ("sep_conv_3x3", 0),
    ("sep_conv_5x5", 0),
    ("sep_conv_3x3", 0),
    ("avg_pool_3x3", 1),
    ("skip_connect", 0),
    ("avg_pool_3x3", 0),
    ("avg_pool_3x3", 0),
    ("sep_conv_3x3", 1),
    ("skip_connect", 1),
)
NASNET_NORMAL_CONCAT = (2, 3, 4, 5, 6)
NASNET_REDUCE: tuple[tuple[str, int], ...] = (
    ("sep_conv_5x5", 1),
    ("sep_conv_7x7", 0),
    ("max_pool_3x3", 1),
    ("sep_conv_7x7", 0),
    ("avg_pool_3x3", 1),
    ("sep_conv_5x5", 0),
    ("skip_connect", 3),
    ("avg_pool_3x3", 2),
    ("sep_conv_3x3", 2),
    ("max_pool_3x3", 1),
)
NASNET_REDUCE_CONCAT = (4, 5, 6)
# The Keras rendering's concatenations (state 0 is the adjusted previous-previous input).
KERAS_NORMAL_CONCAT = (0, 2, 3, 4, 5, 6)
KERAS_REDUCE_CONCAT = (3, 4, 5, 6)


class ReLUConvBN(nn.Module):
    """ReLU -> conv (no bias) -> BN."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False), nn.Conv2d(cin, cout, kernel, stride, padding, bias=False), nn.BatchNorm2d(cout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing pixels: two offset 1x1 stride-2 convolutions, concatenated."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_a = nn.Conv2d(cin, cout // 2, 1, 2, bias=False)
        self.conv_b = nn.Conv2d(cin, cout - cout // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        # the branch offset by one pixel, zero-filled at the bottom and right: for odd sides its last
        # output is 0 (the conv has no bias), and a 1 x 1 map still reduces (to 1 x 1)
        shifted = nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(shifted)], dim=1))


class SepConv(nn.Module):
    """Two stacked depthwise-separable convolutions (ReLU-dw-pw-BN), the stride on the first.

    ``separable_pairs`` lists the (depthwise, pointwise) convolutions that together form one
    separable convolution (one Keras ``SeparableConv2D`` layer).
    """

    def __init__(self, c: int, kernel: int, stride: int) -> None:
        super().__init__()
        pad = kernel // 2
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel, stride, pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel, 1, pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c),
        )
        self.separable_pairs = ((self.op[1], self.op[2]), (self.op[5], self.op[6]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


def _make_op(name: str, c: int, stride: int) -> nn.Module:
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride, 1, count_include_pad=False)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride, 1)
    if name.startswith("sep_conv_"):
        return SepConv(c, int(name[-1]), stride)
    raise ValueError(f"unknown NASNet operation {name!r}")  # pragma: no cover - genotype is fixed


def _drop_path(x: torch.Tensor, p: float) -> torch.Tensor:
    keep = 1.0 - p
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class Cell(nn.Module):
    """One NASNet-A cell; ``forward(s0, s1)`` with s0, s1 the two previous cell outputs.

    Parameters
    ----------
    c_pp, c_p : int
        Channels of s0 and s1. c : int  channels of every node. reduction : bool
    reduction_prev : bool
        Whether s0 has twice the resolution of s1 (the previous cell was a reduction cell).
    variant : {"darts", "keras"}
        The concatenation and input adjustment of :class:`swnas.models.ArchSpec`'s ``cell``.
    """

    def __init__(
        self,
        c_pp: int,
        c_p: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        drop_path: float = 0.0,
        variant: str = "darts",
    ):
        super().__init__()
        self.reduction = reduction
        self.drop_path = drop_path
        self.preprocess0: nn.Module
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(c_pp, c)
        elif variant == "keras" and c_pp == c:
            self.preprocess0 = nn.Identity()
        else:
            self.preprocess0 = ReLUConvBN(c_pp, c, 1)
        self.preprocess1 = ReLUConvBN(c_p, c, 1)
        genotype = NASNET_REDUCE if reduction else NASNET_NORMAL
        if variant == "keras":
            self.concat: tuple[int, ...] = KERAS_REDUCE_CONCAT if reduction else KERAS_NORMAL_CONCAT
        else:
            self.concat = NASNET_REDUCE_CONCAT if reduction else NASNET_NORMAL_CONCAT
        self.inputs = tuple(idx for _, idx in genotype)
        self.ops = nn.ModuleList(_make_op(name, c, 2 if (reduction and idx < 2) else 1) for name, idx in genotype)
        self.out_channels = c * len(self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(len(self.ops) // 2):
            parts = []
            for t in (2 * k, 2 * k + 1):
                h = self.ops[t](states[self.inputs[t]])
                if self.training and self.drop_path > 0 and not isinstance(self.ops[t], nn.Identity):
                    h = _drop_path(h, self.drop_path)
                parts.append(h)
            states.append(parts[0] + parts[1])
        return torch.cat([states[i] for i in self.concat], dim=1)


class NASNetCifar(nn.Module):
    """NASNet-A with ``spec.stages[i]`` normal cells in stage i and a reduction cell between stages.

    Attributes
    ----------
    spec : ArchSpec
    stages : nn.ModuleList
        One ``nn.Sequential`` of normal :class:`Cell` per stage (a container: cells take two inputs,
        so the model's forward runs them, not the Sequential).
    reductions : nn.ModuleList
        The S - 1 reduction cells (the stage-transition modules).
    """

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        widths = spec.stage_widths
        c_stem = spec.stem_width
        self.stem = nn.Sequential(nn.Conv2d(spec.in_channels, c_stem, 3, 1, 1, bias=False), nn.BatchNorm2d(c_stem))
        c_pp, c_p = c_stem, c_stem
        reduction_prev = False
        stages, reductions = [], []
        for i, (m, c) in enumerate(zip(spec.stages, widths)):
            if i > 0:
                cell = Cell(c_pp, c_p, c, True, reduction_prev, spec.drop_path, spec.cell)
                reductions.append(cell)
                c_pp, c_p, reduction_prev = c_p, cell.out_channels, True
            cells = []
            for _ in range(m):
                cell = Cell(c_pp, c_p, c, False, reduction_prev, spec.drop_path, spec.cell)
                cells.append(cell)
                c_pp, c_p, reduction_prev = c_p, cell.out_channels, False
            stages.append(nn.Sequential(*cells))
        self.stages = nn.ModuleList(stages)
        self.reductions = nn.ModuleList(reductions)
        self.head_relu = nn.ReLU() if spec.cell == "keras" else nn.Identity()
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for i, stage in enumerate(self.stages):
            if i > 0:
                s0, s1 = s1, self.reductions[i - 1](s0, s1)
            for cell in cast(nn.Sequential, stage):
                s0, s1 = s1, cell(s0, s1)
        return self.classifier(torch.flatten(self.global_pooling(self.head_relu(s1)), 1))
