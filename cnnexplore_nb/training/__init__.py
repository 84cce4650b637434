"""Training and evaluating segmentation networks (the thesis protocol) and their metrics."""

from __future__ import annotations

from . import metrics
from .evaluate import evaluate_segmentation, predict_masks
from .train import NonFiniteLossError, train_segmentation

__all__ = [
    "NonFiniteLossError",
    "evaluate_segmentation",
    "metrics",
    "predict_masks",
    "train_segmentation",
]
