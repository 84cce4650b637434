"""Data: synthetic vessel images, the scikit-image retina, folders of image/mask pairs and
split lists (VessMAP), classification readers (digits, CIFAR-10/100, STL-10, Tiny ImageNet),
samplers, and the fetcher that downloads the documents' real data into a cache on first use.
"""

from __future__ import annotations

from .classification import ImageClassification, cifar10, cifar100, digits, stl10, tiny_imagenet
from .fetch import (
    DATASETS,
    ArchiveError,
    FetchError,
    IntegrityError,
    Remote,
    data_home,
    fetch,
    fetch_all,
    is_offline,
    list_datasets,
    locate,
)
from .sampling import imbalanced_subset, per_class_subset
from .vessels import (
    VesselArrays,
    VesselFolder,
    normalize_intensity,
    retina_image,
    retina_pseudo_label,
    synthetic_vessels,
    train_val_split,
)
from .vessmap import vessmap, vessmap_folder

__all__ = [
    "DATASETS",
    "ArchiveError",
    "FetchError",
    "ImageClassification",
    "IntegrityError",
    "Remote",
    "VesselArrays",
    "VesselFolder",
    "cifar10",
    "cifar100",
    "data_home",
    "digits",
    "fetch",
    "fetch_all",
    "imbalanced_subset",
    "is_offline",
    "list_datasets",
    "locate",
    "normalize_intensity",
    "per_class_subset",
    "retina_image",
    "retina_pseudo_label",
    "stl10",
    "synthetic_vessels",
    "tiny_imagenet",
    "train_val_split",
    "vessmap",
    "vessmap_folder",
]
