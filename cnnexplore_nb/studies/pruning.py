"""From redundant maps to a smaller network (notebook 05): the comparisons and their verdicts.

The pruning mechanics live in :mod:`cnnexplore_nb.prune`; this module runs the comparisons
the notebook shows (mean folding vs merging, correlation vs the L1 baseline, with and without
fine-tuning), tidies the threshold curves, and states the findings from the results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._hooks import Hooks
from ..prune import (
    PruningStudy,
    count_params,
    mean_ablation,
    merge_curve,
    merge_maps,
    prune_maps,
)
from ._report import Finding, Findings

__all__ = [
    "ablation_vs_removal",
    "criterion_verdicts",
    "pruning_comparison",
    "pruning_curves",
    "pruning_findings",
    "readable_pruning",
    "selection_table",
]

ACTIONS = ("mean-fold", "merge")
SELECTIONS = {"correlation": "correlation", "l1": "L1"}


_STAGES = {"pruned": "after pruning", "finetuned": "fine-tuned", "before": "before",
           "change": "change"}  # fmt: skip
_QUANTITIES = {"params": "parameters", "macs": "multiply-adds", "flops": "FLOPs",
               "time_ms": "time (ms)"}  # fmt: skip
_HEADINGS = {"threshold": "|r| threshold", "criterion": "selection", "selection": "selection",
             "removed": "maps removed", "params": "parameters", "variant": "network",
             "action": "action", "fine_tuned": "fine-tuned", "quantity": "quantity",
             "ratio": "before / after", "maps": "maps", "dead": "constant maps",
             "layer": "layer", "thresholds": "thresholds", "verdict": "verdict",
             "correlation_better": "correlation better", "l1_better": "L1 better"}  # fmt: skip


def readable_pruning(df: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """A pruning table for display: headings in words, layers and selections by their names,
    numbers rounded (counts stay integers).

    Takes the rows of :meth:`~cnnexplore_nb.prune.PruningStudy.at` / ``curve``,
    :func:`pruning_comparison`, :func:`~cnnexplore_nb.prune.prune_report`,
    :func:`selection_table` and :func:`criterion_verdicts`: ``removed_conv_module2`` ->
    "maps removed, module 2", ``iou_pruned`` -> "IoU after pruning", ``l1`` -> "L1 norm".
    """
    from ..plots.names import layer_name, method_name, metric_name, rounded_column

    out = df.copy()
    for col in ("criterion", "selection", "action"):
        if col in out:
            out[col] = [method_name(v) if isinstance(v, str) and v else v for v in out[col]]
    if "layer" in out:
        out["layer"] = [layer_name(v) if isinstance(v, str) else v for v in out["layer"]]
    if "quantity" in out:
        out["quantity"] = [_QUANTITIES.get(v, v) for v in out["quantity"]]
    for col in out.columns:
        if out[col].dtype.kind == "f":
            counts = col in ("params", "removed") or str(col).startswith("removed_")
            out[col] = rounded_column(out[col], decimals, count=counts)

    def heading(col: Any) -> str:
        key = str(col)
        if key in _HEADINGS:
            return _HEADINGS[key]
        if key.startswith("removed_"):
            return f"maps removed, {layer_name(key[len('removed_') :])}"
        metric, _, stage = key.rpartition("_")
        if metric and stage in _STAGES:
            return f"{metric_name(metric)} {_STAGES[stage]}"
        return metric_name(key)

    return out.rename(columns=heading)


def selection_table(
    plan: Mapping[str, Sequence[int]], maps: Mapping[str, Any], dead: Mapping[str, Any]
) -> pd.DataFrame:
    """Per layer: maps, dead (constant) maps, maps removed and kept by a removal plan."""
    layers = list(plan)
    out = pd.DataFrame({
        "layer": layers,
        "maps": [int(maps[la].shape[1]) for la in layers],
        "dead": [int(np.sum(dead[la])) for la in layers],
        "removed": [len(plan[la]) for la in layers],
    })  # fmt: skip
    out["kept"] = out["maps"] - out["removed"]
    return out


@torch.no_grad()
def ablation_vs_removal(
    model: nn.Module, plan: Mapping[str, Sequence[int]], means: Mapping[str, Any], x: torch.Tensor
) -> dict[str, float]:
    """Mean ablation against physical removal with the means folded: largest logit difference
    inside the border the zero padding reaches, and overall.

    Each 3x3 conv of a chain lets the padding reach one pixel further in, so the two agree
    exactly only ``len(blocks) + 1`` pixels away from the border.
    """
    pruned = prune_maps(model, plan, fold_means=means).eval()
    with mean_ablation(model, plan, means) as ablated, Hooks(ablated, mode="eval", grad=False):
        out_a = ablated(x)
    out_p = pruned(x)
    border = len(means) + 1
    diff = (out_a - out_p).abs()
    return {
        "border_px": border,
        "inside": float(diff[..., border:-border, border:-border].max()),
        "overall": float(diff.max()),
    }


def pruning_comparison(
    study: PruningStudy,
    maps: Mapping[str, Any],
    threshold: float,
    *,
    fine_tune_epochs: int = 0,
    fine_tune: Sequence[str] = ("mean-fold (correlation)", "merge (correlation)", "merge (L1)"),
) -> pd.DataFrame:
    """Scores before, mean-ablated, pruned (mean-fold / merge x correlation / L1) and fine-tuned.

    Parameters
    ----------
    study : PruningStudy
        Gives the removal plans, the evaluation and the fine-tuning.
    maps : dict of layer -> Tensor (N, C, H, W)
        The analysis maps (for the merge fits; the study holds their means).
    threshold : float
    fine_tune_epochs : int
        0 skips fine-tuning.
    fine_tune : sequence of str
        Which variants are also fine-tuned (names as in the ``variant`` column).

    Returns
    -------
    DataFrame
        ``variant`` (e.g. ``"merge (correlation)"``), ``action`` (before / ablation /
        mean-fold / merge), ``selection``, ``fine_tuned``, ``params``, then the metrics.
    """
    model, means = study.model, study.means
    rows: list[dict[str, Any]] = [
        {"variant": "before", "action": "before", "selection": "", "fine_tuned": False,
         "params": count_params(model), **study.before}
    ]  # fmt: skip
    plans = {sel: study.removal(threshold, sel) for sel in SELECTIONS}
    with mean_ablation(model, plans["correlation"], means) as ablated:
        rows.append({"variant": "mean-ablated (correlation)", "action": "ablation",
                     "selection": "correlation", "fine_tuned": False,
                     "params": count_params(model), **study.evaluate(ablated)})  # fmt: skip
    built = {}
    for sel, plan in plans.items():
        built[f"mean-fold ({SELECTIONS[sel]})"] = (
            "mean-fold",
            sel,
            prune_maps(model, plan, fold_means=means),
        )
        built[f"merge ({SELECTIONS[sel]})"] = ("merge", sel, merge_maps(model, plan, maps))
    for name, (action, sel, m) in built.items():
        rows.append({"variant": name, "action": action, "selection": sel, "fine_tuned": False,
                     "params": count_params(m), **study.evaluate(m)})  # fmt: skip
    if fine_tune_epochs:
        for name in fine_tune:
            action, sel, m = built[name]
            tuned = study.fine_tune(m, epochs=fine_tune_epochs)
            rows.append({"variant": f"{name} + fine-tuned", "action": action, "selection": sel,
                         "fine_tuned": True, "params": count_params(tuned),
                         **study.evaluate(tuned)})  # fmt: skip
    return pd.DataFrame(rows)


def pruning_curves(
    study: PruningStudy, maps: Mapping[str, Any], thresholds: Sequence[float]
) -> pd.DataFrame:
    """Threshold -> maps removed -> IoU for both actions and both selections (no fine-tuning).

    Returns
    -------
    DataFrame
        Tidy: ``threshold``, ``removed``, ``action`` (mean-fold / merge), ``selection``
        (correlation / l1), ``iou``.
    """
    curve = study.curve(thresholds)
    plans = {c: {t: study.removal(t, c) for t in thresholds} for c in SELECTIONS}
    merged = pd.concat(
        [
            merge_curve(study.model, maps, plans[c], study.evaluate).assign(criterion=c)
            for c in plans
        ]
    )
    fold = curve.assign(action="mean-fold", iou=curve["iou_pruned"])
    merge = merged.assign(action="merge", iou=merged["iou_merged"])
    out = pd.concat([fold, merge], ignore_index=True).rename(columns={"criterion": "selection"})
    return out[["threshold", "removed", "action", "selection", "iou"]]


def criterion_verdicts(curves: pd.DataFrame, tol: float = 1e-3) -> pd.DataFrame:
    """Correlation vs L1 selection, per action, at every threshold that removes maps.

    Returns
    -------
    DataFrame
        One row per action: ``action``, ``thresholds`` (compared), ``correlation_better``,
        ``l1_better`` (differences larger than ``tol``), ``verdict``.
    """
    rows = []
    for action in ACTIONS:
        part = curves[(curves["action"] == action) & (curves["removed"] > 0)]
        wide = part.pivot_table(index="threshold", columns="selection", values="iou")
        wins = int((wide["correlation"] > wide["l1"] + tol).sum())
        losses = int((wide["correlation"] < wide["l1"] - tol).sum())
        verdict = "correlation" if wins > losses else "L1" if losses > wins else "neither"
        rows.append({"action": action, "thresholds": len(wide), "correlation_better": wins,
                     "l1_better": losses, "verdict": verdict})  # fmt: skip
    return pd.DataFrame(rows)


def pruning_findings(
    comparison: pd.DataFrame, report: pd.DataFrame, selection: pd.DataFrame,
    verdicts: pd.DataFrame, threshold: float,
) -> Findings:  # fmt: skip
    """Notebook 05: what removing correlated maps does to CNN6, from this run's results."""
    by = comparison.set_index("variant")
    iou = by["iou"]
    before = float(iou["before"])
    removed, total = int(selection["removed"].sum()), int(selection["maps"].sum())
    ratio = report.set_index("quantity")["ratio"]
    fold, merge = float(iou["mean-fold (correlation)"]), float(iou["merge (correlation)"])
    collapse = fold < 0.5 * before
    items = [
        Finding(
            "Maps that are highly correlated with another map can be removed",
            merge >= before - 0.05,
            f"At |r| ≥ {threshold:g}, {removed} of {total} maps are redundant "
            f"({ratio['params']:.1f}× fewer parameters, {ratio['macs']:.1f}× fewer MACs, measured "
            f"speed-up {ratio['time_ms']:.2f}×). Validation IoU {before:.3f} before; "
            f"{fold:.3f} when they are replaced by their mean"
            + (
                " (the network collapses: a correlated map is not an unimportant one)"
                if collapse
                else ""
            )
            + f"; {merge:.3f} when each is merged into its most correlated kept map.",
            {"before": before, "mean_fold": fold, "merge": merge, "removed": removed},
        )
    ]
    v = verdicts.set_index("action")["verdict"]
    items.append(
        Finding(
            "The correlation tables choose better maps to remove than the L1-norm baseline",
            None if v.get("merge") == "neither" else bool(v.get("merge") == "correlation"),
            "; ".join(
                f"{a}: correlation better at {r.correlation_better}, L1 at {r.l1_better} of "
                f"{r.thresholds} thresholds"
                for a, r in verdicts.set_index("action").iterrows()
            )
            + ".",
        )
    )
    tuned = by[by["fine_tuned"]]
    if len(tuned):
        gains = {
            k: float(r["iou"] - iou[k.replace(" + fine-tuned", "")]) for k, r in tuned.iterrows()
        }
        items.append(
            Finding(
                "A short fine-tuning recovers what pruning lost",
                bool(max(gains.values()) > 0.01),
                "IoU change by fine-tuning: "
                + ", ".join(f"{k.replace(' + fine-tuned', '')} {g:+.3f}" for k, g in gains.items())
                + ".",
            )
        )
    return Findings("Pruning CNN6 by correlation (validation images)", items, comparison)
