"""The device check's CPU-side pieces (benchmarks/device_check.sh, device_check_driver.py,
device_check.py): the step budget, the dry run, a run on a machine without a GPU (it must fail and
say why), the skip-is-failure rule of the GPU tests, the judges of each step's files, the summary,
the tiny inf-FS search step's glue on the CPU and the data packing round trip. The GPU steps
themselves only run on a GPU machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "device_check.sh"
sys.path.insert(0, str(ROOT / "benchmarks"))
try:
    import device_check
    import device_check_driver as drv
finally:
    sys.path.pop(0)


def test_step_budget_fits_eight_minutes_in_the_issue_order():
    quick = drv.budget("quick")
    assert [n for n, _ in quick] == [
        "preflight",
        "build",
        "gate",
        "gpu_tests",
        "memcheck",
        "scale",
        "bench",
        "search",
        "summary",
    ]
    assert sum(limit for _, limit in quick) <= drv.QUICK_TOTAL_MAX == 480
    full = drv.budget("full")
    assert "racecheck" in dict(full) and sum(limit for _, limit in full) <= drv.FULL_TOTAL_MAX <= 600
    assert dict(quick)["gpu_tests"] >= 90 and dict(quick)["build"] >= 100  # measured costs, see STEPS
    assert len(drv.OUT_FILES) <= 8  # the device tool returns at most 8 files


def test_shell_wrapper_dry_run_lists_every_step(tmp_path):
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    subprocess.run([bash, "-n", str(SCRIPT)], check=True)
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work")}
    p = subprocess.run([bash, str(SCRIPT), "--dry-run"], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    for name, _ in drv.budget("quick")[:-1]:
        assert f"] {name} (limit" in p.stdout
    assert "--no-index" in p.stdout and "--no-build-isolation" in p.stdout and " -x" not in p.stdout
    assert "DRY RUN" in p.stdout and not (tmp_path / "out").exists()


def test_run_without_gpu_backends_fails_and_says_why(tmp_path):
    """On this CPU machine: the preflight misses the GPU tools, the gate finds cuda and cupy
    unavailable, the GPU steps do not run, the exit status is 1 and OUT holds only the small files."""
    out, work = tmp_path / "out", tmp_path / "work"
    env = {**os.environ, "OUT": str(out), "WORK": str(work), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "device_check_driver.py"), "--no-build"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert p.returncode == 1, p.stdout[-3000:]
    assert "device check FAILED" in p.stdout
    steps = {ln.split("\t")[0]: ln.split("\t") for ln in (out / "steps.tsv").read_text().splitlines()[1:]}
    assert steps["gate"][1] == "fail"
    for name in ("gpu_tests", "memcheck", "scale", "bench", "search"):
        assert steps[name][1] == "not run", steps[name]
    assert {f.name for f in out.iterdir()} == {"summary.md", "steps.tsv", "logs.tgz"}
    md = (out / "summary.md").read_text()
    assert "**FAIL**" in md and "| gate | fail |" in md and "### Preflight" in md
    with tarfile.open(out / "logs.tgz") as tar:
        gate_log = tar.extractfile("logs/gate.log").read().decode()
    assert "UNAVAILABLE" in gate_log and '"cuda"' in gate_log


def test_a_step_past_its_limit_is_killed_and_slack_carries(tmp_path):
    run = drv.Run(mode="quick", out=tmp_path / "out", work=tmp_path / "work", py=sys.executable)
    run.logs.mkdir(parents=True)
    assert run.step("fast", 5, [sys.executable, "-c", "pass"])
    assert 3.0 < run.slack <= 5.0  # unused seconds go to the next step
    run.slack = 0.0
    assert not run.step("slow", 1, [sys.executable, "-c", "import time; time.sleep(30)"])
    assert run.results[-1].status == "timeout" and run.results[-1].seconds < 15
    assert not run.step("bad", 5, [sys.executable, "-c", "raise SystemExit(3)"])
    assert run.results[-1].status == "fail" and run.results[-1].note == "rc 3"
    assert not run.verdict()


def test_skipped_gpu_test_fails_under_require_gpu(tmp_path):
    """tests/conftest.py with SWNAS_REQUIRE_GPU=1 turns a skipped gpu test into a failure (a
    stand-in ``cupy`` package that imports cleanly keeps the configure check quiet)."""
    fake = tmp_path / "fake"
    (fake / "cupy").mkdir(parents=True)
    (fake / "cupy" / "__init__.py").write_text("")
    (tmp_path / "test_req.py").write_text(
        "import pytest\n\n@pytest.mark.gpu\ndef test_needs_gpu():\n    pytest.skip('no GPU')\n\n"
        "def test_cpu():\n    pass\n"
    )
    # no third-party plugins: zarr's (the dask extra) probes ``cupy.cuda`` and fails on the stand-in
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(fake), str(ROOT / "tests"), str(ROOT)]),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(tmp_path / "test_req.py"),
        "-p",
        "conftest",
        "-p",
        "no:cacheprovider",
        "-q",
        "--rootdir",
        str(tmp_path),
        "-W",
        "ignore::pytest.PytestUnknownMarkWarning",
    ]
    lax = subprocess.run(cmd, capture_output=True, text=True, env={**env, "SWNAS_REQUIRE_GPU": "0"}, cwd=tmp_path)
    assert lax.returncode == 0 and "1 passed, 1 skipped" in lax.stdout, lax.stdout
    strict = subprocess.run(cmd, capture_output=True, text=True, env={**env, "SWNAS_REQUIRE_GPU": "1"}, cwd=tmp_path)
    assert strict.returncode == 1 and "1 failed, 1 passed" in strict.stdout, strict.stdout
    assert "GPU test skipped (" in strict.stdout
    # and without any importable cupy the run refuses to start
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests"), str(ROOT)])
    none = subprocess.run(cmd, capture_output=True, text=True, env={**env, "SWNAS_REQUIRE_GPU": "1"}, cwd=tmp_path)
    if "cupy" not in sys.modules and shutil.which("nvidia-smi") is None:
        assert none.returncode != 0 and "stand-in" in (none.stdout + none.stderr)


def _junit(path: Path, tests: int, failures: int = 0, errors: int = 0, skipped: int = 0) -> Path:
    path.write_text(
        f'<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="{tests}" '
        f'failures="{failures}" errors="{errors}" skipped="{skipped}"><testcase classname="t" '
        f'name="a"/></testsuite></testsuites>'
    )
    return path


def test_judges(tmp_path):
    assert drv.judge_gpu_tests(_junit(tmp_path / "a.xml", 40))[0]
    assert not drv.judge_gpu_tests(_junit(tmp_path / "b.xml", 40, skipped=1))[0]  # a skip is a failure
    assert not drv.judge_gpu_tests(_junit(tmp_path / "c.xml", 0))[0]  # nothing collected
    assert not drv.judge_gpu_tests(_junit(tmp_path / "d.xml", 40, failures=2))[0]
    assert not drv.judge_gpu_tests(tmp_path / "missing.xml")[0]
    f = tmp_path / "scale.json"
    f.write_text(json.dumps({"rows": [{"case": "x", "pass": True}, {"case": "y", "pass": False}]}))
    assert drv.judge_json(f) == (False, "failing: y")
    f.write_text(json.dumps({"skipped": "no usable GPU"}))
    assert not drv.judge_json(f)[0]
    f.write_text(json.dumps({"rows": [{"case": "x", "pass": True}]}))
    assert drv.judge_json(f)[0]


def _smooth_images(n: int, seed: int) -> np.ndarray:
    """Smooth colour gradients (what JPEG keeps well), each with its own colour."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 60.0, 32)
    grad = ramp[:, None, None] + ramp[None, :, None]
    colour = rng.uniform(20, 130, (n, 1, 1, 3))
    return np.clip(colour + grad[None], 0, 255).astype(np.uint8)


def _fake_cifar(path: Path, n_train: int = 60, n_test: int = 20) -> None:
    np.savez(
        path,
        x_train=_smooth_images(n_train, 0),
        y_train=(np.arange(n_train) % 10).astype(np.uint8),
        x_test=_smooth_images(n_test, 1),
        y_test=(np.arange(n_test) % 10).astype(np.uint8),
    )


def test_pack_and_unpack_round_trip(tmp_path):
    pytest.importorskip("PIL")
    src = tmp_path / "cifar10.npz"
    _fake_cifar(src)
    packed = tmp_path / "subset.npz"
    py = sys.executable
    tool = str(ROOT / "scripts" / "pack_cifar_subset.py")
    subprocess.run(
        [py, tool, "--src", str(src), "--dst", str(packed), "--train", "40", "--test", "10", "--quality", "95"],
        check=True,
        capture_output=True,
    )
    subprocess.run([py, tool, "--unpack", str(packed), str(tmp_path / "out")], check=True, capture_output=True)
    with np.load(tmp_path / "out" / "cifar10.npz") as z, np.load(src) as orig:
        assert z["x_train"].shape == (40, 32, 32, 3) and z["x_test"].shape == (10, 32, 32, 3)
        assert np.bincount(z["y_train"]).tolist() == [4] * 10  # balanced
        # every unpacked image is a JPEG of one original image of the same label
        for img, lab in zip(z["x_train"][:5], z["y_train"][:5]):
            cands = orig["x_train"][orig["y_train"] == lab].astype(np.int16)
            assert np.abs(cands - img.astype(np.int16)).mean(axis=(1, 2, 3)).min() < 3


def test_summary_gathers_every_step(tmp_path):
    run = drv.Run(mode="quick", out=tmp_path / "out", work=tmp_path / "work", py=sys.executable)
    run.logs.mkdir(parents=True)
    (run.logs / "build.log").write_text("built\n")
    run.results += [drv.Result("build", "pass", 61.2, 100), drv.Result("scale", "timeout", 115.0, 115, "killed")]
    (run.work / "scale.json").write_text(
        json.dumps({"rows": [{"case": "pls cuda", "rel_err": 3e-9, "pass": True}], "device": "H200"})
    )
    _junit(run.work / "gpu_tests.xml", 12, skipped=1)
    run.publish()
    md = (run.out / "summary.md").read_text()
    assert "**FAIL**" in md and "| build | pass | 61 | 100 |" in md and "| scale | timeout | 115 | 115 | killed |" in md
    assert "pls cuda" in md and "3e-09" in md and "device: H200" in md and "skipped: 1" in md
    assert sorted(f.name for f in run.out.iterdir()) == sorted(
        ["summary.md", "steps.tsv", "scale.json", "gpu_tests.xml", "logs.tgz"]
    )


@pytest.mark.slow
def test_search_step_counts_score_many_calls_on_the_cpu(tmp_path, monkeypatch):
    """The tiny search step's glue with cpp standing in for cuda: a complete inf-FS search whose
    every scored network went through the batched implementation."""
    from swnas.scoring import backends

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = dict(backends._IMPLS)
    assert device_check.search(tmp_path, backend="cpp", device="cpu") == 0
    assert backends._IMPLS == before, "the step's call counters must not outlive it"
    row = json.loads((tmp_path / "search.json").read_text())["runs"][0]
    assert row["pass"] and row["backend"] == "cpp" and row["score_many_calls"] >= row["scored_networks"] >= 1


def test_gpu_steps_fail_without_a_gpu(tmp_path):
    if device_check._gpu():
        pytest.skip("a GPU is present")
    assert device_check.scale(tmp_path) == 1 and device_check.bench(tmp_path) == 1
    assert not drv.judge_json(tmp_path / "scale.json")[0]


def test_torch_average_ranks_reference_matches_scipy():
    """The torch reference the scale step and the GPU tests compare the CUDA ranks with, on the CPU."""
    import torch
    from scipy.stats import rankdata

    rng = np.random.default_rng(0)
    X = np.maximum(rng.standard_normal((501, 9)), 0.0).astype(np.float32)
    X[::5, 2] = -0.0
    X[:, 3] = 1.25
    X[:, 4] = np.round(X[:, 4] * 3) / 3
    R = device_check.average_ranks_torch(torch.from_numpy(X)).numpy()
    np.testing.assert_array_equal(R, rankdata(X, axis=0) - (X.shape[0] + 1) / 2)
