"""Loading a search's checkpoints safely: the file must be the one recorded, and fit its spec.

A checkpoint names its architecture (a spec) beside its weights. Before anything is allocated,
the spec is built on PyTorch's ``meta`` device (shapes only, no memory) and every parameter shape
is compared with the stored weights, so a crafted file whose spec asks for 10^6 channels is
refused with an error instead of exhausting memory. A network recorded in ``search.json`` is
also compared with its record (stages, parameter count; the SHA-256 of the file is checked by
:func:`checkpoint_path`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from swnas.errors import InputError
from swnas.records.atomic import file_sha256, inside

__all__ = ["checkpoint_path", "load_model", "load_recorded", "final_record"]


def checkpoint_path(out: Path, net: dict) -> Path:
    """The checkpoint file of a recorded network, checked: inside ``out``, present, and (when the
    state records its SHA-256) the very file that was written. Errors name the file."""
    what = f"network {net.get('index')} ({net.get('role')}{net.get('iteration')})"
    rel = net.get("checkpoint")
    path = inside(out, rel, f"{what} checkpoint")
    if not path.is_file():
        raise InputError(f"{what}: is recorded as trained but its checkpoint {rel} is missing (in {out})")
    want = net.get("checkpoint_sha256")
    if want is not None and file_sha256(path) != want:
        raise InputError(
            f"{what}: checkpoint {path} is not the file this search wrote (its SHA-256 differs from the "
            "one recorded in search.json); it may come from another run"
        )
    return path


def load_model(path: str | Path) -> Any:
    """Rebuild the network of a :func:`swnas.models.save_model` file (CPU, eval mode), checked first."""
    from swnas import models as M
    from swnas.models.io import check_fits, read_checkpoint

    path = Path(path)
    payload = read_checkpoint(path)
    check_fits(payload, path)
    model = M.build(payload["spec"])
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as e:
        raise InputError(f"checkpoint {str(path)!r} does not match its spec ({e})") from None
    return model.eval()


def final_record(net: dict) -> dict:
    """The record of a candidate after its final epochs (their checkpoint) when they ran, else ``net``.

    The paper's candidates are the networks further trained for the final epochs; the ensemble,
    ``export`` and the paper tables load these weights (docs/protocol.md).
    """
    fin = cast(dict, net.get("final")) if isinstance(net.get("final"), dict) else {}
    if fin.get("checkpoint"):
        return dict(net, checkpoint=fin["checkpoint"], checkpoint_sha256=fin.get("checkpoint_sha256"))
    return net


def load_recorded(out: str | Path, net: dict) -> Any:
    """The model of a network recorded in ``OUT/search.json``, refused unless it is that network."""
    path = checkpoint_path(Path(out), net)
    model = load_model(path)
    stages = list(model.spec.stages)
    if stages != list(net["stages"]):
        raise InputError(
            f"network {net['index']} checkpoint {path}: holds stages {stages} but search.json records "
            f"{net['stages']}; it comes from another run"
        )
    params = net.get("metrics", {}).get("params")
    have = sum(p.numel() for p in model.parameters())
    if isinstance(params, int) and params != have:
        raise InputError(
            f"network {net['index']} checkpoint {path}: has {have} parameters but search.json records "
            f"{params}; it comes from another run"
        )
    return model
