"""The backend table: which implementations exist, which work here, and which ``auto`` picks.

Everything about backends derives from one table, :data:`BACKEND_TABLE`, of
:class:`BackendRecord` entries (name, device, probe). :data:`BACKENDS`,
:func:`available_backends`, :func:`backend_status`, the ``auto`` order and the list of
implementation modules imported by :mod:`swnas.scoring` all come from it. Adding a backend is
one record here plus its modules ``_<criterion>_<backend>.py`` (see docs/backends.md).

Every criterion registers one function per backend with :func:`register`. A backend is
*available* when its probe succeeds (its runtime pieces import and, for GPU backends, a device
is visible); otherwise :func:`backend_status` says why, and naming it raises
:class:`~swnas.errors.BackendUnavailableError` with that reason.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from swnas.errors import BackendUnavailableError, InputError
from swnas.scoring.registry import _criterion

__all__ = [
    "BackendRecord",
    "BACKEND_TABLE",
    "BACKENDS",
    "available_backends",
    "backend_status",
    "check_backend",
    "auto_order",
    "register",
    "get_impl",
    "resolve_backend",
    "core",
    "cuda_module",
    "reset_probes",
]


# ------------------------------------------------------------------------------------- probes
@functools.cache
def _core_status() -> tuple[Any, str]:
    try:
        from swnas import _core  # type: ignore[attr-defined]  # compiled; no stub
    except ImportError as exc:  # pragma: no cover - only on broken installs
        return None, (
            f"the compiled module swnas._core is not built or failed to load ({exc}); reinstall with `pip install .`"
        )
    return _core, ""


def core():
    """The compiled CPU module ``swnas._core`` (raises if it was not built)."""
    mod, why = _core_status()
    if mod is None:  # pragma: no cover - only on broken installs
        raise BackendUnavailableError(f"backend 'cpp': {why}")
    return mod


#: ``/proc`` and ``/dev`` entries that exist where an NVIDIA driver is loaded (Linux; WSL has ``/dev/dxg``)
_DRIVER_PATHS: tuple[str, ...] = ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/nvidiactl", "/dev/dxg")


def _nvidia_driver_present() -> bool:
    """Whether this machine has an NVIDIA driver: its device files, or the driver library ``libcuda``."""
    if any(os.path.exists(p) for p in _DRIVER_PATHS):
        return True
    import ctypes.util

    return ctypes.util.find_library("cuda") is not None or ctypes.util.find_library("nvcuda") is not None


def _gpu_reason(err: str) -> str:
    """Say why no CUDA device is usable in a user's words.

    The CUDA runtime reports a machine with no NVIDIA driver as "CUDA driver version is
    insufficient" and one with a driver but no device as "no CUDA-capable device is detected";
    both are a machine without a GPU. A driver that is present but too old keeps the runtime's words.
    """
    low = err.lower()
    if "no cuda-capable device" in low or "no cuda device" in low or "nodevice" in low:
        return "no GPU (no CUDA device is visible)"
    if not _nvidia_driver_present():
        return "no GPU (no NVIDIA driver on this machine)"
    return f"no usable GPU ({err})"


@functools.cache
def _cuda_status() -> tuple[Any, str]:
    if os.environ.get("SWNAS_DISABLE_CUDA", "") not in ("", "0"):
        return None, "disabled by SWNAS_DISABLE_CUDA"
    # Not built at all is no failure: `from swnas import _cuda` then raises a plain ImportError
    # ("cannot import name"), which must not be confused with a module that exists and fails to load.
    if "swnas._cuda" not in sys.modules and importlib.util.find_spec("swnas._cuda") is None:
        return None, "the CUDA module was not built (no CUDA compiler at install time)"
    try:
        from swnas import _cuda  # type: ignore[attr-defined]  # compiled; no stub
    except ImportError as exc:
        msg = str(exc)
        warnings.warn(f"swnas: the CUDA module failed to load and is turned off: {msg}", RuntimeWarning, stacklevel=2)
        return None, f"the CUDA module failed to load ({msg})"
    err = _cuda.device_error()
    if err:
        return None, _gpu_reason(err)
    return _cuda, ""


def cuda_module():
    """The compiled CUDA module with a usable device, else raise with the reason."""
    mod, why = _cuda_status()
    if mod is None:
        raise BackendUnavailableError(f"backend 'cuda' is not available: {why}")
    return mod


@functools.cache
def _cupy_status() -> tuple[bool, str]:
    try:
        import cupy
    except Exception as exc:  # ImportError, or CUDA library errors on import
        return False, (
            f"cupy is not installed or failed to import ({type(exc).__name__}: {exc}); pip install swnas[cuda]"
        )
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return False, f"cupy: {_gpu_reason(str(exc))}"
    if n == 0:
        return False, "cupy: no GPU (no CUDA device is visible)"
    return True, ""


@functools.cache
def _numba_status() -> tuple[bool, str]:
    try:
        import numba  # noqa: F401
    except Exception as exc:
        return False, f"numba is not installed ({exc})"
    return True, ""


def _probe_numpy() -> tuple[bool, str]:
    return True, ""


def _probe_cpp() -> tuple[bool, str]:
    mod, why = _core_status()
    return mod is not None, why


def _probe_cuda() -> tuple[bool, str]:
    mod, why = _cuda_status()
    return mod is not None, why


def reset_probes() -> None:
    """Forget the cached probe results (tests that install a stand-in module call this)."""
    for f in (_core_status, _cuda_status, _cupy_status, _numba_status):
        f.cache_clear()


# -------------------------------------------------------------------------------------- table
@dataclass(frozen=True)
class BackendRecord:
    """One backend.

    Attributes
    ----------
    name : str
        What users pass as ``backend=``; implementation modules are ``_<criterion>_<name>.py``.
    device : {"cpu", "cuda"}
        Where it computes. ``auto`` only considers GPU backends for data already on a GPU.
    probe : callable
        ``probe() -> (available, reason)``; the reason says why not ('' when available).
    auto_rank : int or None
        Position in ``auto``'s preference for its device (lower first; the reference ``numpy`` has
        99, so ``auto`` falls back to it last); ``None``: never chosen by ``auto`` (no record now).
    """

    name: str
    device: str
    probe: Callable[[], tuple[bool, str]]
    auto_rank: int | None


#: the single source of truth about backends (docs/backends.md explains each column)
BACKEND_TABLE: tuple[BackendRecord, ...] = (
    BackendRecord("numpy", "cpu", _probe_numpy, auto_rank=99),
    BackendRecord("numba", "cpu", lambda: _numba_status(), auto_rank=1),
    BackendRecord("cpp", "cpu", _probe_cpp, auto_rank=0),
    BackendRecord("cuda", "cuda", _probe_cuda, auto_rank=0),
    BackendRecord("cupy", "cuda", lambda: _cupy_status(), auto_rank=1),
)

#: every backend name, in table order
BACKENDS: tuple[str, ...] = tuple(r.name for r in BACKEND_TABLE)
_BY_NAME: dict[str, BackendRecord] = {r.name: r for r in BACKEND_TABLE}

# (criterion, backend, batched) -> implementation
_IMPLS: dict[tuple[str, str, bool], Callable[..., Any]] = {}


def register(criterion: str, backend: str, *, batched: bool = False):
    """Decorator: register ``fn`` as ``criterion``'s implementation on ``backend``."""
    if backend not in _BY_NAME:
        raise ValueError(f"unknown backend {backend!r}")

    def deco(fn):
        _IMPLS[(criterion, backend, batched)] = fn
        return fn

    return deco


def get_impl(criterion: str, backend: str, *, batched: bool = False):
    """The registered implementation, or ``None``."""
    return _IMPLS.get((criterion, backend, batched))


def _unknown(name: Any) -> InputError:
    return InputError(f"backend: unknown backend {name!r}; choose one of {', '.join(BACKENDS)} or 'auto'")


def backend_status(name: str) -> tuple[bool, str]:
    """``(available, reason)`` for one backend; reason is '' when available."""
    rec = _BY_NAME.get(name) if isinstance(name, str) else None
    if rec is None:
        raise _unknown(name)
    return rec.probe()


def available_backends() -> list[str]:
    """Backends that work on this machine, in :data:`BACKENDS` order."""
    return [r.name for r in BACKEND_TABLE if r.probe()[0]]


# --------------------------------------------------------------------------------------- auto
def auto_order(criterion: str, device: str = "cpu") -> list[str]:
    """The backends ``auto`` tries, in order, for ``criterion`` on data living on ``device``.

    GPU data: the GPU backends by ``auto_rank``, then the CPU ones (which copy the data to the
    host). Host data: the CPU backends by ``auto_rank`` only (a GPU is never chosen for host data:
    the upload usually costs more than the CPU computation). ``numpy``, the reference, comes last.
    The order does not depend on the criterion or the problem's size: measured at stage-feature
    sizes, ``cpp`` beats ``numba`` for every criterion (docs/backends.md, "The auto rule").
    """

    def ranked(dev: str) -> list[str]:
        recs = [r for r in BACKEND_TABLE if r.device == dev and r.auto_rank is not None]
        return [r.name for r in sorted(recs, key=lambda r: int(r.auto_rank or 0))]

    order = ranked("cpu")
    return (ranked("cuda") + order) if device == "cuda" else order


def check_backend(backend: str, criterion: str, device: str = "cpu") -> str:
    """Validate ``backend`` for ``criterion`` without data; returns the backend that would run.

    Raises :class:`~swnas.errors.InputError` for an unknown name or criterion and
    :class:`~swnas.errors.BackendUnavailableError` (saying why) when it cannot run here.
    """
    crit = _criterion(criterion)
    if device not in ("cpu", "cuda"):
        raise InputError(f"device: expected 'cpu' or 'cuda', got {device!r}")
    return resolve_backend(backend, crit.name, device)


def resolve_backend(backend: str, criterion: str, device: str = "cpu") -> str:
    """Turn ``backend`` (a name or ``"auto"``) into an available backend implementing ``criterion``."""
    if not isinstance(backend, str):
        raise InputError(f"backend: expected a name, got {type(backend).__name__}")
    if backend == "auto":
        for b in auto_order(criterion, device):
            if get_impl(criterion, b) is not None and backend_status(b)[0]:
                return b
        raise BackendUnavailableError(f"no backend implements criterion {criterion!r}")  # pragma: no cover
    if backend not in _BY_NAME:
        raise _unknown(backend)
    ok, why = backend_status(backend)
    if not ok:
        raise BackendUnavailableError(f"backend {backend!r} is not available: {why}")
    if get_impl(criterion, backend) is None:
        raise BackendUnavailableError(f"backend {backend!r} does not implement criterion {criterion!r}")
    return backend
