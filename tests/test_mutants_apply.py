"""Every mutant of the mutation pass (scripts/mutants.json, docs/testing.md) still applies to today's code.

A refactor that moves a file or rewrites a mutated line would otherwise leave the pass unrunnable
until someone next runs it; this test fails first and names the mutant.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_mutant_snippet_occurs_once_and_its_tests_exist():
    mutants = json.loads((ROOT / "scripts" / "mutants.json").read_text())
    assert len(mutants) >= 50
    problems = []
    for m in mutants:
        path = ROOT / m["file"]
        if not path.is_file():
            problems.append(f"{m['id']}: {m['file']} does not exist")
            continue
        count = path.read_text().count(m["old"])
        if count != 1:
            problems.append(f"{m['id']}: snippet occurs {count} times in {m['file']}")
        if m["old"] == m["new"]:
            problems.append(f"{m['id']}: the replacement equals the original")
        problems += [f"{m['id']}: test file {t} does not exist" for t in m["tests"] if not (ROOT / t).is_file()]
    assert not problems, "\n".join(problems)
