"""The architecture spec: a small, JSON-serialisable description from which a network is built."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from swnas.errors import InputError
from swnas.models.registry import MODULE_TYPES, module_type

__all__ = ["ArchSpec", "CELL_VARIANTS", "MODULE_TYPES", "SHORTCUTS", "STEM_KINDS"]

SHORTCUTS = ("projection", "projection_bn", "zeros")
STEM_KINDS = ("cifar", "imagenet")
CELL_VARIANTS = ("darts", "keras")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass
class ArchSpec:
    """A network of S stages of residual blocks or NASNet cells.

    Every field but ``module`` and ``stages`` defaults to CIFAR-10 (32x32 RGB, 10 classes).

    Parameters
    ----------
    module : str
        A name of :data:`swnas.models.registry.MODULE_TYPES`. ``basic``: the CIFAR ResNet v1
        block of the original code (conv-BN-ReLU-conv-BN, add, ReLU). ``bottleneck``: the
        ImageNet ResNet-50 block (torchvision-compatible state dict). ``nasnet``: NASNet-A normal
        cells, reduction cells between stages. ``mbconv``: the MobileNetV2 inverted residual
        (:mod:`swnas.models.mbconv`).
    stages : list of int
        Modules per stage, m_i >= 1. ``[9, 9, 9]`` with ``basic`` is ResNet-56.
    widths : list of int or None
        Per-stage widths (``basic``: block channels, default 16, 32, 64, ...; ``bottleneck``:
        bottleneck planes, the block outputs 4x, default 64, 128, 256, 512; ``nasnet``: cell
        channels C per node, default 16, 32, 64; ``mbconv``: block outputs, default 16, 32,
        64). ``None`` takes the default.
    stem : int or None
        Stem output channels (``basic``, ``mbconv``: widths[0]; ``bottleneck``: 64; ``nasnet``:
        3 * widths[0]).
    num_classes, input_size, in_channels : int
        Classifier outputs, square input side in pixels, input channels.
    shortcut : {"projection", "projection_bn", "zeros"}
        ``basic`` only: the shortcut of the stride-2 block opening stages 2..S. ``projection`` is
        the original code's 1x1 stride-2 convolution with bias and no BN; ``projection_bn`` adds BN
        (no bias); ``zeros`` is option A (subsample, zero-pad the new channels, no parameters).
    stem_kind : {"cifar", "imagenet"} or None
        ``cifar``: 3x3 stride-1 convolution; ``imagenet``: 7x7 stride-2 convolution + 3x3 stride-2
        max pool. ``None``: ``imagenet`` for ``bottleneck``, ``cifar`` otherwise.
    drop_path : float
        ``nasnet`` only: drop-path probability during training (0 disables it).
    cell : {"darts", "keras"}
        ``nasnet`` only: which rendering of the NASNet-A cells. ``darts``: as the DARTS code base
        writes the genotype (normal cells concatenate their 5 nodes, reduction cells 3; stem
        ``3 * widths[0]``). ``keras``: as the Keras NASNet-A of the paper's released models (normal
        cells also concatenate their adjusted previous-previous input, 6 x C channels; reduction
        cells concatenate 4 nodes; the previous-previous input is adjusted only when its shape
        differs; ReLU before the pooling head; stem ``widths[0]``). See ``docs/protocol.md``.

    Examples
    --------
    >>> ArchSpec(stages=[9, 9, 9]).depth
    56
    >>> ArchSpec.from_json(ArchSpec(stages=[2, 3, 4]).to_json()).stages
    [2, 3, 4]
    """

    module: str = "basic"
    stages: list[int] = field(default_factory=lambda: [9, 9, 9])
    widths: list[int] | None = None
    stem: int | None = None
    num_classes: int = 10
    input_size: int = 32
    in_channels: int = 3
    shortcut: str = "projection"
    stem_kind: str | None = None
    drop_path: float = 0.0
    cell: str = "darts"

    def __post_init__(self) -> None:
        module_type(self.module)  # an unknown name: an error listing the known ones
        if isinstance(self.stages, tuple):
            self.stages = list(self.stages)
        if not isinstance(self.stages, list) or len(self.stages) == 0:
            raise InputError(f"stages: expected a non-empty list of module counts, got {self.stages!r}")
        self.stages = [int(s) if isinstance(s, np.integer) else s for s in self.stages]
        for i, s in enumerate(self.stages):
            if not _is_int(s) or s < 1:
                raise InputError(f"stages[{i}]: every stage needs at least one module, got {s!r}")
        if self.widths is not None:
            if isinstance(self.widths, tuple):
                self.widths = list(self.widths)
            if not isinstance(self.widths, list) or len(self.widths) != len(self.stages):
                raise InputError(
                    f"widths: expected {len(self.stages)} per-stage widths (one per stage), got {self.widths!r}"
                )
            for i, w in enumerate(self.widths):
                if not _is_int(w) or w < 1:
                    raise InputError(f"widths[{i}]: must be a positive integer, got {w!r}")
        if self.stem is not None and (not _is_int(self.stem) or self.stem < 1):
            raise InputError(f"stem: must be a positive integer or None, got {self.stem!r}")
        for name in ("num_classes", "input_size", "in_channels"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                raise InputError(f"{name}: must be a positive integer, got {v!r}")
        if self.num_classes < 2:
            raise InputError(f"num_classes: needs at least 2 classes, got {self.num_classes}")
        if self.shortcut not in SHORTCUTS:
            raise InputError(f"shortcut: unknown shortcut {self.shortcut!r}; choose one of {', '.join(SHORTCUTS)}")
        if self.stem_kind is not None and self.stem_kind not in STEM_KINDS:
            raise InputError(
                f"stem_kind: unknown stem {self.stem_kind!r}; choose one of {', '.join(STEM_KINDS)} or None"
            )
        if (
            isinstance(self.drop_path, bool)
            or not isinstance(self.drop_path, (int, float))
            or not 0.0 <= self.drop_path < 1.0
        ):
            raise InputError(f"drop_path: must be a probability in [0, 1), got {self.drop_path!r}")
        self.drop_path = float(self.drop_path)
        if self.cell not in CELL_VARIANTS:
            raise InputError(
                f"cell: unknown NASNet cell variant {self.cell!r}; choose one of {', '.join(CELL_VARIANTS)}"
            )
        if self.cell != "darts" and not MODULE_TYPES[self.module].cells:
            takers = ", ".join(repr(n) for n, t in MODULE_TYPES.items() if t.cells)
            raise InputError(f"cell: {self.cell!r} applies to module {takers} only, not {self.module!r}")

    # ------------------------------------------------------------------ derived values
    @property
    def num_stages(self) -> int:
        """S, the number of stages."""
        return len(self.stages)

    @property
    def stage_widths(self) -> list[int]:
        """The per-stage widths with the module's defaults filled in."""
        if self.widths is not None:
            return list(self.widths)
        base = MODULE_TYPES[self.module].base_width
        return [base * 2**i for i in range(len(self.stages))]

    @property
    def stem_width(self) -> int:
        """Stem output channels with the module's default filled in."""
        if self.stem is not None:
            return self.stem
        return MODULE_TYPES[self.module].stem_width(self)

    @property
    def resolved_stem_kind(self) -> str:
        """``stem_kind`` with the module's default filled in."""
        if self.stem_kind is not None:
            return self.stem_kind
        return MODULE_TYPES[self.module].stem_kind

    @property
    def depth(self) -> int:
        """Weighted layers on the longest path, as ResNet names count them.

        ``basic``: 2 per block + stem + classifier (``[9, 9, 9]`` -> 56); ``bottleneck`` and
        ``mbconv``: 3 per block + 2 (``[3, 4, 6, 3]`` -> 50); ``nasnet``: the number of cells
        (normal + reduction); the rule is the module type's ``depth``.
        The paper's tables count depth otherwise for the networks they found:
        :func:`swnas.models.costs.paper_depth` (``docs/protocol.md``).
        """
        return MODULE_TYPES[self.module].depth(list(self.stages))

    @property
    def name(self) -> str:
        """A short readable name, e.g. ``basic[9-9-9]``."""
        return f"{self.module}[{'-'.join(map(str, self.stages))}]"

    # ------------------------------------------------------------------ variants
    def with_stages(self, stages: list[int]) -> ArchSpec:
        """The same spec with other per-stage counts (same number of stages if widths are set)."""
        return replace(self, stages=list(stages))

    def with_width(self, width: int) -> ArchSpec:
        """The same spec with first-stage width ``width``, doubled at every later stage.

        For ``nasnet`` this is the cell filters of the first stage (the paper's NASNet baselines
        use 32, i.e. widths 32, 64, 128).
        """
        if not _is_int(width) or width < 1:
            raise InputError(f"width: must be a positive integer, got {width!r}")
        return replace(self, widths=[width * 2**i for i in range(len(self.stages))])

    def deepened(self, delta: int) -> ArchSpec:
        """Every stage deepened by ``delta`` modules (the search's temporary network T)."""
        if not _is_int(delta) or delta < 0:
            raise InputError(f"delta: must be a non-negative integer, got {delta!r}")
        return self.with_stages([s + delta for s in self.stages])

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """A plain dict of JSON types (lists copied); ``cell`` only when it is not the default, so
        specs written before the field existed keep their exact JSON."""
        d = asdict(self)
        if d["cell"] == "darts":
            del d["cell"]
        d["stages"] = list(self.stages)
        d["widths"] = None if self.widths is None else list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArchSpec:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        if not isinstance(d, dict):
            raise InputError(f"spec: expected a dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"spec: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**d)

    def to_json(self, indent: int | None = None) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        """Inverse of :meth:`to_json`."""
        try:
            d = json.loads(text)
        except (TypeError, json.JSONDecodeError) as e:
            raise InputError(f"spec: not valid JSON ({e})") from None
        return cls.from_dict(d)
