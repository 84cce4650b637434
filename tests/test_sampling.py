"""per_class_subset / imbalanced_subset: counts, disjointness, seeding, errors."""

from __future__ import annotations

import numpy as np
import pytest

from cnnexplore_nb.data import ImageClassification, imbalanced_subset, per_class_subset


def _dataset(counts=(6, 9, 5)):
    labels = np.repeat(np.arange(len(counts)), counts)
    images = np.zeros((len(labels), 1, 2, 2), np.uint8)
    images[:, 0, 0, 0] = np.arange(len(labels))  # pixel 0 identifies the item
    return ImageClassification(images, labels, classes=["a", "b", "c"])


def _ids(ds):
    return ds.images[:, 0, 0, 0].numpy().astype(int)


def test_per_class_counts_disjoint_and_seeded():
    ds = _dataset()
    train, val = per_class_subset(ds, 3, rng=0, val_per_class=2)
    assert train.class_counts().tolist() == [3, 3, 3]
    assert val.class_counts().tolist() == [2, 2, 2]
    assert not set(_ids(train)) & set(_ids(val))
    # the items keep their labels
    assert np.array_equal(ds.labels.numpy()[_ids(train)], train.labels.numpy())
    again, _ = per_class_subset(ds, 3, rng=0, val_per_class=2)
    assert np.array_equal(_ids(train), _ids(again))
    other = {tuple(_ids(per_class_subset(ds, 3, rng=s))) for s in range(5)}
    assert len(other) > 1
    assert isinstance(per_class_subset(ds, 5, rng=1), ImageClassification)


def test_per_class_too_many_names_class():
    with pytest.raises(
        ValueError, match=r"class 2 \('c'\) has 5 samples, but 4 were requested plus 2"
    ):
        per_class_subset(_dataset(), 4, rng=0, val_per_class=2)
    with pytest.raises(ValueError, match=r"class 2 \('c'\) has 5 samples, but 6 were requested"):
        per_class_subset(_dataset(), 6, rng=0)


def test_imbalanced():
    train, val = imbalanced_subset(_dataset(), 4, small_class=1, n_small=1, rng=3, val_per_class=1)
    assert train.class_counts().tolist() == [4, 1, 4]
    assert val.class_counts().tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="small_class must be in 0..2, got 3"):
        imbalanced_subset(_dataset(), 2, small_class=3, n_small=1, rng=0)
