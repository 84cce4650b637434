"""The thesis's Tables 4 and 5 for the trained vessel networks, beside the published ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from torch import nn

from ..training.evaluate import evaluate_segmentation
from .vessels import DISPLAY_NAMES

__all__ = ["THESIS_TABLE4", "parameter_counts", "per_image_table", "training_table"]

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


def parameter_counts(
    kernel_sizes: tuple[int, ...] = (3, 7),
    classifier_kernel_sizes: tuple[int, ...] = (3, 1),
    *,
    width: int = 64,
) -> pd.DataFrame:
    """The thesis's reported parameter counts (Table 4) beside those of CNN-N settings.

    Each CNN-N is built with :func:`cnnexplore_nb.create_model` and its parameters counted
    twice: all of them, and the convolutions' only (BatchNorm's 2 x 64 per module left out).

    Parameters
    ----------
    kernel_sizes : tuple of int
        Kernel sizes of the convolutional modules (the text says 3).
    classifier_kernel_sizes : tuple of int
        Kernel sizes of the last (64 -> 2) convolution.
    width : int
        Maps per module (thesis: 64).

    Returns
    -------
    DataFrame
        One row per model, kernel size, classifier kernel size and count: ``model``
        (CNN1, CNN6, CNN10), ``kernel_size``, ``classifier_kernel_size``, ``counted``
        (``"all"`` or ``"conv"``), ``parameters`` (int), ``computed`` (in the reported
        format, e.g. ``"1.01M"``), ``reported`` and ``matches`` (``computed == reported``).

    Notes
    -----
    With 7 x 7 modules, 64 maps and a 1 x 1 last convolution, the convolutions hold
    3,330 / 1,007,170 / 1,810,242 parameters: the reported 3.3K / 1.01M / 1.81M all three.
    With 3 x 3 kernels the models hold 1,922 / 187,202 / 335,426 (about 0.19M and 0.34M).
    """
    from ..models import create_model

    rows = []
    for name, reported in zip(["cnn1", "cnn6", "cnn10"], THESIS_TABLE4["parameters"]):
        unit = {"K": 1e3, "M": 1e6}[reported[-1]]
        decimals = len(reported[:-1].partition(".")[2])
        for k in kernel_sizes:
            for kc in classifier_kernel_sizes:
                model = create_model(name, width=width, kernel_size=k, classifier_kernel_size=kc)
                conv = sum(
                    p.numel()
                    for m in model.modules()
                    if isinstance(m, nn.Conv2d)
                    for p in m.parameters()
                )
                for counted, n in (("all", sum(p.numel() for p in model.parameters())),
                                   ("conv", conv)):  # fmt: skip
                    computed = f"{n / unit:.{decimals}f}{reported[-1]}"
                    rows.append({
                        "model": DISPLAY_NAMES[name], "kernel_size": k,
                        "classifier_kernel_size": kc, "counted": counted, "parameters": int(n),
                        "computed": computed, "reported": reported,
                        "matches": computed == reported,
                    })  # fmt: skip
    return pd.DataFrame(rows)
