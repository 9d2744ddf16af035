"""Logging for long runs: the ``swnas`` logger, ``--log-level``, ``OUT/search.log``, progress policy.

Every module logs to a child of the ``swnas`` logger (``swnas.search``, ``swnas.train``, ...).
:func:`setup_logging` gives that logger one console handler (stderr, messages only) and, when a
file is named, one file handler with timestamps; calling it again replaces both, so a resumed run
in the same process does not print lines twice. The file is opened in append mode: a resumed
search continues its ``search.log``.

Progress bars (tqdm) redraw one line with carriage returns; in a SLURM log, under ``nohup`` or
through a pipe that leaves megabytes of ``\\r`` fragments. :func:`use_bars` says whether bars are
wanted -- only when the stream is a terminal -- and :class:`EpochLines` is the replacement: one
log line per epoch (loss, accuracy, images/s, ETA). ``SWNAS_PROGRESS=bars|lines`` overrides.

Under DDP every rank's records carry ``[rank r]``; ranks other than 0 log warnings and errors only
unless the level asks for more (``--log-level debug``).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import IO, Any

from swnas.errors import InputError

__all__ = ["LEVELS", "parse_level", "setup_logging", "use_bars", "EpochLines", "ROOT"]

ROOT = "swnas"
LEVELS = ("debug", "info", "warning", "error")
_MARK = "_swnas_handler"
_FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s%(rank)s: %(message)s"


def parse_level(level: str | int) -> int:
    """``"debug"``, ``"info"``, ``"warning"``, ``"error"`` (any case) or a logging constant."""
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    if isinstance(level, str) and level.lower() in LEVELS:
        return getattr(logging, level.upper())
    raise InputError(f"log_level must be one of {list(LEVELS)}, got {level!r}")


class _RankFilter(logging.Filter):
    """Adds ``record.rank`` (``" [rank r]"`` under DDP, else empty); quiets ranks other than 0."""

    def __init__(self, rank: int, world: int, level: int):
        super().__init__()
        self.rank, self.world, self.level = rank, world, level

    def filter(self, record: logging.LogRecord) -> bool:
        record.rank = f" [rank {self.rank}]" if self.world > 1 else ""
        if self.rank != 0 and self.level > logging.DEBUG:
            return record.levelno >= logging.WARNING
        return True


class _QuietFileHandler(logging.FileHandler):
    """A log file whose failed writes (a full disk) say so in one line, not with logging's traceback."""

    _told = False

    def handleError(self, record: logging.LogRecord) -> None:  # logging's name
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) and not self._told:
            self._told = True
            sys.stderr.write(f"swnas: cannot write the log {self.baseFilename}: {exc.strerror or exc}\n")
        elif not isinstance(exc, OSError):
            super().handleError(record)


def setup_logging(
    level: str | int = "info",
    log_file: str | os.PathLike | None = None,
    *,
    stream: IO[str] | None = None,
    rank: int | None = None,
    world_size: int | None = None,
) -> logging.Logger:
    """Configure the ``swnas`` logger; returns it.

    Parameters
    ----------
    level : str or int
        Threshold of the console and the file (``--log-level``).
    log_file : path, optional
        Appended to with timestamps (``OUT/search.log``); its directory is created. Only rank 0
        writes it.
    stream : text stream, optional
        Console stream (default ``sys.stderr`` at call time).
    rank, world_size : int, optional
        Default: from the ``RANK`` / ``WORLD_SIZE`` environment variables (torchrun).
    """
    lvl = parse_level(level)
    rank = int(os.environ.get("RANK", 0)) if rank is None else int(rank)
    world = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else int(world_size)
    logger = logging.getLogger(ROOT)
    for h in [h for h in logger.handlers if getattr(h, _MARK, False)]:
        logger.removeHandler(h)
        h.close()
    logger.setLevel(lvl)
    logger.propagate = False
    flt = _RankFilter(rank, world, lvl)
    console = logging.StreamHandler(stream if stream is not None else sys.stderr)
    console.setFormatter(logging.Formatter("%(message)s%(rank)s" if world > 1 else "%(message)s"))
    handlers: list[logging.Handler] = [console]
    if log_file is not None and rank == 0:
        path = Path(log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = _QuietFileHandler(path, mode="a", encoding="utf-8")
        fh.setFormatter(logging.Formatter(_FILE_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
        handlers.append(fh)
    for h in handlers:
        setattr(h, _MARK, True)
        h.setLevel(lvl)
        h.addFilter(flt)
        logger.addHandler(h)
    return logger


def use_bars(stream: Any = None) -> bool:
    """Whether progress bars suit ``stream`` (default stderr): a terminal, unless SWNAS_PROGRESS says otherwise."""
    forced = os.environ.get("SWNAS_PROGRESS", "").lower()
    if forced in ("bars", "lines"):
        return forced == "bars"
    s = sys.stderr if stream is None else stream
    try:
        return bool(s.isatty())
    except (AttributeError, ValueError):  # closed or not a file
        return False


class EpochLines:
    """One ``logging`` line per finished epoch, for runs whose stderr is a file or a pipe.

    ``lines.epoch(stats)`` with the trainer's history entry (``epoch``, ``loss``, ``acc``, ``lr``,
    ``seconds``, ``images_per_second``, with a validation split ``val_acc``) logs
    ``"<desc> epoch 3/200 loss 1.2345 acc 0.5678 [val_acc 0.5432 ]lr 0.1 2150 img/s ETA 1h02m"``.
    """

    def __init__(self, total_epochs: int, desc: str = "train", logger: logging.Logger | None = None):
        self.total = int(total_epochs)
        self.desc = desc
        self.log = logger if logger is not None else logging.getLogger(ROOT + ".train")

    @staticmethod
    def _eta(seconds: float) -> str:
        s = int(round(seconds))
        if s >= 3600:
            return f"{s // 3600}h{(s % 3600) // 60:02d}m"
        if s >= 60:
            return f"{s // 60}m{s % 60:02d}s"
        return f"{s}s"

    def format(self, stats: dict) -> str:
        left = max(0, self.total - int(stats["epoch"])) * float(stats.get("seconds", 0.0))
        val = f"val_acc {stats['val_acc']:.4f} " if isinstance(stats.get("val_acc"), float) else ""
        return (
            f"{self.desc} epoch {int(stats['epoch'])}/{self.total} loss {stats['loss']:.4f} "
            f"acc {stats['acc']:.4f} {val}lr {stats.get('lr', float('nan')):.4g} "
            f"{stats.get('images_per_second', 0.0):.0f} img/s ETA {self._eta(left)}"
        )

    def epoch(self, stats: dict) -> None:
        self.log.info(self.format(stats))
