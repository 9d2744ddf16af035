"""Data sources: image-classification data sets in memory or streamed from disk, read in batches.

- :mod:`swnas.data.source`: the :class:`DataSource` protocol and :func:`input_normalization`;
- :mod:`swnas.data.arrays`: :class:`Dataset`, uint8 NHWC arrays in memory;
- :mod:`swnas.data.folder`: :class:`FolderDataset`, an image folder decoded batch by batch
  (:mod:`swnas.data.decode`: the decoding and worker batches);
- :mod:`swnas.data.loaders`: :func:`load_dataset` (digits, CIFAR-10, ImageFolder, ImageNet 32x32);
- :mod:`swnas.data.batches`: the epoch plan and the training batch sources;
- :mod:`swnas.data.splits`, :mod:`swnas.data.files`: seeded splits, folder listings.
"""

from __future__ import annotations

from swnas.data.arrays import Dataset, channel_stats, mean_image
from swnas.data.files import IMAGE_EXTENSIONS
from swnas.data.folder import FolderDataset, open_imagefolder
from swnas.data.loaders import DATASETS, check_source, load_dataset, load_npz_arrays, reopen_dataset
from swnas.data.source import SPLITS, DataSource, eval_batch_size, input_normalization
from swnas.data.splits import balanced_subset, stratified_split

__all__ = [
    "DataSource",
    "Dataset",
    "FolderDataset",
    "SPLITS",
    "check_source",
    "load_dataset",
    "reopen_dataset",
    "open_imagefolder",
    "load_npz_arrays",
    "channel_stats",
    "mean_image",
    "input_normalization",
    "eval_batch_size",
    "balanced_subset",
    "stratified_split",
    "DATASETS",
    "IMAGE_EXTENSIONS",
]
