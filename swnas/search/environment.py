"""What a run ran on: versions, accelerator, threads, world size -- recorded in ``search.json``.

A result is only comparable with another when the software and hardware are known, so the search
stores :func:`environment` under ``environment`` in its state. Nothing here fails: an item that
cannot be determined is ``None``.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["environment", "search_environment", "git_revision", "cpu_name"]


def git_revision(path: str | os.PathLike | None = None) -> str | None:
    """The commit (with ``-dirty`` when the work tree has changes) of the checkout holding ``path``.

    ``None`` for an installed package (no ``.git`` above it) or when git is absent.
    """
    here = Path(path) if path is not None else Path(__file__).resolve().parent
    if not any((p / ".git").exists() for p in (here, *here.parents)):
        return None
    try:
        rev = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return rev.stdout.strip() + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def cpu_name() -> str | None:
    """The CPU model from /proc/cpuinfo (Linux), else :func:`platform.processor`."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _device_name(device: Any) -> str | None:
    import torch

    dev = torch.device(device) if device is not None else None
    if dev is not None and dev.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(dev)
    return cpu_name()


def environment(device: Any = None, backend: str | None = None) -> dict:
    """A JSON-ready record of the software and hardware of this process.

    Parameters
    ----------
    device : str or torch.device, optional
        The resolved training device (``"cpu"``, ``"cuda:0"``); its name is recorded.
    backend : str, optional
        The resolved scorer backend (``"cpp"``, ``"cuda"``, ``"numpy"``...).

    Returns
    -------
    dict
        ``swnas``, ``git_revision``, ``python``, ``platform``, ``torch``, ``numpy``, ``cuda``,
        ``cudnn``, ``device``, ``device_name``, ``cpu``, ``cpu_count``, ``threads``,
        ``world_size``, ``backend``.
    """
    import numpy as np
    import torch

    from swnas import __version__
    from swnas.training import distributed as D

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "swnas": __version__,
        "git_revision": git_revision(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "cudnn": cudnn if torch.cuda.is_available() else None,
        "device": None if device is None else str(device),
        "device_name": _device_name(device),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "world_size": D.world_size(),
        "backend": backend,
    }


def search_environment(device: str = "auto", backend: str = "auto", criterion: str = "pls") -> dict:
    """:func:`environment` with the search's ``device`` and scorer ``backend`` resolved as it runs them."""
    from swnas.training import distributed as D

    try:
        dev = D.device_for_rank(device)
    except Exception:  # an unusable device is reported by the search's own checks, not here
        dev = None
    try:
        from swnas.scoring.backends import resolve_backend

        be = resolve_backend(backend, criterion, "cuda" if dev is not None and dev.type == "cuda" else "cpu")
    except Exception:
        be = None
    return environment(dev, be)
