"""Crash-safe files: atomic JSON and checkpoint writes, and JSON reads that fail with clear errors.

Every write goes to a temporary file in the destination's directory, is flushed and fsynced, and
then replaces the destination with :func:`os.replace` (atomic on POSIX and Windows). A process
killed at any moment therefore leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from swnas.errors import InputError

__all__ = ["atomic_write_text", "atomic_write_json", "atomic_save", "read_json", "to_jsonable"]


def to_jsonable(obj: Any) -> Any:
    """Convert NumPy scalars/arrays, tuples and paths (recursively) into plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy scalars and arrays
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None  # JSON has no NaN/Inf
    return obj


def atomic_save(write: Callable[[str], Any], path: str | os.PathLike, suffix: str = ".tmp") -> Path:
    """Run ``write(tmp_path)`` and move the result onto ``path`` atomically.

    Parameters
    ----------
    write : callable
        Writes the complete file to the path it receives (e.g. ``lambda p: torch.save(obj, p)``).
    path : path-like
        Destination; its directory is created when missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    return atomic_save(write, path)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (NumPy values converted)."""
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Read a JSON file; a missing or corrupt file raises :class:`InputError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what}: no such file: {path}")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{what}: cannot read {path} as JSON ({exc})") from None
