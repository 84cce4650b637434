"""Notebook 07's verdicts on the limited-data sweep: every arm beside the published numbers,
the comparisons the dissertation's claims rest on, which reading of its UFM baseline the
published number fits, and what the meta-learning adds over its own frozen start.

Pure functions of the sweep's run frame (:func:`~cnnexplore_nb.studies.transfer.
run_experiment`): one row per run with ``dataset, n, method`` (the study's arm), ``seed``,
``test_acc`` (at the best-validation epoch), ``final_test_acc`` and, with snapshots, the
per-epoch λ / w / γ. Accuracies are reported in percent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._report import Finding, Findings

__all__ = [
    "COMPARISONS",
    "PUBLISHED_AS",
    "arm_comparisons",
    "arm_summary",
    "pooled_spread",
    "replication_findings",
    "seed_table",
    "ufm_reading",
    "why_l2t_ww",
]

#: The published row each arm is compared with: both UFM readings with the published UFM;
#: the frozen L2T-ww has no published counterpart.
PUBLISHED_AS = {"scratch": "scratch", "ufm": "ufm", "ufm_hint": "ufm", "l2t_ww": "l2t_ww",
                "l2t_www": "l2t_www"}  # fmt: skip
#: (a, b) pairs tested in every cell: a - b.
COMPARISONS: tuple[tuple[str, str], ...] = (
    ("l2t_ww", "ufm"),
    ("l2t_ww", "ufm_hint"),
    ("l2t_www", "l2t_ww"),
    ("l2t_www", "ufm"),
    ("l2t_www", "ufm_hint"),
    ("l2t_ww", "l2t_ww_frozen"),
    ("ufm", "ufm_hint"),
    ("ufm", "scratch"),
    ("ufm_hint", "scratch"),
    ("l2t_ww", "scratch"),
    ("l2t_www", "scratch"),
)
_ALPHA = 0.05
#: runs per published cell (the dissertation's repetitions)
PUBLISHED_RUNS = 30


def _ok(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "ok"] if "status" in runs else runs


def _acc(cell: pd.DataFrame, arm: str, value: str = "test_acc") -> np.ndarray:
    """Accuracies (%) of one arm in a cell, in seed order."""
    part = cell[cell["method"] == arm]
    if "seed" in part:
        part = part.sort_values("seed")
    return 100 * part[value].dropna().to_numpy(float)


def _published() -> pd.DataFrame:
    from ..experiments import dissertation_results

    pub = dissertation_results()
    return pub[pub["experiment"] == "limited_data"].set_index(["dataset", "n", "method"])


def pooled_spread(cell: pd.DataFrame, value: str = "test_acc") -> tuple[float, int]:
    """The seed spread of a cell: the pooled standard deviation (%) of every arm with two
    or more seeds, and its degrees of freedom (more stable than any one arm's)."""
    ss, dof = 0.0, 0
    for arm in cell["method"].unique():
        a = _acc(cell, arm, value)
        if a.size > 1:
            ss += float(((a - a.mean()) ** 2).sum())
            dof += a.size - 1
    return (float(np.sqrt(ss / dof)) if dof else float("nan")), dof


def arm_summary(runs: pd.DataFrame, arms: Sequence[str] | None = None) -> pd.DataFrame:
    """Per cell and arm: seeds, mean and spread of the test accuracy at the best-validation
    epoch and at the final epoch, and the published mean ± std beside it.

    Columns: ``dataset, n, arm, seeds, mean, std, final_mean, best_minus_final,
    published, published_std, published_as`` (accuracies in %; ``published_as`` names the
    published row: both UFM readings face the published UFM).
    """
    pub = _published()
    rows = []
    for (ds, n), cell in _ok(runs).groupby(["dataset", "n"], sort=True):
        present = list(dict.fromkeys(cell["method"]))
        for arm in arms or present:
            if arm not in present:
                continue
            best, final = _acc(cell, arm), _acc(cell, arm, "final_test_acc")
            ref = PUBLISHED_AS.get(arm)
            key = (ds, int(n), ref)
            rows.append({
                "dataset": ds, "n": int(n), "arm": arm, "seeds": int(best.size),
                "mean": best.mean(), "std": best.std(ddof=1) if best.size > 1 else np.nan,
                "final_mean": final.mean() if final.size else np.nan,
                "best_minus_final": best.mean() - final.mean() if final.size else np.nan,
                "published": pub["mean"].get(key, np.nan),
                "published_std": pub["std"].get(key, np.nan),
                "published_as": ref if key in pub.index else None,
            })  # fmt: skip
    cols = ["dataset", "n", "arm", "seeds", "mean", "std", "final_mean", "best_minus_final",
            "published", "published_std", "published_as"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def _published_diff(pub: pd.DataFrame, ds: str, n: int, a: str, b: str) -> float:
    ra, rb = PUBLISHED_AS.get(a), PUBLISHED_AS.get(b)
    if ra is None or rb is None or ra == rb:
        return float("nan")
    return float(pub["mean"].get((ds, n, ra), np.nan) - pub["mean"].get((ds, n, rb), np.nan))


def arm_comparisons(
    runs: pd.DataFrame, pairs: Sequence[tuple[str, str]] = COMPARISONS
) -> pd.DataFrame:
    """Mann-Whitney tests (two-sided, raw p: the dissertation's rule) and Vargha-Delaney
    A12 of arm ``a`` against arm ``b`` in every cell, with the published difference, the
    power this many seeds have to detect it at the cell's pooled spread, and the seeds per
    arm that 80 % power would take.

    Columns: ``dataset, n, a, b, seeds_a, seeds_b, mean_a, mean_b, diff, p_value, a12,
    min_p, published_diff, spread, power, seeds_for_80pct`` (``spread``: the pooled seed
    spread of the cell, :func:`pooled_spread`).
    """
    from ..experiments import compare_methods, mann_whitney_power, seeds_needed

    ok = _ok(runs)
    pub = _published()
    rows = []
    for (ds, n), cell in ok.groupby(["dataset", "n"], sort=True):
        spread, _ = pooled_spread(cell)
        present = set(cell["method"])
        for a, b in pairs:
            if a not in present or b not in present:
                continue
            t = compare_methods(cell, a, b, by=[], rule="raw").iloc[0]
            target = _published_diff(pub, ds, int(n), a, b)
            seeds = int(min(t["n_a"], t["n_b"]))
            power = need = np.nan
            if np.isfinite(target) and target != 0 and spread > 0:
                power = mann_whitney_power(abs(target), spread, seeds)
                need = seeds_needed(target, spread)
                need = np.nan if need is None else need
            rows.append({
                "dataset": ds, "n": int(n), "a": a, "b": b, "seeds_a": int(t["n_a"]),
                "seeds_b": int(t["n_b"]), "mean_a": t["mean_a"], "mean_b": t["mean_b"],
                "diff": t["diff"], "p_value": t["p_value"], "a12": t["a12"],
                "min_p": t["min_p"], "published_diff": target, "spread": spread,
                "power": power, "seeds_for_80pct": need,
            })  # fmt: skip
    cols = ["dataset", "n", "a", "b", "seeds_a", "seeds_b", "mean_a", "mean_b", "diff",
            "p_value", "a12", "min_p", "published_diff", "spread", "power", "seeds_for_80pct"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def ufm_reading(runs: pd.DataFrame) -> pd.DataFrame:
    """Which reading of the dissertation's UFM its published number is consistent with.

    For each cell with a published UFM and each measured reading (``ufm``: 15 pairs,
    ``ufm_hint``: one hint), a two-sided t-test of the measured mean against the published
    mean: ``t = (m - mu) / sqrt(s^2 / k + sigma^2 / 30)`` with the cell's pooled seed spread
    ``s`` (its degrees of freedom), ``k`` seeds and the published std ``sigma`` of 30 runs.
    ``consistent``: p >= 0.05.

    Columns: ``dataset, n, reading, seeds, mean, published, diff, se, p_value, consistent``.
    """
    from scipy.stats import t as student_t

    pub = _published()
    rows = []
    for (ds, n), cell in _ok(runs).groupby(["dataset", "n"], sort=True):
        key = (ds, int(n), "ufm")
        if key not in pub.index:
            continue
        spread, dof = pooled_spread(cell)
        mu, sigma = float(pub.loc[key, "mean"]), float(pub.loc[key, "std"])
        sigma = 0.0 if not np.isfinite(sigma) else sigma
        for reading in ("ufm", "ufm_hint"):
            a = _acc(cell, reading)
            if not a.size:
                continue
            se = float(np.sqrt((spread**2 if dof else 0.0) / a.size + sigma**2 / PUBLISHED_RUNS))
            diff = float(a.mean() - mu)
            p = float(2 * student_t.sf(abs(diff) / se, dof)) if dof and se > 0 else np.nan
            rows.append({
                "dataset": ds, "n": int(n), "reading": reading, "seeds": int(a.size),
                "mean": float(a.mean()), "published": mu, "diff": diff, "se": se,
                "p_value": p, "consistent": bool(p >= _ALPHA) if np.isfinite(p) else None,
            })  # fmt: skip
    cols = ["dataset", "n", "reading", "seeds", "mean", "published", "diff", "se", "p_value",
            "consistent"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def _lambda_start(record: Mapping[str, Any]) -> float:
    snaps = record.get("snapshots")
    if not isinstance(snaps, list) or not snaps or "lam" not in snaps[0]:
        return float("nan")
    return float(np.mean(snaps[0]["lam"]))


def seed_table(runs: pd.DataFrame, dataset: str, n: int) -> pd.DataFrame:
    """One row per seed of a cell: every arm's test accuracy (%) at the best-validation
    epoch, L2T-ww's mean starting λ (the frozen arm starts from the same one) and what the
    meta-learning adds over its frozen start, ``l2t_ww − frozen``."""
    ok = _ok(runs)
    cell = ok[(ok["dataset"] == dataset) & (ok["n"] == n)]
    if cell.empty:
        raise ValueError(f"no finished runs for dataset {dataset!r} at N = {n}")
    wide = cell.pivot_table(index="seed", columns="method", values="test_acc") * 100
    arms = [a for a in ("scratch", "ufm", "ufm_hint", "l2t_ww_frozen", "l2t_ww", "l2t_www")
            if a in wide]  # fmt: skip
    out = wide[arms].copy()
    for arm in ("l2t_ww", "l2t_ww_frozen"):
        part = cell[cell["method"] == arm].set_index("seed")
        if not part.empty:
            out[f"λ at start ({arm})"] = [
                _lambda_start(part.loc[s]) if s in part.index else np.nan for s in out.index
            ]
    if {"l2t_ww", "l2t_ww_frozen"} <= set(out):
        out["l2t_ww − frozen"] = out["l2t_ww"] - out["l2t_ww_frozen"]
    return out


def _claim(
    rows: pd.DataFrame, a: str, b: str, claim: str, names: Mapping[str, str]
) -> Finding | None:
    """``a`` beats ``b`` (the dissertation's rule: a higher mean, significant at p < 0.05)."""
    sel = rows[(rows["a"] == a) & (rows["b"] == b)]
    if sel.empty:
        return None
    parts, verdicts = [], []
    for r in sel.itertuples():
        pub = "" if not np.isfinite(r.published_diff) else f" (published {r.published_diff:+.1f})"
        power = (
            ""
            if not np.isfinite(r.power)
            else f"; power for the published difference at a spread of {r.spread:.1f}: "
            f"{100 * r.power:.0f} % with {min(r.seeds_a, r.seeds_b)} seeds, "
            + (
                f"{int(r.seeds_for_80pct)} seeds for 80 %"
                if np.isfinite(r.seeds_for_80pct)
                else "more than 200 seeds for 80 %"
            )
        )
        reach = (
            "" if r.min_p < _ALPHA else f"; {r.seeds_a} vs {r.seeds_b} seeds cannot reach p < 0.05"
        )
        parts.append(
            f"{r.dataset} N = {r.n}: {names[a]} {r.mean_a:.1f} % vs {names[b]} {r.mean_b:.1f} %, "
            f"{r.diff:+.1f} points{pub}, Mann-Whitney p = {r.p_value:.2f}, A12 = {r.a12:.2f}"
            f"{reach}{power}"
        )
        if r.diff <= 0:
            verdicts.append(False)
        elif r.p_value < _ALPHA:
            verdicts.append(True)
        else:
            verdicts.append(None)
    holds: bool | None = (
        False if False in verdicts else (True if all(v is True for v in verdicts) else None)
    )
    return Finding(claim, holds, "; ".join(parts) + ".", {"verdicts": verdicts})


def replication_findings(runs: pd.DataFrame) -> Findings:
    """The dissertation's limited-data claims under both readings of its UFM baseline.

    A claim "a beats b" is reproduced when a's mean is higher and the Mann-Whitney p < 0.05
    (the dissertation's per-cell rule), not reproduced when a's mean is not higher, and
    undecided when it is higher but not significant (the power for the published
    difference is stated).
    """
    from ..plots.names import method_name

    rows = arm_comparisons(runs)
    names = {a: method_name(a) for a in (*PUBLISHED_AS, "l2t_ww_frozen")}
    specs = [
        ("l2t_ww", "ufm", "L2T-ww beats UFM — UFM read as the 15 pairs"),
        ("l2t_ww", "ufm_hint", "L2T-ww beats UFM — UFM read as FitNets' one hint"),
        ("l2t_www", "l2t_ww", "L2T-www beats L2T-ww"),
        ("l2t_www", "ufm", "L2T-www beats UFM — 15 pairs"),
        ("l2t_www", "ufm_hint", "L2T-www beats UFM — one hint"),
        ("l2t_ww", "l2t_ww_frozen",
         "The meta-learning adds to L2T-ww's own frozen start (same seeds, same λ start)"),
        ("l2t_ww", "scratch", "L2T-ww beats training from scratch"),
    ]  # fmt: skip
    items = [f for a, b, c in specs if (f := _claim(rows, a, b, c, names)) is not None]
    reading = ufm_reading(runs)
    for (ds, n), part in reading.groupby(["dataset", "n"], sort=True):
        fits = part[part["consistent"] == True]["reading"].tolist()  # noqa: E712
        text = "; ".join(
            f"{names[r.reading]} {r.mean:.1f} % vs published {r.published:.2f} % "
            f"({r.diff:+.1f} points, p = {r.p_value:.2f})"
            for r in part.itertuples()
        )
        which = (
            "both readings (too few seeds to tell them apart)"
            if len(fits) == 2
            else (f"{names[fits[0]]} only" if fits else "neither reading")
        )
        items.append(Finding(
            f"The published UFM number ({ds}, N = {n}) is consistent with: {which}",
            None if len(fits) != 1 else True,
            text + " (two-sided t-test with the cell's pooled seed spread).",
            {"consistent": fits}, ("yes", "**no**"),
        ))  # fmt: skip
    return Findings(
        "The dissertation's limited-data claims, under both readings of UFM (computed)",
        items,
        rows,
        "Reproduced: a higher mean and p < 0.05; not reproduced: a mean that is not higher; "
        "undecided: a higher mean that this many seeds cannot show to be significant.",
    )


def why_l2t_ww(runs: pd.DataFrame, dataset: str, n: int) -> Findings:
    """Where L2T-ww stands against scratch and its frozen start, measured per seed.

    Three candidate causes, each from the sweep's records: the random starting scale of λ
    (the frozen arm keeps it: is the frozen arm already below scratch, and does the frozen
    accuracy follow λ's start across seeds?), the look-ahead meta-learning (L2T-ww − frozen,
    seed by seed: same initialisation, data, order and augmentation) and the hold-out's
    choice of epoch (best-validation minus final-epoch accuracy per arm).
    """
    table = seed_table(runs, dataset, n)
    items = []
    cell = f"{dataset} N = {n}"
    if {"l2t_ww", "scratch"} <= set(table):
        d = table["l2t_ww"] - table["scratch"]
        items.append(Finding(
            f"L2T-ww is below training from scratch ({cell})", bool((d < 0).all()),
            "L2T-ww − scratch per seed: " + ", ".join(f"{v:+.1f}" for v in d) + " points.",
            {"diff": d.tolist()}, ("yes", "no"),
        ))  # fmt: skip
    lam_col = "λ at start (l2t_ww_frozen)"
    if {"l2t_ww_frozen", "scratch"} <= set(table) and lam_col in table:
        d = table["l2t_ww_frozen"] - table["scratch"]
        lam = table[lam_col]
        corr = (
            float(pd.Series(lam).corr(table["l2t_ww_frozen"], method="spearman"))
            if len(table) >= 3
            else float("nan")
        )
        corr_txt = (
            f"Spearman correlation of λ's start with the frozen arm's accuracy over "
            f"{len(table)} seeds: {corr:+.2f}"
            if np.isfinite(corr)
            else f"{len(table)} seeds: too few for a correlation"
        )
        items.append(Finding(
            "The random starting λ, kept fixed, already puts the matching below scratch",
            bool((d < 0).all()),
            "Frozen L2T-ww − scratch per seed: " + ", ".join(f"{v:+.1f}" for v in d)
            + " points; mean λ at the start per seed: " + ", ".join(f"{v:.2f}" for v in lam)
            + f" (anywhere in [0, 6] by construction); {corr_txt}.",
            {"diff": d.tolist(), "lambda_start": lam.tolist(), "spearman": corr},
            ("yes", "no"),
        ))  # fmt: skip
    if "l2t_ww − frozen" in table:
        d = table["l2t_ww − frozen"]
        items.append(Finding(
            "The look-ahead meta-learning improves on the frozen start, seed by seed",
            bool((d > 0).all()) if len(d) else None,
            "L2T-ww − frozen L2T-ww per seed: " + ", ".join(f"{v:+.1f}" for v in d)
            + " points (same target initialisation, data, order and augmentation).",
            {"diff": d.tolist()}, ("yes", "no"),
        ))  # fmt: skip
    summ = arm_summary(runs)
    summ = summ[(summ["dataset"] == dataset) & (summ["n"] == n)]
    if not summ.empty and summ["best_minus_final"].notna().any():
        moved = summ.set_index("arm")["best_minus_final"]
        ww = float(moved.get("l2t_ww", np.nan))
        items.append(Finding(
            "The hold-out's choice of epoch moves the reported accuracy by more than a point",
            bool((moved.abs() > 1).any()),
            "Best-validation minus final-epoch test accuracy per arm: "
            + ", ".join(f"{a} {v:+.1f}" for a, v in moved.items())
            + f" points (L2T-ww: {ww:+.1f}).",
            {"best_minus_final": moved.to_dict()}, ("yes", "no"),
        ))  # fmt: skip
    return Findings(
        f"Why L2T-ww lands where it does ({cell}; measured per seed)",
        items,
        table,
        "Each line checks one candidate cause on this sweep's own runs.",
    )
