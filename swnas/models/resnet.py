"""Residual networks: the CIFAR ResNet v1 (``basic``) and the ImageNet ResNet-50 family (``bottleneck``).

Every block ends ``out = preact(branch + shortcut); relu(out)``; ``preact`` is an ``nn.Identity``
whose forward hooks see the residual sum before the block's final ReLU — the point the original
code scores (DESIGN 3.4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from swnas.models.spec import ArchSpec

__all__ = ["BasicBlock", "Bottleneck", "ResNetCifar", "ResNetBottleneck", "ZeroPadShortcut"]


class ZeroPadShortcut(nn.Module):
    """Option-A shortcut: subsample by ``stride`` and zero-pad the new channels (no parameters)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_channels - self.in_channels
        if extra > 0:
            x = F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))
        return x


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, add the shortcut, ReLU (ResNet v1, as in the original code)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, shortcut: str = "projection") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module
        if stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        elif shortcut == "projection":  # the original: Conv2D(1x1, stride) with bias, no BN
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, 0, bias=True)
        elif shortcut == "projection_bn":
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, 0, bias=False), nn.BatchNorm2d(out_channels)
            )
        else:
            self.shortcut = ZeroPadShortcut(in_channels, out_channels, stride)
        self.preact = nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = self.preact(out + self.shortcut(x))
        return self.relu(out)


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck (stride on the 3x3), same parameter names.

    The extra ``preact`` identity holds no parameters, so the state dict matches torchvision's.
    """

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out, 1, stride, bias=False), nn.BatchNorm2d(out))
        self.preact = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = self.preact(out + identity)
        return self.relu(out)


def _init_resnet(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _stem(spec: ArchSpec) -> tuple[nn.Module, nn.Module, nn.Module, nn.Module]:
    """(conv, bn, relu, pool) of the stem; pool is Identity for the CIFAR stem."""
    w = spec.stem_width
    if spec.resolved_stem_kind == "imagenet":
        conv = nn.Conv2d(spec.in_channels, w, 7, 2, 3, bias=False)
        pool: nn.Module = nn.MaxPool2d(3, 2, 1)
    else:
        conv = nn.Conv2d(spec.in_channels, w, 3, 1, 1, bias=False)
        pool = nn.Identity()
    return conv, nn.BatchNorm2d(w), nn.ReLU(inplace=True), pool


class ResNetCifar(nn.Module):
    """The CIFAR ResNet v1 of the original code for any number of stages and blocks.

    stem (conv3x3-BN-ReLU) -> S stages (the first block of stages 2..S has stride 2 and a
    shortcut of kind ``spec.shortcut``) -> global average pooling -> linear. The original pools
    with an 8x8 window, which is global average pooling on the 8x8 maps of 32x32 inputs.

    Attributes
    ----------
    spec : ArchSpec
    stages : nn.ModuleList
        One ``nn.Sequential`` of :class:`BasicBlock` per stage.
    """

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        self.conv1, self.bn1, self.relu, self.maxpool = _stem(spec)
        widths = spec.stage_widths
        cin = spec.stem_width
        stages = []
        for i, (m, w) in enumerate(zip(spec.stages, widths)):
            blocks = []
            for j in range(m):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(cin, w, stride, spec.shortcut))
                cin = w
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, spec.num_classes)
        _init_resnet(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in self.stages:
            x = stage(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


class ResNetBottleneck(nn.Module):
    """ResNet-50-style network; with ``stages=[3, 4, 6, 3]`` its state dict is torchvision's resnet50.

    The stages are registered as ``layer1 .. layerS`` (torchvision's names); ``stages`` is a view
    of them as an ``nn.ModuleList``.
    """

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        self.conv1, self.bn1, self.relu, self.maxpool = _stem(spec)
        cin = spec.stem_width
        for i, (m, planes) in enumerate(zip(spec.stages, spec.stage_widths)):
            blocks = []
            for j in range(m):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(Bottleneck(cin, planes, stride))
                cin = planes * Bottleneck.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, spec.num_classes)
        _init_resnet(self)

    @property
    def stages(self) -> nn.ModuleList:
        """The stages (``layer1 .. layerS``) as a list; not registered a second time."""
        return nn.ModuleList([getattr(self, f"layer{i + 1}") for i in range(len(self.spec.stages))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(len(self.spec.stages)):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))
