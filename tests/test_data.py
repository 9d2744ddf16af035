"""swnas.data: loaders, splits, subsets and every way a data file can be wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from swnas.data import Dataset, balanced_subset, channel_stats, load_dataset, stratified_split
from swnas.errors import InputError


def _fake_cifar(path: Path, n_train: int = 60, n_test: int = 20, *, seed: int = 0, **override) -> Path:
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


# --------------------------------------------------------------------------- digits


def test_digits_shapes_split_and_scaling():
    from sklearn.datasets import load_digits

    d = load_dataset("digits")
    assert isinstance(d, Dataset)
    assert d.x_train.shape == (1438, 8, 8, 1) and d.x_test.shape == (359, 8, 8, 1)
    assert d.x_train.dtype == np.uint8 and d.y_train.dtype == np.int64
    assert (d.num_classes, d.input_size, d.in_channels) == (10, 8, 1)
    assert d.x_val is None and d.y_val is None
    # 0..16 scaled to 0..255, every image accounted for exactly once
    raw = load_digits()
    assert d.x_train.max() == 255 and d.x_train.min() == 0
    both = np.concatenate([d.x_train, d.x_test])[..., 0].reshape(len(raw.images), -1)
    expected = np.rint(raw.images.reshape(len(raw.images), -1) * 255 / 16).astype(np.uint8)
    key = lambda a: np.sort(a.view(np.dtype((np.void, a.shape[1]))).ravel())  # noqa: E731
    assert np.array_equal(key(both), key(expected))
    # stratified: every class ~20% in test
    frac = np.bincount(d.y_test, minlength=10) / np.bincount(raw.target, minlength=10)
    assert np.all(np.abs(frac - 0.2) < 0.02)
    # stats are the training images' per-channel mean/std in [0, 1] units
    x = d.x_train.astype(np.float64) / 255
    assert d.mean[0] == pytest.approx(x.mean(), abs=1e-12)
    assert d.std[0] == pytest.approx(x.std(), abs=1e-12)
    # reproducible
    d2 = load_dataset("digits")
    assert np.array_equal(d.x_train, d2.x_train) and np.array_equal(d.y_test, d2.y_test)


def test_val_split_is_stratified_seeded_and_taken_from_train_only():
    full = load_dataset("digits")
    d = load_dataset("digits", val_split=0.25, seed=3)
    assert len(d.x_train) + len(d.x_val) == len(full.x_train)
    assert np.array_equal(d.x_test, full.x_test)  # test set untouched
    counts_full = np.bincount(full.y_train, minlength=10)
    counts_val = np.bincount(d.y_val, minlength=10)
    assert np.all(np.abs(counts_val - 0.25 * counts_full) <= 1)
    again = load_dataset("digits", val_split=0.25, seed=3)
    other = load_dataset("digits", val_split=0.25, seed=4)
    assert np.array_equal(d.y_val, again.y_val) and np.array_equal(d.x_val, again.x_val)
    assert not np.array_equal(d.x_val, other.x_val)
    # the split is a partition of the training images (no image in both)
    tr, va = stratified_split(full.y_train, 0.25, seed=3)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(full.y_train)


def test_subset_is_balanced_reproducible_and_from_train():
    full = load_dataset("digits")
    d = load_dataset("digits", subset=200, seed=1)
    assert len(d.x_train) == 200
    assert np.all(np.bincount(d.y_train, minlength=10) == 20)
    assert np.array_equal(d.x_test, full.x_test)
    again = load_dataset("digits", subset=200, seed=1)
    assert np.array_equal(d.x_train, again.x_train)
    assert not np.array_equal(d.x_train, load_dataset("digits", subset=200, seed=2).x_train)
    # subset then validation split from the subset
    dv = load_dataset("digits", subset=200, val_split=0.1, seed=1)
    assert len(dv.x_train) == 180 and len(dv.x_val) == 20
    assert np.all(np.bincount(dv.y_val, minlength=10) == 2)


def test_balanced_subset_hands_shortfall_to_other_classes():
    labels = np.array([0] * 2 + [1] * 50 + [2] * 50)
    idx = balanced_subset(labels, 30, seed=0)
    counts = np.bincount(labels[idx], minlength=3)
    assert counts.sum() == 30 and counts[0] == 2 and abs(int(counts[1]) - int(counts[2])) <= 1
    assert len(np.unique(idx)) == 30
    assert np.array_equal(balanced_subset(labels, 500), np.arange(len(labels)))


def test_channel_stats_chunked_matches_numpy():
    x = np.random.default_rng(0).integers(0, 256, (37, 5, 5, 3), dtype=np.uint8)
    mean, std = channel_stats(x, chunk=7)
    f = x.reshape(-1, 3).astype(np.float64) / 255
    np.testing.assert_allclose(mean, f.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(std, f.std(0), rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- CIFAR-10 .npz


def test_cifar10_npz_roundtrip(tmp_path):
    p = _fake_cifar(tmp_path / "c.npz")
    d = load_dataset("cifar10", p)
    with np.load(p) as z:
        assert np.array_equal(d.x_train, z["x_train"]) and np.array_equal(d.y_test, z["y_test"])
    assert d.y_train.dtype == np.int64 and d.num_classes == 10 and d.input_size == 32
    # a directory holding cifar10.npz works too, and (N, 1) labels are flattened
    _fake_cifar(tmp_path / "cifar10.npz", y_train=(np.arange(60) % 10).reshape(-1, 1).astype(np.int64))
    d2 = load_dataset("cifar10", tmp_path)
    assert d2.y_train.shape == (60,)


@pytest.mark.parametrize(
    "override, needle",
    [
        (dict(x_train=np.zeros((60, 3, 32, 32), np.uint8)), "(N, H, W, C)"),  # NCHW
        (dict(x_train=np.zeros((60, 32, 32, 3), np.float32)), "uint8"),
        (dict(y_train=np.zeros(59, np.uint8)), "must match"),
        (dict(y_test=np.zeros(20, np.float32)), "integer"),
        (dict(y_train=np.full(60, 10, np.int64)), "10 classes"),
        (dict(x_test=np.zeros((20, 16, 16, 3), np.uint8)), "must match"),
        (dict(y_test=None), "lacks keys"),
    ],
)
def test_cifar10_bad_arrays_name_the_file(tmp_path, override, needle):
    p = _fake_cifar(tmp_path / "bad.npz", **override)
    with pytest.raises(InputError) as e:
        load_dataset("cifar10", p)
    assert needle in str(e.value) and "bad.npz" in str(e.value)


def test_cifar10_missing_truncated_and_pickled_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_dataset("cifar10", tmp_path / "nope.npz")
    good = _fake_cifar(tmp_path / "good.npz").read_bytes()
    (tmp_path / "trunc.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError, match="trunc.npz.*truncated"):
        load_dataset("cifar10", tmp_path / "trunc.npz")
    (tmp_path / "text.npz").write_text("not a zip file")
    with pytest.raises(InputError, match="text.npz"):
        load_dataset("cifar10", tmp_path / "text.npz")
    obj = np.empty(60, dtype=object)
    np.savez(tmp_path / "pickled.npz", x_train=obj, y_train=obj, x_test=obj, y_test=obj)
    with pytest.raises(InputError, match="pickled.npz"):
        load_dataset("cifar10", tmp_path / "pickled.npz")


def test_cifar10_offline_without_data_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SWNAS_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(InputError, match="cifar10.npz"):
        load_dataset("cifar10", download=False)
    (tmp_path / "tv").mkdir()
    with pytest.raises(InputError, match="torchvision CIFAR-10"):
        load_dataset("cifar10", tmp_path / "tv", download=False)


def test_cifar10_default_location_from_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    _fake_cifar(tmp_path / "d" / "cifar10.npz")
    monkeypatch.setenv("SWNAS_DATA_DIR", str(tmp_path / "d"))
    assert len(load_dataset("cifar10").x_train) == 60


# --------------------------------------------------------------------------- ImageFolder


def _png_tree(root: Path, classes: list[str], per_class: int, size: int, *, seed: int = 0) -> dict:
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = {}
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            a = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(a).save(root / c / f"{i}.png")
            pixels[(c, i)] = a
    return pixels


def test_imagefolder_reads_resizes_and_labels(tmp_path):
    classes = ["cat", "ant", "bee"]
    px = _png_tree(tmp_path / "train", classes, 4, 8)
    _png_tree(tmp_path / "val", classes, 2, 8, seed=1)
    d = load_dataset("imagefolder", tmp_path)
    assert d.classes == ["ant", "bee", "cat"] and d.num_classes == 3
    assert d.x_train.shape == (12, 8, 8, 3) and d.x_test.shape == (6, 8, 8, 3)
    # no resize at the native size: pixels are exact; class index follows the sorted names
    i = int(np.flatnonzero(d.y_train == 2)[0])  # first "cat"
    assert np.array_equal(d.x_train[i], px[("cat", 0)])
    small = load_dataset("imagefolder", tmp_path, input_size=4, val_split=0.5)
    assert small.x_train.shape[1:] == (4, 4, 3) and len(small.x_val) == 6


def test_imagefolder_tiny_imagenet_val_layout_and_bad_image(tmp_path):
    from PIL import Image

    _png_tree(tmp_path / "train", ["n01", "n02"], 3, 8)
    (tmp_path / "val" / "images").mkdir(parents=True)
    lines = []
    for i, c in enumerate(["n02", "n01", "n02"]):
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(tmp_path / "val" / "images" / f"val_{i}.png")
        lines.append(f"val_{i}.png\t{c}\t0\t0\t8\t8")
    (tmp_path / "val" / "val_annotations.txt").write_text("\n".join(lines))
    d = load_dataset("imagefolder", tmp_path)
    assert d.y_test.tolist() == [1, 0, 1]
    assert d.x_test[2].max() == 2
    (tmp_path / "train" / "n01" / "broken.png").write_bytes(b"garbage")
    with pytest.raises(InputError, match="broken.png"):
        load_dataset("imagefolder", tmp_path)
    with pytest.raises(InputError, match="train/"):
        load_dataset("imagefolder", tmp_path / "val")


# --------------------------------------------------------------------------- ImageNet 32x32


def test_imagenet32_batches_planar_to_nhwc_and_one_based_labels(tmp_path):
    rng = np.random.default_rng(0)
    data = [rng.integers(0, 256, (6, 3072), dtype=np.uint8) for _ in range(3)]
    labels = [np.array([1, 2, 3, 1, 2, 3]), np.array([3, 3, 2, 2, 1, 1]), np.array([1, 2, 3, 3, 2, 1])]
    for k in (1, 2):
        np.savez(tmp_path / f"train_data_batch_{k}.npz", data=data[k - 1], labels=labels[k - 1])
    np.savez(tmp_path / "val_data.npz", data=data[2], labels=labels[2])
    d = load_dataset("imagenet32", tmp_path)
    assert d.x_train.shape == (12, 32, 32, 3) and d.x_test.shape == (6, 32, 32, 3)
    assert d.y_train.tolist() == [0, 1, 2, 0, 1, 2, 2, 2, 1, 1, 0, 0]
    # pixel (i, j) of channel c is data[n, c*1024 + i*32 + j]
    assert d.x_train[7, 5, 9, 0] == data[1][1, 5 * 32 + 9]
    assert d.x_train[7, 5, 9, 2] == data[1][1, 2048 + 5 * 32 + 9]
    assert d.num_classes == 3
    np.savez(tmp_path / "val_data.npz", data=data[2], labels=labels[2] - 1)
    with pytest.raises(InputError, match="1-based"):
        load_dataset("imagenet32", tmp_path)
    np.savez(tmp_path / "val_data.npz", data=data[2][:, :3000], labels=labels[2])
    with pytest.raises(InputError, match="3\\*S\\*S"):
        load_dataset("imagenet32", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="train_data_batch"):
        load_dataset("imagenet32", tmp_path / "empty")
    with pytest.raises(InputError, match="not a directory"):
        load_dataset("imagenet32", tmp_path / "missing")


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(name="mnist"), "name must be one of"),
        (dict(name="digits", val_split=1.0), "val_split"),
        (dict(name="digits", val_split=-0.1), "val_split"),
        (dict(name="digits", subset=1), "subset"),
        (dict(name="digits", subset=2.5), "subset"),
        (dict(name="digits", seed="x"), "seed"),
        (dict(name="imagefolder"), "path= is required"),
    ],
)
def test_bad_arguments(kwargs, needle):
    with pytest.raises(InputError, match=needle):
        load_dataset(**kwargs)
