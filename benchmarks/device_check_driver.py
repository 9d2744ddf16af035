"""The device check's runner (benchmarks/device_check.sh calls it): one command that proves the GPU
half on a lent H100/H200 in at most 480 s, or says precisely what failed.

    python3 benchmarks/device_check_driver.py [--quick | --full] [--dry-run] [--no-build]

Environment: ``OUT`` (where the results go; default ``./device-out``), ``WORK`` (scratch, default
``/tmp/swnas-device-check``, wiped at the start), ``PYTHON`` (default: this interpreter).

Everything heavy happens in ``WORK``: the source copy, the build, the logs, the search runs. ``OUT``
receives only what the device tool returns (at most 8 small files): ``summary.md`` (verdict, every
step's result, the figures), ``steps.tsv``, ``scale.json``, ``bench.json``, ``search.json``,
``gpu_tests.xml`` (JUnit) and ``logs.tgz`` (every step's log). They are rewritten after every step,
so a run killed from outside still returns what it had.

The check cannot pass while the GPU half is broken or absent: a missing tool in the preflight, a
build without the CUDA module, a ``cuda`` or ``cupy`` backend that does not report available, any
skipped GPU test, a sanitizer error, a scale case off its float64 reference or a search that did not
score through the CUDA kernels each fail the run (exit status 1). After a failed build or gate the
GPU steps do not run and are listed as such. Every step has its own limit (``STEPS``); seconds a step
leaves unused carry over to the next ones, so the run never exceeds the sum of the limits.

This module needs only the standard library: its dry run and its failure paths are tested on a
machine without a GPU (tests/test_device_check.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CHECK = HERE / "device_check.py"

#: Files the run leaves in OUT (the device tool returns at most 8, 16 MiB each).
OUT_FILES = ("summary.md", "steps.tsv", "scale.json", "bench.json", "search.json", "gpu_tests.xml", "logs.tgz")


@dataclass(frozen=True)
class Step:
    """One step: its limits (s) in the quick and full modes (0: not in that mode) and why."""

    name: str
    quick: int
    full: int
    why: str


#: The steps in order. Limits come from measured costs: a cold ``import torch`` takes 7 s on the
#: development machine and up to ~10 s on a fresh device, ``import cupy`` 1-2 s, and CuPy compiles
#: each RawKernel/elementwise kernel with NVRTC on first use (~0.3-1 s each; the GPU tests touch
#: about thirty). Every Python step pays one torch import; gpu_tests pays the compiles.
STEPS: tuple[Step, ...] = (
    Step(
        "preflight",
        20,
        20,
        "tools and imports: nvidia-smi, Python.h, nvcc, compute-sanitizer, torch + cupy "
        "imports timed (two cold imports ~15 s)",
    ),
    Step("build", 100, 120, "offline pip install of a /tmp copy, CUDA for sm_90 (4 .cu files, 16 cores)"),
    Step("gate", 15, 15, "the installed swnas (not the source copy): cuda and cupy backends available"),
    Step(
        "gpu_tests",
        90,
        120,
        "pytest -m gpu, no -x, skips are failures (SWNAS_REQUIRE_GPU=1); import + NVRTC compiles ~25 s",
    ),
    Step("memcheck", 45, 45, "compute-sanitizer memcheck on small calls reaching every kernel path"),
    Step("racecheck", 0, 35, "compute-sanitizer racecheck (full mode: adds little for these kernels)"),
    Step("scale", 115, 125, "1.28 M x 2,048 and 1.28 M x 256 C = 1,000 against float64 torch references"),
    Step("bench", 40, 55, "PLS-VIP cuda vs the 4-read floor and cpp (full mode: every criterion)"),
    Step("search", 45, 45, "a tiny digits search scoring inf-FS via score_many on the cuda backend"),
    Step("summary", 10, 10, "summary.md, steps.tsv, logs.tgz (in-process)"),
)
#: Ceilings the tests pin: a quick run fits the issue's 8 minutes, a full run one 600-s device command.
QUICK_TOTAL_MAX = 480
FULL_TOTAL_MAX = 590
GPU_STEPS = ("gpu_tests", "memcheck", "racecheck", "scale", "bench", "search")


def budget(mode: str) -> list[tuple[str, int]]:
    """``[(step, limit_s)]`` of a mode (``quick`` or ``full``), in order."""
    return [(s.name, getattr(s, mode)) for s in STEPS if getattr(s, mode) > 0]


@dataclass
class Result:
    name: str
    status: str  # pass, fail, timeout, not run, dry-run, skipped
    seconds: float
    limit: int
    note: str = ""


@dataclass
class Run:
    mode: str
    out: Path
    work: Path
    py: str
    dry: bool = False
    build: bool = True
    results: list[Result] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)
    slack: float = 0.0

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    @property
    def src(self) -> Path:
        return self.work / "src"

    # ------------------------------------------------------------------------------- one step
    def step(
        self, name: str, limit: int, cmd: list[str], env: dict | None = None, cwd: Path | None = None, check=None
    ) -> bool:
        """Run ``cmd`` with ``limit`` + carried-over seconds, log it, judge it (rc 0 and ``check()``)."""
        print(
            f"=== [{time.monotonic() - self.t0:.0f} s] {name} (limit {limit} s + {self.slack:.0f} s carried)",
            flush=True,
        )
        if self.dry:
            print("    " + " ".join(map(str, cmd)), flush=True)
            self.results.append(Result(name, "dry-run", 0.0, limit))
            return True
        allowed = limit + self.slack
        log = self.logs / f"{name}.log"
        t = time.monotonic()
        status, note = "pass", ""
        with open(log, "w") as fh:
            fh.write("$ " + " ".join(map(str, cmd)) + "\n")
            fh.flush()
            try:
                proc = subprocess.Popen(
                    cmd,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    cwd=cwd or self.work,
                    env={**os.environ, **(env or {})},
                    start_new_session=True,
                )
            except OSError as exc:
                proc, status, note = None, "fail", f"cannot start: {exc}"
            if proc is not None:
                try:
                    rc = proc.wait(timeout=allowed)
                except subprocess.TimeoutExpired:
                    _kill_group(proc)
                    rc, status, note = None, "timeout", f"killed after {allowed:.0f} s"
                if rc:
                    status, note = "fail", f"rc {rc}"
        secs = time.monotonic() - t
        if status == "pass" and check is not None:
            ok, why = check()
            if not ok:
                status, note = "fail", why
        elif status != "pass" and check is not None:
            _, why = check()  # what the step's files still say (e.g. the failing tests' count)
            note = f"{note}; {why}" if why else note
        self.slack = max(0.0, allowed - secs)
        self.results.append(Result(name, status, secs, limit, note))
        tail = log.read_text(errors="replace").splitlines()[-15:]
        print("\n".join("    " + ln for ln in tail), flush=True)
        print(f"--- {name}: {status} in {secs:.0f} s {note}", flush=True)
        self.publish()
        return status == "pass"

    def not_run(self, name: str, limit: int, why: str) -> None:
        self.results.append(Result(name, "not run", 0.0, limit, why))
        print(f"--- {name}: not run ({why})", flush=True)

    # ---------------------------------------------------------------------------- the results
    def publish(self) -> None:
        """Rewrite every file of OUT from what the run has so far."""
        if self.dry:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        rows = [f"{r.name}\t{r.status}\t{r.seconds:.0f}\t{r.limit}\t{r.note}" for r in self.results]
        (self.out / "steps.tsv").write_text("step\tresult\tseconds\tlimit_s\tnote\n" + "\n".join(rows) + "\n")
        for name in ("scale.json", "bench.json", "search.json", "gpu_tests.xml"):
            if (self.work / name).is_file():
                shutil.copyfile(self.work / name, self.out / name)
        (self.out / "summary.md").write_text(summary_markdown(self))
        with tarfile.open(self.out / "logs.tgz", "w:gz") as tar:
            for f in sorted(self.logs.glob("*")):
                tar.add(f, arcname=f"logs/{f.name}")

    def verdict(self) -> bool:
        return bool(self.results) and all(r.status in ("pass", "dry-run") for r in self.results)


def _kill_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


# ----------------------------------------------------------------------------------- preflight
def preflight(work: Path) -> int:
    """Check the tools a device run needs; time the imports. Writes WORK/preflight.json."""
    import sysconfig

    checks: list[dict] = []
    work.mkdir(parents=True, exist_ok=True)

    def add(name: str, ok: bool, detail: str, seconds: float | None = None) -> None:
        lines = [ln.strip() for ln in detail.strip().splitlines() if ln.strip()]
        detail = (lines[-1] if not ok and lines else " ".join(lines)) if lines else ""  # a traceback's last line
        checks.append({"check": name, "ok": bool(ok), "detail": detail[:300], "seconds": seconds})
        (work / "preflight.json").write_text(json.dumps({"checks": checks}, indent=1))  # kept if killed
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail[:300]}", flush=True)

    def sh(cmd: list[str], timeout: float = 10.0) -> tuple[int | None, str, float]:
        t = time.monotonic()
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            return p.returncode, (p.stdout + p.stderr), time.monotonic() - t
        except FileNotFoundError:
            return None, f"{cmd[0]}: not found", time.monotonic() - t
        except subprocess.TimeoutExpired:
            return None, f"timed out after {timeout:.0f} s", time.monotonic() - t

    rc, txt, _ = sh(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"])
    add("nvidia-smi", rc == 0, txt)
    inc = Path(sysconfig.get_paths()["include"]) / "Python.h"
    add("Python.h", inc.is_file(), str(inc))
    rc, txt, _ = sh(["nvcc", "--version"])
    add("nvcc", rc == 0, txt.strip().splitlines()[-1] if txt.strip() else txt)
    rc, txt, _ = sh(["compute-sanitizer", "--version"])
    add("compute-sanitizer", rc == 0, txt.strip().splitlines()[-1] if txt.strip() else txt)
    py = sys.executable
    for mod in ("scikit_build_core", "pybind11", "pytest"):
        rc, txt, _ = sh([py, "-c", f"import {mod}"])
        add(f"import {mod} (offline build / tests)", rc == 0, txt or "ok")
    rc, txt, secs = sh(
        [
            py,
            "-c",
            "import torch; assert torch.cuda.is_available(), 'no GPU for torch'; "
            "print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())",
        ],
        30,
    )
    add("import torch (GPU visible)", rc == 0, txt, secs)
    # warnings as errors: a warning raised by `import cupy` would make the tests' probe fall back to
    # the NumPy stand-in silently
    rc, txt, secs = sh(
        [
            py,
            "-W",
            "error",
            "-c",
            "import cupy; print(cupy.__version__, cupy.cuda.runtime.getDeviceCount(), 'device(s)')",
        ],
        30,
    )
    add("python3 -W error -c 'import cupy'", rc == 0, txt, secs)
    rc, txt, secs = sh(
        [
            py,
            "-W",
            "error",
            "-c",
            "import cupy as cp; k = cp.ElementwiseKernel('float32 x', "
            "'float32 y', 'y = x * 2', 'swnas_probe'); "
            "print(float(k(cp.ones(4, cp.float32)).sum()))",
        ],
        30,
    )
    add("one NVRTC compile (cupy)", rc == 0, txt, secs)
    rc, txt, _ = sh(["nproc"])
    add("cores", rc == 0, txt)
    return int(not all(c["ok"] for c in checks))


# ------------------------------------------------------------------------------------ checks
def junit_counts(path: Path) -> dict:
    """tests / failures / errors / skipped of a JUnit XML file (pytest's), summed over suites."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    return {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}


def judge_gpu_tests(path: Path) -> tuple[bool, str]:
    """Every selected GPU test ran and passed: none skipped, at least one collected."""
    if not path.is_file():
        return False, "no JUnit XML"
    c = junit_counts(path)
    why = f"{c['tests']} tests, {c['failures']} failed, {c['errors']} errors, {c['skipped']} skipped"
    return c["tests"] > 0 and c["failures"] == c["errors"] == c["skipped"] == 0, why


def judge_json(path: Path) -> tuple[bool, str]:
    """A step's JSON: present, not skipped, every row passing."""
    if not path.is_file():
        return False, f"no {path.name}"
    doc = json.loads(path.read_text())
    if "skipped" in doc:
        return False, f"skipped: {doc['skipped']}"
    rows = doc.get("rows") or doc.get("runs") or []
    bad = [r.get("case") or r.get("criterion") or r.get("dir") for r in rows if r.get("pass") is False]
    if not rows:
        return False, "no rows"
    return not bad, (f"failing: {', '.join(map(str, bad))}" if bad else f"{len(rows)} rows pass")


# ----------------------------------------------------------------------------------- summary
def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v).replace("|", "/").replace("\n", " ")


def _table(rows: list[dict]) -> list[str]:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    return lines + ["| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |" for r in rows]


def summary_markdown(run: Run) -> str:
    ok = run.verdict()
    total = sum(r.seconds for r in run.results)
    lines = [
        f"## Device check ({run.mode}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"**{'PASS' if ok else 'FAIL'}** — {total:.0f} s of steps, budget "
        f"{sum(limit for _, limit in budget(run.mode))} s",
        "",
    ]
    lines += (
        ["### Steps", ""]
        + _table(
            [
                {"step": r.name, "result": r.status, "seconds": round(r.seconds), "limit_s": r.limit, "note": r.note}
                for r in run.results
            ]
        )
        + [""]
    )
    pre = run.work / "preflight.json"
    if pre.is_file():
        lines += ["### Preflight", ""] + _table(json.loads(pre.read_text())["checks"]) + [""]
    for name, title in (
        ("scale", "Scale (float64 torch references on the device)"),
        ("bench", "Scorer speed"),
        ("search", "Tiny search scoring inf-FS through the CUDA kernels"),
    ):
        f = run.work / f"{name}.json"
        if not f.is_file():
            continue
        doc = json.loads(f.read_text())
        rows = doc.get("rows") or doc.get("runs")
        lines += [f"### {title}", ""] + (_table(rows) if rows else _table([doc]))
        extra = {k: v for k, v in doc.items() if k not in ("rows", "runs")}
        if extra and rows:
            lines += ["", ", ".join(f"{k}: {_fmt(v)}" for k, v in extra.items())]
        lines.append("")
    xml = run.work / "gpu_tests.xml"
    if xml.is_file():
        try:
            c = junit_counts(xml)
            lines += ["### GPU tests", "", ", ".join(f"{k}: {v}" for k, v in c.items()), ""]
            failed = [
                f"{tc.get('classname')}::{tc.get('name')}"
                for tc in ET.parse(xml).getroot().iter("testcase")
                if tc.find("failure") is not None or tc.find("error") is not None or tc.find("skipped") is not None
            ]
            lines += [f"- not passed: `{t}`" for t in failed[:40]] + ([""] if failed else [])
        except ET.ParseError as exc:
            lines += ["### GPU tests", "", f"unreadable JUnit XML: {exc}", ""]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------- the run
def _copy_source(dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(
        REPO,
        dst,
        ignore=shutil.ignore_patterns(
            ".git",
            "build",
            "build-*",
            "device-out",
            "device_data",
            ".venv",
            "runs",
            "*.so",
            "__pycache__",
            ".pytest_cache",
            ".gl",
            ".whl",
        ),
    )


def main(argv: list[str]) -> int:
    mode = "full" if "--full" in argv else "quick"
    run = Run(
        mode=mode,
        out=Path(os.environ.get("OUT") or Path.cwd() / "device-out").resolve(),
        work=Path(os.environ.get("WORK") or "/tmp/swnas-device-check").resolve(),
        py=os.environ.get("PYTHON") or sys.executable,
        dry="--dry-run" in argv,
        build="--no-build" not in argv,
    )
    limits = dict(budget(mode))
    if not run.dry:
        if run.work.exists():
            shutil.rmtree(run.work)
        run.logs.mkdir(parents=True)
        run.out.mkdir(parents=True, exist_ok=True)
    print(f"device check ({mode}): OUT={run.out} WORK={run.work} budget {sum(limits.values())} s", flush=True)
    gpu_env = {"PYTHONUNBUFFERED": "1", "SWNAS_REQUIRE_GPU": "1"}
    if not run.build:  # the CPU test and a developer's retry: the importable swnas as it is
        gpu_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))

    run.step(
        "preflight",
        limits["preflight"],
        [run.py, str(HERE / "device_check_driver.py"), "preflight", str(run.work)],
        env=gpu_env,
    )
    built = True
    if run.build:
        if not run.dry:
            _copy_source(run.src)
        env = {
            "SWNAS_CUDA_ARCH": os.environ.get("SWNAS_CUDA_ARCH", "90"),
            "CMAKE_BUILD_PARALLEL_LEVEL": os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "16"),
        }
        built = run.step(
            "build",
            limits["build"],
            [
                run.py,
                "-m",
                "pip",
                "install",
                "--no-build-isolation",
                "--no-deps",
                "--no-index",
                "--disable-pip-version-check",
                "-v",
                str(run.src),
            ],
            env=env,
        )
    else:
        run.results.append(Result("build", "skipped", 0.0, limits["build"], "--no-build"))
    tests_dir = (run.src if run.build else REPO) / "tests"
    gate_cmd = [run.py, str(CHECK), "gate"] + ([] if run.build else ["--any-source"])
    gated = built and run.step("gate", limits["gate"], gate_cmd, env=gpu_env)
    if not built:
        run.not_run("gate", limits["gate"], "the build failed")
    for name, limit in budget(mode):
        if name not in GPU_STEPS:
            continue
        if not gated:
            run.not_run(name, limit, "the build or the backend gate failed")
            continue
        if name == "gpu_tests":
            xml = run.work / "gpu_tests.xml"
            run.step(
                name,
                limit,
                [
                    run.py,
                    "-m",
                    "pytest",
                    "-m",
                    "gpu",
                    str(tests_dir),
                    "-p",
                    "no:cacheprovider",
                    "-q",
                    "-rfEs",
                    f"--junitxml={xml}",
                ],
                env=gpu_env,
                check=lambda xml=xml: judge_gpu_tests(xml),
            )
        elif name in ("memcheck", "racecheck"):
            run.step(
                name,
                limit,
                ["compute-sanitizer", "--tool", name, "--error-exitcode", "9", run.py, str(CHECK), "sanitize"],
                env=gpu_env,
            )
        else:
            extra = ["--full"] if mode == "full" else []
            run.step(
                name,
                limit,
                [run.py, str(CHECK), name, str(run.work)] + extra,
                env=gpu_env,
                check=lambda f=run.work / f"{name}.json": judge_json(f),
            )
    t = time.monotonic()
    run.results.append(Result("summary", "dry-run" if run.dry else "pass", 0.0, limits["summary"]))
    run.publish()
    run.results[-1].seconds = time.monotonic() - t
    run.publish()
    ok = run.verdict()
    if not run.dry:
        print((run.out / "summary.md").read_text(), flush=True)
    word = "DRY RUN (nothing ran)" if run.dry else ("PASSED" if ok else "FAILED")
    print(f"=== device check {word} in {time.monotonic() - run.t0:.0f} s; results in {run.out}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "preflight":
        sys.exit(preflight(Path(sys.argv[2])))
    sys.exit(main(sys.argv[1:]))
