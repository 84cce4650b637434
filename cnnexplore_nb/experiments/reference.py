"""The dissertation's published L2T-www results as data, for side-by-side comparison.

Means, differences and p-values are those of SPEC.md part B (Tables 1-4 of the
dissertation). Standard deviations come from the scanned tables of the source document;
where the scan is illegible (STL-10 from-scratch row except N=5, STL-10 UFM at N=100,
the from-scratch row of Table 4) they are missing (NaN). The dissertation gives no L2T-ww
row for STL-10: its means are derived as L2T-www minus the published difference
(``source == "derived"``). CIFAR-10 has no from-scratch row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["dissertation_comparisons", "dissertation_results", "side_by_side"]

NAN = float("nan")
N_VALUES = {
    "stl10": (5, 10, 30, 50, 100),
    "cifar10": (10, 30, 50, 100, 150),
    "cifar100": (5, 10, 20, 30, 50),
}

# dataset -> method -> (means, stds) over N_VALUES[dataset], accuracy in %
_LIMITED = {
    "stl10": {
        "scratch": ((19.70, 24.07, 28.80, 30.11, 40.12), (1.05, NAN, NAN, NAN, NAN)),
        "ufm": ((22.45, 24.76, 30.94, 43.2, 53.41), (0.74, 1.03, 1.12, 0.97, NAN)),
        "l2t_www": ((22.54, 29.39, 43.38, 52.53, 61.36), (1.01, 0.84, 1.04, 0.80, 0.54)),
    },
    "cifar10": {
        "ufm": ((20.69, 39.61, 48.45, 57.29, 68.26), (1.35, 1.07, 0.99, 0.81, 0.59)),
        "l2t_ww": ((24.64, 43.16, 52.91, 63.86, 71.88), (1.85, 1.16, 1.08, 0.79, 0.63)),
        "l2t_www": ((26.12, 45.18, 54.76, 64.91, 71.29), (1.99, 0.95, 0.75, 0.62, 1.36)),
    },
    "cifar100": {
        "scratch": ((9.77, 10.96, 18.08, 21.86, 29.65), (0.55, 0.59, 0.41, 0.45, 0.48)),
        "ufm": ((12.18, 18.94, 30.77, 37.68, 44.47), (0.49, 0.75, 0.59, 0.77, 0.54)),
        "l2t_ww": ((14.12, 24.37, 37.35, 42.61, 49.67), (0.59, 0.81, 0.37, 0.55, 0.78)),
        "l2t_www": ((14.22, 25.53, 36.91, 42.24, 49.03), (0.61, 0.46, 0.74, 0.38, 0.59)),
    },
}

# dataset -> (www - ww differences, p-values as printed) over N_VALUES[dataset]
_COMPARISONS = {
    "stl10": (
        (-0.4, 3.75, 2.30, 2.04, -0.08),
        ("p>0.05", "p=0.000", "p=0.044", "p=0.004", "p>0.05"),
    ),
    "cifar10": (
        (1.48, 2.02, 1.85, 1.05, -0.59),
        ("p>0.05", "p=0.005", "p=0.006", "p=0.041", "p>0.05"),
    ),
    "cifar100": (
        (0.1, 1.16, -0.44, -0.37, -0.64),
        ("p>0.05", "p=0.008", "p>0.05", "p>0.05", "p>0.05"),
    ),
}

# Table 4: imbalanced STL-10 (9 classes x 100 samples, 1 class x 10), accuracy on the small class
_IMBALANCED = {"l2t_www": (73.56, 1.03), "l2t_ww": (65.12, 4.90), "scratch": (16.12, NAN)}

COLUMNS = ["dataset", "experiment", "n", "method", "mean", "std", "source"]


def dissertation_results() -> pd.DataFrame:
    """Published accuracies (%), one row per (dataset, experiment, N, method).

    Returns
    -------
    DataFrame with columns ``dataset, experiment, n, method, mean, std, source``
        ``dataset`` in {"stl10", "cifar10", "cifar100"}; ``experiment`` is
        ``"limited_data"`` (Tables 1-3, ``n`` = samples per class, 30 runs each) or
        ``"imbalanced"`` (Table 4, STL-10, accuracy on the class with 10 samples; ``n`` =
        10); ``method`` in {"scratch", "ufm", "l2t_ww", "l2t_www"}; ``source`` is
        ``"published"`` or ``"derived"`` (STL-10 L2T-ww = L2T-www − published difference).
    """
    rows = []
    for dataset, methods in _LIMITED.items():
        for method, (means, stds) in methods.items():
            for n, m, s in zip(N_VALUES[dataset], means, stds):
                rows.append((dataset, "limited_data", n, method, m, s, "published"))
    www_stl = dict(zip(N_VALUES["stl10"], _LIMITED["stl10"]["l2t_www"][0]))
    for n, d in zip(N_VALUES["stl10"], _COMPARISONS["stl10"][0]):
        rows.append(
            ("stl10", "limited_data", n, "l2t_ww", round(www_stl[n] - d, 2), NAN, "derived")
        )
    for method, (m, s) in _IMBALANCED.items():
        rows.append(("stl10", "imbalanced", 10, method, m, s, "published"))
    out = pd.DataFrame(rows, columns=COLUMNS)
    rank = {
        **{m: i for i, m in enumerate(("scratch", "ufm", "l2t_ww", "l2t_www"))},
        **{d: i for i, d in enumerate(N_VALUES)},
        "limited_data": 0,
        "imbalanced": 1,
    }
    keys = ["experiment", "dataset", "method", "n"]
    out = out.sort_values(keys, key=lambda c: c.map(rank) if c.name != "n" else c)
    return out.reset_index(drop=True)


def dissertation_comparisons() -> pd.DataFrame:
    """Published L2T-www − L2T-ww differences (% points) and Mann-Whitney p-values.

    Returns
    -------
    DataFrame with columns ``dataset, n, a, b, diff, p_reported, p_value, significant``
        ``p_reported`` is the text as printed ("p>0.05", "p=0.004"); ``p_value`` is the
        number where one was printed (NaN for "p>0.05"; "p=0.000" means p < 0.0005);
        ``significant`` is p < 0.05 as the dissertation judged it.
    """
    rows = []
    for dataset, (diffs, ps) in _COMPARISONS.items():
        for n, d, p in zip(N_VALUES[dataset], diffs, ps):
            value = float(p[2:]) if p.startswith("p=") else NAN
            rows.append((dataset, n, "l2t_www", "l2t_ww", d, p, value, p.startswith("p=")))
    cols = ["dataset", "n", "a", "b", "diff", "p_reported", "p_value", "significant"]
    return pd.DataFrame(rows, columns=cols)


def side_by_side(
    measured: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    *,
    on: Sequence[str] = ("dataset", "n", "method"),
    value: str = "test_acc",
    how: Literal["inner", "left", "right", "outer"] = "outer",
) -> pd.DataFrame:
    """Align measured results with the published ones.

    Parameters
    ----------
    measured : DataFrame
        Either a summary with ``mean``, ``std`` (and optionally ``n_runs``) columns, as
        made by :func:`~cnnexplore_nb.experiments.summarize` grouped by ``on``, or raw runs
        with a ``value`` column, summarised here (in percent when values lie in [0, 1]).
    reference : DataFrame, optional
        Default: the ``limited_data`` rows of :func:`dissertation_results`.
    on : sequence of str
        Columns to align on.
    how : {"inner", "left", "right", "outer"}
        Join type (``"outer"`` keeps cells present on one side only).

    Returns
    -------
    DataFrame
        Columns: the ``on`` columns, then ``mean_measured``, ``std_measured``, ``n_runs``,
        ``mean_published``, ``std_published`` and ``diff`` (``mean_measured -
        mean_published``, percentage points).
    """
    from .stats import summarize

    on = list(on)
    if reference is None:
        ref = dissertation_results()
        reference = ref[ref["experiment"] == "limited_data"]
    if "mean" not in measured.columns:
        measured = summarize(measured, on, value)
    for frame, name in ((measured, "measured"), (reference, "reference")):
        missing = [c for c in [*on, "mean", "std"] if c not in frame.columns]
        if missing:
            raise KeyError(f"{name} lacks column(s) {missing}; it has {list(frame.columns)}")
    left = measured[on].copy()
    left["mean_measured"] = measured["mean"].to_numpy()
    left["std_measured"] = measured["std"].to_numpy()
    left["n_runs"] = measured["n_runs"].to_numpy() if "n_runs" in measured.columns else np.nan
    right = reference[on].copy()
    right["mean_published"] = reference["mean"].to_numpy()
    right["std_published"] = reference["std"].to_numpy()
    out = left.merge(right, on=on, how=how)
    out["diff"] = out["mean_measured"] - out["mean_published"]
    return out.sort_values(on).reset_index(drop=True)
