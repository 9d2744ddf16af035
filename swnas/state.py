"""Crash-safe files: atomic JSON and checkpoint writes, and JSON reads that fail with clear errors.

Every write goes to a temporary file in the destination's directory, is flushed and fsynced, and
then replaces the destination with :func:`os.replace` (atomic on POSIX and Windows). A process
killed at any moment therefore leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from swnas.errors import InputError

__all__ = ["atomic_write_text", "atomic_write_json", "atomic_save", "read_json", "to_jsonable", "file_sha256",
           "inside", "refuse_links", "prepare_out_dir", "clean_temp_files", "RunLock", "TEMP_SUFFIX"]

TEMP_SUFFIX = ".tmp"



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


def _file_mode() -> int:
    """The mode a plainly created file gets here (0666 less the umask), for temp files made 0600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _write_failure(exc: RuntimeError) -> bool:
    """torch reports a full disk or an unwritable file as a RuntimeError; recognise it."""
    text = str(exc).lower()
    return any(k in text for k in ("iostream", "file write failed", "pytorchstreamwriter", "no space left"))


def atomic_save(write: Callable[[str], Any], path: str | os.PathLike, suffix: str = TEMP_SUFFIX) -> Path:
    """Run ``write(tmp_path)`` and move the result onto ``path`` atomically.

    The file gets the mode of a plainly created one (``0666`` less the umask). A write that fails
    because the disk is full or the file cannot be written raises :class:`OSError` naming ``path``
    (torch's own "iostream error" included); the temporary file is removed.

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
        try:
            write(tmp)
        except RuntimeError as exc:
            if _write_failure(exc):
                raise OSError(f"cannot write {path}: {exc}") from None
            raise
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
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


# --------------------------------------------------------------------------------------- run dirs
def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's content, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def inside(root: str | os.PathLike, rel: Any, what: str) -> Path:
    """``root / rel`` for a relative path that stays in ``root`` without passing a symbolic link.

    Raises :class:`InputError` naming ``what`` for an absolute path, a ``..`` component, or a
    symbolic link on the way (the file may be missing; the caller checks that).
    """
    if not isinstance(rel, str) or not rel:
        raise InputError(f"{what}: expected a path relative to {root}, got {rel!r}")
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts:
        raise InputError(f"{what}: {rel!r} points outside {root}; only paths inside it are used")
    cur = Path(root)
    for part in p.parts:
        cur = cur / part
        if cur.is_symlink():
            raise InputError(f"{what}: {cur} is a symbolic link; swnas does not follow links out of {root}")
    return cur


def refuse_links(root: str | os.PathLike, names: Sequence[str]) -> None:
    """Raise :class:`InputError` when one of ``root/name`` is a symbolic link (it could lead outside)."""
    for name in names:
        p = Path(root) / name
        if p.is_symlink():
            raise InputError(f"--out {root}: {p} is a symbolic link; swnas writes only inside {root} "
                             "and does not follow links (remove the link or choose another --out)")


def prepare_out_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """Create the output directory ``path`` and check that files can be written in it (before any work)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{what} {p}: exists and is not a directory")
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".swnas-probe.", suffix=TEMP_SUFFIX, dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"{what} {p}: cannot write there ({exc.strerror or exc})") from None
    return p


def clean_temp_files(root: str | os.PathLike, subdirs: Sequence[str] = ("",)) -> list[Path]:
    """Remove the temporary files that writes killed midway left in ``root`` (and its ``subdirs``).

    Only call this while holding the directory's :class:`RunLock` (no write can be in progress).
    """
    removed = []
    for sub in subdirs:
        d = Path(root) / sub
        if not d.is_dir() or d.is_symlink():
            continue
        for f in d.iterdir():
            if f.name.endswith(TEMP_SUFFIX) and (f.is_file() or f.is_symlink()):
                f.unlink()
                removed.append(f)
    return removed


class RunLock:
    """An exclusive ``fcntl.flock`` on ``DIR/.lock`` held for a run's lifetime (one writer per directory).

    The lock file records who holds it (pid, host, start time); a second process trying to take it
    gets an :class:`InputError` quoting that line. The kernel drops the lock when the holder dies,
    so a killed run never leaves a stale lock behind.
    """

    NAME = ".lock"

    def __init__(self, directory: str | os.PathLike, what: str = "--out"):
        self.path = Path(directory) / self.NAME
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        import fcntl
        import socket

        if self.path.is_symlink():
            raise InputError(f"{self.what}: {self.path} is a symbolic link; remove it")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise InputError(f"{self.what} {self.path.parent}: in use by {holder}; wait for it to finish "
                             "(or stop it) before starting another run there") from None
        info = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
