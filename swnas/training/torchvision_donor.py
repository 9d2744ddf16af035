"""torchvision's pretrained ResNets as transfer donors: ``--transfer torchvision:resnet50``.

The ``bottleneck`` networks of :mod:`swnas.models` have torchvision's parameter names, so an
ImageNet-pretrained ResNet-50/101/152 loads into the swnas network of the same depth
(``stages`` [3, 4, 6, 3], [3, 4, 23, 3], [3, 8, 36, 3]; 224 px, 1,000 classes) unchanged and serves
as the donor of every candidate (:func:`swnas.training.transfer.transfer_weights`).

Nothing is downloaded: the weights must already be in the torch hub cache
(``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``), e.g. after
``python -c "import torchvision; torchvision.models.resnet50(weights='IMAGENET1K_V2')"`` on a
machine with network access. The paper's restriction applies: a candidate's stage cannot be deeper
than the donor's, so with ResNet-50 (first stage: 3 blocks) ``m0 + delta <= 3`` -- e.g.
``--m0 2 --delta 1`` or ``--m0 1 --delta 2`` -- and the search cannot grow a stage past the
donor's depth.
"""

from __future__ import annotations

from pathlib import Path

from swnas.errors import InputError

__all__ = ["PREFIX", "DEPTHS", "is_torchvision_donor", "weights_file", "load_torchvision_donor"]

PREFIX = "torchvision:"
DEPTHS = {"resnet50": [3, 4, 6, 3], "resnet101": [3, 4, 23, 3], "resnet152": [3, 8, 36, 3]}


def is_torchvision_donor(transfer: object) -> bool:
    """Whether a ``transfer`` option names a torchvision model rather than a donor file."""
    return isinstance(transfer, str) and transfer.startswith(PREFIX)


def _name(transfer: str) -> str:
    name = transfer[len(PREFIX) :] if transfer.startswith(PREFIX) else transfer
    if name not in DEPTHS:
        raise InputError(
            f"transfer: unknown torchvision donor {transfer!r}; choose one of " + ", ".join(PREFIX + n for n in DEPTHS)
        )
    return name


def weights_file(transfer: str) -> Path:
    """The cached weight file of ``torchvision:<name>`` (IMAGENET1K_V2 preferred, then V1).

    Raises
    ------
    InputError
        Unknown name, or no weights in the cache (the message says where they were looked for and
        how to fetch them).
    """
    import torch
    from torchvision.models import get_model_weights

    name = _name(transfer)
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    versions = sorted(get_model_weights(name), key=lambda w: w.name, reverse=True)  # V2 before V1
    for w in versions:
        path = cache / w.url.rsplit("/", 1)[-1]
        if path.is_file():
            return path
    files = ", ".join(w.url.rsplit("/", 1)[-1] for w in versions)
    raise InputError(
        f"transfer: {transfer} needs torchvision's pretrained weights in the torch cache ({cache}: one of "
        f"{files}); none is there and nothing is downloaded. On a machine with network access run "
        f"python -c \"import torchvision; torchvision.models.{name}(weights='DEFAULT')\" and copy the file "
        "into that directory (or set TORCH_HOME)"
    )


def load_torchvision_donor(transfer: str):
    """The swnas ``bottleneck`` network holding ``torchvision:<name>``'s ImageNet weights (eval mode)."""
    import torch

    from swnas import models as M

    path = weights_file(transfer)
    spec = M.ArchSpec(
        module="bottleneck", stages=list(DEPTHS[_name(transfer)]), num_classes=1000, input_size=224, in_channels=3
    )
    model = M.build(spec)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # truncated download, a file of another model
        from swnas.records.atomic import load_failure

        raise InputError(f"transfer: {path} does not hold {transfer}'s weights ({load_failure(exc)})") from None
    return model.eval()
