"""Opening a search directory for one run: checks, lock, state, toolkit, log.

Before any network trains: every option is validated, ``--out`` is checked to be a writable
directory whose known entries are not symbolic links, an exclusive lock is taken on it for the
run's lifetime, temporary files left by killed writes are removed, and a resumed state is checked
(each recorded checkpoint inside ``--out``, present and unchanged).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from collections.abc import Callable, Iterator

from swnas.errors import InputError
from swnas.search import toolkit as toolkits
from swnas.search.checkpoints import checkpoint_path
from swnas.search.config import LOG_FILE, STATE_FILE, SearchConfig
from swnas.search.progress import Progress
from swnas.search.state import SearchState
from swnas.search.toolkit import Toolkit
from swnas.search.validate import validate_options
from swnas.records.atomic import (
    RunLock,
    clean_temp_files,
    prepare_out_dir,
    read_json,
    refuse_dangerous_dir,
    refuse_links,
)

__all__ = ["open_run", "lock_out", "fresh_allowed", "OUT_ENTRIES"]

# what a search keeps in OUT (none of them may be a symbolic link)
OUT_ENTRIES = (
    STATE_FILE,
    LOG_FILE,
    "checkpoints",
    "specs",
    "report",
    "ensemble.json",
    "baselines",
    RunLock.NAME,
    "training",
    "config.yaml",
    "final",
    "track.jsonl",
    "tensorboard",
    "mlflow.db",
    "mlflow-artifacts",
)

# the entries of OUT that are directories
OUT_DIRS = ("checkpoints", "specs", "report", "baselines", "training", "final", "tensorboard", "mlflow-artifacts")


def _is_main(tk: Toolkit | None) -> bool:
    if tk is not None:
        return bool(tk.is_main())
    return os.environ.get("RANK", "0") in ("", "0")


def fresh_allowed(out: Path) -> None:
    """A fresh search may start in ``out`` unless it holds a search that trained something."""
    path = out / STATE_FILE
    if not path.exists():
        return
    try:
        doc = read_json(path, what="search state")
        empty = isinstance(doc, dict) and doc.get("networks") == []
    except InputError:
        empty = False
    if not empty:
        raise InputError(
            f"--out {out}: already holds a search ({STATE_FILE}); continue it with "
            f"`swnas search --resume {out}` or choose another --out"
        )


def _open_state(cfg: SearchConfig, out: Path, tk: Toolkit, resume: bool, progress: Progress) -> SearchState:
    main = bool(tk.is_main())
    if resume:
        state = SearchState.load(out)
        for net in state.networks:
            checkpoint_path(out, net)  # inside OUT, present, the recorded file
        stored = state.doc["config"]
        state.doc["config"] = {
            k: (stored.get(k) if k in ("device", "backend") and k in stored else v) for k, v in cfg.to_dict().items()
        }
        if state.status == "complete" and len(state.iterations) < cfg.iterations:
            state.status = "running"  # more iterations were asked for
        progress.say(
            f"resuming {out}: {len(state.networks)} network(s) trained, "
            f"{len(state.iterations)} scoring step(s) done, status {state.status}"
        )
        return state
    state = SearchState.new(cfg, tk.carbon_note)
    if main:
        fd = os.open(out / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o666)
        os.close(fd)
        state.save(out)
    tk.barrier()
    return state


def lock_out(out: Path, resume: bool) -> RunLock:
    """Check ``out`` and take its :class:`RunLock`; nothing in ``out`` is written or removed before.

    ``out`` is created when missing (not for ``resume``); its known entries must not be symbolic
    links. Writability is checked once the lock is held. Raises :class:`InputError` when the lock
    is held by another run (naming it), before anything in the directory changes.
    """
    if resume and not out.is_dir():
        raise InputError(f"search directory: no such directory: {out}")
    refuse_dangerous_dir(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory")
    if out.is_dir():
        refuse_links(out, OUT_ENTRIES)
        for name in OUT_DIRS:  # found now, not after every network has trained
            if (out / name).exists() and not (out / name).is_dir():
                raise InputError(
                    f"--out {out}: {out / name} is a file, but the search keeps a directory there; "
                    "move it away or choose another --out"
                )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
    try:
        lock = RunLock(out).acquire()
    except PermissionError as exc:
        raise InputError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
    try:
        prepare_out_dir(out)  # a probe file, now under the lock
    except BaseException:
        lock.release()
        raise
    return lock


@contextlib.contextmanager
def open_run(
    cfg: SearchConfig,
    out: Path,
    toolkit: Toolkit | None,
    resume: bool,
    echo: Callable[[str], None] | None,
    held: RunLock | None = None,
) -> Iterator[tuple[Toolkit, SearchState, Progress]]:
    """Validate, lock ``out``, open (or create) the state; yields ``(toolkit, state, progress)``.

    The lock is held until the ``with`` block ends (the kernel drops it if the process dies).
    ``held`` is a lock on ``out`` the caller already holds (:func:`lock_out`); it is not released here.
    """
    validate_options(cfg)
    main = _is_main(toolkit)
    lock = None
    if main and held is None:
        lock = lock_out(out, resume)
    try:
        if main:
            work = [
                f"{d}/{w.name}"
                for d in ("training", "final")
                if (out / d).is_dir() and not (out / d).is_symlink()
                for w in (out / d).iterdir()
                if w.is_dir() and not w.is_symlink()
            ]
            clean_temp_files(out, ("", "checkpoints", "specs", "report", "training", "final", *work))
        if not resume:
            fresh_allowed(out)
        if toolkit is None:
            # looked up on its module at call time, so that tests can substitute it there
            toolkit = toolkits.default_toolkit(cfg, progress=echo is not None)
        progress = Progress(out / LOG_FILE, echo or (lambda s: None), cfg.iterations, enabled=bool(toolkit.is_main()))
        state = _open_state(cfg, out, toolkit, resume, progress)
        yield toolkit, state, progress
    finally:
        if lock is not None:
            lock.release()
