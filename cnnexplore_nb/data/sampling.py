"""Stratified samplers for the limited-data protocol: N per class, and the imbalanced variant."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._checks import as_rng, check_positive_int
from .classification import ImageClassification

__all__ = ["imbalanced_subset", "per_class_subset"]


def _draw(
    dataset: ImageClassification,
    counts: Sequence[int],
    val_per_class: int,
    rng: int | np.random.Generator | None,
) -> ImageClassification | tuple[ImageClassification, ImageClassification]:
    gen = as_rng(rng)
    val_per_class = check_positive_int("val_per_class", val_per_class, minimum=0)
    labels = dataset.labels.numpy()
    train_idx: list[np.ndarray] = []
    val_idx: list[np.ndarray] = []
    for c, n in enumerate(counts):
        pool = np.flatnonzero(labels == c)
        need = n + val_per_class
        if need > len(pool):
            name = dataset.classes[c]
            raise ValueError(
                f"class {c} ({name!r}) has {len(pool)} samples, but {n} were requested"
                + (f" plus {val_per_class} for validation" if val_per_class else "")
                + f" ({need} in all)"
            )
        pool = gen.permutation(pool)
        train_idx.append(np.sort(pool[:n]))
        val_idx.append(np.sort(pool[n:need]))
    train = dataset.subset(np.concatenate(train_idx))
    if not val_per_class:
        return train
    return train, dataset.subset(np.concatenate(val_idx)).with_transform(None)


def per_class_subset(
    dataset: ImageClassification,
    n: int,
    *,
    rng: int | np.random.Generator | None,
    val_per_class: int = 0,
) -> ImageClassification | tuple[ImageClassification, ImageClassification]:
    """Draw ``n`` samples of every class (stratified, seeded), optionally with a hold-out.

    Parameters
    ----------
    dataset : ImageClassification
        The pool (e.g. the full training split).
    n : int
        Training samples per class.
    rng : int, numpy Generator or None
        Seed of the draw.
    val_per_class : int
        If > 0, also draw this many further samples per class, disjoint from the training
        ones, and return ``(train, val)`` (the validation part has no augmentation).

    Returns
    -------
    ImageClassification or (ImageClassification, ImageClassification)

    Raises
    ------
    ValueError
        If a class has fewer than ``n + val_per_class`` samples (message names the class).
    """
    n = check_positive_int("n", n)
    return _draw(dataset, [n] * dataset.num_classes, val_per_class, rng)


def imbalanced_subset(
    dataset: ImageClassification,
    n: int,
    *,
    small_class: int,
    n_small: int,
    rng: int | np.random.Generator | None,
    val_per_class: int = 0,
) -> ImageClassification | tuple[ImageClassification, ImageClassification]:
    """Like :func:`per_class_subset` but class ``small_class`` gets only ``n_small`` samples.

    The dissertation's imbalanced STL-10 run: 9 classes x 100 and one class x 10. The
    validation hold-out (if any) stays balanced.
    """
    n = check_positive_int("n", n)
    n_small = check_positive_int("n_small", n_small)
    small_class = check_positive_int("small_class", small_class, minimum=0)
    if small_class >= dataset.num_classes:
        raise ValueError(f"small_class must be in 0..{dataset.num_classes - 1}, got {small_class}")
    counts = [n_small if c == small_class else n for c in range(dataset.num_classes)]
    return _draw(dataset, counts, val_per_class, rng)
