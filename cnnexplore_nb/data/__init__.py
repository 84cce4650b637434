"""Data: synthetic vessel images, the scikit-image retina, folders of image/mask pairs,
classification readers (digits, CIFAR-10/100, STL-10, Tiny ImageNet) and samplers.

Names are resolved lazily so that importing one family never pays for the others.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    # vessel segmentation (vessels.py)
    "synthetic_vessels": "vessels",
    "retina_image": "vessels",
    "retina_pseudo_label": "vessels",
    "VesselFolder": "vessels",
    "VesselArrays": "vessels",
    "normalize_intensity": "vessels",
    "train_val_split": "vessels",
    # classification (classification.py) and sampling (sampling.py)
    "ImageClassification": "classification",
    "digits": "classification",
    "cifar10": "classification",
    "cifar100": "classification",
    "stl10": "classification",
    "tiny_imagenet": "classification",
    "per_class_subset": "sampling",
    "imbalanced_subset": "sampling",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
