"""`swnas score` reads .npy, .npz, .csv and .parquet feature files and names the top features."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import planted
from swnas.cli import main
from swnas.errors import InputError
from swnas.scoring.files import load_features, load_labels
from swnas.scoring import score


def _run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_csv_header_names_the_top_features(tmp_path, capsys):
    X, y = planted(120, 5, 3, seed=1)
    names = ["height", "width", "depth", "mass", "age"]
    np.savetxt(tmp_path / "f.csv", X, delimiter=",", header=",".join(names), comments="")
    (tmp_path / "y.csv").write_text("species\n" + "\n".join(np.array(["ash", "elm", "oak"])[y]) + "\n")
    code, out, err = _run(
        ["score", str(tmp_path / "f.csv"), str(tmp_path / "y.csv"), "--json", "--top", "2", "--backend", "numpy"],
        capsys,
    )
    assert code == 0, err
    d = json.loads(out)
    ref = score(X, y, backend="numpy").features
    np.testing.assert_allclose(d["features"], ref, rtol=1e-12)
    best = np.argsort(-ref, kind="stable")[:2]
    assert [t["name"] for t in d["top"]] == [names[i] for i in best]
    code, out, err = _run(["score", str(tmp_path / "f.csv"), str(tmp_path / "y.csv")], capsys)
    assert f"feature {best[0]:6d}  {names[best[0]]}" in out


def test_parquet_keeps_column_names_and_float32(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    X, y = planted(100, 4, 2, seed=2, dtype=np.float32)
    pd.DataFrame(X, columns=["a", "b", "c", "d"]).to_parquet(tmp_path / "f.parquet")
    pd.DataFrame({"label": np.array(["no", "yes"])[y]}).to_parquet(tmp_path / "y.parquet")
    table = load_features(tmp_path / "f.parquet")
    assert table.names == ["a", "b", "c", "d"] and table.X.dtype == np.float32
    np.testing.assert_array_equal(table.X, X)
    assert list(load_labels(tmp_path / "y.parquet")[:3]) == list(np.array(["no", "yes"])[y[:3]])
    code, out, err = _run(["score", str(tmp_path / "f.parquet"), str(tmp_path / "y.parquet"), "--top", "1"], capsys)
    assert code == 0, err
    best = int(np.argmax(score(X, y).features))
    assert f"feature {best:6d}  {'abcd'[best]}" in out


def test_npz_names_and_headerless_csv(tmp_path):
    X, y = planted(50, 3, 2, seed=3)
    np.savez(tmp_path / "f.npz", X=X, feature_names=np.array(["p", "q", "r"]))
    t = load_features(tmp_path / "f.npz")
    assert t.names == ["p", "q", "r"] and t.name(1) == "q"
    np.savetxt(tmp_path / "n.csv", X, delimiter=",")
    t = load_features(tmp_path / "n.csv")
    assert t.names is None and t.name(2) == "2"
    np.testing.assert_allclose(t.X, X, rtol=1e-15)
    np.save(tmp_path / "img.npy", np.zeros((4, 2, 3)))
    assert load_features(tmp_path / "img.npy").X.shape == (4, 6)
    (tmp_path / "y.txt").write_text("3\n-1\n3\n")
    assert list(load_labels(tmp_path / "y.txt")) == [3, -1, 3]


@pytest.mark.parametrize(
    "content, msg",
    [
        ("a,b\n1,2\n3\n", "FEATURES: cannot read"),
        ("a,b,c\n1,2\n", "3 header names but 2 columns"),
        ("", "is empty"),
        ("x,y\n1,oops\n", "FEATURES: cannot read"),
    ],
)
def test_bad_csv_is_a_clear_error(tmp_path, content, msg):
    (tmp_path / "f.csv").write_text(content)
    with pytest.raises(InputError, match=msg):
        load_features(tmp_path / "f.csv")


def test_bad_parquet_columns_and_missing_files(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    pd.DataFrame({"a": [1.0, 2.0], "s": ["x", "y"]}).to_parquet(tmp_path / "f.parquet")
    with pytest.raises(InputError, match="non-numeric columns \\['s'\\]"):
        load_features(tmp_path / "f.parquet")
    with pytest.raises(InputError, match="expected one column"):
        load_labels(tmp_path / "f.parquet")
    with pytest.raises(InputError, match="FEATURES: no such file"):
        load_features(tmp_path / "none.csv")
    (tmp_path / "f.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match="FEATURES: cannot read"):
        load_features(tmp_path / "f.parquet")


# ------------------------------------------------------------------------------- one file with --label
def _run_cli(argv, capsys):
    from swnas.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _labelled_problem():
    from helpers import planted

    X, y = planted(90, 4, 3, seed=3)
    words = np.array(["setosa", "versicolor", "virginica"])[y]
    return X, y, words


def test_score_one_csv_with_a_label_column(tmp_path, capsys):
    from swnas.scoring import score

    X, y, words = _labelled_problem()
    lines = ["f0,f1,species,f2,f3"] + [
        f"{float(r[0])!r},{float(r[1])!r},{w},{float(r[2])!r},{float(r[3])!r}" for r, w in zip(X, words)
    ]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    code, out, err = _run_cli(["score", str(tmp_path / "data.csv"), "--label", "species", "--json"], capsys)
    assert code == 0, err
    d = json.loads(out)
    ref = score(X, y, backend="numpy")
    np.testing.assert_allclose(d["features"], ref.features, rtol=1e-9)
    assert d["n_features"] == 4 and [t["name"] for t in d["top"]][0] == f"f{int(np.argmax(ref.features))}"
    assert d["note"] is None
    code, out, err = _run_cli(["score", str(tmp_path / "data.csv"), "--label", "colour"], capsys)
    assert code == 2 and "no column 'colour'" in err and "species" in err
    np.save(tmp_path / "y.npy", y)
    code, out, err = _run_cli(
        ["score", str(tmp_path / "data.csv"), str(tmp_path / "y.npy"), "--label", "species"], capsys
    )
    assert code == 2 and "not both" in err
    code, out, err = _run_cli(["score", str(tmp_path / "data.csv")], capsys)
    assert code == 2 and "--label COLUMN" in err


def test_score_label_from_npz_key_and_parquet_column(tmp_path, capsys):
    from swnas.scoring import score

    X, y, words = _labelled_problem()
    ref = score(X, y, backend="numpy").features
    np.savez(tmp_path / "d.npz", X=X, target=y)
    code, out, err = _run_cli(["score", str(tmp_path / "d.npz"), "--label", "target", "--json"], capsys)
    assert code == 0, err
    np.testing.assert_allclose(json.loads(out)["features"], ref, rtol=1e-9)
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    df.insert(1, "species", words)
    df.to_parquet(tmp_path / "d.parquet")
    code, out, err = _run_cli(["score", str(tmp_path / "d.parquet"), "--label", "species", "--json"], capsys)
    assert code == 0, err
    np.testing.assert_allclose(json.loads(out)["features"], ref, rtol=1e-9)
    assert [t["name"] for t in json.loads(out)["top"]][0] == "abcd"[int(np.argmax(ref))]


def test_score_inffs_says_it_ignores_labels(tmp_path, capsys):
    X, y, _ = _labelled_problem()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    code, out, err = _run_cli(
        ["score", str(tmp_path / "X.npy"), str(tmp_path / "y.npy"), "--criterion", "inffs"], capsys
    )
    assert code == 0, err
    assert "inf-FS is unsupervised: it ignores the labels" in out
    with_labels = out
    code, out, err = _run_cli(["score", str(tmp_path / "X.npy"), "--criterion", "inffs"], capsys)
    assert code == 0, err
    assert out == with_labels  # no labels needed, the same scores
    code, out, err = _run_cli(["score", str(tmp_path / "X.npy"), str(tmp_path / "y.npy")], capsys)
    assert code == 0 and "ignores the labels" not in out
