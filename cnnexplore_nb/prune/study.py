"""Threshold -> maps removed -> metric change, with the L1 baseline; cached per removal."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._checks import check_choice, check_fraction, check_keys, check_positive_int
from ..training.evaluate import evaluate_segmentation
from ..training.train import train_segmentation
from .chain import block_of
from .flops import count_params
from .select import constant_maps, l1_smallest, layer_similarity, redundant_maps
from .surgery import prune_maps

__all__ = ["PruningStudy", "pruning_curve"]

Criterion = Literal["correlation", "l1"]


def _default_evaluate(eval_data: Any, batch_size: int) -> Callable[[nn.Module], dict[str, float]]:
    def evaluate(model: nn.Module) -> dict[str, float]:
        df = evaluate_segmentation(model, eval_data, batch_size=batch_size)
        return {"iou": float(df["iou"].mean()), "cldice": float(df["cldice"].mean())}

    return evaluate


class PruningStudy:
    """Pruning results computed once per distinct removal, for a curve or a slider.

    Parameters
    ----------
    model : nn.Module
        A prunable chain (CNN-N), see :func:`cnnexplore_nb.prune.prune_maps`.
    maps : dict of layer path -> Tensor of shape (N, C, H, W)
        Activations of ``model``'s modules (``conv_moduleK``) on the analysis images; they
        give the within-layer similarity and the means folded into the next conv.
    eval_data : Dataset
        Data for ``evaluate`` (default: ``cnnexplore_nb.train.evaluate_segmentation``, mean
        IoU and clDice over images).
    layers : list of str, optional
        Layers to prune (default: all of ``maps``).
    measure, rule
        Similarity measure and grouping rule (see :func:`~cnnexplore_nb.prune.redundant_maps`).
    criteria : sequence of {"correlation", "l1"}
        ``"l1"`` removes, per layer, as many maps as the correlation criterion at the same
        threshold, those with the smallest filter L1 norm.
    fold : bool
        Fold the removed maps' means into the next conv's bias (else plain removal).
    fine_tune_data : Dataset, optional
        Training data for a short fine-tuning of each pruned model (``fine_tune_epochs``).
    fine_tune_epochs : int
        0 (default) skips fine-tuning (``*_finetuned`` columns are NaN).
    lr, batch_size, seed
        Fine-tuning and evaluation settings (``cnnexplore_nb.train.train_segmentation``).
    evaluate : callable, optional
        ``evaluate(model) -> dict of metric -> float`` replacing the default.
    progress : bool
        Show progress bars.
    """

    def __init__(
        self,
        model: nn.Module,
        maps: Mapping[str, Any],
        eval_data: Any = None,
        *,
        layers: Sequence[str] | None = None,
        measure: str = "pearson",
        rule: str = "greedy",
        criteria: Sequence[Criterion] = ("correlation", "l1"),
        fold: bool = True,
        fine_tune_data: Any = None,
        fine_tune_epochs: int = 0,
        lr: float = 0.01,
        batch_size: int = 4,
        seed: int = 0,
        evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None,
        progress: bool = True,
    ) -> None:
        self.layers = check_keys("layer", layers, maps)
        for layer in self.layers:
            block_of(model, layer)  # raises for a non-prunable model or layer
        self.criteria = [check_choice("criterion", c, ["correlation", "l1"]) for c in criteria]
        self.fine_tune_epochs = check_positive_int("fine_tune_epochs", fine_tune_epochs, minimum=0)
        if self.fine_tune_epochs and fine_tune_data is None:
            raise ValueError("fine_tune_epochs > 0 needs fine_tune_data")
        if evaluate is None and eval_data is None:
            raise ValueError("give eval_data (or an evaluate callable)")
        self.model, self.rule, self.fold, self.progress = model, rule, fold, progress
        self.fine_tune_data, self.lr, self.seed = fine_tune_data, lr, seed
        self.eval_data = eval_data
        self.batch_size = check_positive_int("batch_size", batch_size)
        self._evaluate = evaluate or _default_evaluate(eval_data, self.batch_size)
        self.similarity: dict[str, np.ndarray] = {}
        self.constant: dict[str, np.ndarray] = {}
        self.means: dict[str, torch.Tensor] = {}
        for layer in self.layers:
            x = torch.as_tensor(maps[layer]).detach()
            flat = x.transpose(0, 1).reshape(x.shape[1], -1).double()
            self.similarity[layer] = layer_similarity(x, measure)
            self.constant[layer] = constant_maps(x)
            self.means[layer] = flat.mean(dim=1).float()
        self.before = {k: float(v) for k, v in self._evaluate(model).items()}
        self._cache: dict[tuple, dict[str, Any]] = {}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """The study's metrics of ``model`` (default: mean IoU and clDice on ``eval_data``)."""
        return {k: float(v) for k, v in self._evaluate(model).items()}

    def fine_tune(self, model: nn.Module, epochs: int | None = None) -> nn.Module:
        """A fine-tuned copy of ``model`` on ``fine_tune_data`` (eval mode).

        ``epochs`` defaults to ``fine_tune_epochs``; the best-validation weights on
        ``eval_data`` are kept, as in training. ``model`` itself is not changed.
        """
        epochs = self.fine_tune_epochs if epochs is None else epochs
        epochs = check_positive_int("epochs", epochs, minimum=0)
        if not epochs or self.fine_tune_data is None:
            raise ValueError(
                "fine-tuning needs epochs > 0 and fine_tune_data, got "
                f"epochs={epochs} and fine_tune_data="
                f"{'given' if self.fine_tune_data is not None else None}"
            )
        tuned, _ = train_segmentation(
            copy.deepcopy(model), self.fine_tune_data, self.eval_data, epochs=epochs, lr=self.lr,
            batch_size=self.batch_size, seed=self.seed, progress=False,
        )  # fmt: skip
        return tuned.eval()

    def removal(
        self, threshold: float, criterion: Criterion = "correlation"
    ) -> dict[str, list[int]]:
        """Map ids removed per layer at ``threshold`` by ``criterion``."""
        threshold = check_fraction("threshold", threshold)
        check_choice("criterion", criterion, ["correlation", "l1"])
        corr = {
            layer: redundant_maps(
                self.similarity[layer], threshold, rule=self.rule, constant=self.constant[layer]
            )
            for layer in self.layers
        }
        if criterion == "correlation":
            return corr
        return {layer: l1_smallest(self.model, layer, len(ids)) for layer, ids in corr.items()}

    def pruned_model(self, threshold: float, criterion: Criterion = "correlation") -> nn.Module:
        """The pruned (not fine-tuned) model at ``threshold``."""
        plan = self.removal(threshold, criterion)
        return prune_maps(self.model, plan, fold_means=self.means if self.fold else None)

    def _result(self, threshold: float, criterion: Criterion) -> dict[str, Any]:
        plan = self.removal(threshold, criterion)
        key = (criterion, tuple((k, tuple(v)) for k, v in plan.items()))
        if key not in self._cache:
            pruned = self.pruned_model(threshold, criterion)
            res: dict[str, Any] = {"params": count_params(pruned)}
            res.update({f"{m}_pruned": float(v) for m, v in self._evaluate(pruned).items()})
            if self.fine_tune_epochs:
                tuned = self.fine_tune(pruned)
                res.update({f"{m}_finetuned": float(v) for m, v in self._evaluate(tuned).items()})
            else:
                res.update({f"{m}_finetuned": float("nan") for m in self.before})
            self._cache[key] = res
        row: dict[str, Any] = {"threshold": float(threshold), "criterion": criterion}
        row["removed"] = sum(len(v) for v in plan.values())
        row.update({f"removed_{layer}": len(ids) for layer, ids in plan.items()})
        row.update(self._cache[key])
        for m, v in self.before.items():
            row[f"{m}_before"] = v
            row[f"{m}_change"] = row[f"{m}_pruned"] - v
        return row

    def at(self, threshold: float) -> pd.DataFrame:
        """Rows (one per criterion) for one threshold; cached, cheap to call from a slider."""
        return pd.DataFrame([self._result(threshold, c) for c in self.criteria])

    def curve(self, thresholds: Sequence[float]) -> pd.DataFrame:
        """Rows for every threshold and criterion (see :func:`pruning_curve`)."""
        from tqdm.auto import tqdm

        rows = [
            self._result(t, c)
            for t in tqdm(list(thresholds), disable=not self.progress, desc="thresholds")
            for c in self.criteria
        ]
        return pd.DataFrame(rows)


def pruning_curve(
    model: nn.Module,
    maps: Mapping[str, Any],
    thresholds: Sequence[float],
    eval_data: Any = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Threshold -> maps removed -> metric change, for correlation and L1 pruning.

    Parameters
    ----------
    model, maps, eval_data, **kwargs
        See :class:`PruningStudy` (``criteria``, ``fold``, ``fine_tune_data``,
        ``fine_tune_epochs``, ``evaluate`` ...). For a slider, build a :class:`PruningStudy`
        once and call ``study.at(threshold)``: results are cached per distinct removal.
    thresholds : sequence of float in [0, 1]

    Returns
    -------
    DataFrame
        One row per (threshold, criterion) with columns ``threshold, criterion, removed``
        (total maps removed), ``removed_<layer>`` per layer, ``params`` of the pruned model,
        and per metric (default ``iou``, ``cldice``): ``<m>_pruned``, ``<m>_finetuned`` (NaN
        without fine-tuning), ``<m>_before`` (unpruned) and ``<m>_change`` = pruned - before.
        The ``"l1"`` rows remove the same number of maps per layer as the ``"correlation"``
        rows of the same threshold.
    """
    return PruningStudy(model, maps, eval_data, **kwargs).curve(thresholds)
