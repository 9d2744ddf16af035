"""Randomized kill loop: SIGKILL a real (tiny) digits search at random moments, resume it, repeat.

Each trial starts ``swnas search`` in a fresh directory, kills it (``SIGKILL`` to its process group)
after a random delay, then resumes it -- every resume may itself be killed -- until it completes.
The final state must equal an uninterrupted reference run's (timings and file hashes aside), the
state file must be valid JSON after every kill, and no temporary file may remain. Run::

    python scripts/kill_loop.py --minutes 5 --work /tmp/kill-loop

It prints one line per trial and a summary (the figures recorded in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = [
    "--dataset",
    "digits",
    "--subset",
    "200",
    "--iterations",
    "2",
    "--m0",
    "1",
    "--delta",
    "1",
    "--epochs",
    "1",
    "--batch-size",
    "64",
    "--lr",
    "0.05",
    "--device",
    "cpu",
    "--no-report",
    "--quiet",
]


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT))


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "swnas", "search", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_env(),
        start_new_session=True,
    )


def _run_maybe_killed(args: list[str], delay: float | None) -> tuple[bool, int | None, str]:
    """Run; kill after ``delay`` s (None: never). Returns (killed, exit code, stderr)."""
    proc = _start(args)
    try:
        proc.wait(timeout=delay if delay is not None else 600)
        return False, proc.returncode, proc.stderr.read().decode(errors="replace")
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return True, None, ""


def _comparable(out: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from swnas.search import comparable_state, load_state

    return comparable_state(load_state(out))


def trial(work: Path, ref: dict, span: float, rng: random.Random) -> dict:
    out = work / f"trial-{int(time.time() * 1000)}"
    kills, starts = 0, 0
    args = [*FLAGS, "--out", str(out)]
    while True:
        starts += 1
        # the first start is always killed, later ones (resumes) half of the time
        delay = rng.uniform(0.2, span) if (starts == 1 or rng.random() < 0.5) else None
        killed, code, err = _run_maybe_killed(args, delay)
        state_file = out / "search.json"
        if state_file.exists():
            json.loads(state_file.read_text())  # raises if half-written
        if killed:
            kills += 1
            if state_file.exists():
                args = ["--resume", str(out), "--no-report", "--quiet"]
            continue
        if code != 0:
            raise RuntimeError(f"{out}: exit {code}: {err}")
        break
    same = _comparable(out) == ref
    temps = [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    shutil.rmtree(out)
    return {"kills": kills, "starts": starts, "same": same, "temps": len(temps)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--work", default="/tmp/swnas-kill-loop")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    work = Path(a.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rng = random.Random(a.seed)
    t0 = time.perf_counter()
    killed, code, err = _run_maybe_killed([*FLAGS, "--out", str(work / "ref")], None)
    if code != 0:
        print(err, file=sys.stderr)
        return 1
    span = time.perf_counter() - t0
    ref = _comparable(work / "ref")
    print(f"reference run: {span:.1f} s, {len(ref['networks'])} networks")
    results = []
    end = time.time() + 60 * a.minutes
    while time.time() < end:
        r = trial(work, ref, span, rng)
        results.append(r)
        print(
            f"trial {len(results)}: {r['kills']} kill(s), {r['starts']} start(s), "
            f"same as reference: {r['same']}, temp files left: {r['temps']}",
            flush=True,
        )
    bad = [r for r in results if not r["same"] or r["temps"]]
    print(
        f"summary: {len(results)} trials, {sum(r['kills'] for r in results)} SIGKILLs, "
        f"{len(bad)} mismatching or unclean"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
