"""Training of segmentation networks with the thesis protocol.

``train_segmentation`` trains on (image, mask[, roi]) datasets with pixel-wise
cross-entropy on the 2-class logits, validates every epoch, keeps the weights with the
best validation score (mean per-image IoU by default), writes ``last.pt`` / ``best.pt``
checkpoints atomically and resumes from ``last.pt`` bit-identically.
"""

from __future__ import annotations

import os
import time
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from . import metrics
from ._checks import check_choice, check_positive_int, seed_everything
from .io import check_writable_dir, load_checkpoint, save_checkpoint

__all__ = ["evaluate_segmentation", "predict_masks", "train_segmentation"]

HISTORY_COLUMNS = [
    "epoch",
    "train_loss",
    "val_loss",
    "val_iou",
    "val_cldice",
    "val_dice",
    "seconds",
    "is_best",
]


def _as_dataset(data: Any, name: str) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        from .data.vessels import VesselArrays

        return VesselArrays(data[0], data[1], rois=data[2] if len(data) == 3 else None)
    raise TypeError(
        f"{name} must be a torch Dataset of (image, mask[, roi]) items or a tuple "
        f"(images, masks[, rois]) of arrays, got {type(data).__name__}"
    )


def _device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _unpack(batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, Any]:
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise ValueError("dataset items must be (image, mask) or (image, mask, roi) tuples")
    x, y = batch[0].to(device), batch[1].to(device).long()
    roi = batch[2].to(device).bool() if len(batch) == 3 else None
    return x, y, roi


def _loss(logits: torch.Tensor, y: torch.Tensor, roi: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy averaged over pixels (only those inside the ROI when given)."""
    if roi is None:
        return F.cross_entropy(logits, y)
    per_pixel = F.cross_entropy(logits, y, reduction="none")
    return (per_pixel * roi).sum() / roi.sum().clamp(min=1)


@torch.no_grad()
def _predict(
    model: nn.Module, loader: DataLoader, device: torch.device
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray | None], float]:
    """Predicted masks, targets, rois and the mean loss over a loader (eval mode)."""
    was_training = model.training
    model.eval()
    preds, targets, rois = [], [], []
    loss_sum, pixels = 0.0, 0
    try:
        for batch in loader:
            x, y, roi = _unpack(batch, device)
            logits = model(x)
            n_pix = int(roi.sum()) if roi is not None else y.numel()
            loss_sum += float(_loss(logits, y, roi)) * n_pix
            pixels += n_pix
            preds.extend(logits.argmax(1).to(torch.uint8).cpu().numpy())
            targets.extend(y.to(torch.uint8).cpu().numpy())
            rois.extend(roi.cpu().numpy() if roi is not None else [None] * len(y))
    finally:
        model.train(was_training)
    return preds, targets, rois, loss_sum / max(pixels, 1)


def _scores(preds: list, targets: list, rois: list) -> Any:
    """Per-image metrics; pixels outside a ROI count as background in both masks."""
    t = np.stack([tt if r is None else tt * r for tt, r in zip(targets, rois)])
    p = np.stack([pp if r is None else pp * r for pp, r in zip(preds, rois)])
    return metrics.segmentation_scores(t, p)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train_segmentation(
    model: nn.Module,
    train_data: Dataset | tuple,
    val_data: Dataset | tuple,
    *,
    epochs: int = 250,
    lr: float = 0.01,
    batch_size: int = 3,
    optimizer: Literal["adam", "sgd"] = "adam",
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    device: str | torch.device | None = None,
    progress: bool = True,
    metric: Literal["iou", "dice", "cldice"] = "iou",
    num_workers: int = 0,
) -> tuple[nn.Module, Any]:
    """Train a segmentation network with the thesis protocol; keep the best epoch.

    Parameters
    ----------
    model : nn.Module
        Maps (N, C, H, W) images to (N, 2, H, W) logits (background, vessel).
    train_data, val_data : Dataset or tuple
        Items ``(image (C, H, W), mask (H, W))`` or ``(image, mask, roi)``; a tuple
        ``(images, masks[, rois])`` of arrays is wrapped in ``VesselArrays``.
    epochs : int
        Total number of epochs (thesis: 250).
    lr : float
        Learning rate (thesis: 0.01).
    batch_size : int
        Thesis: CNN1 5, CNN6 3, CNN10 1.
    optimizer : {"adam", "sgd"}
        The thesis does not name its optimizer; Adam is the default here, SGD (with
        ``momentum``) the alternative.
    seed : int
        Seeds torch and the shuffling; the same seed gives bit-identical weights on CPU.
    checkpoint_dir : path, optional
        Where ``last.pt`` (weights, optimizer, epoch, history, RNG states) and ``best.pt``
        (best weights) are written atomically after every epoch.
    resume : bool
        Continue from ``checkpoint_dir/last.pt`` (identical to an uninterrupted run);
        without a ``last.pt`` training starts at epoch 1.
    device : str or torch.device, optional
        Default CUDA if available, else CPU.
    progress : bool
        tqdm progress bar over epochs.
    metric : {"iou", "dice", "cldice"}
        Validation score that selects the best epoch: the mean over validation images of
        the per-image score (pixels outside a ROI count as background).
    num_workers : int
        DataLoader workers.

    Returns
    -------
    model : nn.Module
        The same module holding the best-validation weights, with attributes
        ``best_epoch`` and ``best_score``.
    history : pandas.DataFrame
        One row per epoch: ``epoch`` (1-based), ``train_loss`` (mean over batches),
        ``val_loss`` (per pixel), ``val_iou``, ``val_cldice``, ``val_dice`` (means of
        per-image values), ``seconds`` (epoch wall time) and ``is_best``.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    num_workers = check_positive_int("num_workers", num_workers, minimum=0)
    check_choice("optimizer", optimizer, ["adam", "sgd"])
    check_choice("metric", metric, ["iou", "dice", "cldice"])
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir (where last.pt is)")
    train_ds, val_ds = _as_dataset(train_data, "train_data"), _as_dataset(val_data, "val_data")
    if len(train_ds) == 0 or len(val_ds) == 0:
        raise ValueError(f"empty data: {len(train_ds)} training, {len(val_ds)} validation items")
    ckpt = check_writable_dir(checkpoint_dir) if checkpoint_dir is not None else None
    dev = _device(device)
    config = {"lr": float(lr), "batch_size": batch_size, "optimizer": optimizer, "seed": seed}
    config.update(metric=metric, momentum=float(momentum), weight_decay=float(weight_decay))

    seed_everything(seed)
    model.to(dev)
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        train_ds, batch_size=batch_size, shuffle=True, generator=gen, num_workers=num_workers
    )
    val_loader = DataLoader(val_ds, batch_size=batch_size, num_workers=num_workers)
    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    else:
        opt = torch.optim.SGD(
            model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
        )

    rows: list[dict[str, Any]] = []
    best_state, best_epoch, best_score = _state(model), 0, -np.inf
    start = 1
    if resume and (ckpt / "last.pt").is_file():
        last = load_checkpoint(ckpt / "last.pt", map_location="cpu")
        diff = {
            k: (last["config"].get(k), v) for k, v in config.items() if last["config"].get(k) != v
        }
        if diff:
            raise ValueError(
                "cannot resume: settings differ from the checkpoint (checkpoint, now): "
                + ", ".join(f"{k}={a!r} vs {b!r}" for k, (a, b) in diff.items())
            )
        model.load_state_dict(last["model"])
        opt.load_state_dict(last["optimizer"])
        torch.set_rng_state(last["rng"]["torch"])
        gen.set_state(last["rng"]["loader"])
        rows = [dict(r) for r in last["history"]]
        best = load_checkpoint(ckpt / "best.pt", map_location="cpu")
        best_state, best_epoch, best_score = best["model"], best["epoch"], best["score"]
        start = int(last["epoch"]) + 1

    bar = tqdm(
        range(start, epochs + 1),
        desc="epochs",
        disable=not progress,
        initial=start - 1,
        total=epochs,
    )
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        losses = []
        for batch in loader:
            x, y, roi = _unpack(batch, dev)
            opt.zero_grad(set_to_none=True)
            loss = _loss(model(x), y, roi)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        preds, targets, rois, val_loss = _predict(model, val_loader, dev)
        scores = _scores(preds, targets, rois)
        row = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "val_loss": val_loss,
            "val_iou": float(scores["iou"].mean()),
            "val_cldice": float(scores["cldice"].mean()),
            "val_dice": float(scores["dice"].mean()),
            "seconds": time.perf_counter() - t0,
        }
        score = row[f"val_{metric}"]
        row["is_best"] = bool(score > best_score)
        if row["is_best"]:
            best_state, best_epoch, best_score = _state(model), epoch, score
        rows.append(row)
        if ckpt is not None:
            if row["is_best"]:
                save_checkpoint(
                    {"model": best_state, "epoch": epoch, "score": score, "metric": metric},
                    ckpt / "best.pt",
                )
            save_checkpoint(
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "epoch": epoch,
                    "history": rows,
                    "config": config,
                    "rng": {"torch": torch.get_rng_state(), "loader": gen.get_state()},
                },
                ckpt / "last.pt",
            )
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", **{f"val_{metric}": f"{score:.3f}"})
    bar.close()

    model.load_state_dict(best_state)
    model.best_epoch, model.best_score = int(best_epoch), float(best_score)
    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    return model, history


def _images_tensor(images: Any) -> torch.Tensor:
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if x.dim() == 3:
        x = x[:, None]
    if x.dim() != 4:
        raise ValueError(f"images must have shape (N, H, W) or (N, C, H, W), got {tuple(x.shape)}")
    return x.float()


@torch.no_grad()
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
    x = _images_tensor(images)
    dev = _device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, len(x), batch_size):
            logits = model(x[i : i + batch_size].to(dev))
            out.append(logits.argmax(1).to(torch.uint8).cpu().numpy())
    finally:
        model.train(was_training)
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
    dev = _device(device) if device is not None else next(model.parameters()).device
    loader = DataLoader(ds, batch_size=check_positive_int("batch_size", batch_size))
    preds, targets, rois, _ = _predict(model, loader, dev)
    frame = _scores(preds, targets, rois)
    cols = ["image", "precision", "recall", "f1", "dice", "iou", "cldice", "vessel_fraction"]
    return frame[cols + ["tp", "fp", "fn", "tn"]]
