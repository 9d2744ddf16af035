"""MobileNetV2 inverted residuals (``mbconv``): 1x1 expansion, 3x3 depthwise, linear 1x1 projection.

A block (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018)
expands its ``C_in`` input channels to ``6 * C_in`` with a 1x1 convolution (BN, ReLU6), filters
them with a 3x3 depthwise convolution (BN, ReLU6; the stride is here) and projects them to
``C_out`` with a 1x1 convolution and BN and no activation (the linear bottleneck). When the stride
is 1 and ``C_in == C_out`` the input is added: ``out = preact(x + branch)``, where ``preact`` is an
``nn.Identity`` whose output is the stage's scored output; a block without the addition has no
``preact`` and its own output is scored. The network: a stem convolution (3x3, BN, ReLU6; stride 1
for ``stem_kind="cifar"``, 2 for ``"imagenet"``) to ``widths[0]`` channels, S stages whose first
block has stride 2 from stage 2 on, global average pooling and a linear classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from swnas.models.spec import ArchSpec

__all__ = ["EXPANSION", "InvertedResidual", "MobileNetV2Cifar"]

#: MobileNetV2's expansion factor t.
EXPANSION = 6


class InvertedResidual(nn.Module):
    """expand 1x1 (BN, ReLU6) -> depthwise 3x3 (BN, ReLU6) -> project 1x1 (BN), plus the input when shapes agree."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, expansion: int = EXPANSION) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.conv1 = nn.Conv2d(in_channels, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.conv3 = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and in_channels == out_channels
        if self.residual:
            self.preact = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = self.preact(x + out)
        return out


class MobileNetV2Cifar(nn.Module):
    """Stem, ``spec.stages[i]`` :class:`InvertedResidual` blocks of width ``spec.stage_widths[i]`` per stage, head.

    Attributes
    ----------
    spec : ArchSpec
    stages : nn.ModuleList
        One ``nn.Sequential`` of :class:`InvertedResidual` per stage.
    """

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        cin = spec.stem_width
        stride = 2 if spec.resolved_stem_kind == "imagenet" else 1
        self.stem = nn.Sequential(
            nn.Conv2d(spec.in_channels, cin, 3, stride, 1, bias=False), nn.BatchNorm2d(cin), nn.ReLU6(inplace=True)
        )
        stages = []
        for i, (m, w) in enumerate(zip(spec.stages, spec.stage_widths)):
            blocks = []
            for j in range(m):
                blocks.append(InvertedResidual(cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, spec.num_classes)
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out")
            elif isinstance(mod, nn.BatchNorm2d):
                nn.init.ones_(mod.weight)
                nn.init.zeros_(mod.bias)
            elif isinstance(mod, nn.Linear):
                nn.init.normal_(mod.weight, 0.0, 0.01)
                nn.init.zeros_(mod.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))
