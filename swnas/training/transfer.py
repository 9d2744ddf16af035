"""Weight transfer: start a candidate network from a trained donor of the same module type.

Everything outside the stages (stem, head, and for NASNet the reduction cells between stages) is
copied as is; stage i of the candidate takes ``m_i`` of the donor's ``M_i`` modules of stage i:
the first ``m_i`` (``pick="first"``, the default) or ``m_i`` evenly spread ones that always include
the first (the stage-transition block) and the last (``pick="spread"``; a NASNet cell whose
inputs have other widths than the picked one's — the cell right after the stem or a reduction
cell — takes the donor cell at its own position instead). Parameters *and* buffers
(BatchNorm statistics) are copied, so a candidate with the donor's own counts reproduces the
donor's outputs exactly.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from torch import nn

from swnas.errors import InputError
from swnas.models import MODULE_TYPES, ArchSpec, build
from swnas.models.io import check_fits, read_checkpoint

__all__ = ["transfer_weights", "load_donor", "pick_indices"]

PICKS = ("first", "spread")


def pick_indices(donor_count: int, count: int, pick: str = "first") -> list[int]:
    """Which of a donor stage's ``donor_count`` modules fill a candidate stage of ``count``.

    ``first``: ``0 .. count-1``. ``spread``: ``round(linspace(0, donor_count - 1, count))``
    (distinct, increasing, first and last included; a single module takes the first).
    """
    if pick not in PICKS:
        raise InputError(f"pick: unknown rule {pick!r}; choose one of {', '.join(PICKS)}")
    if count > donor_count:
        raise InputError(f"spec: a stage of {count} modules is deeper than the donor's {donor_count}")
    if pick == "first" or count == 1:
        return list(range(count))
    idx = np.round(np.linspace(0, donor_count - 1, count)).astype(int).tolist()
    return idx


def _copy_module(dst: nn.Module, src: nn.Module, where: str) -> None:
    d_state = dst.state_dict()
    s_state = src.state_dict()
    if set(d_state) != set(s_state):
        missing = sorted(set(d_state) ^ set(s_state))[:4]
        raise InputError(f"donor: {where} has a different structure from the candidate's (keys {missing} differ)")
    for k, v in d_state.items():
        if v.shape != s_state[k].shape:
            raise InputError(
                f"donor: {where}.{k} has shape {tuple(s_state[k].shape)}, the candidate needs {tuple(v.shape)}"
            )
    dst.load_state_dict(s_state, strict=True)


def _fits(dst: nn.Module, src: nn.Module) -> bool:
    a, b = dst.state_dict(), src.state_dict()
    return set(a) == set(b) and all(a[k].shape == b[k].shape for k in a)


def _stage_prefixes(model: nn.Module) -> list[str]:
    """State-dict prefixes of the stage containers (``stages.i.`` or torchvision's ``layerK.``)."""
    names = {id(m): n for n, m in model.named_modules()}
    stages: Any = model.stages
    return [names[id(st)] + "." for st in stages]


def transfer_weights(donor: nn.Module, spec: ArchSpec, pick: str = "first") -> nn.Module:
    """Build ``spec`` and fill it with the donor's weights.

    Parameters
    ----------
    donor : nn.Module
        A network built by :func:`swnas.models.build` (e.g. from :func:`load_donor`).
    spec : ArchSpec
        The candidate: same module type, stage count, widths, stem, classes, input channels and
        shortcut as the donor; every stage no deeper than the donor's.
    pick : {"first", "spread"}

    Returns
    -------
    nn.Module
        The candidate on the donor's device, in the donor's training mode.
    """
    dspec = getattr(donor, "spec", None)
    if not isinstance(dspec, ArchSpec) or not isinstance(getattr(donor, "stages", None), nn.ModuleList):
        raise InputError("donor: expected a network built by swnas.models.build (with .spec and .stages)")
    if not isinstance(spec, ArchSpec):
        raise InputError(f"spec: expected an ArchSpec, got {type(spec).__name__}")
    if pick not in PICKS:
        raise InputError(f"pick: unknown rule {pick!r}; choose one of {', '.join(PICKS)}")
    if spec.module != dspec.module:
        raise InputError(f"spec: module {spec.module!r} differs from the donor's {dspec.module!r}")
    if spec.num_stages != dspec.num_stages:
        raise InputError(f"spec: has {spec.num_stages} stages, the donor has {dspec.num_stages}")
    for name in ("stage_widths", "stem_width", "num_classes", "in_channels", "shortcut", "resolved_stem_kind"):
        if getattr(spec, name) != getattr(dspec, name):
            raise InputError(f"spec: {name} {getattr(spec, name)!r} differs from the donor's {getattr(dspec, name)!r}")
    for i, (m, dm) in enumerate(zip(spec.stages, dspec.stages)):
        if m > dm:
            raise InputError(
                f"spec: stages[{i}] = {m} is deeper than the donor's {dm}; transfer can only take donor modules"
            )
    picks = [pick_indices(dm, m, pick) for m, dm in zip(spec.stages, dspec.stages)]

    cand = build(spec)
    # everything outside the stages: stem, head, reduction cells
    prefixes_c = _stage_prefixes(cand)
    prefixes_d = _stage_prefixes(donor)
    d_state = donor.state_dict()
    outside = {k: v for k, v in d_state.items() if not any(k.startswith(p) for p in prefixes_d)}
    c_outside = {k for k in cand.state_dict() if not any(k.startswith(p) for p in prefixes_c)}
    if set(outside) != c_outside:
        raise InputError("donor: its stem/head/transition modules differ from the candidate's")
    try:
        cand.load_state_dict(outside, strict=False)
    except RuntimeError as e:
        hint = MODULE_TYPES[spec.module].transfer_hint
        msg = str(e).splitlines()[-1].strip()
        raise InputError(
            f"spec: the donor's stem/head/transition weights do not fit the candidate ({msg}){hint}"
        ) from None
    cand_stages: Any = cand.stages
    donor_stages: Any = donor.stages
    for i, idx in enumerate(picks):
        for j, k in enumerate(idx):
            if k != j and not _fits(cand_stages[i][j], donor_stages[i][k]):
                k = j  # a NASNet cell next to the stem or a reduction: its inputs have other widths
            _copy_module(cand_stages[i][j], donor_stages[i][k], f"stages[{i}][{k}]")
    dev = next(iter(donor.parameters())).device
    return cand.to(dev).train(donor.training)


def load_donor(path: str | os.PathLike) -> nn.Module:
    """Load a donor network saved by :func:`swnas.models.save_model` (``weights_only=True``).

    Missing, corrupt or foreign files raise :class:`InputError` naming the path.
    """
    payload: dict[str, Any] = read_checkpoint(path)
    check_fits(payload, path)  # a crafted spec is refused before anything is allocated
    model = build(payload["spec"])
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as e:
        raise InputError(f"path: donor checkpoint {str(path)!r} does not match its spec ({e})") from None
    return model.eval()
