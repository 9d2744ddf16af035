"""Datasets as in-memory uint8 NHWC arrays: digits, CIFAR-10, ImageFolder trees, ImageNet 32x32.

Every loader returns a :class:`Dataset` whose images are ``uint8`` arrays of shape
``(N, H, W, C)`` and whose labels are ``int64`` arrays of shape ``(N,)`` with values
``0 .. num_classes - 1``. Keeping images as uint8 is what lets the trainer hold a whole data set
on the GPU (CIFAR-10: 150 MB) and do augmentation there.

Memory cost: a data set of N images of size S x S x C takes ``N * S * S * C`` bytes, e.g.
CIFAR-10 180 MB (train + test), Tiny ImageNet at 64 px 0.6 GB, ImageNet 32x32 3.9 GB, ImageNet
at 64 px 15.7 GB and at 224 px 193 GB -- full-resolution ImageNet does not fit in memory this way;
use it resized (``input_size``) or a subset.

Split rules: the test set is never used to select anything. ``val_split`` holds out a stratified,
seeded fraction of the *training* set; ``subset=K`` first keeps a reproducible, per-class-balanced
subset of K training images (the validation split, if any, is then taken from those K images).
"""
from __future__ import annotations

import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from swnas.errors import InputError

__all__ = [
    "Dataset",
    "check_source",
    "load_dataset",
    "load_npz_arrays",
    "channel_stats",
    "mean_image",
    "input_normalization",
    "balanced_subset",
    "stratified_split",
    "DATASETS",
    "IMAGE_EXTENSIONS",
]

DATASETS = ("digits", "cifar10", "imagefolder", "imagenet32")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif")


@dataclass
class Dataset:
    """An image-classification data set held in memory.

    Attributes
    ----------
    name : str
        Loader name (``"digits"``, ``"cifar10"``, ``"imagefolder"``, ``"imagenet32"``).
    x_train, x_test, x_val : np.ndarray
        uint8 images, shape ``(N, H, W, C)``. ``x_val`` is ``None`` unless ``val_split > 0``.
    y_train, y_test, y_val : np.ndarray
        int64 labels in ``0 .. num_classes - 1``, shape ``(N,)``.
    num_classes, input_size, in_channels : int
        Number of classes, image side (H == W) and channels.
    mean, std : tuple of float
        Per-channel mean and standard deviation of the training images in [0, 1] units, used to
        normalise inputs (``(x / 255 - mean) / std``).
    classes : list of str or None
        Class names when the source has them (ImageFolder).

    The training images' per-pixel mean image (the ``original`` recipe's normalisation) is
    :attr:`train_mean_image`, computed on first use and kept.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    input_size: int
    in_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    classes: list[str] | None = None

    @property
    def train_mean_image(self) -> np.ndarray:
        """Per-pixel mean of ``x_train`` (after the validation split), float32 ``(H, W, C)`` in [0, 1] units."""
        cached = self.__dict__.get("_train_mean_image")
        if cached is None or cached[0] is not self.x_train:  # recomputed if x_train is replaced
            cached = (self.x_train, mean_image(self.x_train))
            self.__dict__["_train_mean_image"] = cached
        return cached[1]

    @property
    def nbytes(self) -> int:
        """Bytes held by all image and label arrays."""
        arrays = [self.x_train, self.y_train, self.x_test, self.y_test, self.x_val, self.y_val]
        return int(sum(a.nbytes for a in arrays if a is not None))

    def __repr__(self) -> str:  # the default repr would print whole arrays
        val = 0 if self.x_val is None else len(self.x_val)
        return (
            f"Dataset(name={self.name!r}, train={len(self.x_train)}, val={val}, "
            f"test={len(self.x_test)}, shape={self.x_train.shape[1:]}, "
            f"num_classes={self.num_classes})"
        )


# --------------------------------------------------------------------------- validation helpers


def _check_images(x: Any, what: str, source: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise InputError(f"{source}: {what} must be a NumPy array, got {type(x).__name__}")
    if x.dtype != np.uint8:
        raise InputError(f"{source}: {what} must have dtype uint8 (0..255), got {x.dtype}")
    if x.ndim != 4 or x.shape[1] != x.shape[2] or x.shape[3] not in (1, 3):
        raise InputError(
            f"{source}: {what} must have shape (N, H, W, C) with H == W and C in (1, 3) "
            f"(uint8 NHWC), got {x.shape}"
        )
    if x.shape[0] == 0:
        raise InputError(f"{source}: {what} holds no images")
    return x


def _check_labels(y: Any, n: int, what: str, source: str) -> np.ndarray:
    if not isinstance(y, np.ndarray):
        raise InputError(f"{source}: {what} must be a NumPy array, got {type(y).__name__}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise InputError(f"{source}: {what} must have shape (N,), got {y.shape}")
    if y.dtype.kind not in "iu":
        raise InputError(f"{source}: {what} must be integer class labels, got dtype {y.dtype}")
    if len(y) != n:
        raise InputError(
            f"{source}: {what} has {len(y)} labels but the images number {n} (they must match)"
        )
    if len(y) and y.min() < 0:
        raise InputError(f"{source}: {what} has negative labels (min {int(y.min())})")
    return y.astype(np.int64, copy=False)


def _finish(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    source: str,
    *,
    val_split: float,
    subset: int | None,
    seed: int,
    num_classes: int | None = None,
    classes: list[str] | None = None,
) -> Dataset:
    """Validate arrays, apply subset and validation split, compute statistics."""
    x_train = _check_images(x_train, "x_train", source)
    x_test = _check_images(x_test, "x_test", source)
    y_train = _check_labels(y_train, len(x_train), "y_train", source)
    y_test = _check_labels(y_test, len(x_test), "y_test", source)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise InputError(
            f"{source}: x_train images are {x_train.shape[1:]} but x_test images are "
            f"{x_test.shape[1:]} (they must match)"
        )
    if num_classes is None:
        num_classes = int(max(y_train.max(), y_test.max())) + 1
    for y, what in ((y_train, "y_train"), (y_test, "y_test")):
        if int(y.max()) >= num_classes:
            raise InputError(
                f"{source}: {what} has label {int(y.max())} but there are {num_classes} classes"
            )
    if len(np.unique(y_train)) < 2:
        raise InputError(f"{source}: y_train holds a single class; need at least 2")
    if subset is not None:
        idx = balanced_subset(y_train, subset, seed=seed)
        x_train, y_train = x_train[idx], y_train[idx]
    x_val = y_val = None
    if val_split:
        tr, va = stratified_split(y_train, val_split, seed=seed)
        x_val, y_val = x_train[va], y_train[va]
        x_train, y_train = x_train[tr], y_train[tr]
    mean, std = channel_stats(x_train)
    return Dataset(
        name=name,
        x_train=np.ascontiguousarray(x_train),
        y_train=np.ascontiguousarray(y_train),
        x_test=np.ascontiguousarray(x_test),
        y_test=np.ascontiguousarray(y_test),
        x_val=None if x_val is None else np.ascontiguousarray(x_val),
        y_val=None if y_val is None else np.ascontiguousarray(y_val),
        num_classes=int(num_classes),
        input_size=int(x_train.shape[1]),
        in_channels=int(x_train.shape[3]),
        mean=mean,
        std=std,
        classes=classes,
    )


def channel_stats(images: np.ndarray, chunk: int = 8192) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (population) of uint8 NHWC images, in [0, 1] units.

    Sums are accumulated in float64 chunk by chunk, so the memory cost stays small for large sets.
    """
    c = images.shape[-1]
    s = np.zeros(c)
    ss = np.zeros(c)
    n = 0
    for i in range(0, len(images), chunk):
        block = images[i : i + chunk].reshape(-1, c).astype(np.float64)
        s += block.sum(0)
        ss += np.square(block).sum(0)
        n += block.shape[0]
    mean = s / n
    var = np.maximum(ss / n - mean**2, 0.0)
    std = np.sqrt(var)
    std[std == 0] = 255.0  # a constant channel: leave it unscaled rather than divide by zero
    return tuple(float(v) for v in mean / 255.0), tuple(float(v) for v in std / 255.0)


def mean_image(images: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Per-pixel mean image of uint8 NHWC images: float32 ``(H, W, C)`` in [0, 1] units.

    Accumulated in float64 chunk by chunk, like :func:`channel_stats`.
    """
    if not isinstance(images, np.ndarray) or images.ndim != 4 or len(images) == 0:
        raise InputError(f"images: expected a non-empty uint8 NHWC array, got {getattr(images, 'shape', None)}")
    total = np.zeros(images.shape[1:], np.float64)
    for i in range(0, len(images), chunk):
        total += images[i : i + chunk].sum(axis=0, dtype=np.float64)
    return (total / (255.0 * len(images))).astype(np.float32)


def input_normalization(data: Any, normalize: str = "channel") -> tuple[Any, tuple[float, ...]]:
    """``(mean, std)`` that the trainer, the evaluators and the stage scorer normalise inputs with.

    ``normalize`` is a recipe's :attr:`~swnas.recipes.Recipe.normalize`: ``"channel"`` gives the
    per-channel ``(data.mean, data.std)``; ``"pixel_mean"`` gives the training split's mean image
    ``(H, W, C)`` and a std of 1 per channel, i.e. ``x / 255 - mean_image`` (the released code's
    normalisation, ``docs/protocol.md``). For an image folder streamed from disk the mean image is
    estimated on a seeded sample of training images (:func:`swnas.diskrun.folder_mean_image`).
    Everything computed from the same data set options gets the same values, so a search's
    networks are evaluated later (ensemble, report) exactly as they were trained.
    """
    if normalize == "channel":
        return data.mean, data.std
    if normalize != "pixel_mean":
        raise InputError(f"normalize must be 'channel' or 'pixel_mean', got {normalize!r}")
    ones = tuple(1.0 for _ in data.mean)
    if getattr(data, "streaming", False):  # E: an image folder read from disk
        from swnas.diskrun import folder_mean_image

        return folder_mean_image(data), ones
    return data.train_mean_image, ones


def balanced_subset(labels: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """Indices of a reproducible subset of ``k`` samples balanced across classes.

    Each class gets ``k // C`` samples (the first ``k % C`` classes one more); a class with too few
    samples gives all it has and the shortfall is taken from the other classes. The returned
    indices are sorted.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"subset must be a positive integer, got {k!r}")
    n = len(labels)
    if k >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    quota = np.full(len(classes), k // len(classes))
    quota[: k % len(classes)] += 1
    sizes = np.array([len(p) for p in pools])
    take = np.minimum(quota, sizes)
    short = k - int(take.sum())
    while short > 0:  # hand the shortfall to classes that still have samples, round robin
        for i in np.flatnonzero(sizes > take):
            if short == 0:
                break
            take[i] += 1
            short -= 1
    return np.sort(np.concatenate([p[:t] for p, t in zip(pools, take)]))


def stratified_split(labels: np.ndarray, fraction: float, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (train, held_out) with ``fraction`` of each class held out, seeded.

    Every class keeps at least one training sample; classes with at least two samples give at
    least one held-out sample. Both index arrays are sorted.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (float, int)) or not 0.0 < fraction < 1.0:
        raise InputError(f"val_split must be a fraction in (0, 1), got {fraction!r}")
    rng = np.random.default_rng(seed + 1)
    held = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        m = int(round(fraction * len(idx)))
        m = min(max(m, 1 if len(idx) >= 2 else 0), len(idx) - 1)
        held.append(idx[:m])
    held_idx = np.sort(np.concatenate(held))
    if len(held_idx) == 0:
        raise InputError(f"val_split={fraction} holds out no samples of {len(labels)}")
    mask = np.ones(len(labels), bool)
    mask[held_idx] = False
    return np.flatnonzero(mask), held_idx


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
            f"data file {str(path)!r} is truncated or not a valid .npz of plain arrays "
            f"(keys {list(keys)}): {exc}"
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
        "digits", images[tr], labels[tr], images[te], labels[te], "digits (scikit-learn)",
        val_split=val_split, subset=subset, seed=seed, num_classes=10,
    )


# --------------------------------------------------------------------------- CIFAR-10

_CIFAR_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _default_cifar_candidates() -> list[Path]:
    env = os.environ.get("SWNAS_DATA_DIR")
    cands = []
    if env:
        cands.append(Path(env) / "cifar10.npz")
    cands += [Path("data") / "cifar10.npz", Path("..") / "shared" / "data" / "cifar10.npz",
              Path.home() / ".cache" / "swnas" / "cifar10.npz"]
    return cands


def _cifar_from_npz(path: Path, **kw: Any) -> Dataset:
    a = load_npz_arrays(path, _CIFAR_KEYS)
    ds = _finish("cifar10", a["x_train"], a["y_train"], a["x_test"], a["y_test"], str(path),
                 num_classes=10, **kw)
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
        raise InputError(f"cifar10: {str(path)!r} is a directory without a CIFAR-10 data set (no cifar10.npz, "
                         f"no cifar-10-batches-py); {where}")
    want = True if download is None else bool(download)
    try:
        tr = CIFAR10(str(path), train=True, download=want)
        te = CIFAR10(str(path), train=False, download=want)
    except Exception as exc:  # offline, partial download, corrupt batches
        raise InputError(f"cifar10: cannot read or download a torchvision CIFAR-10 in {str(path)!r} "
                         f"({type(exc).__name__}: {exc}); {where}") from exc
    return _finish("cifar10", np.asarray(tr.data), np.asarray(tr.targets), np.asarray(te.data),
                   np.asarray(te.targets), str(path), num_classes=10, **kw)


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


def scan_annotated_val(val_dir: Path, classes: list[str]) -> tuple[list[str], list[int]] | None:
    """Tiny ImageNet's val/: images/ plus val_annotations.txt (file <TAB> class ...) instead of class
    folders; ``None`` when ``val_dir`` has no annotation file. Shared by the in-memory and the
    streaming (:mod:`swnas.diskdata`) readers."""
    ann = val_dir / "val_annotations.txt"
    if not ann.is_file():
        return None
    index = {c: i for i, c in enumerate(classes)}
    paths, labels = [], []
    for line in ann.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        if parts[1] not in index:
            raise InputError(f"imagefolder: {str(ann)!r} names class {parts[1]!r} absent from train/")
        paths.append(str(val_dir / "images" / parts[0]))
        labels.append(index[parts[1]])
    if not paths:
        raise InputError(f"imagefolder: {str(ann)!r} lists no images")
    return paths, labels


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
            with Image.open(p) as im:
                im = im.convert(mode)
                if im.size != (size, size):
                    im = im.resize((size, size), Image.BILINEAR)
                out[i] = np.asarray(im).reshape(size, size, channels)
        except (OSError, ValueError) as exc:
            raise InputError(f"imagefolder: cannot read image {str(p)!r}: {exc}") from exc

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(one, range(len(items))))
    return out, np.array([c for _, c in items], np.int64)


def _load_imagefolder(path: str | os.PathLike | None, input_size: int | None, in_channels: int,
                      **kw: Any) -> Dataset:
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
    return _finish("imagefolder", xtr, ytr, xte, yte, str(root), num_classes=len(classes),
                   classes=classes, **kw)


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
    train_files = sorted(root.glob("train_data_batch_*.npz"),
                         key=lambda p: int(p.stem.rsplit("_", 1)[-1]) if p.stem.rsplit("_", 1)[-1].isdigit() else 0)
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
        raise InputError(f"data: the digits data set is bundled with scikit-learn and reads no file; "
                         f"drop --data {path} (or choose a --dataset that reads it)")


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
) -> Dataset:
    """Load a data set into uint8 NHWC arrays.

    Parameters
    ----------
    name : {"digits", "cifar10", "imagefolder", "imagenet32"}
        ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, values scaled 0..16 ->
        0..255), a fixed stratified 80/20 train/test split; needs no download.
        ``cifar10``: a ``.npz`` with x_train/y_train/x_test/y_test (uint8 NHWC), or a torchvision
        CIFAR-10 directory (downloaded when online). With ``path=None`` the file is looked for in
        ``$SWNAS_DATA_DIR/cifar10.npz``, ``./data/``, ``../shared/data/`` and ``~/.cache/swnas/``.
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
        ``imagefolder`` only: return a :class:`swnas.diskdata.FolderDataset` that indexes the files
        and decodes batches on demand (ImageNet-style training and evaluation views at
        ``input_size``; see ``docs/scale.md``) instead of decoding every image into memory.
        ``auto`` streams when the decoded images would exceed 1 GiB.
    workers : int
        DataLoader worker processes that decode a streamed folder's batches.

    Returns
    -------
    Dataset

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
    kw = dict(val_split=float(val_split), subset=None if subset is None else int(subset), seed=int(seed))
    name = name.lower()
    check_source(name, path)
    if name == "digits":
        return _load_digits(**kw)
    if name == "cifar10":
        return _load_cifar10(path, download, **kw)
    if name == "imagefolder":
        from swnas import diskdata  # E: ImageNet-size folders stream from disk

        if path is not None and Path(path).is_dir() and diskdata.wants_streaming(stream, path, input_size, in_channels):
            return diskdata.open_imagefolder(path, input_size=input_size or 224, in_channels=in_channels,
                                             workers=workers, **kw)
        return _load_imagefolder(path, input_size, in_channels, **kw)
    return _load_imagenet32(path, **kw)
