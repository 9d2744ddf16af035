"""The device run's CPU-side pieces: the script's syntax and time budget, the data packing round
trip, and the summary (the GPU steps themselves only run on a GPU machine)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "device_check.sh"


def test_script_parses_and_fits_540_seconds():
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    subprocess.run([bash, "-n", str(SCRIPT)], check=True)
    text = SCRIPT.read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    limits = [int(m) for m in re.findall(r'\brun "?[\w$]+"? (\d+) ', code)]
    loop = int(re.search(r'run "search_\$crit" (\d+)', code).group(1))  # runs twice
    probes = [int(m) for m in re.findall(r"^\s*(?:export PY\s*)?timeout (\d+) ", code, flags=re.M)]
    total = sum(limits) + loop + sum(probes)
    assert 400 <= total <= 540, total
    assert 'PY=${PYTHON:-python3}' in text


def _smooth_images(n: int, seed: int) -> np.ndarray:
    """Smooth colour gradients (what JPEG keeps well), each with its own colour."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 60.0, 32)
    grad = ramp[:, None, None] + ramp[None, :, None]
    colour = rng.uniform(20, 130, (n, 1, 1, 3))
    return np.clip(colour + grad[None], 0, 255).astype(np.uint8)


def _fake_cifar(path: Path, n_train: int = 60, n_test: int = 20) -> None:
    np.savez(path, x_train=_smooth_images(n_train, 0), y_train=(np.arange(n_train) % 10).astype(np.uint8),
             x_test=_smooth_images(n_test, 1), y_test=(np.arange(n_test) % 10).astype(np.uint8))


def test_pack_and_unpack_round_trip(tmp_path):
    pytest.importorskip("PIL")
    src = tmp_path / "cifar10.npz"
    _fake_cifar(src)
    packed = tmp_path / "subset.npz"
    py = sys.executable
    tool = str(ROOT / "scripts" / "pack_cifar_subset.py")
    subprocess.run([py, tool, "--src", str(src), "--dst", str(packed), "--train", "40", "--test", "10",
                    "--quality", "95"], check=True, capture_output=True)
    subprocess.run([py, tool, "--unpack", str(packed), str(tmp_path / "out")], check=True, capture_output=True)
    with np.load(tmp_path / "out" / "cifar10.npz") as z, np.load(src) as orig:
        assert z["x_train"].shape == (40, 32, 32, 3) and z["x_test"].shape == (10, 32, 32, 3)
        assert np.bincount(z["y_train"]).tolist() == [4] * 10  # balanced
        # every unpacked image is a JPEG of one original image of the same label
        for img, lab in zip(z["x_train"][:5], z["y_train"][:5]):
            cands = orig["x_train"][orig["y_train"] == lab].astype(np.int16)
            assert np.abs(cands - img.astype(np.int16)).mean(axis=(1, 2, 3)).min() < 3


def test_summary_gathers_every_step(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import device_check
    finally:
        sys.path.pop(0)
    (tmp_path / "steps.tsv").write_text("build\tpass\t120\t155\nscale\ttimeout\t75\t75\n")
    (tmp_path / "scale.json").write_text(json.dumps({"rows": [{"case": "pls cuda", "rel_err": 3e-9, "pass": True}],
                                                     "device": "H200"}))
    (tmp_path / "bench.json").write_text(json.dumps({"skipped": "no usable GPU"}))
    assert device_check.summary(tmp_path) == 0
    md = (tmp_path / "summary.md").read_text()
    assert "| build | pass | 120 | 155 |" in md and "| scale | timeout |" in md
    assert "pls cuda" in md and "3e-09" in md and "no usable GPU" in md and "device: H200" in md
