"""What a ``swnas search`` session sets up around the search: logging, tracking, ``OUT/config.yaml``.

- the ``swnas`` logger at ``--log-level`` (``warning`` with ``--quiet``), with ``OUT/search.log``
  as a file handler on rank 0 (:mod:`swnas.records.logs`);
- the ``--track`` sink, active for the trainer's epochs and the search's scores (:mod:`swnas.records.tracking`);
- ``OUT/config.yaml``: every option resolved, written before the first network trains, so that
  ``swnas search --config OUT/config.yaml --out NEW`` repeats the run (:mod:`swnas.config_file`).
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from collections.abc import Iterator

from swnas.config_file import CONFIG_NAME, write_config
from swnas.records.logs import setup_logging
from swnas.search.config import LOG_FILE, SearchConfig
from swnas.records.tracking import Tracker, activate, make_tracker

__all__ = ["search_session", "session_options"]


def session_options(ns: argparse.Namespace) -> dict:
    """The session options worth repeating (``track``, ``log_level``), as given."""
    return {k: getattr(ns, k) for k in ("track", "log_level") if getattr(ns, k, None) is not None}


@contextlib.contextmanager
def search_session(cfg: SearchConfig, out: Path, ns: argparse.Namespace, quiet: bool) -> Iterator[Tracker]:
    """Set up logging, tracking and the config write-back for a search in ``out``; yields the tracker.

    Call it only while holding ``out``'s :class:`~swnas.records.atomic.RunLock`: it writes ``config.yaml``,
    ``search.log`` and the ``--track`` files there.
    """
    from swnas.training import distributed as D

    main = D.rank() == 0
    level = getattr(ns, "log_level", None) or ("warning" if quiet else "info")
    resolved = cfg.resolved()
    # the caller holds OUT's lock (swnas.search.opening.lock_out) and has refused a fresh run over a
    # search that trained something; never write through a file or link in OUT's place
    usable = out.is_dir() and not out.is_symlink() if out.exists() or out.is_symlink() else True
    own = main and usable
    # the tracker first: a --track whose package is missing is refused before OUT gets a file
    tracker = activate(make_tracker(getattr(ns, "track", None), out, rank=D.rank()))
    logger = setup_logging(level, out / LOG_FILE if own and not (out / LOG_FILE).is_symlink() else None)
    try:
        if own and not (out / CONFIG_NAME).is_symlink():
            write_config(out / CONFIG_NAME, {**resolved.to_dict(), "out": str(out), **session_options(ns)})
        tracker.config(resolved.to_dict())
        yield tracker
    finally:
        tracker.close()
        activate(Tracker())
        for h in list(logger.handlers):  # release OUT/search.log
            if getattr(h, "baseFilename", None):
                logger.removeHandler(h)
                h.close()
