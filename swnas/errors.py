"""Exception types raised by swnas for bad input and unavailable backends."""

from __future__ import annotations

__all__ = ["SwnasError", "InputError", "BackendUnavailableError", "WriteError"]


class SwnasError(Exception):
    """Base class of every error swnas raises on purpose."""


class InputError(SwnasError, ValueError):
    """An argument is malformed: wrong shape, dtype, NaN/Inf, too few samples, unknown name..."""


class BackendUnavailableError(SwnasError, RuntimeError):
    """A backend was named that cannot run here (not built, no GPU, package missing)."""


class WriteError(SwnasError, OSError):
    """A file could not be written (disk full, read-only, no permission); names the file.

    The write went to a temporary file, so the previous version of the file is intact.
    ``filename`` is the file meant, ``reason`` why it failed.
    """

    def __init__(self, message: str, filename: str | None = None, reason: str | None = None):
        super().__init__(message)
        self.message, self.filename, self.reason = message, filename, reason

    def __str__(self) -> str:
        return self.message
