"""Dask arrays: scored from per-chunk statistics merged by a tree reduction, equal to in-memory."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import planted
from swnas.errors import InputError
from swnas.scoring import score
from swnas.selection import ILFSSelector, InfFSSelector, VIPSelector

dask = pytest.importorskip("dask", reason="dask is the optional extra swnas[dask]")
da = pytest.importorskip("dask.array")


@pytest.fixture(autouse=True)
def synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


#: measured max |error| (2026-12-06): pls 3.9e-14 (float64) / 5.6e-15 (float32); inf-FS 3.2e-14 / 2.5e-7
#: (float32: the Pearson Gram's float32 products); about 10x (float32 inf-FS) or 25x that
DASK_TOL = {
    ("pls", np.float64): 1e-12,
    ("pls", np.float32): 1e-12,
    ("inffs", np.float64): 1e-12,
    ("inffs", np.float32): 2e-6,
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "crit",
    [{"criterion": "pls", "n_components": 3}, {"criterion": "inffs", "corr": "pearson", "alpha": 0.8}],
    ids=["pls", "inffs"],
)
def test_dask_equals_in_memory(dtype, crit):
    X, y = planted(2300, 17, 4, seed=1, mean=60.0, dtype=dtype)  # large means: cancellation would show
    ref = score(X.astype(np.float64), y, backend="numpy", **crit)
    got = score(da.from_array(X, chunks=(400, 17)), y, **crit)
    np.testing.assert_allclose(got.features, ref.features, atol=DASK_TOL[crit["criterion"], dtype], rtol=0)
    assert got.backend == "dask" and got.params == ref.params


def test_labels_as_dask_vector_strings_and_column_chunks():
    X, y = planted(1000, 12, 3, seed=2)
    ref = score(X, y, backend="numpy").features
    names = np.array(["a", "b", "c"])[y]
    dX = da.from_array(X, chunks=(130, 5))  # chunked across columns too: joined on the workers
    np.testing.assert_allclose(score(dX, da.from_array(names, chunks=70)).features, ref, atol=1e-9)
    # uneven chunks, one holding a single row, split_every at its smallest
    from swnas.scoring.dask import stream_dask

    dX = da.from_array(X, chunks=((1, 499, 250, 250), (12,)))
    acc = stream_dask(dX, y, "pls", split_every=2)
    assert acc.n == 1000 and list(acc.classes) == [0, 1, 2]
    np.testing.assert_allclose(acc.result().features, ref, atol=1e-9)


def test_pls_passes_never_form_the_gram_matrix(monkeypatch):
    """PLS on Dask reads X 1 + A times and moves vectors only (no p x p accumulator)."""
    import swnas.scoring.dask as sd

    calls = []
    real = sd.chunk_project
    monkeypatch.setattr(sd, "chunk_project", lambda *a: calls.append(a[3]) or real(*a))
    monkeypatch.setattr(sd, "_chunk_scorer", None)  # the Gram-form path must not run
    X, y = planted(1000, 30, 3, seed=6, dtype=np.float32, mean=100.0)
    got = score(da.from_array(X, chunks=(250, 30)), y, n_components=3)
    # 3 components x 4 chunks; the last component's pass takes only t't (no loading X't)
    assert calls == [True] * 4 + [True] * 4 + [False] * 4
    ref = score(X.astype(np.float64), y, backend="numpy", n_components=3).features
    np.testing.assert_allclose(got.features, ref, atol=1e-11, rtol=0)  # measured 2.2e-14


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-11), (np.float32, 2e-7)])  # measured 1.4e-13 / 1.4e-8
def test_pls_numpy_chunk_passes_without_the_compiled_core(dtype, tol):
    from swnas.scoring.dask import _pls_dask

    X, y = planted(1500, 20, 5, seed=7, dtype=dtype, mean=80.0)
    X[:, 3] = 7.0  # a constant column scores exactly 0
    got = _pls_dask(da.from_array(X, chunks=(400, 20)), y, {"n_components": 2}, split_every=2, compiled=False)
    ref = score(X.astype(np.float64), y, backend="numpy").features
    np.testing.assert_allclose(got.features, ref, atol=tol, rtol=0)
    assert got.features[3] == 0.0


@pytest.mark.parametrize(
    "crit, named", [({"criterion": "ilfs"}, "criterion='pls'"), ({"criterion": "inffs"}, "corr='pearson'")]
)
def test_non_streamable_criteria_refused_with_the_alternative(crit, named):
    X, y = planted(100, 4, 2, seed=3)
    with pytest.raises(InputError, match=named):
        score(da.from_array(X, chunks=50), y, **crit)


def test_bad_dask_input():
    X, y = planted(100, 4, 2, seed=3)
    dX = da.from_array(X, chunks=50)
    with pytest.raises(InputError, match="y: has 99 labels"):
        score(dX, y[:99])
    with pytest.raises(InputError, match="chunk sizes are unknown"):
        score(dX[dX[:, 0] > 0], y)
    with pytest.raises(InputError, match="2-D"):
        score(dX[:, 0], y)
    with pytest.raises(InputError, match="backend"):
        score(dX, y, backend="tpu")
    with pytest.raises(InputError, match="n_components"):
        score(dX, y, n_components=0)
    from swnas.scoring.dask import stream_dask

    with pytest.raises(InputError, match="split_every"):
        stream_dask(dX, y, split_every=1)


def test_selectors_take_dask_arrays():
    X, y = planted(900, 10, 3, seed=4)
    dX = da.from_array(X, chunks=(200, 10))
    sel = VIPSelector(k=3).fit(dX, y)
    ref = VIPSelector(k=3).fit(X, y)
    np.testing.assert_allclose(sel.scores_, ref.scores_, atol=1e-9)
    assert sel.n_features_in_ == 10 and list(sel.classes_) == [0, 1, 2]
    np.testing.assert_array_equal(sel.get_support(), ref.get_support())
    part = InfFSSelector(k=3, corr="pearson").partial_fit(dX[:450], y[:450]).partial_fit(X[450:], y[450:])
    np.testing.assert_allclose(part.scores_, InfFSSelector(k=3, corr="pearson").fit(X, y).scores_, atol=1e-9)
    with pytest.raises(InputError, match="cannot run chunk by chunk"):
        ILFSSelector().fit(dX, y)


@pytest.mark.slow
def test_distributed_cluster_runs_the_chunks_on_its_workers():
    distributed = pytest.importorskip("distributed")
    X, y = planted(1200, 8, 3, seed=5)
    ref = score(X, y, backend="numpy").features
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cl,
        distributed.Client(cl) as client,
    ):
        # X is made on the workers from a seed: the client never holds it
        rows = da.from_array(np.arange(0, 1200, 300), chunks=1)
        dX = rows.map_blocks(
            lambda r: planted(1200, 8, 3, seed=5)[0][r[0] : r[0] + 300],
            chunks=((300,) * 4, (8,)),
            new_axis=1,
            dtype=np.float64,
        )
        with distributed.get_task_stream(client) as ts:
            got = score(dX, y).features
    np.testing.assert_allclose(got, ref, atol=1e-9)
    names = {t["key"][0] if isinstance(t["key"], tuple) else t["key"] for t in ts.data}
    # PLS: a moments pass and one projection pass per component, each reduced on the workers
    for task in ("_chunk_moments", "combine_moments", "chunk_project", "sum_projections"):
        assert any(task in str(k) for k in names), task


def test_score_many_takes_dask_problems():
    from swnas.scoring import score_many

    (X1, y1), (X2, y2) = planted(900, 10, 3, seed=5), planted(700, 6, 4, seed=6)
    got = score_many(
        [(da.from_array(X1, chunks=(200, 10)), y1), (da.from_array(X2, chunks=(300, 6)), y2)], n_components=2
    )
    for g, (X, y) in zip(got, [(X1, y1), (X2, y2)]):
        ref = score(X, y, backend="numpy", n_components=2)
        np.testing.assert_allclose(g.features, ref.features, atol=1e-9, rtol=0)
        assert g.backend == "dask"
    with pytest.raises(InputError, match=r"problems\[1\].*Dask"):
        score_many([(da.from_array(X1, chunks=200), y1), (X2, y2)])


def test_from_npy_reads_the_file_lazily_in_row_chunks(tmp_path):
    from swnas.scoring.dask import from_npy

    X, y = planted(1000, 12, 3, seed=8, dtype=np.float32)
    path = tmp_path / "features.npy"
    np.save(path, np.zeros_like(X))
    dX = from_npy(path, chunk_rows=300)
    assert dX.shape == X.shape and dX.dtype == np.float32 and dX.chunks[0] == (300, 300, 300, 100)
    np.save(path, X)  # written after the array was built: nothing was read yet
    np.testing.assert_array_equal(dX.compute(), X)
    got = score(from_npy(path, chunk_rows=300), y).features
    np.testing.assert_allclose(got, score(X, y, backend="cpp").features, atol=1e-9, rtol=0)
    with pytest.raises(InputError, match="expected samples x features"):
        np.save(tmp_path / "v.npy", X[:, 0])
        from_npy(tmp_path / "v.npy")
    with pytest.raises(InputError, match="cannot memory-map"):
        from_npy(tmp_path / "missing.npy")
    with pytest.raises(InputError, match="chunk_rows"):
        from_npy(path, chunk_rows=0)


def test_from_npy_keeps_one_map_per_file_version(tmp_path):
    import swnas.scoring.dask as sd

    path = tmp_path / "f.npy"
    np.save(path, np.arange(24, dtype=np.float32).reshape(6, 4))
    a = sd._npy_rows(str(path), 0, 3, (1, 1))
    b = sd._npy_rows(str(path), 3, 6, (1, 1))
    assert np.shares_memory(a.base, b.base) or a.base is b.base  # the second pass reuses the map
    np.save(path, np.ones((6, 4), np.float32))
    c = sd._npy_rows(str(path), 0, 3, (1, 2))  # a new version: a new map, the old one dropped
    assert c[0, 0] == 1.0 and [k for k in sd._NPY_MAPS if k[0] == str(path)] == [(str(path), 1, 2)]
    for i in range(10):
        other = tmp_path / f"g{i}.npy"
        np.save(other, np.zeros((2, 2), np.float32))
        sd._npy_rows(str(other), 0, 1, (i,))
    assert len(sd._NPY_MAPS) <= 8
