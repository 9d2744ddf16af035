"""Mutation pass: apply one realistic one-line bug at a time, run the fast tests a developer would pick,
restore the file, and record whether the tests caught it (docs/testing.md, "Mutation pass").

Each mutant in ``scripts/mutants.json`` names a file, an exact snippet that must occur once in it, its
replacement, and the test files to run. A mutant in ``csrc/`` rebuilds the compiled core
(``scripts/dev_build.sh``) before its tests and puts the original ``swnas/_core*.so`` back after.
Run from the repository root::

    python scripts/mutate.py                       # every mutant; results in mutation-results.json/.md
    python scripts/mutate.py --only M07 C1          # some of them
    python scripts/mutate.py --full-suite           # survivors also face the whole fast suite

"caught" means the tests failed, crashed or ran past ``--timeout``; "survived" that they passed with
the mutant applied; "equivalent" a survivor whose entry explains why no input tells it apart (left
out of the score). Every file is restored byte for byte, also on Ctrl-C; the script refuses to start
when a mutated file differs from git's copy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTEST_ARGS = ["-q", "-x", "-m", "not slow", "-p", "no:cacheprovider", "--no-header"]


def load_mutants(path: Path) -> list[dict]:
    doc = json.loads(path.read_text())
    seen = set()
    for m in doc:
        for key in ("id", "file", "old", "new", "tests", "kind"):
            if key not in m:
                raise SystemExit(f"{path}: mutant {m.get('id', '?')} has no {key!r}")
        if m["id"] in seen:
            raise SystemExit(f"{path}: mutant id {m['id']} given twice")
        seen.add(m["id"])
    return doc


def core_library() -> Path | None:
    libs = sorted((ROOT / "swnas").glob("_core*.so"))
    return libs[0] if libs else None


def rebuild(python: str) -> tuple[bool, str]:
    env = dict(os.environ, PYTHON=python, SWNAS_DISABLE_CUDA="1")
    r = subprocess.run(
        ["nice", "-n", "5", "scripts/dev_build.sh", "build-dev"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    return r.returncode == 0, (r.stdout + r.stderr)[-2000:]


def run_tests(python: str, tests: list[str], timeout: float) -> tuple[str, float, str]:
    """('failed' | 'passed' | 'timeout' | 'error', seconds, output tail)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    t0 = time.perf_counter()
    try:
        r = subprocess.run(
            ["nice", "-n", "5", python, "-m", "pytest", *tests, *PYTEST_ARGS],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or b""
        return "timeout", time.perf_counter() - t0, (out.decode() if isinstance(out, bytes) else out)[-1500:]
    secs = time.perf_counter() - t0
    tail = (r.stdout + r.stderr)[-1500:]
    if r.returncode == 0:
        return "passed", secs, tail
    if r.returncode == 1:
        return "failed", secs, tail
    if r.returncode == 5:
        return "no tests", secs, tail
    return "error", secs, tail  # 2-4: a collection error (an import failing with the mutant), usage


def check_clean(files: set[str]) -> None:
    r = subprocess.run(["git", "diff", "--quiet", "--", *sorted(files)], cwd=ROOT)
    if r.returncode != 0:
        raise SystemExit(f"refusing to start: some of {sorted(files)} differ from git's copy (git diff)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mutants", default=str(ROOT / "scripts" / "mutants.json"))
    ap.add_argument("--only", nargs="*", help="mutant ids to run (default: all)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per test run (default 600)")
    ap.add_argument("--full-suite", action="store_true", help="run the whole fast suite on each survivor")
    ap.add_argument("--json", default="mutation-results.json")
    ap.add_argument("--markdown", default="mutation-results.md")
    ap.add_argument("--python", default=sys.executable)
    ns = ap.parse_args(argv)

    mutants = load_mutants(Path(ns.mutants))
    if ns.only:
        unknown = set(ns.only) - {m["id"] for m in mutants}
        if unknown:
            raise SystemExit(f"--only: no mutant {sorted(unknown)}")
        mutants = [m for m in mutants if m["id"] in ns.only]
    check_clean({m["file"] for m in mutants})

    state: dict = {"path": None, "text": None, "lib": None, "lib_backup": None}

    def restore() -> None:
        if state["path"] is not None:
            state["path"].write_bytes(state["text"])
            state["path"] = None
        if state["lib_backup"] is not None:
            shutil.copy2(state["lib_backup"], state["lib"])
            state["lib_backup"] = None

    def on_signal(signum, frame):
        restore()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    results = []
    backup_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"swnas-mutate-{os.getpid()}"
    backup_dir.mkdir(parents=True, exist_ok=True)
    try:
        for m in mutants:
            path = ROOT / m["file"]
            text = path.read_bytes()
            src = text.decode()
            n = src.count(m["old"])
            rec = {k: m[k] for k in ("id", "kind", "file", "old", "new", "tests")}
            rec["note"] = m.get("note", "")
            if m.get("equivalent"):
                rec["equivalent"] = m["equivalent"]
            if n != 1:
                rec.update(result="invalid", detail=f"snippet found {n} times")
                results.append(rec)
                print(f"{m['id']}: INVALID (snippet found {n} times)", flush=True)
                continue
            state["path"], state["text"] = path, text
            path.write_text(src.replace(m["old"], m["new"]))
            native = m["file"].startswith("csrc/")
            if native:
                lib = core_library()
                state["lib"] = lib
                state["lib_backup"] = backup_dir / lib.name
                shutil.copy2(lib, state["lib_backup"])
                ok, log = rebuild(ns.python)
                if not ok:  # a mutant that does not compile is not a test result
                    restore()
                    rec.update(result="invalid", detail="does not compile: " + log[-300:])
                    results.append(rec)
                    print(f"{m['id']}: INVALID (does not compile)", flush=True)
                    continue
            outcome, secs, tail = run_tests(ns.python, m["tests"], ns.timeout)
            caught = outcome in ("failed", "timeout", "error")  # error: the mutant breaks an import
            result = "invalid" if outcome == "no tests" else "caught" if caught else "survived"
            if result == "survived" and m.get("equivalent"):
                result = "equivalent"  # survived, and no input tells it apart (the reason is recorded)
            rec.update(
                result=result,
                outcome=outcome,
                seconds=round(secs, 1),
                detail=tail.strip().splitlines()[-1] if tail.strip() else "",
            )
            if result == "survived" and ns.full_suite:
                outcome2, secs2, tail2 = run_tests(ns.python, ["tests"], max(ns.timeout, 1800.0))
                rec["full_suite"] = {
                    "outcome": outcome2,
                    "seconds": round(secs2, 1),
                    "detail": tail2.strip().splitlines()[-1] if tail2.strip() else "",
                }
                if outcome2 in ("failed", "timeout"):
                    rec["result"] = "caught (full suite)"
            restore()
            results.append(rec)
            print(f"{m['id']}: {rec['result'].upper()} ({outcome}, {secs:.0f} s) {m['file']}", flush=True)
    finally:
        restore()
        shutil.rmtree(backup_dir, ignore_errors=True)
    check_clean({m["file"] for m in mutants})

    Path(ns.json).write_text(json.dumps(results, indent=1) + "\n")
    Path(ns.markdown).write_text(markdown(results))
    print(summary(results))
    return 0


def markdown(results: list[dict]) -> str:
    def cell(s: str) -> str:
        s = " ".join(s.split())
        return "`" + s.replace("|", "\\|").replace("`", "'") + "`"

    lines = [
        "| Id | Kind | File | Original | Mutant | Tests run | Result | Note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        tests = ", ".join(Path(t).name for t in r["tests"])
        res = r["result"] + (f" ({r.get('seconds')} s)" if "seconds" in r else "")
        note = "; ".join(x for x in (r.get("note", ""), r.get("equivalent", "")) if x).replace("|", "\\|")
        lines.append(
            f"| {r['id']} | {r['kind']} | {r['file']} | {cell(r['old'])} | {cell(r['new'])} | {tests} | {res} "
            f"| {note} |"
        )
    lines += ["", summary(results)]
    return "\n".join(lines) + "\n"


def summary(results: list[dict]) -> str:
    """``K of N caught (P%); E equivalent, I invalid`` over the mutants that ran and are not equivalent."""
    scored = [r for r in results if r["result"] not in ("invalid", "equivalent")]
    caught = [r for r in scored if r["result"].startswith("caught")]
    eq = sum(r["result"] == "equivalent" for r in results)
    bad = sum(r["result"] == "invalid" for r in results)
    pct = 100.0 * len(caught) / len(scored) if scored else 0.0
    return (
        f"{len(caught)} of {len(scored)} caught ({pct:.0f}%); {eq} equivalent (survived, reason recorded), "
        f"{bad} invalid"
    )


if __name__ == "__main__":
    sys.exit(main())
