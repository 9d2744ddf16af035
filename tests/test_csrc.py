"""What the compiled sources promise that a CPU can check by reading them: the build flags, one RAII
device buffer for every CUDA allocation, checks before allocations, no device-wide synchronisation,
and launch sizes from the occupancy API (issue-13 review items; see docs/backends.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CSRC = ROOT / "csrc"


def _sources(*patterns: str) -> dict[str, str]:
    out = {}
    for pat in patterns:
        for f in sorted(CSRC.glob(pat)):
            out[str(f.relative_to(ROOT))] = f.read_text()
    return out


def _code(text: str) -> str:
    """The source without // comments (the rules below are about code, not about the comments)."""
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def test_cuda_is_not_compiled_with_fast_math():
    """--use_fast_math flushes float32 subnormals to zero: the GPU would disagree with every CPU backend."""
    cmake = _code((ROOT / "CMakeLists.txt").read_text().replace("#", "//"))
    assert "use_fast_math" not in cmake and "-ftz=true" not in cmake


def test_both_compilers_warn():
    cmake = (ROOT / "CMakeLists.txt").read_text()
    assert re.search(r"SWNAS_WARNINGS\s+-Wall\s+-Wextra", cmake)
    assert "-Xcompiler=-Wall,-Wextra" in cmake


def test_every_cuda_allocation_goes_through_the_raii_buffer():
    srcs = _sources("cuda/*.cu", "cuda/*.h", "bindings/*.cpp")
    for name, text in srcs.items():
        if name.endswith("device_buffer.h"):
            continue
        code = _code(text)
        assert "cudaMalloc" not in code, f"{name}: raw cudaMalloc (use cuda::DeviceBuffer)"
        assert "cudaFree" not in code, f"{name}: raw cudaFree (use cuda::DeviceBuffer)"


def test_ilfs_checks_before_it_allocates_and_takes_any_row_count():
    """No row limit any more: rows beyond grid.y's 65,535 blocks go in slabs (GPU test:
    tests/test_gpu_paths.py::test_ilfs_rows_beyond_one_grid)."""
    code = _code((CSRC / "cuda" / "ilfs_cuda.cu").read_text())
    body = code[code.index("bool counts_impl") :]
    assert body.index("out of range") < body.index("DeviceBuffer")
    assert "too many rows" not in body and "int64_t(65535) * kRows" in body
    assert body.count("r0 += slab_rows") == 2  # class sums and token counts


def test_no_device_wide_synchronisation():
    for name, text in _sources("cuda/*.cu", "cuda/*.h", "bindings/*.cpp").items():
        assert "cudaDeviceSynchronize" not in _code(text), name


def test_pls_projection_grid_comes_from_the_occupancy_api():
    code = _code((CSRC / "cuda" / "pls_cuda.cu").read_text())
    launch = code[code.index("void launch_project") :]
    assert "resident_blocks_per_sm(" in launch and "8LL * sms" not in launch


def test_borrowed_matrix_outlives_nothing_it_reads():
    """The owner of borrowed GPU memory is declared before the matrix, so it is destroyed after it."""
    code = _code((CSRC / "bindings" / "pls_cuda.cpp").read_text())
    struct = code[code.index("struct PyMatrix") :]
    struct = struct[: struct.index("};")]
    assert struct.index("py::object owner") < struct.index("std::unique_ptr<cuda::PlsMatrix> m")


def test_one_namespace_per_side():
    for name, text in _sources("cuda/*.cu", "cuda/*.h").items():
        spaces = set(re.findall(r"namespace (\w+) \{", _code(text))) - {"swnas"}
        assert spaces <= {"cuda", "pls", "ilfs"}, (name, spaces)
    for name, text in _sources("cpu/*.cpp").items():
        assert "namespace cpu {" in text, name


@pytest.mark.parametrize(
    "path", sorted(str(p.relative_to(ROOT)) for p in CSRC.rglob("*") if p.suffix in (".h", ".cpp", ".cu"))
)
def test_each_file_says_why_it_exists(path):
    first = (ROOT / path).read_text().splitlines()[0]
    assert first.startswith("// ") and len(first) > 20
    assert "DESIGN" not in (ROOT / path).read_text()
