"""Network architectures: the spec (:class:`ArchSpec`), the builder and checkpoint I/O.

>>> from swnas.models import ArchSpec, build
>>> net = build(ArchSpec(module="basic", stages=[9, 9, 9]))   # ResNet-56
>>> len(net.stages), len(net.stages[0])
(3, 9)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from swnas.errors import InputError
from swnas.models.registry import MODULE_TYPES, ModuleType, module_type
from swnas.models.spec import ArchSpec

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "ArchSpec",
    "MODULE_TYPES",
    "ModuleType",
    "module_type",
    "build",
    "save_model",
    "load",
    "NormalizedInputs",
    "stage_output_modules",
    "initialize",
    "paper_depth",
    "keras_flops",
    "check_size",
]


def build(spec: ArchSpec) -> nn.Module:
    """Build the network that ``spec`` describes (freshly initialised, in training mode).

    Returns
    -------
    torch.nn.Module
        With ``.spec`` (the spec) and ``.stages`` (``nn.ModuleList``, one ``nn.Sequential`` of
        modules per stage).
    """
    if not isinstance(spec, ArchSpec):
        raise InputError(f"spec: expected an ArchSpec, got {type(spec).__name__}")
    return MODULE_TYPES[spec.module].build(spec)


def stage_output_modules(model: nn.Module) -> list[nn.Module]:
    """The module whose forward output is each stage's scored output.

    The module type's ``stage_output`` attribute of the stage's last module
    (:class:`~swnas.models.registry.ModuleType`): for residual blocks their ``preact`` identity
    (the residual sum before the final ReLU); NASNet: the stage's last cell (its concatenated
    output); a module without the attribute: the module itself.
    """
    from torch import nn

    stages = getattr(model, "stages", None)
    if not isinstance(stages, nn.ModuleList) or len(stages) == 0:
        raise InputError("model: expected a network built by swnas.models.build (it has no .stages)")
    spec = getattr(model, "spec", None)
    hook = MODULE_TYPES[spec.module].stage_output if isinstance(spec, ArchSpec) else "preact"
    out = []
    for stage in stages:
        last = stage[-1]
        out.append(getattr(last, hook, last) if hook else last)
    return out


#: names imported from a submodule that needs torch on first use, so that the spec (and the
#: module names the command line lists) import without torch (the ``search`` extra, README)
_LAZY = {
    "keras_flops": "costs",
    "paper_depth": "costs",
    "initialize": "init",
    "NormalizedInputs": "io",
    "load": "io",
    "save_model": "io",
    "check_size": "io",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
