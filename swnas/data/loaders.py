"""Loaders: digits, CIFAR-10, ImageFolder trees and ImageNet 32x32 into a data source.

Every in-memory loader returns a :class:`~swnas.data.arrays.Dataset` whose images are ``uint8``
arrays of shape ``(N, H, W, C)`` and whose labels are ``int64`` arrays of shape ``(N,)`` with
values ``0 .. num_classes - 1``; a large ``imagefolder`` tree opens as a
:class:`~swnas.data.folder.FolderDataset` instead (files indexed, batches decoded on demand).

Memory cost in memory: ``N * S * S * C`` bytes, e.g. CIFAR-10 180 MB (train + test), Tiny
ImageNet at 64 px 0.6 GB, ImageNet 32x32 3.9 GB, ImageNet at 64 px 15.7 GB and at 224 px 193 GB --
full-resolution ImageNet does not fit in memory this way; it streams (``stream=``).

Split rules: the test set is never used to select anything. ``val_split`` holds out a stratified,
seeded fraction of the *training* set; ``subset=K`` first keeps a reproducible, per-class-balanced
subset of K training images (the validation split, if any, is then taken from those K images).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from swnas.data.arrays import Dataset
from swnas.data.arrays import make_dataset as _finish
from swnas.data.files import IMAGE_EXTENSIONS, scan_annotated_val
from swnas.data.source import DataSource
from swnas.data.splits import stratified_split
from swnas.errors import InputError

__all__ = ["DATASETS", "check_source", "load_dataset", "reopen_dataset", "load_npz_arrays"]

DATASETS = ("digits", "cifar10", "imagefolder", "imagenet32")


def load_npz_arrays(path: str | os.PathLike, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Read ``keys`` from a ``.npz`` file with ``allow_pickle=False``; every fault is an InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"data file {str(path)!r} does not exist (expected a .npz with keys {list(keys)})")
    try:
        # open the file here so that it is closed even when np.load fails half-way
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise InputError(
                    f"data file {str(path)!r} lacks keys {missing}; expected {list(keys)}, found {z.files}"
                )
            return {k: z[k] for k in keys}
    except InputError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise InputError(
            f"data file {str(path)!r} is truncated or not a valid .npz of plain arrays (keys {list(keys)}): {exc}"
        ) from exc


# --------------------------------------------------------------------------- digits


def _load_digits(*, val_split: float, subset: int | None, seed: int) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.rint(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[..., None]
    labels = d.target.astype(np.int64)
    # fixed 80/20 stratified train/test split, independent of the user's seed
    tr, te = stratified_split(labels, 0.2, seed=20200)
    return _finish(
        "digits",
        images[tr],
        labels[tr],
        images[te],
        labels[te],
        "digits (scikit-learn)",
        val_split=val_split,
        subset=subset,
        seed=seed,
        num_classes=10,
    )


# --------------------------------------------------------------------------- CIFAR-10

_CIFAR_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _default_cifar_candidates() -> list[Path]:
    env = os.environ.get("SWNAS_DATA_DIR")
    cands = []
    if env:
        cands.append(Path(env) / "cifar10.npz")
    cands += [Path("data") / "cifar10.npz", Path.home() / ".cache" / "swnas" / "cifar10.npz"]
    return cands


def _cifar_from_npz(path: Path, **kw: Any) -> Dataset:
    a = load_npz_arrays(path, _CIFAR_KEYS)
    ds = _finish("cifar10", a["x_train"], a["y_train"], a["x_test"], a["y_test"], str(path), num_classes=10, **kw)
    if ds.input_size != 32 or ds.in_channels != 3:
        raise InputError(f"{str(path)!r}: CIFAR-10 images must be 32x32x3, got {ds.x_train.shape[1:]}")
    return ds


def _load_cifar10(path: str | os.PathLike | None, download: bool | None, **kw: Any) -> Dataset:
    where = (
        "put the .npz (keys x_train, y_train, x_test, y_test; uint8 NHWC) at one of "
        + ", ".join(repr(str(p)) for p in _default_cifar_candidates())
        + ", or pass path= a .npz file or a torchvision CIFAR-10 directory (downloaded when online)"
    )
    if path is None:
        for cand in _default_cifar_candidates():
            if cand.is_file():
                return _cifar_from_npz(cand, **kw)
        if not download:
            raise InputError(f"cifar10: no data found and download is off; {where}")
        path = Path.home() / ".cache" / "swnas" / "cifar10"
    path = Path(path)
    if path.suffix == ".npz" or path.is_file():
        return _cifar_from_npz(path, **kw)
    if (path / "cifar10.npz").is_file():
        return _cifar_from_npz(path / "cifar10.npz", **kw)
    try:
        from torchvision.datasets import CIFAR10
    except ImportError as exc:  # pragma: no cover - torchvision is a dependency
        raise InputError(f"cifar10: torchvision is needed to read {str(path)!r}; {where}") from exc
    if path.is_dir() and download is None and not (path / "cifar-10-batches-py").is_dir():
        # an existing directory that holds no CIFAR-10: never start a download into the user's folder
        raise InputError(
            f"cifar10: {str(path)!r} is a directory without a CIFAR-10 data set (no cifar10.npz, "
            f"no cifar-10-batches-py); {where}"
        )
    want = True if download is None else bool(download)
    try:
        tr = CIFAR10(str(path), train=True, download=want)
        te = CIFAR10(str(path), train=False, download=want)
    except Exception as exc:  # offline, partial download, corrupt batches
        raise InputError(
            f"cifar10: cannot read or download a torchvision CIFAR-10 in {str(path)!r} "
            f"({type(exc).__name__}: {exc}); {where}"
        ) from exc
    return _finish(
        "cifar10",
        np.asarray(tr.data),
        np.asarray(tr.targets),
        np.asarray(te.data),
        np.asarray(te.targets),
        str(path),
        num_classes=10,
        **kw,
    )


# --------------------------------------------------------------------------- ImageFolder


def _list_folder(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not classes:
        raise InputError(f"imagefolder: {str(root)!r} has no class sub-directories (expected root/<class>/<image>)")
    items = []
    for ci, c in enumerate(classes):
        for dirpath, _, files in os.walk(root / c):
            for f in sorted(files):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    items.append((Path(dirpath) / f, ci))
    if not items:
        raise InputError(f"imagefolder: no images ({', '.join(IMAGE_EXTENSIONS)}) under {str(root)!r}")
    return classes, items


def _tiny_imagenet_val(val_dir: Path, classes: list[str]) -> list[tuple[Path, int]] | None:
    found = scan_annotated_val(val_dir, classes)
    return None if found is None else [(Path(f), c) for f, c in zip(*found)]


def _read_images(items: list[tuple[Path, int]], size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    out = np.empty((len(items), size, size, channels), np.uint8)
    mode = "RGB" if channels == 3 else "L"

    def one(i: int) -> None:
        p = items[i][0]
        try:
            with Image.open(p) as f:
                im = f.convert(mode)
                if im.size != (size, size):
                    im = im.resize((size, size), Image.Resampling.BILINEAR)
                out[i] = np.asarray(im).reshape(size, size, channels)
        except (OSError, ValueError) as exc:
            raise InputError(f"imagefolder: cannot read image {str(p)!r}: {exc}") from exc

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(one, range(len(items))))
    return out, np.array([c for _, c in items], np.int64)


def _load_imagefolder(path: str | os.PathLike | None, input_size: int | None, in_channels: int, **kw: Any) -> Dataset:
    if path is None:
        raise InputError("imagefolder: path= is required (a directory with train/ and val/ or test/)")
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"imagefolder: {str(root)!r} is not a directory")
    train_dir = root / "train"
    test_dir = next((root / n for n in ("val", "test") if (root / n).is_dir()), None)
    if not train_dir.is_dir() or test_dir is None:
        raise InputError(f"imagefolder: {str(root)!r} must contain train/ and val/ (or test/) sub-directories")
    classes, train_items = _list_folder(train_dir)
    test_items = _tiny_imagenet_val(test_dir, classes)
    if test_items is None:
        test_classes, test_items = _list_folder(test_dir)
        if test_classes != classes:
            raise InputError(f"imagefolder: class folders of {str(test_dir)!r} differ from those of {str(train_dir)!r}")
    if input_size is None:
        from PIL import Image

        with Image.open(train_items[0][0]) as im:
            input_size = min(im.size)
    if in_channels not in (1, 3):
        raise InputError(f"in_channels must be 1 or 3, got {in_channels}")
    xtr, ytr = _read_images(train_items, int(input_size), in_channels)
    xte, yte = _read_images(test_items, int(input_size), in_channels)
    return _finish("imagefolder", xtr, ytr, xte, yte, str(root), num_classes=len(classes), classes=classes, **kw)


# --------------------------------------------------------------------------- ImageNet 32x32


def _imagenet32_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    a = load_npz_arrays(path, ("data", "labels"))
    data, labels = a["data"], a["labels"]
    if data.dtype != np.uint8 or data.ndim != 2:
        raise InputError(f"{str(path)!r}: 'data' must be a uint8 (N, 3*S*S) array, got {data.dtype} {data.shape}")
    side = int(round(np.sqrt(data.shape[1] / 3)))
    if 3 * side * side != data.shape[1]:
        raise InputError(f"{str(path)!r}: 'data' rows have {data.shape[1]} values, not 3*S*S")
    labels = np.asarray(labels).reshape(-1)
    if labels.dtype.kind not in "iu":
        raise InputError(f"{str(path)!r}: 'labels' must be integers, got {labels.dtype}")
    if len(labels) != len(data):
        raise InputError(f"{str(path)!r}: {len(labels)} labels for {len(data)} images (they must match)")
    if len(labels) and labels.min() < 1:
        raise InputError(f"{str(path)!r}: 'labels' must be 1-based (1..1000), found {int(labels.min())}")
    images = data.reshape(-1, 3, side, side).transpose(0, 2, 3, 1)  # planar RGB -> NHWC
    return images, labels.astype(np.int64) - 1


def _load_imagenet32(path: str | os.PathLike | None, **kw: Any) -> Dataset:
    if path is None:
        raise InputError("imagenet32: path= is required (a directory with train_data_batch_*.npz and val_data.npz)")
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"imagenet32: {str(root)!r} is not a directory")
    train_files = sorted(
        root.glob("train_data_batch_*.npz"),
        key=lambda p: int(p.stem.rsplit("_", 1)[-1]) if p.stem.rsplit("_", 1)[-1].isdigit() else 0,
    )
    val_file = root / "val_data.npz"
    if not train_files or not val_file.is_file():
        raise InputError(
            f"imagenet32: {str(root)!r} must hold train_data_batch_<k>.npz files and val_data.npz "
            "(the downsampled-ImageNet npz release: 'data' (N, 3072) uint8, 'labels' 1-based)"
        )
    parts = [_imagenet32_batch(p) for p in train_files]
    xtr = np.concatenate([p[0] for p in parts])
    ytr = np.concatenate([p[1] for p in parts])
    xte, yte = _imagenet32_batch(val_file)
    return _finish("imagenet32", xtr, ytr, xte, yte, str(root), **kw)


# --------------------------------------------------------------------------- entry point


def check_source(name: str, path: str | os.PathLike | None) -> None:
    """Check a data set name and its ``path`` before anything is read (cheap; no file opened).

    ``digits`` is bundled with scikit-learn, so a ``path`` for it is an error rather than silently
    ignored.
    """
    if not isinstance(name, str) or name.lower() not in DATASETS:
        raise InputError(f"dataset: must be one of {list(DATASETS)}, got {name!r}")
    if path is None:
        return
    if name.lower() == "digits":
        raise InputError(
            f"data: the digits data set is bundled with scikit-learn and reads no file; "
            f"drop --data {path} (or choose a --dataset that reads it)"
        )


def load_dataset(
    name: str = "digits",
    path: str | os.PathLike | None = None,
    *,
    val_split: float = 0.0,
    subset: int | None = None,
    seed: int = 0,
    input_size: int | None = None,
    in_channels: int = 3,
    download: bool | None = None,
    stream: bool | str = "auto",
    workers: int = 4,
) -> DataSource:
    """Open a data set: uint8 NHWC arrays in memory, or a large image folder streamed from disk.

    Parameters
    ----------
    name : {"digits", "cifar10", "imagefolder", "imagenet32"}
        ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, values scaled 0..16 ->
        0..255), a fixed stratified 80/20 train/test split; needs no download.
        ``cifar10``: a ``.npz`` with x_train/y_train/x_test/y_test (uint8 NHWC), or a torchvision
        CIFAR-10 directory (downloaded when online). With ``path=None`` the file is looked for in
        ``$SWNAS_DATA_DIR/cifar10.npz``, ``./data/`` and ``~/.cache/swnas/``.
        ``imagefolder``: ``path/train/<class>/*`` and ``path/val/<class>/*`` (or ``test/``; Tiny
        ImageNet's ``val/images`` + ``val_annotations.txt`` layout is understood), resized to
        ``input_size`` x ``input_size``. ``imagenet32``: the downsampled-ImageNet npz release,
        ``path/train_data_batch_<k>.npz`` and ``path/val_data.npz`` with ``data`` (N, 3*S*S) uint8
        in planar RGB order and 1-based ``labels`` (works for the 16/32/64 px variants).
    path : str or path-like, optional
        Where the data is (see ``name``).
    val_split : float
        Fraction of the training set held out as a stratified, seeded validation set (0 = none).
    subset : int, optional
        Keep a reproducible, per-class-balanced subset of this many training images (for CPU runs).
    seed : int
        Seed of the subset and validation split.
    input_size : int, optional
        Image side for ``imagefolder`` (default: the first image's smaller side).
    in_channels : int
        Channels for ``imagefolder`` (3 = RGB, 1 = grey).
    download : bool, optional
        For a torchvision CIFAR-10 directory: whether to download (default: try).
    stream : bool or "auto"
        ``imagefolder`` only: return a :class:`swnas.data.FolderDataset` that indexes the files
        and decodes batches on demand (ImageNet-style training and evaluation views at
        ``input_size``; see ``docs/scale.md``) instead of decoding every image into memory.
        ``auto`` streams when the decoded images would exceed 1 GiB.
    workers : int
        DataLoader worker processes that decode a streamed folder's batches.

    Returns
    -------
    DataSource
        A :class:`~swnas.data.Dataset` (in memory) or a :class:`~swnas.data.FolderDataset` (streamed).

    Raises
    ------
    InputError
        Unknown name; missing, truncated or malformed files (naming the file and what was
        expected); labels that disagree with the images; bad ``val_split`` or ``subset``.
    """
    if not isinstance(name, str) or name.lower() not in DATASETS:
        raise InputError(f"name must be one of {list(DATASETS)}, got {name!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError(f"seed must be an integer, got {seed!r}")
    if isinstance(val_split, bool) or not isinstance(val_split, (int, float)) or not 0.0 <= val_split < 1.0:
        raise InputError(f"val_split must be a fraction in [0, 1), got {val_split!r}")
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, (int, np.integer)) or subset < 2):
        raise InputError(f"subset must be an integer >= 2 or None, got {subset!r}")
    kw: dict[str, Any] = dict(
        val_split=float(val_split), subset=None if subset is None else int(subset), seed=int(seed)
    )
    name = name.lower()
    check_source(name, path)
    if name == "digits":
        return _load_digits(**kw)
    if name == "cifar10":
        return _load_cifar10(path, download, **kw)
    if name == "imagefolder":
        from swnas.data import folder  # ImageNet-size folders stream from disk

        if path is not None and Path(path).is_dir() and folder.wants_streaming(stream, path, input_size, in_channels):
            return folder.open_imagefolder(
                path, input_size=input_size or 224, in_channels=in_channels, workers=workers, **kw
            )
        return _load_imagefolder(path, input_size, in_channels, **kw)
    return _load_imagenet32(path, **kw)


def reopen_dataset(options: Mapping[str, Any]) -> DataSource:
    """The data set a run trained on, from its recorded options (a search's ``config``).

    Reads ``dataset``, ``data``, ``subset``, ``seed``, ``val_split``, ``input_size`` and ``workers``
    as :func:`load_dataset` takes them, so the ensemble, the report and the export see the very
    training split (and image size) the networks saw.
    """
    return load_dataset(
        options["dataset"],
        options.get("data"),
        subset=options.get("subset"),
        seed=options.get("seed", 0),
        val_split=options.get("val_split") or 0.0,
        input_size=options.get("input_size"),
        workers=options.get("workers", 4),
    )
