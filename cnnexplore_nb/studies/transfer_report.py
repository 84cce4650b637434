"""What notebooks 06-07 print about the transfer study, in words and rounded numbers: the
source network, the verdict tables, runs side by side, and what the sweep cost."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "HEADINGS",
    "compare_table",
    "lpt_hours",
    "meta_init_display",
    "pairs_display",
    "readable",
    "source_summary",
    "sweep_cost",
]

#: Column headings of the verdict tables as the notebooks print them.
HEADINGS = {
    "dataset": "dataset", "n": "N", "arm": "arm", "reading": "UFM reading", "seeds": "seeds",
    "mean": "mean (%)", "std": "std", "final_mean": "final epoch (%)",
    "best_minus_final": "best − final", "published": "published (%)",
    "published_std": "published std", "published_as": "published row", "a": "a", "b": "b",
    "seeds_a": "seeds a", "seeds_b": "seeds b", "mean_a": "a (%)", "mean_b": "b (%)",
    "diff": "a − b", "p_value": "p (Mann-Whitney)", "a12": "A12", "min_p": "smallest p",
    "published_diff": "published a − b", "spread": "seed spread", "power": "power",
    "seeds_for_80pct": "seeds for 80 %", "se": "standard error", "consistent": "consistent",
}  # fmt: skip


def readable(df: pd.DataFrame, decimals: int = 2) -> pd.DataFrame:
    """A verdict table for display: arms and datasets by their display names, headings in
    words, numbers rounded (p-values and A12 to 3 decimals, accuracies to ``decimals``)."""
    from ..plots.names import method_name

    out = df.copy()
    for col in ("arm", "a", "b", "reading", "published_as"):
        if col in out:
            out[col] = [method_name(v) if isinstance(v, str) else "–" for v in out[col]]
    if "dataset" in out:
        out["dataset"] = out["dataset"].map({"cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
                                             "stl10": "STL-10", "digits": "digits 5-9"}
                                            ).fillna(out["dataset"])  # fmt: skip
    for col in out.columns:
        if out[col].dtype.kind != "f":
            continue
        if col in ("p_value", "a12", "min_p", "power"):
            out[col] = out[col].round(3)
        elif col == "seeds_for_80pct":
            out[col] = out[col].astype("Int64")
        else:
            out[col] = out[col].round(decimals)
    return out.rename(columns=HEADINGS)


def source_summary(info: Mapping[str, Any]) -> Any:
    """The source network :func:`~cnnexplore_nb.studies.transfer.source_network` returned,
    in words: a pandas Styler of one row per fact, left-aligned and never cut (its
    ``.data`` is the DataFrame)."""
    rows = {}
    src = str(info.get("source", ""))
    if src.startswith("resnet32_w"):  # resnet32_w0.25_digits_e15: trained here
        width, dataset, epochs = src[len("resnet32_w") :].split("_", 2)
        data = {"digits": "scikit-learn's digits 0-4"}.get(dataset, dataset)
        rows["network"] = (
            f"ResNet-32 ×{float(width):g}, trained here on {data} ({epochs[1:]} epochs)"
        )
    else:
        rows["network"] = src
    if "path" in info:
        rows["file"] = str(info["path"])
    if "test_acc" in info:
        rows["test accuracy of the source"] = f"{100 * float(info['test_acc']):.1f} %"
    if info.get("cached"):
        rows["cached"] = "yes: loaded from the artifacts folder"
    if "note" in info:
        rows["note"] = str(info["note"])
    for key in ("executor", "workers"):
        if key in info:
            rows[key] = str(info[key])
    frame = pd.DataFrame({"source": pd.Series(rows, dtype=object)})
    return frame.style.set_properties(**{"text-align": "left", "white-space": "pre-wrap"})


def compare_table(records: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """:func:`~cnnexplore_nb.studies.transfer_analysis.compare_runs` for display: accuracies
    in %, minutes, γ moves rounded, headings in words."""
    from .transfer_analysis import compare_runs

    df = compare_runs(records)
    out = pd.DataFrame(index=df.index)
    out["test accuracy, best-validation epoch (%)"] = (100 * df["test_acc"]).round(1)
    out["test accuracy, final epoch (%)"] = (100 * df["final_test_acc"]).round(1)
    out["best epoch"] = df["best_epoch"].astype("Int64")
    out["minutes"] = (df["seconds"] / 60).round(1)
    for col in ("max |γ − 1| at the end", "mean |γ − 1| at the end"):
        if col in df:
            out[col] = df[col].round(2)
    out.index.name = "run"
    return out


def _shape(value: Any) -> str:
    """``(64, 8, 8)`` -> "64 × 8 × 8" (anything else unchanged, as text)."""
    if isinstance(value, (tuple, list)):
        return " × ".join(str(int(v)) for v in value)
    return str(value)


def pairs_display(pairs: pd.DataFrame, source: Any = None, target: Any = None) -> pd.DataFrame:
    """:func:`~cnnexplore_nb.studies.transfer_analysis.pairs_table` for display: pairs as
    "4 → 0" (source tap → target tap) and in words, layers by their names, shapes as
    "C × H × W"."""
    from ..plots.names import layer_name, pair_name

    out = pd.DataFrame(index=pd.RangeIndex(len(pairs)))
    out["pair"] = [pair_name(p, short=True) for p in pairs["pair"]]
    out["source → target"] = [pair_name(p, source=source, target=target) for p in pairs["pair"]]
    for side in ("source", "target"):
        out[f"{side} layer"] = [layer_name(str(m)) for m in pairs[f"{side}_module"]]
        out[f"{side} maps (C × H × W)"] = [_shape(v) for v in pairs[f"{side}_shape"]]
    out["regressor"] = [str(r).replace("1x1", "1×1").replace("->", "→") for r in pairs["regressor"]]
    out["γ (C_s × H_t × W_t)"] = [_shape(v) for v in pairs["gamma_shape"]]
    return out


def meta_init_display(init: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """:func:`~cnnexplore_nb.studies.transfer_analysis.meta_init_table` for display: pairs
    as "4 → 0", weight shapes as "64 × 64", numbers rounded."""
    from ..plots.names import pair_name

    out = init.copy()
    out["pair"] = [pair_name(p, short=True) for p in out["pair"]]
    for col in out.columns:
        if out[col].dtype.kind == "f":
            out[col] = out[col].round(decimals)
        elif out[col].map(lambda v: isinstance(v, tuple)).all():
            out[col] = [_shape(v) for v in out[col]]
    return out


def lpt_hours(seconds: Sequence[float], workers: int) -> float:
    """Wall hours of runs of the given lengths on ``workers`` processes, longest first
    (each run to the least loaded worker), as :func:`~cnnexplore_nb.experiments.run_sweep`
    schedules them with a cost priority."""
    loads = [0.0] * max(1, int(workers))
    for s in sorted((float(v) for v in seconds if v == v), reverse=True):
        loads[loads.index(min(loads))] += s
    return max(loads) / 3600


def sweep_cost(frames: Sequence[pd.DataFrame], workers: int = 2) -> dict[str, float]:
    """What the distinct runs of some sweep frames cost: CPU hours (each run's own process
    time), the runs' wall hours as measured, and the wall hours of a fresh run on
    ``workers`` one-thread processes on an idle machine (their CPU times packed longest
    first, :func:`lpt_hours`)."""
    runs = pd.concat([f for f in frames if len(f)], ignore_index=True)
    runs = runs[runs.get("status", "ok") == "ok"].drop_duplicates("key")
    cpu = runs["cpu_seconds"].astype(float) if "cpu_seconds" in runs else runs["run_seconds"]
    return {
        "runs": float(len(runs)),
        "cpu_hours": float(cpu.sum()) / 3600,
        "run_wall_hours": float(runs["run_seconds"].astype(float).sum()) / 3600,
        "idle_wall_hours": lpt_hours(cpu.tolist(), workers),
        "workers": float(workers),
        "longest_run_minutes": float(cpu.max()) / 60 if len(cpu) else math.nan,
        "mean_cpu_minutes": float(np.mean(cpu)) / 60 if len(cpu) else math.nan,
    }
