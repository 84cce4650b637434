"""Training of segmentation networks with the thesis protocol (evaluation: :mod:`.evaluate`).

``train_segmentation`` trains on (image, mask[, roi]) datasets with pixel-wise
cross-entropy on the 2-class logits (optionally plus a soft Dice loss, with a warm-up and
cosine learning-rate schedule), validates every epoch, keeps the weights with the
best validation score (mean per-image IoU by default), writes ``last.pt`` / ``best.pt``
checkpoints atomically and resumes from ``last.pt`` bit-identically.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler

from .._arrays import call_model
from .._checks import (
    NonFiniteLossError,
    check_choice,
    check_positive_int,
    check_real,
    non_finite_loss_message,
    seed_everything,
)
from ..io import CheckpointError, check_writable_dir, load_checkpoint, save_checkpoint
from .evaluate import _as_dataset, _device, _loss, _predict, _scores, _unpack

__all__ = ["NonFiniteLossError", "train_segmentation"]

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


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _finite(state: dict[str, torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


class _RecordedBatches(BatchSampler):
    """``BatchSampler`` remembering the dataset indices of every batch of the current pass
    (batch ``i`` of a DataLoader pass is the ``i``-th one yielded, with or without workers)."""

    def __iter__(self):
        self.batches: list[list[int]] = []
        for batch in super().__iter__():
            self.batches.append(batch)
            yield batch


class _Run:
    """One training run, split into named steps (see :func:`train_segmentation`)."""

    def __init__(self, model: nn.Module, train_data: Any, val_data: Any, **kw: Any) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"model must be a torch.nn.Module (e.g. create_model('cnn6')), got "
                f"{type(model).__name__} {model!r}"
            )
        self.epochs = check_positive_int("epochs", kw["epochs"])
        self.batch_size = check_positive_int("batch_size", kw["batch_size"])
        num_workers = check_positive_int("num_workers", kw["num_workers"], minimum=0)
        check_choice("optimizer", kw["optimizer"], ["adam", "sgd"])
        self.metric = check_choice("metric", kw["metric"], ["iou", "dice", "cldice"])
        self.loss_kind = check_choice("loss", kw["loss"], ["ce", "ce+dice"])
        self.schedule = check_choice("schedule", kw["schedule"], ["constant", "cosine"])
        self.warmup = check_positive_int("warmup_epochs", kw["warmup_epochs"], minimum=0)
        if self.warmup >= self.epochs and self.warmup > 0:
            raise ValueError(
                f"warmup_epochs must be smaller than epochs ({self.epochs}), got {self.warmup}"
            )
        lr = kw["lr"]
        if isinstance(lr, bool) or not (isinstance(lr, (int, float)) and lr > 0):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        for name in ("momentum", "weight_decay"):
            if check_real(name, kw[name]) < 0:
                raise ValueError(f"{name} must be >= 0, got {kw[name]!r}")
        if kw["resume"] and kw["checkpoint_dir"] is None:
            raise ValueError("resume=True needs checkpoint_dir (where last.pt is)")
        self.train_ds = _as_dataset(train_data, "train_data")
        val_ds = _as_dataset(val_data, "val_data")
        if len(self.train_ds) == 0 or len(val_ds) == 0:
            raise ValueError(
                f"empty data: {len(self.train_ds)} training, {len(val_ds)} validation items"
            )
        ckpt_dir = kw["checkpoint_dir"]
        self.ckpt = check_writable_dir(ckpt_dir) if ckpt_dir is not None else None
        self.device = _device(kw["device"])
        self.config = {
            "lr": float(lr), "batch_size": self.batch_size, "optimizer": kw["optimizer"],
            "seed": kw["seed"], "metric": self.metric, "momentum": float(kw["momentum"]),
            "weight_decay": float(kw["weight_decay"]), "loss": self.loss_kind,
            "schedule": self.schedule, "warmup_epochs": self.warmup,
        }  # fmt: skip
        self.lr = float(lr)
        self.model, self.progress = model, kw["progress"]
        seed_everything(kw["seed"])
        model.to(self.device)
        self.gen = torch.Generator().manual_seed(kw["seed"])
        # what DataLoader(shuffle=True, generator=gen) builds, keeping each batch's indices
        self.sampler = _RecordedBatches(
            RandomSampler(self.train_ds, generator=self.gen), self.batch_size, drop_last=False
        )
        self.loader = DataLoader(
            self.train_ds, batch_sampler=self.sampler, generator=self.gen,
            num_workers=num_workers,
        )  # fmt: skip
        self.val_loader = DataLoader(val_ds, batch_size=self.batch_size, num_workers=num_workers)
        self.opt = _optimizer(model, kw["optimizer"], lr, kw["momentum"], kw["weight_decay"])
        self.rows: list[dict[str, Any]] = []
        self.best_state, self.best_epoch, self.best_score = _state(model), 0, -np.inf
        self.start = 1

    # ---------------------------------------------------------------- resume
    def resume(self) -> None:
        """Continue from ``last.pt`` (and ``best.pt``) when they exist."""
        assert self.ckpt is not None
        for stale in self.ckpt.glob(".*.tmp"):  # writes killed half-way
            stale.unlink(missing_ok=True)
        if not (self.ckpt / "last.pt").is_file():
            return
        last = _load(self.ckpt / "last.pt")
        diff = {
            k: (last["config"].get(k), v)
            for k, v in self.config.items()
            if last["config"].get(k) != v
        }
        if diff:
            raise ValueError(
                "cannot resume: settings differ from the checkpoint (checkpoint, now): "
                + ", ".join(f"{k}={a!r} vs {b!r}" for k, (a, b) in diff.items())
            )
        threads = last.get("threads")
        if threads is not None and threads != torch.get_num_threads():
            warnings.warn(
                f"resuming with {torch.get_num_threads()} torch threads; the checkpoint was "
                f"written with {threads}: results will not be bit-identical to one run",
                RuntimeWarning,
                stacklevel=3,
            )
        self.model.load_state_dict(last["model"])
        self.opt.load_state_dict(last["optimizer"])
        torch.set_rng_state(last["rng"]["torch"])
        self.gen.set_state(last["rng"]["loader"])
        self.rows = [dict(r) for r in last["history"]]
        best = _load(self.ckpt / "best.pt")
        self.best_state, self.best_epoch = best["model"], best["epoch"]
        self.best_score = best["score"]
        self.start = int(last["epoch"]) + 1
        if int(best["epoch"]) >= self.start:
            # killed between an epoch's best.pt and last.pt writes: that epoch runs again and
            # must be judged against the best epoch last.pt knows (its weights come back
            # bit-identical, so best.pt's are kept until the re-run epoch replaces them)
            prior = [r for r in self.rows if r.get("is_best")]
            self.best_epoch = int(prior[-1]["epoch"]) if prior else 0
            self.best_score = float(prior[-1][f"val_{self.metric}"]) if prior else -np.inf

    # ---------------------------------------------------------------- one epoch
    def lr_at(self, epoch: int, i: int) -> float:
        """Learning rate of batch ``i`` (0-based) of ``epoch`` (1-based): a linear warm-up
        over ``warmup_epochs``, then constant or a cosine decay to 0 at the last batch."""
        per_epoch = len(self.loader)
        step, warm = (epoch - 1) * per_epoch + i, self.warmup * per_epoch
        if step < warm:
            return self.lr * (step + 1) / warm
        if self.schedule == "constant":
            return self.lr
        total = self.epochs * per_epoch - warm
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(total, 1)))

    def train_epoch(self, epoch: int) -> float:
        """One pass over the training data; the mean batch loss."""
        self.model.train()
        losses = []
        for i, batch in enumerate(self.loader):
            x, y, roi = _unpack(batch, self.device)
            for group in self.opt.param_groups:
                group["lr"] = self.lr_at(epoch, i)
            self.opt.zero_grad(set_to_none=True)
            loss = _loss(call_model(self.model, x), y, roi, self.loss_kind)
            if not torch.isfinite(loss):
                items = self.sampler.batches[i]
                raise NonFiniteLossError(non_finite_loss_message(loss, epoch, i, x, items=items))
            loss.backward()
            self.opt.step()
            losses.append(loss.item())
        if not _finite(self.model.state_dict()):  # a finite loss, then a step to NaN/Inf
            raise NonFiniteLossError(
                f"the weights hold NaN/Inf after the last batch of epoch {epoch} (its loss was "
                f"finite, {losses[-1]}): the optimisation diverged; lower the learning rate"
            )
        return float(np.mean(losses))

    def validate(self, epoch: int, train_loss: float, t0: float) -> dict[str, Any]:
        """Validation scores of the current weights; updates the best epoch."""
        preds, targets, rois, val_loss = _predict(self.model, self.val_loader, self.device)
        scores = _scores(preds, targets, rois)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_iou": float(scores["iou"].mean()),
            "val_cldice": float(scores["cldice"].mean()),
            "val_dice": float(scores["dice"].mean()),
            "seconds": time.perf_counter() - t0,
        }
        score = row[f"val_{self.metric}"]
        row["is_best"] = bool(score > self.best_score)
        if row["is_best"]:
            self.best_state, self.best_epoch, self.best_score = _state(self.model), epoch, score
        self.rows.append(row)
        return row

    def checkpoint(self, row: dict[str, Any]) -> None:
        """Write ``best.pt`` (when this epoch is the best) and ``last.pt`` atomically."""
        if self.ckpt is None:
            return
        epoch, threads = row["epoch"], torch.get_num_threads()
        if row["is_best"]:
            best = {"model": self.best_state, "epoch": epoch, "score": self.best_score}
            save_checkpoint({**best, "metric": self.metric, "threads": threads},
                            self.ckpt / "best.pt")  # fmt: skip
        save_checkpoint(
            {
                "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict(),
                "epoch": epoch,
                "history": self.rows,
                "config": self.config,
                "threads": threads,
                "rng": {"torch": torch.get_rng_state(), "loader": self.gen.get_state()},
            },
            self.ckpt / "last.pt",
        )

    def fit(self) -> tuple[nn.Module, Any]:
        import pandas as pd
        from tqdm.auto import tqdm

        epochs = range(self.start, self.epochs + 1)
        bar = tqdm(epochs, desc="epochs", disable=not self.progress, initial=self.start - 1,
                   total=self.epochs)  # fmt: skip
        with bar:
            for epoch in bar:
                t0 = time.perf_counter()
                row = self.validate(epoch, self.train_epoch(epoch), t0)
                self.checkpoint(row)
                score = row[f"val_{self.metric}"]
                bar.set_postfix(loss=f"{row['train_loss']:.3f}",
                                **{f"val_{self.metric}": f"{score:.3f}"})  # fmt: skip
        self.model.load_state_dict(self.best_state)
        self.model.best_epoch, self.model.best_score = int(self.best_epoch), float(self.best_score)
        return self.model, pd.DataFrame(self.rows, columns=HISTORY_COLUMNS)


def _optimizer(model: nn.Module, name: str, lr: float, momentum: float, weight_decay: float):
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


def _load(path: Any) -> dict[str, Any]:
    try:
        return load_checkpoint(path, map_location="cpu")
    except CheckpointError as exc:
        raise CheckpointError(
            f"{exc}. To start again, delete the checkpoints in {str(path.parent)!r} or pass "
            "resume=False"
        ) from None


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
    loss: Literal["ce", "ce+dice"] = "ce",
    schedule: Literal["constant", "cosine"] = "constant",
    warmup_epochs: int = 0,
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
    loss : {"ce", "ce+dice"}
        Pixel-wise cross-entropy (thesis), or cross-entropy plus the soft Dice loss of the
        vessel class over each batch (vessels are ~10-20 % of the pixels: Dice weighs the
        rare class as IoU does). ``val_loss`` is always the cross-entropy.
    schedule : {"constant", "cosine"}
        Learning rate per batch: ``lr`` throughout (thesis), or a cosine decay from ``lr``
        to 0 at the last batch of the last epoch.
    warmup_epochs : int
        Epochs of linear warm-up from ``lr / steps`` to ``lr`` before the schedule (Adam's
        first steps at full ``lr`` can throw BatchNorm networks far off).

    Returns
    -------
    model : nn.Module
        The same module holding the best-validation weights, with attributes
        ``best_epoch`` and ``best_score``.
    history : pandas.DataFrame
        One row per epoch: ``epoch`` (1-based), ``train_loss`` (mean over batches),
        ``val_loss`` (per pixel), ``val_iou``, ``val_cldice``, ``val_dice`` (means of
        per-image values), ``seconds`` (epoch wall time) and ``is_best``.

    Raises
    ------
    NonFiniteLossError
        At the first NaN/Inf training loss, naming the epoch, the batch and the items
        holding non-finite pixels (their positions in the batch and their dataset indices)
        if the data are at fault, else saying that the optimisation diverged; also when the
        weights are NaN/Inf at the end of an epoch. No checkpoint of that epoch is written,
        so ``best.pt`` never holds non-finite weights.
    CheckpointError
        With ``resume=True``, when ``last.pt`` or ``best.pt`` is truncated, corrupt or
        unsafe to unpickle (the message names the file and how to start again).

    Notes
    -----
    The steps, in order: :class:`_Run` checks the settings and builds the loaders and the
    optimizer, resumes from ``last.pt`` if asked, then per epoch trains
    (:meth:`_Run.train_epoch`), validates (:meth:`_Run.validate`) and checkpoints
    (:meth:`_Run.checkpoint`). Bit-identical results (same seed, or a resumed run) hold at
    a fixed number of torch threads; the count is recorded in the checkpoints.
    """
    run = _Run(
        model, train_data, val_data, epochs=epochs, lr=lr, batch_size=batch_size,
        optimizer=optimizer, momentum=momentum, weight_decay=weight_decay, seed=seed,
        checkpoint_dir=checkpoint_dir, resume=resume, device=device, progress=progress,
        metric=metric, num_workers=num_workers, loss=loss, schedule=schedule,
        warmup_epochs=warmup_epochs,
    )  # fmt: skip
    if resume:
        run.resume()
    return run.fit()
