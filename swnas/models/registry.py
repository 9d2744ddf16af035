"""The module-type table: everything that differs between module types, one record per type.

Every rule that depends on the module type of a network (which class builds it, its default
widths and stem, how its depth is counted, how it grows in inherit mode, which of its modules'
outputs a stage scores, the search defaults, the names of the paper's baselines) reads the
:class:`ModuleType` record of :data:`MODULE_TYPES`; no other part of swnas compares a module
name with a literal. Adding a module type is one file with its network class and one record
here (``docs/CONTRACTS.md``, "Add a module type").

The table imports no torch: the builder is named ``"package.module:Class"`` and imported on
first use, so the spec and the names the command line lists load without torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from swnas.errors import InputError

if TYPE_CHECKING:
    from torch import nn

    from swnas.models.spec import ArchSpec

__all__ = ["ModuleType", "MODULE_TYPES", "module_type"]


@dataclass(frozen=True)
class ModuleType:
    """What one module type is: its builder and every rule that depends on the type.

    Attributes
    ----------
    name : str
        ``ArchSpec.module`` and ``swnas search --module``.
    builder : str
        ``"package.module:Class"``; ``Class(spec)`` builds the network (with ``.spec`` and
        ``.stages``, one ``nn.Sequential`` of modules per stage).
    base_width : int
        Default width of stage i is ``base_width * 2**i``.
    stem_width : callable
        ``stem_width(spec) -> int``: the stem's output channels when ``spec.stem`` is ``None``.
    stem_kind : {"cifar", "imagenet"}
        The stem when ``spec.stem_kind`` is ``None``.
    depth : callable
        ``depth(stages) -> int``: weighted layers on the longest path (``ArchSpec.depth``).
    search_stages, search_delta : int
        ``swnas search`` defaults of ``--stages`` and ``--delta`` for this type.
    grow_bn : str or None
        Inherit mode (:mod:`swnas.models.grow`): the attribute of a module's last BatchNorm on its
        residual branch; zeroing its scale and shift makes an added module the identity.
        ``None``: the type cannot grow by inheritance, and ``no_growth`` says why.
    no_growth : str
        Why the type cannot grow (one sentence), when ``grow_bn`` is ``None``.
    stage_output : str or None
        The attribute of a stage's last module whose forward output is the stage's scored output
        (``"preact"``: the residual sum before a block's final activation); a module without
        that attribute, or ``None``, scores the module's own output.
    cells : bool
        Whether ``ArchSpec.cell`` (the NASNet cell variant) applies.
    transfer_hint : str
        Appended to the error when a donor's stem, head or transition weights do not fit a
        candidate (``swnas.training.transfer``).
    baseline : tuple or None
        ``(prefix, depth_rule, applies)`` names a uniform network as the paper's tables do:
        ``prefix + str(depth)`` where ``depth_rule`` is ``"depth"`` (``ArchSpec.depth``) or
        ``"paper"`` (:func:`swnas.models.costs.paper_depth`), when ``applies(spec)`` is true.
    """

    name: str
    builder: str
    base_width: int
    stem_width: Callable[[ArchSpec], int]
    stem_kind: str
    depth: Callable[[list[int]], int]
    search_stages: int = 3
    search_delta: int = 2
    grow_bn: str | None = None
    no_growth: str = ""
    stage_output: str | None = "preact"
    cells: bool = False
    transfer_hint: str = ""
    baseline: tuple[str, str, Callable[[ArchSpec], bool]] | None = None

    def build(self, spec: ArchSpec) -> nn.Module:
        """The network ``spec`` describes (imports the builder's module on first use)."""
        module, _, cls = self.builder.partition(":")
        return getattr(importlib.import_module(module), cls)(spec)

    def why_not_growable(self) -> str | None:
        """``None`` when networks of this type grow by inheritance, else why not (one sentence)."""
        if self.grow_bn is not None:
            return None
        return self.no_growth or f"module type {self.name!r} has no function-preserving growth rule"


def _first_width(spec: ArchSpec) -> int:
    return spec.stage_widths[0]


def _nasnet_stem(spec: ArchSpec) -> int:
    return spec.stage_widths[0] if spec.cell == "keras" else 3 * spec.stage_widths[0]


#: The module types, by name. One record per type; the order is the order the CLI lists them.
MODULE_TYPES: dict[str, ModuleType] = {
    t.name: t
    for t in (
        ModuleType(
            "basic",
            "swnas.models.resnet:ResNetCifar",
            base_width=16,
            stem_width=_first_width,
            stem_kind="cifar",
            depth=lambda stages: 2 * sum(stages) + 2,
            grow_bn="bn2",
            baseline=("ResNet", "depth", lambda spec: spec.num_stages == 3),
        ),
        ModuleType(
            "bottleneck",
            "swnas.models.resnet:ResNetBottleneck",
            base_width=64,
            stem_width=lambda spec: 64,
            stem_kind="imagenet",
            depth=lambda stages: 3 * sum(stages) + 2,
            search_stages=4,
            grow_bn="bn3",
        ),
        ModuleType(
            "nasnet",
            "swnas.models.nasnet:NASNetCifar",
            base_width=16,
            stem_width=_nasnet_stem,
            stem_kind="cifar",
            depth=lambda stages: sum(stages) + len(stages) - 1,
            search_delta=1,
            stage_output=None,
            cells=True,
            no_growth=(
                "NASNet cells have no identity branch (a cell outputs the concatenation of its nodes), so an "
                "added cell cannot start as the identity of its input"
            ),
            transfer_hint=(
                "; a NASNet stage of one cell feeds the next reduction cell inputs of other widths than "
                "the donor's, so give every stage at least 2 cells or the donor's own count"
            ),
            baseline=("NASNet", "paper", lambda spec: spec.cell == "keras"),
        ),
        ModuleType(
            "mbconv",
            "swnas.models.mbconv:MobileNetV2Cifar",
            base_width=16,
            stem_width=_first_width,
            stem_kind="cifar",
            depth=lambda stages: 3 * sum(stages) + 2,
            grow_bn="bn3",
        ),
    )
}


def module_type(name: Any) -> ModuleType:
    """The record of module type ``name``; an unknown name is an :class:`InputError` listing the known ones."""
    if not isinstance(name, str) or name not in MODULE_TYPES:
        raise InputError(f"module: unknown module type {name!r}; choose one of {', '.join(MODULE_TYPES)}")
    return MODULE_TYPES[name]
