"""Building a network from its spec, and the modules whose outputs are its stages' outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from swnas.errors import InputError
from swnas.models.registry import MODULE_TYPES
from swnas.models.spec import ArchSpec

if TYPE_CHECKING:
    from torch import nn

__all__ = ["build", "stage_output_modules"]


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
        last = cast("nn.Sequential", stage)[-1]
        out.append(getattr(last, hook, last) if hook else last)
    return out
