"""The swnas logger: levels, the log file, DDP rank filtering and the non-terminal progress policy."""

from __future__ import annotations

import io
import logging

import pytest

from swnas.errors import InputError
from swnas.records.logs import EpochLines, parse_level, setup_logging, use_bars


@pytest.fixture(autouse=True)
def _restore_logger():
    logger = logging.getLogger("swnas")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    for h in list(logger.handlers):
        if h not in saved[0]:
            logger.removeHandler(h)
            h.close()
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_levels_and_file_handler(tmp_path):
    out = io.StringIO()
    log_file = tmp_path / "run" / "search.log"
    setup_logging("warning", log_file, stream=out, rank=0, world_size=1)
    logging.getLogger("swnas.search").info("hidden")
    logging.getLogger("swnas.search").warning("shown %d", 7)
    assert out.getvalue() == "shown 7\n"
    text = log_file.read_text()
    assert "WARNING swnas.search: shown 7" in text and "hidden" not in text
    # reconfiguring replaces the handlers (no duplicate lines) and appends to the same file
    setup_logging("debug", log_file, stream=out, rank=0, world_size=1)
    logging.getLogger("swnas.train").debug("again")
    assert out.getvalue().count("again") == 1
    assert log_file.read_text().count("shown 7") == 1 and "DEBUG swnas.train: again" in log_file.read_text()


def test_other_ranks_only_warn_and_never_write_the_file(tmp_path):
    out = io.StringIO()
    setup_logging("info", tmp_path / "search.log", stream=out, rank=1, world_size=2)
    logging.getLogger("swnas").info("progress")
    logging.getLogger("swnas").warning("trouble")
    assert out.getvalue() == "trouble [rank 1]\n"
    assert not (tmp_path / "search.log").exists()


def test_parse_level():
    assert parse_level("DEBUG") == logging.DEBUG and parse_level(logging.ERROR) == logging.ERROR
    with pytest.raises(InputError, match="log_level"):
        parse_level("loud")


def test_progress_policy(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("SWNAS_PROGRESS", raising=False)
    assert use_bars(Tty()) and not use_bars(io.StringIO())
    monkeypatch.setenv("SWNAS_PROGRESS", "lines")
    assert not use_bars(Tty())
    monkeypatch.setenv("SWNAS_PROGRESS", "bars")
    assert use_bars(io.StringIO())


def test_epoch_lines_have_no_carriage_returns():
    out = io.StringIO()
    setup_logging("info", stream=out, rank=0, world_size=1)
    lines = EpochLines(200, desc="net 3 (T1)")
    for e in (1, 2):
        lines.epoch(
            {"epoch": e, "loss": 1.5 / e, "acc": 0.3 * e, "lr": 0.1, "seconds": 30.0, "images_per_second": 1666.4}
        )
    text = out.getvalue()
    assert "\r" not in text and text.count("\n") == 2
    assert text.splitlines()[1] == "net 3 (T1) epoch 2/200 loss 0.7500 acc 0.6000 lr 0.1 1666 img/s ETA 1h39m"
