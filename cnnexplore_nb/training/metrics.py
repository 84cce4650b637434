"""Binary segmentation metrics: precision, recall, F1, Dice, IoU and clDice.

All take ``(target, pred)`` in this order (ground truth first), binary numpy arrays or
torch tensors (bool or values in {0, 1}; vessel = 1) of shape (H, W) or a batch
(N, H, W), and keyword-only options:

- ``reduction``: ``"mean"`` (mean of the per-image values, the default), ``"none"``
  (the per-image values, shape (N,)) or ``"pooled"`` (one value from the counts summed
  over all images). A single (H, W) image always gives a float.
- ``empty``: the value when the formula is 0/0 because target and prediction are both
  empty (default 1.0: perfect agreement on "no vessel"; pass ``float("nan")`` to exclude
  such images from a mean computed with ``np.nanmean``). When exactly one of them is
  empty the value is 0.0 (defined per metric in its Notes).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .._checks import check_choice

__all__ = [
    "cldice",
    "confusion_counts",
    "dice",
    "f1",
    "iou",
    "precision",
    "recall",
    "segmentation_scores",
]

Reduction = Literal["mean", "none", "pooled"]
_REDUCTIONS = ["mean", "none", "pooled"]


def _as_binary(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == bool:
        return arr
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be a binary array (bool or 0/1), got dtype {arr.dtype}")
    ok = (arr == 0) | (arr == 1)
    if not ok.all():
        bad = np.unique(arr[~ok])
        shown = ", ".join(str(v) for v in bad[:8]) + (", ..." if bad.size > 8 else "")
        raise ValueError(
            f"{name} must be binary (0/1 or bool, vessel = 1); found other values: {shown}"
        )
    return arr == 1


def _prepare(target: Any, pred: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    t = _as_binary(target, "target")
    p = _as_binary(pred, "pred")
    if t.shape != p.shape:
        raise ValueError(f"target and pred must have the same shape, got {t.shape} and {p.shape}")
    if t.ndim not in (2, 3):
        raise ValueError(f"expected masks of shape (H, W) or (N, H, W), got shape {t.shape}")
    single = t.ndim == 2
    return (t[None], p[None], single) if single else (t, p, single)


def confusion_counts(target: Any, pred: Any) -> dict[str, np.ndarray]:
    """Pixel counts per image.

    Returns
    -------
    dict of ndarray of int64, shape (N,)
        ``tp`` (target 1, pred 1), ``fp`` (target 0, pred 1), ``fn`` (target 1, pred 0),
        ``tn`` (both 0). A single (H, W) image gives arrays of shape (1,).
    """
    t, p, _ = _prepare(target, pred)
    return _counts(t, p)


def _counts(t: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    axes = (1, 2)
    return {
        "tp": np.sum(t & p, axis=axes, dtype=np.int64),
        "fp": np.sum(~t & p, axis=axes, dtype=np.int64),
        "fn": np.sum(t & ~p, axis=axes, dtype=np.int64),
        "tn": np.sum(~t & ~p, axis=axes, dtype=np.int64),
    }


def _ratio(num: np.ndarray, den: np.ndarray, both_empty: np.ndarray, empty: float) -> np.ndarray:
    what = "empty (the score when both masks are empty) must be a number in [0, 1] or NaN"
    if isinstance(empty, bool) or not isinstance(empty, (int, float, np.number)):
        raise TypeError(f"{what}, got {type(empty).__name__} {empty!r}")
    if not (np.isnan(empty) or 0 <= empty <= 1):
        raise ValueError(f"{what} (NaN leaves such images out), got {empty!r}")
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return np.where(both_empty, float(empty), out)


def _reduce(per_image: Any, pooled: Any, reduction: str, single: bool) -> float | np.ndarray:
    """``per_image(counts) -> values``; ``pooled`` are counts summed over images."""
    check_choice("reduction", reduction, _REDUCTIONS)
    if reduction == "pooled" or single:
        return float(pooled()[0])
    values = per_image()
    return values if reduction == "none" else float(values.mean())


def _metric(target: Any, pred: Any, formula: Any, reduction: str) -> float | np.ndarray:
    t, p, single = _prepare(target, pred)
    c = _counts(t, p)
    summed = {k: v.sum(keepdims=True) for k, v in c.items()}
    return _reduce(lambda: formula(c), lambda: formula(summed), reduction, single)


def _both_empty(c: dict[str, np.ndarray]) -> np.ndarray:
    return (c["tp"] + c["fp"] + c["fn"]) == 0


def precision(
    target: Any, pred: Any, *, reduction: Reduction = "mean", empty: float = 1.0
) -> float | np.ndarray:
    """Precision: the fraction of predicted vessel pixels that are vessel.

    Notes
    -----
    precision = TP / (TP + FP). Both masks empty: ``empty``. Prediction empty but
    target not: 0.0 (nothing right was predicted). Target empty, prediction not: 0.0.

    Examples
    --------
    >>> precision([[1, 1, 0, 0]], [[1, 0, 1, 0]])
    0.5
    """
    return _metric(
        target,
        pred,
        lambda c: _ratio(c["tp"], c["tp"] + c["fp"], _both_empty(c), empty),
        reduction,
    )


def recall(
    target: Any, pred: Any, *, reduction: Reduction = "mean", empty: float = 1.0
) -> float | np.ndarray:
    """Recall (sensitivity): the fraction of vessel pixels that are predicted.

    Notes
    -----
    recall = TP / (TP + FN). Both masks empty: ``empty``. Target empty, prediction not:
    0.0. Prediction empty, target not: 0.0.
    """
    return _metric(
        target,
        pred,
        lambda c: _ratio(c["tp"], c["tp"] + c["fn"], _both_empty(c), empty),
        reduction,
    )


def f1(
    target: Any, pred: Any, *, reduction: Reduction = "mean", empty: float = 1.0
) -> float | np.ndarray:
    """F1 score, the harmonic mean of precision and recall.

    Notes
    -----
    F1 = 2 P R / (P + R), 0.0 when P + R = 0 (in particular when exactly one mask is
    empty); ``empty`` when both masks are empty. It equals :func:`dice` for binary masks.
    """

    def formula(c: dict[str, np.ndarray]) -> np.ndarray:
        both = _both_empty(c)
        p = _ratio(c["tp"], c["tp"] + c["fp"], both, empty)
        r = _ratio(c["tp"], c["tp"] + c["fn"], both, empty)
        return _ratio(2 * p * r, p + r, both, empty)

    return _metric(target, pred, formula, reduction)


def dice(
    target: Any, pred: Any, *, reduction: Reduction = "mean", empty: float = 1.0
) -> float | np.ndarray:
    """Dice coefficient (Sorensen).

    Notes
    -----
    Dice = 2 TP / (2 TP + FP + FN) = 2 |L ∩ P| / (|L| + |P|). Both masks empty: ``empty``;
    exactly one empty: 0.0.

    Examples
    --------
    >>> dice([[1, 1, 0, 0]], [[1, 0, 1, 0]])
    0.5
    """
    return _metric(
        target,
        pred,
        lambda c: _ratio(2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"], _both_empty(c), empty),
        reduction,
    )


def iou(
    target: Any, pred: Any, *, reduction: Reduction = "mean", empty: float = 1.0
) -> float | np.ndarray:
    """Intersection over union (Jaccard index).

    Notes
    -----
    IoU = TP / (TP + FP + FN) = |L ∩ P| / |L ∪ P|. Both masks empty: ``empty``; exactly
    one empty: 0.0.

    Examples
    --------
    >>> iou([[1, 1, 0, 0]], [[1, 0, 1, 0]])
    0.3333333333333333
    """
    return _metric(
        target,
        pred,
        lambda c: _ratio(c["tp"], c["tp"] + c["fp"] + c["fn"], _both_empty(c), empty),
        reduction,
    )


def _skeleton_counts(t: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    from skimage.morphology import skeletonize

    keys = ("sp_in_l", "sp", "sl_in_p", "sl")
    out = {k: np.zeros(len(t), dtype=np.int64) for k in keys}
    for i, (ti, pi) in enumerate(zip(t, p)):
        sp = skeletonize(pi) if pi.any() else pi
        sl = skeletonize(ti) if ti.any() else ti
        out["sp_in_l"][i] = np.sum(sp & ti)
        out["sp"][i] = np.sum(sp)
        out["sl_in_p"][i] = np.sum(sl & pi)
        out["sl"][i] = np.sum(sl)
    return out


def _cldice_formula(c: dict[str, np.ndarray], empty: float) -> np.ndarray:
    both = (c["sp"] + c["sl"]) == 0
    tprec = _ratio(c["sp_in_l"], c["sp"], both, empty)
    tsens = _ratio(c["sl_in_p"], c["sl"], both, empty)
    return _ratio(2 * tprec * tsens, tprec + tsens, both, empty)


def cldice(
    target: Any, pred: Any, *, reduction: Reduction = "mean", empty: float = 1.0
) -> float | np.ndarray:
    """Centreline Dice (clDice): topology-aware overlap of skeletons and masks.

    Notes
    -----
    With skeletons S_P of the prediction V_P and S_L of the label V_L
    (``skimage.morphology.skeletonize``, 2-D)::

        Tprec = |S_P ∩ V_L| / |S_P|,   Tsens = |S_L ∩ V_P| / |S_L|,
        clDice = 2 Tprec Tsens / (Tprec + Tsens).

    Both masks empty: ``empty``; exactly one empty: 0.0 (one of Tprec, Tsens is 0).
    ``"pooled"`` sums the four skeleton counts over images.

    References
    ----------
    .. [1] Shit et al., "clDice - a novel topology-preserving loss function for tubular
       structure segmentation", CVPR 2021.
    """
    t, p, single = _prepare(target, pred)
    c = _skeleton_counts(t, p)
    summed = {k: v.sum(keepdims=True) for k, v in c.items()}
    return _reduce(
        lambda: _cldice_formula(c, empty), lambda: _cldice_formula(summed, empty), reduction, single
    )


def segmentation_scores(target: Any, pred: Any, *, empty: float = 1.0) -> Any:
    """All metrics per image as a DataFrame.

    Returns
    -------
    pandas.DataFrame
        One row per image: ``image`` (index in the batch), ``precision``, ``recall``,
        ``f1``, ``dice``, ``iou``, ``cldice``, ``tp``, ``fp``, ``fn``, ``tn`` and
        ``vessel_fraction`` (fraction of vessel pixels in the target).
    """
    import pandas as pd

    t, p, _ = _prepare(target, pred)
    c = _counts(t, p)
    kw = {"reduction": "none", "empty": empty}
    frame = pd.DataFrame(
        {
            "image": np.arange(len(t)),
            "precision": precision(t, p, **kw),
            "recall": recall(t, p, **kw),
            "f1": f1(t, p, **kw),
            "dice": dice(t, p, **kw),
            "iou": iou(t, p, **kw),
            "cldice": cldice(t, p, **kw),
        }
    )
    for k in ("tp", "fp", "fn", "tn"):
        frame[k] = c[k]
    frame["vessel_fraction"] = t.mean(axis=(1, 2))
    return frame
