"""Statistics of sweep results: per-cell summaries, Mann-Whitney U, A12, Holm, thesis tables.

All functions take the tidy DataFrame of a sweep (one row per run, e.g. from
:func:`~cnnexplore_nb.experiments.run_sweep`). When a ``status`` column is present only
rows with ``status == "ok"`` are used; missing values of the measured column are dropped.
Accuracies stored as fractions in [0, 1] are reported in percent (``to_percent="auto"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from .._checks import check_choice, check_fraction, unknown_name_message

__all__ = [
    "compare_methods",
    "dissertation_table",
    "holm",
    "min_attainable_p",
    "mann_whitney_power",
    "seeds_needed",
    "summarize",
    "vargha_delaney_a12",
]

Alternative = Literal["two-sided", "less", "greater"]
METHOD_LABELS = {
    "scratch": "From scratch",
    "ufm": "UFM (15 pairs)",
    "ufm_hint": "UFM (one hint)",
    "l2t_ww": "L2T-ww",
    "l2t_ww_frozen": "L2T-ww (frozen meta)",
    "l2t_www": "L2T-www",
}
_ALTERNATIVES = ("two-sided", "less", "greater")


def _as_list(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def _prepare(df: pd.DataFrame, columns: Sequence[str], value: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame of runs, got {type(df).__name__}")
    for col in [*columns, value]:
        if col not in df.columns:
            raise KeyError(unknown_name_message("column", col, list(map(str, df.columns))))
    if "status" in df.columns:
        df = df[df["status"] == "ok"]
    df = df[df[value].notna()]
    if not pd.api.types.is_numeric_dtype(df[value]):
        raise TypeError(f"column {value!r} must be numeric, got dtype {df[value].dtype}")
    return df


def _factor(values: pd.Series, to_percent: bool | Literal["auto"]) -> float:
    if to_percent == "auto":
        v = values.to_numpy(dtype=float)
        return 100.0 if v.size and np.nanmin(v) >= 0 and np.nanmax(v) <= 1 else 1.0
    if not isinstance(to_percent, bool):
        raise TypeError(f"to_percent must be True, False or 'auto', got {to_percent!r}")
    return 100.0 if to_percent else 1.0


def _pm(mean: float, std: float, decimals: int) -> str:
    s = "–" if not np.isfinite(std) else f"{std:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {s}"


def summarize(
    df: pd.DataFrame,
    by: str | Sequence[str] = ("dataset", "n", "method"),
    value: str = "test_acc",
    *,
    to_percent: bool | Literal["auto"] = "auto",
    decimals: int = 2,
) -> pd.DataFrame:
    """Per-cell statistics of ``value``: number of runs, mean, std, median, quartiles, "mean ± std".

    Parameters
    ----------
    df : DataFrame, one row per run
    by : str or list of str
        Columns defining a cell (e.g. dataset, samples per class, method).
    value : str
        Column to summarise.
    to_percent : bool or "auto"
        Multiply by 100 (``True``), not (``False``), or when every value lies in [0, 1].
    decimals : int
        Decimals of the ``mean_std`` text.

    Returns
    -------
    DataFrame with columns ``*by, n_runs, mean, std, median, q25, q75, iqr, mean_std``
        ``n_runs`` counts the runs of the cell (not named ``n``, which is the usual name of
        the samples-per-class setting); ``std`` is the sample standard deviation (``ddof=1``; NaN for a single run);
        quartiles use linear interpolation (numpy's default); ``mean_std`` is the text
        ``"61.36 ± 0.54"``.
    """
    by = _as_list(by)
    df = _prepare(df, by, value)
    x = df[value].astype(float) * _factor(df[value], to_percent)
    frame = df[by].assign(_v=x)
    grouped = frame.groupby(by, sort=True, dropna=False)["_v"] if by else frame["_v"]
    out = pd.DataFrame(
        {
            "n_runs": grouped.count(),
            "mean": grouped.mean(),
            "std": grouped.std(ddof=1),
            "median": grouped.median(),
            "q25": grouped.quantile(0.25),
            "q75": grouped.quantile(0.75),
        },
        index=None if by else [0],
    )
    out["iqr"] = out["q75"] - out["q25"]
    out["mean_std"] = [_pm(m, s, decimals) for m, s in zip(out["mean"], out["std"])]
    return out.reset_index(drop=not by)


def vargha_delaney_a12(x: Sequence[float], y: Sequence[float]) -> float:
    """Vargha-Delaney A12 = P(X > Y) + 0.5 P(X = Y) for X from ``x`` and Y from ``y``.

    Computed from mid-ranks: ``A12 = (R_x / m - (m + 1) / 2) / n`` with ``R_x`` the rank
    sum of ``x`` in the pooled sample (m = len(x), n = len(y)); equal to ``U_x / (m n)``.
    0.5 means no effect; 0.56 / 0.64 / 0.71 are the usual small / medium / large thresholds.

    Examples
    --------
    >>> vargha_delaney_a12([3, 4], [1, 3])
    0.875
    """
    from scipy.stats import rankdata

    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.size == 0 or y.size == 0:
        raise ValueError(f"A12 needs two non-empty samples, got sizes {x.size} and {y.size}")
    m, n = x.size, y.size
    ranks = rankdata(np.concatenate([x, y]))
    return float((ranks[:m].sum() / m - (m + 1) / 2) / n)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (same order as given; NaN entries stay NaN).

    With the m valid p-values sorted ascending, ``p_adj(i) = max_{j <= i} min(1,
    (m - j + 1) p(j))``; a hypothesis is rejected at level alpha when ``p_adj < alpha``.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03, 0.005]).round(4).tolist()
    [0.03, 0.06, 0.06, 0.02]
    """
    p = np.asarray(pvalues, dtype=float).ravel()
    valid = np.flatnonzero(~np.isnan(p))
    if np.any((p[valid] < 0) | (p[valid] > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {p[valid].tolist()}")
    out = np.full(p.shape, np.nan)
    order = valid[np.argsort(p[valid], kind="stable")]
    m = order.size
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def min_attainable_p(n_a: int, n_b: int, alternative: Alternative = "two-sided") -> float:
    """Smallest p-value the exact Mann-Whitney test can give for sample sizes n_a, n_b.

    One-sided it is ``1 / C(n_a + n_b, n_a)`` (complete separation), two-sided twice that:
    with 3 runs per method the two-sided minimum is 2 / 20 = 0.1, so p < 0.05 is impossible.
    """
    check_choice("alternative", alternative, _ALTERNATIVES)
    if n_a < 1 or n_b < 1:
        return float("nan")
    one = 1.0 / math.comb(n_a + n_b, n_a)
    return min(1.0, 2 * one if alternative == "two-sided" else one)


def mann_whitney_power(
    difference: float,
    std: float,
    n: int,
    *,
    alpha: float = 0.05,
    sims: int = 2000,
    seed: int = 0,
) -> float:
    """Probability that a two-sided Mann-Whitney test at ``alpha`` detects a true difference.

    Monte Carlo: ``sims`` pairs of ``n`` normal samples with standard deviation ``std``,
    means ``difference`` apart, tested as :func:`compare_methods` tests (exact p-values
    for small samples, as scipy chooses); seeded, so the same inputs give the same answer.

    Examples
    --------
    >>> mann_whitney_power(4.0, 5.0, 3)  # 3 seeds: p < 0.05 is unattainable
    0.0
    >>> 0.75 < mann_whitney_power(4.0, 5.0, 30) < 0.9
    True
    """
    from scipy.stats import mannwhitneyu

    n = int(n)
    if n < 1 or not math.isfinite(difference) or not (std > 0):
        raise ValueError(
            f"need n >= 1, a finite difference and std > 0, got n={n}, "
            f"difference={difference}, std={std}"
        )
    if min_attainable_p(n, n) >= alpha:
        return 0.0
    rng = np.random.default_rng(seed)
    a = rng.normal(difference, std, size=(sims, n))
    b = rng.normal(0.0, std, size=(sims, n))
    p = mannwhitneyu(a, b, alternative="two-sided", axis=1).pvalue
    return float(np.mean(p < alpha))


def seeds_needed(
    difference: float,
    std: float,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    max_n: int = 200,
    sims: int = 2000,
) -> int | None:
    """Smallest number of seeds per method at which :func:`mann_whitney_power` reaches
    ``power`` (None if ``max_n`` seeds do not); bisection over n."""
    power = check_fraction("power", power, low=0.0, high=1.0)
    if mann_whitney_power(abs(difference), std, max_n, alpha=alpha, sims=sims) < power:
        return None
    lo, hi = 1, max_n
    while lo < hi:
        mid = (lo + hi) // 2
        if mann_whitney_power(abs(difference), std, mid, alpha=alpha, sims=sims) >= power:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _note(n_a: int, n_b: int, alternative: str, alpha: float) -> str:
    if min_attainable_p(n_a, n_b, alternative) < alpha:
        return ""
    size = f"n={n_a}" if n_a == n_b else f"n={n_a} vs {n_b}"
    return f"cannot reach p<{alpha:g} with {size} per method"


def compare_methods(
    df: pd.DataFrame,
    a: str = "l2t_www",
    b: str = "l2t_ww",
    by: str | Sequence[str] = ("dataset", "n"),
    value: str = "test_acc",
    *,
    method_col: str = "method",
    alternative: Alternative = "two-sided",
    alpha: float = 0.05,
    to_percent: bool | Literal["auto"] = "auto",
    rule: Literal["raw", "holm"] = "raw",
) -> pd.DataFrame:
    """Mann-Whitney U test of method ``a`` against ``b`` in every cell, Holm across cells.

    Parameters
    ----------
    df : DataFrame, one row per run
    a, b : str
        Values of ``method_col`` to compare (``a`` is "X" of the test and of A12).
    by : str or list of str
        Columns defining a cell.
    value : str
        Measured column.
    alternative : {"two-sided", "less", "greater"}
        Passed to :func:`scipy.stats.mannwhitneyu` (``"greater"``: a tends to exceed b).
    alpha : float
        Significance level.
    to_percent : bool or "auto"
        Units of ``mean_a``, ``mean_b`` and ``diff`` (see :func:`summarize`).
    rule : {"raw", "holm"}
        Which p-value the ``significant`` flag uses: ``"raw"`` (default), the
        dissertation's rule (a cell is significant at its own Mann-Whitney p < alpha), or
        ``"holm"`` (Holm-adjusted across the cells, controlling the family-wise error). Both
        flags are always reported (``significant_raw``, ``significant_holm``).

    Returns
    -------
    DataFrame
        Columns: the ``by`` columns, ``n_a``, ``n_b``, ``mean_a``, ``mean_b``, ``diff``
        (``mean_a - mean_b``), ``U`` (of a), ``p_value``, ``p_holm``, ``a12``, ``min_p``,
        ``significant_raw``, ``significant_holm``, ``significant`` (by ``rule``) and
        ``note``; ``attrs["rule"]`` names the rule. The U test uses scipy's
        ``method="auto"`` (exact without ties for samples below 8, else normal
        approximation with tie correction); ``min_p`` is :func:`min_attainable_p`; ``note``
        says when a cell cannot reach significance with its sample sizes or lacks one of
        the methods.
    """
    from scipy.stats import mannwhitneyu

    check_choice("alternative", alternative, _ALTERNATIVES)
    alpha = check_fraction("alpha", alpha)
    by = _as_list(by)
    df = _prepare(df, [*by, method_col], value)
    factor = _factor(df[value], to_percent)
    present = set(df[method_col])
    for name in (a, b):
        if name not in present:
            raise ValueError(unknown_name_message(f"{method_col}", name, sorted(map(str, present))))
    rows = []
    groups = df.groupby(by, sort=True, dropna=False) if by else [((), df)]
    for cell, part in groups:
        cell = cell if isinstance(cell, tuple) else (cell,)
        x = part.loc[part[method_col] == a, value].to_numpy(float) * factor
        y = part.loc[part[method_col] == b, value].to_numpy(float) * factor
        row = dict(zip(by, cell), n_a=x.size, n_b=y.size)
        if x.size and y.size:
            res = mannwhitneyu(x, y, alternative=alternative, method="auto")
            row.update(
                mean_a=x.mean(),
                mean_b=y.mean(),
                diff=x.mean() - y.mean(),
                U=float(res.statistic),
                p_value=float(res.pvalue),
                a12=vargha_delaney_a12(x, y),
                min_p=min_attainable_p(x.size, y.size, alternative),
                note=_note(x.size, y.size, alternative, alpha),
            )
        else:
            missing = a if not x.size else b
            row.update(note=f"no runs of {missing!r} in this cell")
        rows.append(row)
    cols = [*by, "n_a", "n_b", "mean_a", "mean_b", "diff", "U", "p_value"]
    out = pd.DataFrame(rows).reindex(columns=[*cols, "a12", "min_p", "note"])
    check_choice("rule", rule, ["raw", "holm"])
    out.insert(len(cols), "p_holm", holm(out["p_value"].to_numpy(float)))
    note_at = out.columns.get_loc("note")
    out.insert(note_at, "significant_raw", out["p_value"] < alpha)
    out.insert(note_at + 1, "significant_holm", out["p_holm"] < alpha)
    out.insert(note_at + 2, "significant", out[f"significant_{rule}"])
    out.attrs["rule"] = rule
    return out


def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def dissertation_table(
    df: pd.DataFrame,
    dataset: str | None,
    methods: Sequence[str] = ("scratch", "ufm", "l2t_ww", "l2t_www"),
    value: str = "test_acc",
    *,
    compare: tuple[str, str] = ("l2t_www", "l2t_ww"),
    n_col: str = "n",
    method_col: str = "method",
    dataset_col: str = "dataset",
    labels: dict[str, str] | None = None,
    alternative: Alternative = "two-sided",
    alpha: float = 0.05,
    to_percent: bool | Literal["auto"] = "auto",
    decimals: int = 2,
) -> pd.DataFrame:
    """A table shaped like the dissertation's Tables 1-3 (strings, ready to display).

    Rows: one per method (``"mean ± std"`` in percent), the difference of means
    ``compare[0] − compare[1]``, the raw Mann-Whitney p-value, the Holm-adjusted p-value
    (family: the N columns of this table) and a ``note`` row saying where significance is
    out of reach with the number of runs. Columns: the values of ``n_col`` (samples per
    class). A method without runs in a column shows "–". ``table.attrs["note"]`` repeats
    the notes in one sentence.

    Parameters
    ----------
    df : DataFrame, one row per run
    dataset : str or None
        Value of ``dataset_col`` to tabulate (None: use every row).
    methods : sequence of str
        Methods, in row order.
    compare : (str, str)
        Methods of the difference and test rows (the dissertation: L2T-www vs L2T-ww).
    labels : dict, optional
        Row labels of methods (default: From scratch, UFM, L2T-ww, L2T-www).
    """
    labels = {**METHOD_LABELS, **(labels or {})}
    if dataset is not None:
        if dataset_col not in df.columns:
            raise KeyError(unknown_name_message("column", dataset_col, list(map(str, df.columns))))
        if not (df[dataset_col] == dataset).any():
            raise ValueError(
                unknown_name_message("dataset", dataset, sorted(map(str, df[dataset_col].unique())))
            )
        df = df[df[dataset_col] == dataset]
    summary = summarize(df, [n_col, method_col], value, to_percent=to_percent, decimals=decimals)
    ns = sorted(summary[n_col].unique())
    table = pd.DataFrame("–", index=[labels.get(m, m) for m in methods], columns=ns, dtype=object)
    for _, row in summary.iterrows():
        if row[method_col] in methods:
            table.loc[labels.get(row[method_col], row[method_col]), row[n_col]] = row["mean_std"]
    a, b = compare
    diff_label = f"{labels.get(a, a)} − {labels.get(b, b)}"
    extra = pd.DataFrame(
        "–", index=[diff_label, "p-value", "p-value (Holm)", "note"], columns=ns, dtype=object
    )
    extra.loc["note"] = ""
    have = set(df[method_col]) if method_col in df.columns else set()
    if a in have and b in have:
        comp = compare_methods(
            df, a, b, by=n_col, value=value, method_col=method_col,
            alternative=alternative, alpha=alpha, to_percent=to_percent,
        )  # fmt: skip
        for _, row in comp.iterrows():
            n = row[n_col]
            if np.isfinite(row["diff"]):
                extra.loc[diff_label, n] = f"{row['diff']:+.{decimals}f}"
            extra.loc["p-value", n] = _fmt_p(row["p_value"])
            extra.loc["p-value (Holm)", n] = _fmt_p(row["p_holm"])
            extra.loc["note", n] = row["note"]
    out = pd.concat([table, extra])
    out.columns.name = "samples per class"
    notes = sorted({str(t) for t in out.loc["note"] if t})
    out.attrs["note"] = "; ".join(notes)
    return out
