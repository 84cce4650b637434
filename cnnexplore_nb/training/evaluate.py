"""Evaluation of segmentation networks: predicted masks and per-image scores."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .._arrays import as_nchw, call_model, model_input
from .._checks import check_positive_int, resolve_device
from .._hooks import Hooks, model_device
from . import metrics

__all__ = ["evaluate_segmentation", "predict_masks"]


def _as_dataset(data: Any, name: str) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        from ..data.vessels import VesselArrays

        return VesselArrays(data[0], data[1], rois=data[2] if len(data) == 3 else None)
    raise TypeError(
        f"{name} must be a torch Dataset of (image, mask[, roi]) items or a tuple "
        f"(images, masks[, rois]) of arrays, got {type(data).__name__}"
    )


def _device(device: str | torch.device | None) -> torch.device:
    return resolve_device(device)


def _unpack(batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, Any]:
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise ValueError("dataset items must be (image, mask) or (image, mask, roi) tuples")
    x, y = batch[0].to(device), batch[1].to(device).long()
    roi = batch[2].to(device).bool() if len(batch) == 3 else None
    return x, y, roi


def _check_logits(logits: torch.Tensor, y: torch.Tensor) -> None:
    """The model's output must be (N, C, H, W) logits on the masks' grid with C > mask max."""
    if logits.ndim != 4 or tuple(logits.shape[-2:]) != tuple(y.shape[-2:]):
        raise ValueError(
            f"the model must map the images to logits of shape (N, 2, H, W) on the masks' "
            f"grid (H, W) = {tuple(y.shape[-2:])}, got output of shape {tuple(logits.shape)}"
        )
    top = int(y.max()) if y.numel() else 0
    if top >= logits.shape[1]:
        raise ValueError(
            f"the masks hold class {top} but the model outputs {logits.shape[1]} class "
            f"channel(s) per pixel: a segmentation model here needs 2 (background, vessel), "
            f"e.g. num_classes=2"
        )


def _loss(
    logits: torch.Tensor, y: torch.Tensor, roi: torch.Tensor | None, kind: str = "ce"
) -> torch.Tensor:
    """Cross-entropy averaged over pixels (only those inside the ROI when given); with
    ``kind="ce+dice"`` plus the soft Dice loss of the vessel class (:func:`_soft_dice`)."""
    _check_logits(logits, y)
    if roi is None:
        ce = F.cross_entropy(logits, y)
    else:
        per_pixel = F.cross_entropy(logits, y, reduction="none")
        ce = (per_pixel * roi).sum() / roi.sum().clamp(min=1)
    return ce if kind == "ce" else ce + _soft_dice(logits, y, roi)


def _soft_dice(
    logits: torch.Tensor, y: torch.Tensor, roi: torch.Tensor | None, eps: float = 1.0
) -> torch.Tensor:
    """``1 - (2 sum(p t) + eps) / (sum(p) + sum(t) + eps)`` over the batch's pixels (inside
    the ROI), ``p`` the softmax probability of class 1 (vessel) and ``t`` the target."""
    p = torch.softmax(logits, dim=1)[:, 1]
    t = (y == 1).to(p.dtype)
    if roi is not None:
        p, t = p * roi, t * roi
    return 1.0 - (2.0 * (p * t).sum() + eps) / (p.sum() + t.sum() + eps)


def _predict(
    model: nn.Module, loader: DataLoader, device: torch.device
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray | None], float]:
    """Predicted masks, targets, rois and the mean loss over a loader (eval mode)."""
    preds, targets, rois = [], [], []
    loss_sum, pixels = 0.0, 0
    with Hooks(model, mode="eval", grad=False):
        for batch in loader:
            x, y, roi = _unpack(batch, device)
            logits = call_model(model, x)
            n_pix = int(roi.sum()) if roi is not None else y.numel()
            loss_sum += float(_loss(logits, y, roi)) * n_pix
            pixels += n_pix
            preds.extend(logits.argmax(1).to(torch.uint8).cpu().numpy())
            targets.extend(y.to(torch.uint8).cpu().numpy())
            rois.extend(roi.cpu().numpy() if roi is not None else [None] * len(y))
    return preds, targets, rois, loss_sum / max(pixels, 1)


def _scores(preds: list, targets: list, rois: list) -> Any:
    """Per-image metrics; pixels outside a ROI count as background in both masks."""
    t = np.stack([tt if r is None else tt * r for tt, r in zip(targets, rois)])
    p = np.stack([pp if r is None else pp * r for pp, r in zip(preds, rois)])
    return metrics.segmentation_scores(t, p)


def predict_masks(
    model: nn.Module,
    images: Any,
    *,
    batch_size: int = 4,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Predicted masks (argmax over the logits) in eval mode.

    Parameters
    ----------
    images : array or Tensor of shape (N, H, W) or (N, C, H, W)
        Images, normalised as during training.

    Returns
    -------
    ndarray of uint8, shape (N, H, W)
        Class index per pixel (vessel = 1 for 2-class models).
    """
    batch_size = check_positive_int("batch_size", batch_size)
    x = model_input(as_nchw(images, "images", three_d="NHW"), model)
    dev = _device(device) if device is not None else model_device(model)
    out = []
    with Hooks(model, mode="eval", grad=False):
        for i in range(0, len(x), batch_size):
            logits = call_model(model, x[i : i + batch_size].to(dev))
            out.append(logits.argmax(1).to(torch.uint8).cpu().numpy())
    return np.concatenate(out)


def evaluate_segmentation(
    model: nn.Module,
    data: Dataset | tuple,
    *,
    batch_size: int = 4,
    device: str | torch.device | None = None,
) -> Any:
    """Per-image segmentation scores of ``model`` on a dataset.

    Parameters
    ----------
    data : Dataset or tuple
        ``(image, mask[, roi])`` items, or a tuple ``(images, masks[, rois])`` of arrays.

    Returns
    -------
    pandas.DataFrame
        One row per image: ``image`` (index), ``precision``, ``recall``, ``f1``,
        ``dice``, ``iou``, ``cldice``, ``vessel_fraction`` (of the target), and the
        pixel counts ``tp``, ``fp``, ``fn``, ``tn``. Pixels outside a ROI count as
        background in both masks.
    """
    ds = _as_dataset(data, "data")
    dev = _device(device) if device is not None else model_device(model)
    loader = DataLoader(ds, batch_size=check_positive_int("batch_size", batch_size))
    preds, targets, rois, _ = _predict(model, loader, dev)
    frame = _scores(preds, targets, rois)
    cols = ["image", "precision", "recall", "f1", "dice", "iou", "cldice", "vessel_fraction"]
    return frame[cols + ["tp", "fp", "fn", "tn"]]
