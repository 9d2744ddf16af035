"""Network architectures: the spec (:class:`ArchSpec`), the builder and checkpoint I/O.

>>> from swnas.models import ArchSpec, build
>>> net = build(ArchSpec(module="basic", stages=[9, 9, 9]))   # ResNet-56
>>> len(net.stages), len(net.stages[0])
(3, 9)
"""

from __future__ import annotations

from typing import Any

from swnas.models.builder import build, stage_output_modules
from swnas.models.registry import MODULE_TYPES, ModuleType, module_type
from swnas.models.spec import ArchSpec

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
