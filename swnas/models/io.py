"""Checkpoint I/O: the spec and the state dict together in one file, loadable with weights_only=True."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from swnas.errors import InputError
from swnas.models.spec import ArchSpec

__all__ = ["save_model", "load", "read_checkpoint", "check_size", "FORMAT", "MAX_MODULES", "MAX_WIDTH", "MAX_PARAMS"]

FORMAT = "swnas-model-v1"


def save_model(model: nn.Module, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write ``{"format", "spec" (JSON text), "state_dict", "extra"}`` atomically to ``path``.

    ``extra`` must hold only plain types (numbers, strings, lists, dicts, tensors) so that the
    file still loads with ``weights_only=True``.
    """
    spec = getattr(model, "spec", None)
    if not isinstance(spec, ArchSpec):
        raise InputError("model: has no ArchSpec .spec; build it with swnas.models.build")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "spec": spec.to_json(), "state_dict": state, "extra": dict(extra or {})}
    from swnas.records.atomic import temp_path, write_failure

    tmp = temp_path(path)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        err = write_failure(exc, path)  # a full disk: a clear error naming the file
        if err is not None:
            raise err from None
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load and check a :func:`save_model` file (``weights_only=True``); errors name the path."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"path: checkpoint {str(p)!r} does not exist or is not a file")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt, truncated, or holding pickled objects
        from swnas.records.atomic import load_failure

        raise InputError(f"path: cannot read checkpoint {str(p)!r} ({load_failure(e)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"path: {str(p)!r} is not a swnas model checkpoint (format {FORMAT!r} expected)")
    if not isinstance(payload.get("state_dict"), dict) or not isinstance(payload.get("spec"), str):
        raise InputError(f"path: checkpoint {str(p)!r} lacks its spec or state_dict")
    try:
        payload["spec"] = ArchSpec.from_json(payload["spec"])
    except InputError as e:
        raise InputError(f"path: checkpoint {str(p)!r} holds an invalid spec ({e})") from None
    return payload


#: what a spec may ask for, checked before anything is built or allocated (the paper's largest
#: networks, bottleneck ResNets for ImageNet, have about 60 M parameters and 50 modules)
MAX_MODULES = 10_000
MAX_WIDTH = 1 << 16
MAX_PARAMS = 2_000_000_000


def check_size(spec: ArchSpec, what: str = "spec", max_params: int = MAX_PARAMS) -> int:
    """The parameter count of ``spec``'s network, or :class:`InputError` naming ``what`` when it is
    too large to build: more than :data:`MAX_MODULES` modules, a width above :data:`MAX_WIDTH`, or
    more than ``max_params`` parameters. The network is built on PyTorch's ``meta`` device (shapes
    only, no memory), as :func:`check_fits` does for checkpoints."""
    from swnas.models.builder import build

    n = sum(spec.stages)
    if n > MAX_MODULES:
        raise InputError(
            f"{what}: {len(spec.stages)} stages of up to {max(spec.stages)} modules ({n} in all) is too "
            f"large to build (at most {MAX_MODULES} modules)"
        )
    widest = max([*spec.stage_widths, spec.stem_width])
    if widest > MAX_WIDTH:
        raise InputError(
            f"{what}: a stage {widest} channels wide ({len(spec.stages)} stages, widths doubling from "
            f"{spec.stage_widths[0]}) is too large to build (at most {MAX_WIDTH})"
        )
    with torch.device("meta"):
        skeleton = build(spec)
    params = sum(p.numel() for p in skeleton.parameters())
    if params > max_params:
        raise InputError(
            f"{what}: the network would have {params:,} parameters ({4 * params / 2**30:.1f} GiB of "
            f"float32 weights); at most {max_params:,} are built"
        )
    return params


def check_fits(payload: dict[str, Any], path: str | os.PathLike) -> None:
    """Refuse a checkpoint whose spec does not match its weights, before anything is allocated.

    The spec is built on PyTorch's ``meta`` device (shapes only, no memory) and every parameter
    shape is compared with the stored tensors, so a crafted file whose spec asks for a million
    channels is an :class:`InputError` instead of an exhausted memory.
    """
    from swnas.models.builder import build

    spec, state = payload["spec"], payload["state_dict"]
    if sum(spec.stages) > len(state):  # every module owns at least one tensor
        raise InputError(
            f"checkpoint {str(path)!r}: its spec has {sum(spec.stages)} modules but the file holds "
            f"only {len(state)} tensors; the spec does not match the weights"
        )
    with torch.device("meta"):
        skeleton = build(spec)
    want = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if want != got:
        bad = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))[:3]
        detail = ", ".join(f"{k}: spec {want.get(k)} vs file {got.get(k)}" for k in bad)
        raise InputError(f"checkpoint {str(path)!r}: its spec does not match its weights ({detail})")


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the network saved by :func:`save_model` and load its weights (eval mode).

    The spec is checked against the weights first (:func:`check_fits`). A file written by
    ``swnas export`` also gives the model a ``normalization`` attribute: how its inputs were
    normalised in training (:func:`swnas.reporting.report.export_normalization`), else None.
    """
    from swnas.models.builder import build

    payload = read_checkpoint(path)
    check_fits(payload, path)
    model = build(payload["spec"])
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as e:
        raise InputError(f"path: checkpoint {str(path)!r} does not match its spec ({e})") from None
    extra = payload.get("extra")
    # nn.Module.__setattr__ keeps any value; torch types it as taking only a Tensor or a Module
    model.normalization = extra.get("normalization") if isinstance(extra, dict) else None  # type: ignore[assignment]
    return model.to(map_location).eval()


class NormalizedInputs(nn.Module):
    """``net((x - mean) / std)`` for images ``x`` in [0, 1], NCHW: a network that normalises its own input.

    ``norm`` is an exported network's ``normalization`` (:func:`swnas.reporting.report.export_normalization`):
    ``mean`` per channel ``(C,)`` or a mean image ``(H, W, C)``, ``std`` per channel.
    """

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(self, net: nn.Module, norm: dict[str, Any]) -> None:
        super().__init__()
        self.net = net
        mean = torch.as_tensor(norm["mean"], dtype=torch.float32)
        mean = mean.reshape(1, -1, 1, 1) if mean.dim() == 1 else mean.permute(2, 0, 1).unsqueeze(0)
        self.register_buffer("mean", mean)
        self.register_buffer("std", torch.as_tensor(norm["std"], dtype=torch.float32).reshape(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)
