"""The thesis's Tables 4 and 5 for the trained vessel networks, beside the published ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from torch import nn

from ..training.evaluate import evaluate_segmentation
from .vessels import DISPLAY_NAMES

__all__ = ["THESIS_TABLE4", "per_image_table", "training_table"]

#: The thesis's Table 4 (validation set of the private microscopy data).
THESIS_TABLE4 = pd.DataFrame(
    {
        "model": ["CNN1", "CNN6", "CNN10"],
        "batch": [5, 3, 1],
        "parameters": ["3.3K", "1.01M", "1.81M"],
        "IoU": [0.81, 0.91, 0.92],
        "clDice": [0.88, 0.97, 0.98],
    }
)


def training_table(
    results: Mapping[str, tuple[nn.Module, pd.DataFrame]], settings: Mapping[str, Any]
) -> pd.DataFrame:
    """The thesis Table 4 for trained models.

    Parameters
    ----------
    results : dict of model name -> (model, history)
        As returned by :func:`trained_vessel_model`.
    settings : dict
        The settings they were trained with (batch sizes).

    Returns
    -------
    DataFrame
        One row per model: ``model``, ``layers`` (conv layers, modules + classifier),
        ``modules``, ``batch``, ``epochs``, ``training_s`` (sum of epoch times),
        ``parameters``, ``best_epoch``, ``IoU`` and ``clDice`` (validation, at the best
        epoch).
    """
    rows = []
    for name, (model, history) in results.items():
        best = history.loc[history["val_iou"].idxmax()]
        modules = int(getattr(model, "n_modules", 0))
        rows.append(
            {
                "model": DISPLAY_NAMES.get(name, name),
                "layers": modules + 1,
                "modules": modules,
                "batch": int(settings["batch_sizes"][name]),
                "epochs": len(history),
                "training_s": float(history["seconds"].sum()),
                "parameters": sum(p.numel() for p in model.parameters()),
                "best_epoch": int(best["epoch"]),
                "IoU": float(best["val_iou"]),
                "clDice": float(best["val_cldice"]),
            }
        )
    return pd.DataFrame(rows)


def per_image_table(models: Mapping[str, nn.Module], data: Mapping[str, Any]) -> pd.DataFrame:
    """The thesis Table 5: IoU and clDice of every model on the three test images.

    Returns
    -------
    DataFrame
        Tidy: ``image`` (0, 1, 2), ``vessel_fraction`` (of the ground truth), ``model``
        (a Categorical in the order of ``models``),
        ``IoU``, ``clDice``, ``precision``, ``recall``.
    """
    frames = []
    for name, model in models.items():
        scores = evaluate_segmentation(model, data["test"])
        frame = scores[["image", "vessel_fraction", "iou", "cldice", "precision", "recall"]]
        frame = frame.rename(columns={"iou": "IoU", "cldice": "clDice"})
        frame.insert(2, "model", DISPLAY_NAMES.get(name, name))
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    order = [DISPLAY_NAMES.get(n, n) for n in models]
    out["model"] = pd.Categorical(out["model"], categories=order, ordered=True)
    return out
