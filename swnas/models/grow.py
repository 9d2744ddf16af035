"""Function-preserving growth: a network with more (or fewer) modules per stage that inherits a trained one.

``swnas search --inherit`` (``docs/protocol.md``, "Inherit mode") builds T from A and the next A
from T with :func:`inherit`: every module both networks share keeps its trained weights and
BatchNorm statistics; a module added at the end of a stage starts as an identity of the residual
stream (its residual branch ends in a BatchNorm whose scale and shift are zero, named by the
module type's ``grow_bn``, so the block returns ``relu(0 + x) = x`` for the non-negative ``x``
every ResNet block outputs, and ``0 + x = x`` for a linear-bottleneck ``mbconv`` block); modules
beyond the new count are dropped. Growing therefore computes exactly the parent's function (in
evaluation mode, and in training mode too, since the zero scale also cancels the batch
statistics), the idea of Net2DeeperNet (Chen, Goodfellow & Shlens, ICLR 2016) and of network
morphism (Wei et al., ICML 2016) applied to residual blocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

import torch
from torch import nn

from swnas.errors import InputError
from swnas.models.registry import MODULE_TYPES, module_type
from swnas.models.spec import ArchSpec

__all__ = ["GROWABLE_MODULES", "can_inherit", "identity_init", "inherit"]

#: Module types whose added modules can start as an identity -> the attribute of the last
#: BatchNorm of the residual branch (the ``grow_bn`` of :data:`swnas.models.MODULE_TYPES`).
#: NASNet cells have no identity branch: a cell's output is a concatenation of its nodes.
GROWABLE_MODULES = {name: t.grow_bn for name, t in MODULE_TYPES.items() if t.grow_bn is not None}


def can_inherit(module: str) -> str | None:
    """``None`` when ``module`` networks can grow by inheritance, else why not (one sentence)."""
    if module not in MODULE_TYPES:
        return f"module type {module!r} has no function-preserving growth rule"
    return MODULE_TYPES[module].why_not_growable()


def identity_init(block: nn.Module, module: str) -> None:
    """Zero the scale and shift of the last BatchNorm of ``block``'s residual branch (in place)."""
    name = module_type(module).grow_bn
    bn = getattr(block, name, None) if name else None
    if not isinstance(bn, nn.BatchNorm2d):
        raise InputError(f"inherit: a {module} block has no BatchNorm {name!r} to zero")
    with torch.no_grad():
        bn.weight.zero_()
        bn.bias.zero_()


def inherit(parent: nn.Module, stages: Sequence[int], *, seed: int | None = None) -> nn.Module:
    """A network with ``stages`` modules per stage that inherits ``parent``'s trained weights.

    Parameters
    ----------
    parent : nn.Module
        Built by :func:`swnas.models.build` (``.spec``, ``.stages``), of a growable module type.
    stages : sequence of int
        Modules per stage of the child; same number of stages as the parent's.
    seed : int, optional
        Seeds the random initial weights of the added modules' first layers (their output is
        cancelled by the zeroed BatchNorm until training moves it).

    Returns
    -------
    nn.Module
        The child, on the parent's device, in the parent's mode (train/eval). Stage ``i`` holds
        the parent's first ``min(m_i, M_i)`` modules (weights and buffers copied) followed by
        ``m_i - M_i`` identity-initialised modules when it is deeper.
    """
    from swnas.models.builder import build

    spec = getattr(parent, "spec", None)
    if not isinstance(spec, ArchSpec):
        raise InputError("inherit: the parent was not built by swnas.models.build (it has no .spec)")
    why = can_inherit(spec.module)
    if why is not None:
        raise InputError(f"inherit: {why}")
    stages = [int(m) for m in stages]
    if len(stages) != len(spec.stages) or min(stages) < 1:
        raise InputError(
            f"inherit: child stages {stages} do not fit the parent's {list(spec.stages)} "
            "(same number of stages, at least one module each)"
        )
    if seed is not None:
        torch.manual_seed(int(seed))
    child = build(spec.with_stages(stages))
    kept = set()
    for i, (dst, src) in enumerate(zip(_stages(child), _stages(parent))):
        for j, block in enumerate(dst):
            if j < len(src):
                kept.add(f"{i}.{j}")
            else:
                identity_init(block, spec.module)
    src_state = parent.state_dict()
    dst_state = child.state_dict()
    stage_keys = _stage_key_map(child, parent)
    for key in dst_state:
        src_key = stage_keys.get(key, key)
        if src_key is None:
            continue  # an added module: keeps its identity initialisation
        if src_key not in src_state or src_state[src_key].shape != dst_state[key].shape:
            raise InputError(f"inherit: the parent has no tensor {src_key!r} of shape {tuple(dst_state[key].shape)}")
        dst_state[key] = src_state[src_key].detach().clone()
    child.load_state_dict(dst_state)
    p = next(parent.parameters(), None)
    if p is not None:
        child = child.to(p.device)
    child.train(parent.training)
    return child


def _stages(model: nn.Module) -> Iterable[nn.Sequential]:
    """A built network's ``stages``: an ``nn.ModuleList`` of one ``nn.Sequential`` per stage."""
    return cast("Iterable[nn.Sequential]", model.stages)


def _stage_key_map(child: nn.Module, parent: nn.Module) -> dict[str, str | None]:
    """State-dict keys of the child's stage modules -> the parent's key (``None``: an added module)."""
    out: dict[str, str | None] = {}
    c_names = {id(m): n for n, m in child.named_modules()}
    p_names = {id(m): n for n, m in parent.named_modules()}
    for dst, src in zip(_stages(child), _stages(parent)):
        for j, block in enumerate(dst):
            c_prefix = c_names[id(block)]
            p_prefix = p_names[id(src[j])] if j < len(src) else None
            for key in block.state_dict():
                out[f"{c_prefix}.{key}"] = None if p_prefix is None else f"{p_prefix}.{key}"
    return out
