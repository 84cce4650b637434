"""Data: synthetic vessel images, the scikit-image retina, folders of image/mask pairs,
classification readers (digits, CIFAR-10/100, STL-10, Tiny ImageNet) and samplers.
"""

from __future__ import annotations

from .classification import ImageClassification, cifar10, cifar100, digits, stl10, tiny_imagenet
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

__all__ = [
    "ImageClassification",
    "VesselArrays",
    "VesselFolder",
    "cifar10",
    "cifar100",
    "digits",
    "imbalanced_subset",
    "normalize_intensity",
    "per_class_subset",
    "retina_image",
    "retina_pseudo_label",
    "stl10",
    "synthetic_vessels",
    "tiny_imagenet",
    "train_val_split",
]
