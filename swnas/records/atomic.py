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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from swnas.errors import InputError, SwnasError, WriteError

__all__ = [
    "atomic_write_text",
    "atomic_write_json",
    "atomic_save",
    "read_json",
    "to_jsonable",
    "file_sha256",
    "inside",
    "refuse_links",
    "prepare_out_dir",
    "clean_temp_files",
    "RunLock",
    "TEMP_SUFFIX",
    "temp_path",
    "is_temp_file",
    "write_failure",
    "refuse_dangerous_dir",
    "load_failure",
]

#: the ending of every temporary file swnas writes (``.NAME.XXXXXXXX.swnas.tmp``); only files named
#: so are ever removed as leftovers of killed writes, never a user's ``notes.tmp``
TEMP_SUFFIX = ".swnas.tmp"


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
    return any(
        k in text
        for k in (
            "iostream",
            "file write failed",
            "pytorchstreamwriter",
            "no space left",
            "unexpected pos",
            "inline_container",
        )
    )


def write_failure(exc: BaseException, path: str | os.PathLike) -> WriteError | None:
    """The :class:`~swnas.errors.WriteError` naming ``path`` that ``exc`` amounts to, or ``None``.

    A full disk, a read-only file system, a permission or an I/O error (an :class:`OSError`, or
    torch's ``RuntimeError`` from its zip writer such as "unexpected pos") becomes one clear error;
    anything else (a bug) is not translated.
    """
    if isinstance(exc, WriteError):  # from a nested writer's temporary file: name the destination
        inner = getattr(exc, "reason", None)
        if inner is None or not is_temp_file(Path(exc.filename or "").name):
            return None
        why = inner
    elif isinstance(exc, SwnasError):
        return None
    elif isinstance(exc, OSError):
        why = exc.strerror or str(exc)
    elif isinstance(exc, RuntimeError) and _write_failure(exc):
        why = "no space left on device or the file cannot be written (" + str(exc).strip().splitlines()[0][:200] + ")"
    else:
        return None
    return WriteError(
        f"cannot write {path}: {why}; the previous {Path(path).name} (if any) is unchanged. "
        "Free some space (or fix the permissions) and run the command again",
        str(path),
        why,
    )


def load_failure(exc: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` refused a file, in one line and without torch's
    advice to load it with ``weights_only=False`` (which would run code from the file: never do it)."""
    text = str(exc)
    if "weights_only" in text or "Unpickl" in type(exc).__name__:
        return (
            f"{type(exc).__name__}: it holds pickled Python objects besides tensors and plain values, which "
            "swnas never loads (it was not written by swnas, or was altered)"
        )
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(exc).__name__}: {first[:200]}"


def temp_path(path: str | os.PathLike, suffix: str = TEMP_SUFFIX) -> str:
    """Create an empty temporary file beside ``path`` (``.NAME.XXXXXXXX.swnas.tmp``) and return its path."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return tmp


def is_temp_file(name: str) -> bool:
    """Whether ``name`` is one of swnas's temporary files (see :data:`TEMP_SUFFIX`)."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def atomic_save(write: Callable[[str], Any], path: str | os.PathLike, suffix: str = TEMP_SUFFIX) -> Path:
    """Run ``write(tmp_path)`` and move the result onto ``path`` atomically.

    The file gets the mode of a plainly created one (``0666`` less the umask). A write that fails
    because the disk is full or the file cannot be written raises :class:`~swnas.errors.WriteError`
    (an :class:`OSError`) naming ``path`` (torch's own "iostream error" and "unexpected pos"
    included); the temporary file is removed and the previous ``path`` is untouched.

    Parameters
    ----------
    write : callable
        Writes the complete file to the path it receives (e.g. ``lambda p: torch.save(obj, p)``).
    path : path-like
        Destination; its directory is created when missing.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(path, suffix)
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        err = write_failure(exc, path)
        if err is not None:
            raise err from None
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
            raise InputError(
                f"--out {root}: {p} is a symbolic link; swnas writes only inside {root} "
                "and does not follow links (remove the link or choose another --out)"
            )


def refuse_dangerous_dir(path: str | os.PathLike, what: str = "--out") -> None:
    """Refuse an output directory that is obviously not a run's own: ``/``, a top-level directory
    such as ``/etc`` or ``/home``, or the home directory itself (a run writes and cleans up there)."""
    p = Path(path)
    try:
        real = p.resolve()
    except (OSError, RuntimeError):
        return
    home = None
    try:
        home = Path.home().resolve()
    except (OSError, RuntimeError, KeyError):
        pass
    if len(real.parts) <= 2 or real == home:
        kind = "the home directory" if real == home else "a file-system root or top-level directory"
        raise InputError(
            f"{what} {p}: is {kind} ({real}); give a directory of the run's own, such as {real / 'runs' / 'search'}"
        )


def prepare_out_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """Create the output directory ``path`` and check that files can be written in it (before any work)."""
    p = Path(path)
    refuse_dangerous_dir(p, what)
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

    Only swnas's own (:func:`is_temp_file`: ``.NAME.XXXXXXXX.swnas.tmp``) are removed; a user's
    ``notes.tmp`` is not.

    Only call this while holding the directory's :class:`RunLock` (no write can be in progress).
    """
    removed = []
    for sub in subdirs:
        d = Path(root) / sub
        if not d.is_dir() or d.is_symlink():
            continue
        for f in d.iterdir():
            if is_temp_file(f.name) and (f.is_file() or f.is_symlink()):
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

    def acquire(self) -> RunLock:
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
            raise InputError(
                f"{self.what} {self.path.parent}: in use by {holder}; wait for it to finish "
                "(or stop it) before starting another run there"
            ) from None
        info = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
