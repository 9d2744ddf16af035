"""Backend registry: which implementations exist, which work here, and which ``auto`` picks.

Every criterion registers one function per backend with :func:`register`. A backend is
*available* when its runtime pieces import and (for GPU backends) a device is visible;
otherwise :func:`backend_status` says why, and naming it raises
:class:`~swnas.errors.BackendUnavailableError` with that reason.
"""
from __future__ import annotations

import functools
import os
import warnings
from typing import Any, Callable

from swnas.errors import BackendUnavailableError, InputError

__all__ = [
    "BACKENDS",
    "available_backends",
    "backend_status",
    "register",
    "get_impl",
    "resolve_backend",
    "core",
    "cuda_module",
]

#: every backend name, in the order ``auto`` prefers them for host data
BACKENDS: tuple[str, ...] = ("numpy", "numba", "cpp", "cuda", "cupy")
_CPU_PREFERENCE = ("cpp", "numba", "numpy")
_GPU_PREFERENCE = ("cuda", "cupy")

# (criterion, backend, batched) -> implementation
_IMPLS: dict[tuple[str, str, bool], Callable[..., Any]] = {}


def register(criterion: str, backend: str, *, batched: bool = False):
    """Decorator: register ``fn`` as ``criterion``'s implementation on ``backend``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}")

    def deco(fn):
        _IMPLS[(criterion, backend, batched)] = fn
        return fn

    return deco


def get_impl(criterion: str, backend: str, *, batched: bool = False):
    """The registered implementation, or ``None``."""
    return _IMPLS.get((criterion, backend, batched))


@functools.lru_cache(maxsize=None)
def core():
    """The compiled CPU module ``swnas._core`` (raises if it was not built)."""
    try:
        from swnas import _core
    except ImportError as exc:  # pragma: no cover - only on broken installs
        raise BackendUnavailableError(
            f"backend 'cpp': the compiled module swnas._core is not built or failed to load ({exc}); "
            "reinstall with `pip install .`"
        ) from None
    return _core


@functools.lru_cache(maxsize=None)
def _cuda_status() -> tuple[Any, str]:
    if os.environ.get("SWNAS_DISABLE_CUDA", "") not in ("", "0"):
        return None, "disabled by SWNAS_DISABLE_CUDA"
    try:
        from swnas import _cuda
    except ImportError as exc:
        msg = str(exc)
        if "No module named" in msg:
            return None, "the CUDA module was not built (no CUDA compiler at install time)"
        warnings.warn(f"swnas: the CUDA module failed to load and is turned off: {msg}", RuntimeWarning,
                      stacklevel=2)
        return None, f"the CUDA module failed to load ({msg})"
    err = _cuda.device_error()
    if err:
        return None, f"no usable GPU ({err})"
    return _cuda, ""


def cuda_module():
    """The compiled CUDA module with a usable device, else raise with the reason."""
    mod, why = _cuda_status()
    if mod is None:
        raise BackendUnavailableError(f"backend 'cuda' is not available: {why}")
    return mod


@functools.lru_cache(maxsize=None)
def _cupy_status() -> tuple[bool, str]:
    try:
        import cupy  # noqa: F401
    except Exception as exc:  # ImportError, or CUDA library errors on import
        return False, f"cupy is not installed or failed to import ({type(exc).__name__}: {exc}); pip install swnas[cuda]"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return False, f"cupy found no usable GPU ({exc})"
    if n == 0:
        return False, "cupy found no GPU"
    return True, ""


@functools.lru_cache(maxsize=None)
def _numba_status() -> tuple[bool, str]:
    try:
        import numba  # noqa: F401
    except Exception as exc:
        return False, f"numba is not installed ({exc})"
    return True, ""


def backend_status(name: str) -> tuple[bool, str]:
    """``(available, reason)`` for one backend; reason is '' when available."""
    if name == "numpy":
        return True, ""
    if name == "numba":
        return _numba_status()
    if name == "cpp":
        try:
            core()
        except BackendUnavailableError as exc:
            return False, str(exc)
        return True, ""
    if name == "cuda":
        mod, why = _cuda_status()
        return mod is not None, why
    if name == "cupy":
        return _cupy_status()
    raise InputError(f"backend: unknown backend {name!r}; choose one of {', '.join(BACKENDS)} or 'auto'")


def available_backends() -> list[str]:
    """Backends that work on this machine, in :data:`BACKENDS` order."""
    return [b for b in BACKENDS if backend_status(b)[0]]


def resolve_backend(backend: str, criterion: str, device: str = "cpu") -> str:
    """Turn ``backend`` (a name or ``"auto"``) into an available backend implementing ``criterion``.

    ``auto`` keeps GPU data on the GPU (``cuda``, then ``cupy``) and picks ``cpp``, then ``numba``,
    then ``numpy`` for host data.
    """
    if not isinstance(backend, str):
        raise InputError(f"backend: expected a name, got {type(backend).__name__}")
    if backend == "auto":
        order = (_GPU_PREFERENCE + _CPU_PREFERENCE) if device == "cuda" else _CPU_PREFERENCE
        for b in order:
            if get_impl(criterion, b) is not None and backend_status(b)[0]:
                return b
        raise BackendUnavailableError(f"no backend implements criterion {criterion!r}")  # pragma: no cover
    if backend not in BACKENDS:
        raise InputError(f"backend: unknown backend {backend!r}; choose one of {', '.join(BACKENDS)} or 'auto'")
    ok, why = backend_status(backend)
    if not ok:
        raise BackendUnavailableError(f"backend {backend!r} is not available: {why}")
    if get_impl(criterion, backend) is None:
        raise BackendUnavailableError(f"backend {backend!r} does not implement criterion {criterion!r}")
    return backend
