"""PLS-VIP over re-readable row chunks (swnas.scoring.chunked) against the float64 NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest

from swnas.errors import InputError
from swnas.scoring import score
from swnas.scoring.chunked import score_pls_chunks
from helpers import planted


def _blocks(X: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    edges = np.cumsum([0, *sizes])
    assert edges[-1] == len(X)
    return [X[a:b] for a, b in zip(edges[:-1], edges[1:])]


@pytest.mark.parametrize("compiled", [True, False], ids=["cpp", "numpy"])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-11), (np.float32, 1e-6)])
def test_equals_the_reference_over_uneven_chunks(compiled, dtype, tol):
    # measured |VIP - reference|: 1e-14 (float64), 3e-8 (float32, the reference scores float64 copies)
    X, y = planted(1000, 30, 4, seed=3, dtype=dtype, mean=50.0)
    ref = score(X.astype(np.float64), y, backend="numpy", n_components=3).features
    got = score_pls_chunks(_blocks(X, [1, 0, 499, 250, 250]), y, n_components=3, compiled=compiled)
    np.testing.assert_allclose(got.features, ref, atol=tol, rtol=0)
    assert got.backend == "chunks" and got.params["n_components"] == 3
    assert got.stage == pytest.approx(got.features.mean())


def test_many_classes_and_string_labels():
    X, y = planted(3000, 40, 300, seed=4, dtype=np.float32)
    labels = np.array([f"class-{c}" for c in y])
    ref = score(X.astype(np.float64), labels, backend="numpy").features
    got = score_pls_chunks(_blocks(X, [1024, 1024, 952]), labels).features
    np.testing.assert_allclose(got, ref, atol=1e-6, rtol=0)


def test_reads_the_source_once_per_pass_and_skips_the_last_loading(monkeypatch):
    import swnas.scoring.chunked as ch

    X, y = planted(600, 12, 3, seed=5)
    opened = []
    loads = []
    real = ch.chunk_project
    monkeypatch.setattr(
        ch,
        "chunk_project",
        lambda xb, v, c, loading, compiled: loads.append(loading) or real(xb, v, c, loading, compiled),
    )

    def source():
        opened.append(1)
        return iter(_blocks(X, [200, 200, 200]))

    got = score_pls_chunks(source, y, n_components=2)
    assert len(opened) == 1 + 2  # the statistics pass, then one pass per component
    assert loads == [True] * 3 + [False] * 3
    np.testing.assert_allclose(got.features, score(X, y, backend="numpy").features, atol=1e-11, rtol=0)


def test_a_memory_mapped_file_in_blocks(tmp_path):
    X, y = planted(900, 16, 3, seed=6, dtype=np.float32)
    np.save(tmp_path / "f.npy", X)
    mm = np.load(tmp_path / "f.npy", mmap_mode="r")
    got = score_pls_chunks([mm[i : i + 256] for i in range(0, 900, 256)], y).features
    np.testing.assert_allclose(got, score(X, y, backend="cpp").features, atol=1e-9, rtol=0)


def test_bad_sources_are_named():
    X, y = planted(300, 6, 3, seed=7)
    with pytest.raises(InputError, match="can be read only once"):
        score_pls_chunks((b for b in _blocks(X, [150, 150])), y)
    with pytest.raises(InputError, match="hold 150 rows but y has 300"):
        score_pls_chunks([X[:150]], y)
    with pytest.raises(InputError, match="more rows than y has labels"):
        score_pls_chunks([X, X[:10]], y)
    with pytest.raises(InputError, match=r"chunks\[1\]: has 5 columns"):
        score_pls_chunks([X[:150], X[150:, :5]], y)
    with pytest.raises(InputError, match=r"chunks\[0\]: expected a 2-D block"):
        score_pls_chunks([X[:, 0]], y)
    with pytest.raises(InputError, match="needs at least 2 classes"):
        score_pls_chunks([X[:0]], y[:0])
    with pytest.raises(InputError, match="n_components"):
        score_pls_chunks([X], y, n_components=0)
    reads = []

    def shrinking():
        reads.append(1)
        return [X] if len(reads) == 1 else [X[:200]]

    with pytest.raises(InputError, match="a later pass read 200 rows, the first 300"):
        score_pls_chunks(shrinking, y)
