"""Segmentation metrics against hand-computed values and an independent set-based version."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cnnexplore_nb import metrics
from cnnexplore_nb.training.metrics import (
    cldice,
    confusion_counts,
    dice,
    f1,
    iou,
    precision,
    recall,
    segmentation_scores,
)

ALL = [precision, recall, f1, dice, iou, cldice]

# target and prediction of a 3 x 4 image, counted by hand:
# TP = 3 ((0,0), (0,1), (1,1)), FP = 2 ((1,2), (2,3)), FN = 1 ((2,0))
T = np.array([[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0]], dtype=np.uint8)
P = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]], dtype=np.uint8)


def test_hand_counted_example():
    c = confusion_counts(T, P)
    assert (c["tp"][0], c["fp"][0], c["fn"][0], c["tn"][0]) == (3, 2, 1, 6)
    assert precision(T, P) == pytest.approx(3 / 5)
    assert recall(T, P) == pytest.approx(3 / 4)
    p, r = 3 / 5, 3 / 4
    assert f1(T, P) == pytest.approx(2 * p * r / (p + r))
    assert dice(T, P) == pytest.approx(6 / 9)
    assert iou(T, P) == pytest.approx(3 / 6)


def _set_reference(t: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Independent version: sets of pixel coordinates and the set formulas."""
    lab = {(i, j) for i in range(t.shape[0]) for j in range(t.shape[1]) if t[i, j]}
    pre = {(i, j) for i in range(p.shape[0]) for j in range(p.shape[1]) if p[i, j]}
    inter, union = len(lab & pre), len(lab | pre)
    return {
        "precision": inter / len(pre),
        "recall": inter / len(lab),
        "dice": 2 * inter / (len(lab) + len(pre)),
        "iou": inter / union,
    }


@pytest.mark.parametrize("seed", range(5))
def test_against_set_formulas(seed):
    rng = np.random.default_rng(seed)
    t = rng.random((3, 9, 11)) < 0.3
    p = rng.random((3, 9, 11)) < 0.4
    refs = [_set_reference(ti, pi) for ti, pi in zip(t, p)]
    for name, fn in [("precision", precision), ("recall", recall), ("dice", dice), ("iou", iou)]:
        per = fn(t, p, reduction="none")
        np.testing.assert_allclose(per, [r[name] for r in refs])
        assert fn(t, p) == pytest.approx(np.mean([r[name] for r in refs]))
    np.testing.assert_allclose(f1(t, p, reduction="none"), dice(t, p, reduction="none"))
    # pooled = the set formula on the union of all images (one big image)
    flat_t, flat_p = t.reshape(-1, 11), p.reshape(-1, 11)
    pooled = _set_reference(flat_t, flat_p)
    assert iou(t, p, reduction="pooled") == pytest.approx(pooled["iou"])
    assert precision(t, p, reduction="pooled") == pytest.approx(pooled["precision"])


def test_cldice_one_pixel_line_with_gap():
    # a 1-pixel line is its own skeleton: S_L = L (14 px); the prediction lacks 2 pixels,
    # S_P = P (12 px) lies inside L, so Tprec = 1, Tsens = 12/14 and
    # clDice = 2 * (6/7) / (1 + 6/7) = 12/13.
    lab = np.zeros((7, 16), bool)
    lab[3, 1:15] = True
    pred = lab.copy()
    pred[3, 7:9] = False
    assert cldice(lab, pred) == pytest.approx(12 / 13)
    assert cldice(pred, lab) == pytest.approx(12 / 13)  # symmetric here: roles swap


def test_cldice_thick_tube_with_gap():
    from skimage.morphology import skeletonize

    lab = np.zeros((7, 16), bool)
    lab[2:5, 1:15] = True  # 3-pixel-thick tube
    pred = lab.copy()
    pred[:, 7:9] = False  # a 2-column gap
    s_l = skeletonize(lab)
    # the label's centreline crosses the gap with exactly 2 pixels (one per column)
    assert s_l[:, 7:9].sum() == 2
    # the prediction is inside the label: Tprec = 1; Tsens = (|S_L| - 2) / |S_L|
    tsens = (s_l.sum() - 2) / s_l.sum()
    assert cldice(lab, pred) == pytest.approx(2 * tsens / (1 + tsens))
    assert cldice(lab, pred) < 1.0
    # IoU barely notices the gap, clDice does more (relative to the structure)
    assert 1 - cldice(lab, pred) > 0.5 * (1 - iou(lab, pred))


def test_perfect_prediction_is_one():
    rng = np.random.default_rng(0)
    t = rng.random((2, 12, 12)) < 0.3
    for fn in ALL:
        assert fn(t, t) == 1.0
        np.testing.assert_array_equal(fn(t, t, reduction="none"), [1.0, 1.0])


@pytest.mark.parametrize("fn", ALL)
def test_empty_masks(fn):
    z = np.zeros((5, 5), np.uint8)
    one = z.copy()
    one[2, 1:4] = 1
    assert fn(z, z) == 1.0
    assert fn(z, z, empty=0.25) == 0.25
    assert math.isnan(fn(z, z, empty=float("nan")))
    assert fn(one, z) == 0.0  # target has vessels, prediction none
    assert fn(z, one) == 0.0  # prediction has vessels, target none
    # in a batch the empty image gets its value, the others theirs
    batch_t, batch_p = np.stack([z, one]), np.stack([z, one])
    np.testing.assert_array_equal(fn(batch_t, batch_p, reduction="none", empty=0.5), [0.5, 1.0])


def test_torch_and_bool_inputs_match_numpy():
    t = torch.tensor(T)
    p = torch.tensor(P).bool()
    for fn in ALL:
        assert fn(t, p) == pytest.approx(fn(T, P))
    assert iou(T.astype(float), P.astype(float)) == pytest.approx(0.5)


def test_invalid_inputs():
    with pytest.raises(ValueError, match=r"binary.*found other values: 2"):
        iou(T * 2, P)
    with pytest.raises(ValueError, match=r"pred must be binary.*0\.5"):
        dice(T, P * 0.5)
    with pytest.raises(ValueError, match=r"same shape.*\(3, 4\) and \(4, 3\)"):
        precision(T, P.T)
    with pytest.raises(ValueError, match=r"\(H, W\) or \(N, H, W\).*\(12,\)"):
        recall(T.ravel(), P.ravel())
    with pytest.raises(ValueError, match="reduction 'sum'.*mean, none, pooled"):
        iou(T, P, reduction="sum")


def test_segmentation_scores_frame():
    rng = np.random.default_rng(3)
    t = rng.random((3, 10, 10)) < 0.3
    p = rng.random((3, 10, 10)) < 0.3
    frame = segmentation_scores(t, p)
    assert list(frame["image"]) == [0, 1, 2]
    for name in ["precision", "recall", "f1", "dice", "iou", "cldice"]:
        fn = getattr(metrics, name)
        np.testing.assert_allclose(frame[name], fn(t, p, reduction="none"))
    np.testing.assert_allclose(frame["vessel_fraction"], t.mean(axis=(1, 2)))
    assert (frame["tp"] + frame["fp"] + frame["fn"] + frame["tn"] == 100).all()
