"""What the search tells its user: progress lines on screen and in ``OUT/search.log``, with an ETA."""

from __future__ import annotations

import os
import time
from pathlib import Path
from collections.abc import Callable

__all__ = ["Progress", "fmt_seconds"]


def fmt_seconds(s: float) -> str:
    """``42s``, ``3m07s`` or ``2h05m``."""
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int((s % 3600) // 60):02d}m"


class Progress:
    """Echoes and logs progress lines (rank 0 only) and estimates the time left.

    Parameters
    ----------
    log : path
        The log file; lines are appended with a timestamp. It is opened without following a
        symbolic link (a link there is refused by the caller before the search starts).
    echo : callable
        Where lines go on screen.
    iterations : int
        n, for the step count (``3 n + 1`` steps: 2 n + 1 trainings and n scorings).
    enabled : bool
        False on ranks other than 0.
    """

    def __init__(self, log: Path, echo: Callable[[str], None], iterations: int, enabled: bool = True):
        self.log = Path(log)
        self.echo = echo
        self.iterations = iterations
        self.enabled = enabled
        self.per_iteration = 2
        self.total_steps = 3 * iterations + 1
        self.train_times: list[float] = []
        self.score_times: list[float] = []

    def networks_per_iteration(self, k: int) -> None:
        """Networks trained per iteration: 2 (T and A), 3 in inherit mode (T, F and A)."""
        self.per_iteration = int(k)
        self.total_steps = (k + 1) * self.iterations + 1

    def say(self, msg: str) -> None:
        if not self.enabled:
            return
        self.echo(msg)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.log, flags, 0o666)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + msg + "\n")
        except OSError as exc:  # a full disk: a clear error naming the log (earlier lines are kept)
            from swnas.records.atomic import write_failure

            err = write_failure(exc, self.log)
            if err is None:
                raise
            raise err from None

    def step(self, done: int, what: str) -> None:
        """Announce step ``done + 1`` of the run."""
        self.say(f"[step {done + 1}/{self.total_steps}] {what}")

    def eta(self, trained: int, scored: int, running: bool) -> str:
        """`` | ETA ~...`` from the mean step times so far, or ``""`` when nothing is left or known."""
        n = self.iterations
        left_train = max(0, self.per_iteration * n + 1 - trained)
        left_score = max(0, n - scored)
        if not running or (left_train + left_score) == 0 or not self.train_times:
            return ""
        t = sum(self.train_times) / len(self.train_times) * left_train
        if self.score_times:
            t += sum(self.score_times) / len(self.score_times) * left_score
        return f" | ETA ~{fmt_seconds(t)} (if every iteration runs)"
