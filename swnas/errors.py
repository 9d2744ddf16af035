"""Exception types raised by swnas for bad input and unavailable backends."""
from __future__ import annotations

__all__ = ["SwnasError", "InputError", "BackendUnavailableError"]


class SwnasError(Exception):
    """Base class of every error swnas raises on purpose."""


class InputError(SwnasError, ValueError):
    """An argument is malformed: wrong shape, dtype, NaN/Inf, too few samples, unknown name..."""


class BackendUnavailableError(SwnasError, RuntimeError):
    """A backend was named that cannot run here (not built, no GPU, package missing)."""
