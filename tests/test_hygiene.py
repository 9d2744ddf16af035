"""The repository's tracked files hold no development-log numbering, development-machine paths or plan tags.

Figures are dated by the date and commit of their measurement ("2026-11-29, commit 035b38f"), data
is found through ``$SWNAS_DATA_DIR`` / ``data/`` (never a path of one machine), and comments cite the
project's own docs/.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: (what it is, pattern); matched line by line in every tracked text file
FORBIDDEN: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a development-log number ('session 3'; use the date and commit)", re.compile(r"\bsessions? \d", re.I)),
    ("a development-machine path", re.compile(r"/work/")),
    ("a path outside the repository ('../shared')", re.compile(r"\.\./shared\b")),
    ("a plan tag ('# E:')", re.compile(r"(#|//|\"\"\")\s?E\d?: ")),
)

#: files that must name the patterns themselves
ALLOWED = {"tests/test_hygiene.py"}


def _tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (the check reads `git ls-files`)")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [f for f in out.stdout.decode().split("\0") if f]


def find_violations(files: list[str], root: Path = ROOT) -> list[str]:
    """``path:line: what`` for every forbidden pattern in the text files ``files`` under ``root``."""
    found = []
    for rel in files:
        path = root / rel
        if rel in ALLOWED or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary (images, archives)
        for no, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            for what, pattern in FORBIDDEN:
                if pattern.search(line):
                    found.append(f"{rel}:{no}: {what}: {line.strip()[:120]}")
    return found


def test_no_development_words_or_paths():
    files = _tracked_files()
    assert len(files) > 50  # the listing worked
    problems = find_violations(files)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "line, bad",
    [
        ("measured in session 4 (quiet)", True),
        ("Sessions 2 and 3 agree", True),
        ('CIFAR = "/work/shared/data/cifar10.npz"', True),
        ("look in ../shared/data/", True),
        ("x = 1  # E: --track", True),
        ('"""E: merge the config."""', True),
        ("measured 2026-11-29 (commit 035b38f); a search session resumes", False),
        ("data/cifar10.npz or $SWNAS_DATA_DIR", False),
        ("X: one float32 product", False),
    ],
)
def test_the_patterns(tmp_path, line, bad):
    (tmp_path / "f.md").write_text(f"first line\n{line}\n")
    found = find_violations(["f.md"], tmp_path)
    assert bool(found) == bad, found
    if bad:
        assert found[0].startswith("f.md:2: ")
