"""Tables and frames of the L2T-www study: pairs and shapes, γ / λ / w snapshots, weight
trajectories, the comparison with the dissertation's numbers and the verdict.

Pure functions of models and run records (see :mod:`cnnexplore_nb.studies.transfer`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._hooks import Hooks
from ._report import Finding, Findings

__all__ = [
    "compare_runs",
    "meta_init_table",
    "meta_movement",
    "method_tests",
    "transfer_findings",
    "gamma_array",
    "gamma_frame",
    "gamma_maps",
    "lambda_w_frame",
    "pairs_table",
    "protocol_diagnostics",
    "published_comparison",
    "verdict",
    "weight_trajectories",
]


# ------------------------------------------------------------------------ inspection
@torch.no_grad()
def pairs_table(
    source: nn.Module, target: nn.Module, x: torch.Tensor, pairs: Sequence | None = None
) -> pd.DataFrame:
    """One row per (source tap, target tap) pair with both maps' shapes for input ``x``.

    Columns: ``pair, source_module, source_shape (C, H, W), target_module, target_shape,
    regressor (1x1 conv C_t -> C_s), gamma_shape (C_s, H_t, W_t)``.
    """
    from ..transfer.matching import parse_pairs, tap_features

    s_info, t_info = source.feature_info, target.feature_info
    parsed = parse_pairs(pairs, n_source=len(s_info), n_target=len(t_info))
    with Hooks(source, mode="eval", grad=False), Hooks(target, mode="eval", grad=False):
        _, s_maps = tap_features(source, x, sorted({s for s, _ in parsed}))
        _, t_maps = tap_features(target, x, sorted({t for _, t in parsed}))
    s_shape = dict(zip(sorted({s for s, _ in parsed}), (tuple(m.shape[1:]) for m in s_maps)))
    t_shape = dict(zip(sorted({t for _, t in parsed}), (tuple(m.shape[1:]) for m in t_maps)))
    rows = []
    for s, t in parsed:
        (cs, _, _), (ct, ht, wt) = s_shape[s], t_shape[t]
        rows.append({
            "pair": f"{s}-{t}", "source_module": s_info[s]["module"], "source_shape": s_shape[s],
            "target_module": t_info[t]["module"], "target_shape": t_shape[t],
            "regressor": f"1x1 conv {ct} -> {cs}", "gamma_shape": (cs, ht, wt),
        })  # fmt: skip
    return pd.DataFrame(rows)


def gamma_frame(record: Mapping[str, Any]) -> pd.DataFrame:
    """Long frame of the snapshot γ values: ``epoch, pair, channel, i, j, gamma``.

    ``record`` is a :func:`~cnnexplore_nb.transfer.run` result of ``l2t_www`` with
    ``snapshot=True`` (γ averaged over a fixed probe batch, 3x3 per channel).
    """
    snaps = record.get("snapshots") or []
    if not snaps or "gamma" not in snaps[0]:
        raise ValueError("the record has no γ snapshots: run l2t_www with snapshot=True")
    rows = []
    for snap in snaps:
        for pair, g in zip(record["pairs"], snap["gamma"]):
            arr = np.asarray(g, dtype=float)
            c, i, j = np.meshgrid(*map(np.arange, arr.shape), indexing="ij")
            rows.append(pd.DataFrame({
                "epoch": snap["epoch"], "pair": pair, "channel": c.ravel(), "i": i.ravel(),
                "j": j.ravel(), "gamma": arr.ravel(),
            }))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def gamma_array(record: Mapping[str, Any], pair: str, epoch: int = -1) -> np.ndarray:
    """γ of one pair at one snapshot (default: the last), shape ``(C_s, 3, 3)``."""
    pairs = list(record["pairs"])
    if pair not in pairs:
        raise KeyError(f"pair {pair!r} not in the record's pairs {pairs}")
    return np.asarray(record["snapshots"][epoch]["gamma"][pairs.index(pair)], dtype=float)


def gamma_maps(
    record: Mapping[str, Any], pair: str, size: tuple[int, int], epoch: int = -1
) -> np.ndarray:
    """γ of one pair as the loss sees it: the 3x3 weights resized bilinearly to the target
    map's ``size`` (H, W); shape ``(C_s, H, W)``."""
    from ..transfer.meta import expand_gamma

    g = torch.as_tensor(gamma_array(record, pair, epoch), dtype=torch.float32)[None]
    return expand_gamma(g, tuple(int(v) for v in size))[0].numpy()


def lambda_w_frame(record: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """λ and w over the snapshots of an L2T run.

    Returns ``(lam, w)``: ``lam`` wide (``epoch`` + one column per pair, the mean λ);
    ``w`` long (``epoch, pair, channel, w``).
    """
    snaps = record.get("snapshots") or []
    if not snaps or "lam" not in snaps[0]:
        raise ValueError("the record has no λ/w snapshots: run an L2T method with snapshot=True")
    lam = pd.DataFrame(
        [{"epoch": s["epoch"], **dict(zip(record["pairs"], s["lam"]))} for s in snaps]
    )
    w = pd.DataFrame(
        [
            {"epoch": s["epoch"], "pair": p, "channel": c, "w": v}
            for s in snaps
            for p, ws in zip(record["pairs"], s["w"])
            for c, v in enumerate(ws)
        ]
    )
    return lam, w


def weight_trajectories(records: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Snapshot values of the chosen target weights per method: ``epoch, method, weight, value``."""
    rows = []
    for method, rec in records.items():
        for snap in rec.get("snapshots") or []:
            for key, value in snap.items():
                if "[" in key:
                    rows.append(
                        {"epoch": snap["epoch"], "method": method, "weight": key, "value": value}
                    )
    if not rows:
        raise ValueError("no weight snapshots in the records: run with snapshot=True")
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- results
def published_comparison(measured: pd.DataFrame, value: str = "test_acc") -> pd.DataFrame:
    """Measured cells next to the dissertation's at the same N (samples per class).

    ``measured`` holds runs (``dataset, n, method, value``). Cells of a published dataset are
    aligned directly; the embedded ``digits`` cells are put next to every published dataset
    that has the same N (column ``published_dataset``), which only allows comparing the
    ordering of the methods, not the numbers.
    """
    from ..experiments import dissertation_results, side_by_side, summarize

    ref = dissertation_results()
    ref = ref[ref["experiment"] == "limited_data"]
    summary = summarize(measured, ["dataset", "n", "method"], value)
    parts = []
    for ds in sorted(set(ref["dataset"])):
        mine = summary[summary["dataset"] == ds] if ds in set(summary["dataset"]) else summary
        if mine.empty:
            continue
        pub = ref[ref["dataset"] == ds]
        both = side_by_side(mine.drop(columns="dataset"), pub.drop(columns="dataset"),
                            on=("n", "method"), how="inner")  # fmt: skip
        if not both.empty:
            both.insert(0, "published_dataset", ds)
            both.insert(0, "measured_dataset", ",".join(sorted(set(mine["dataset"]))))
            parts.append(both)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def verdict(df: pd.DataFrame, value: str = "test_acc") -> pd.DataFrame:
    """Per (dataset, N): the methods ordered by mean, and whether L2T-www beats each other.

    Columns ``dataset, n, order, www_minus_ww, www_minus_ufm, www_minus_scratch`` (percentage
    points; NaN where a method is missing).
    """
    from ..experiments import summarize

    s = summarize(df, ["dataset", "n", "method"], value)
    rows = []
    for (ds, n), part in s.groupby(["dataset", "n"], sort=True):
        means = dict(zip(part["method"], part["mean"]))
        order = " > ".join(m for m in sorted(means, key=means.get, reverse=True))
        row = {"dataset": ds, "n": n, "order": order}
        for other in ("l2t_ww", "ufm", "scratch"):
            short = other.replace("l2t_", "")
            row[f"www_minus_{short}"] = means.get("l2t_www", np.nan) - means.get(other, np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- method (06)
def meta_init_table(step: Any, x: torch.Tensor, pairs: Sequence[str]) -> pd.DataFrame:
    """The meta-networks f (what), g (where), h (which) of every pair at initialisation.

    Parameters
    ----------
    step : TransferStep
        An ``l2t_www`` step (``build_step``).
    x : Tensor of shape (B, C, H, W)
        A probe batch for the source features.
    pairs : sequence of str
        Pair ids in the step's order (``pairs_table(...)["pair"]``).

    Returns
    -------
    DataFrame
        Per pair: the weight shapes of f, g and h, ``max |w - 1/C|``, mean λ and
        ``max |γ - 1|`` on the probe batch.
    """
    with torch.no_grad():
        meta = step.meta_outputs(step.source_features(x))
    rows = []
    for k, pair in enumerate(pairs):
        c = meta.w[k].shape[1]
        rows.append({
            "pair": pair, "f (what)": tuple(step.meta.what[k].weight.shape),
            "g (where)": tuple(step.meta.where[k].weight.shape),
            "h (which)": tuple(step.meta.which[k].weight.shape),
            "max |w − 1/C|": float((meta.w[k] - 1 / c).abs().max()),
            "λ (mean)": float(meta.lam[k].mean()),
            "max |γ − 1|": float((meta.gamma[k] - 1).abs().max()),
        })  # fmt: skip
    return pd.DataFrame(rows)


def meta_movement(record: Mapping[str, Any]) -> pd.Series:
    """How far γ, λ and w moved from their initial values during a run (``snapshot=True``)."""
    g = gamma_frame(record)
    g0 = g[g["epoch"] == 0]["gamma"].to_numpy()
    g1 = g[g["epoch"] == g["epoch"].max()]["gamma"].to_numpy()
    lam, w = lambda_w_frame(record)
    return pd.Series(
        {
            "max |γ − 1| at init": float(np.abs(g0 - 1).max()),
            "max |γ − 1| at the end": float(np.abs(g1 - 1).max()),
            "mean |γ − 1| at the end": float(np.abs(g1 - 1).mean()),
            "λ min at the end": float(lam.iloc[-1, 1:].min()),
            "λ max at the end": float(lam.iloc[-1, 1:].max()),
            "max w at the end": float(w[w["epoch"] == w["epoch"].max()]["w"].max()),
        },
        name="value",
    )


# --------------------------------------------------------------------------- findings (07)
def method_tests(
    runs: pd.DataFrame,
    a: str = "l2t_www",
    others: Sequence[str] = ("l2t_ww", "ufm", "scratch"),
    by: Sequence[str] = ("dataset", "n"),
    *,
    rule: str = "raw",
) -> pd.DataFrame:
    """Mann-Whitney tests of method ``a`` against each of ``others`` in every cell.

    ``rule`` picks the ``significant`` flag: ``"raw"`` (the dissertation's: each cell's
    own p < 0.05) or ``"holm"`` (Holm across the cells of one comparison); both flags are
    in the result either way.

    Returns
    -------
    DataFrame
        :func:`cnnexplore_nb.experiments.compare_methods` rows with a column ``b``;
        ``attrs["rule"]`` names the rule.
    """
    from ..experiments import compare_methods

    present = set(runs["method"])
    parts = [
        compare_methods(runs, a, b, by=list(by), rule=rule).assign(b=b)
        for b in others
        if b in present
    ]
    out = pd.concat(parts, ignore_index=True)
    out.attrs["rule"] = rule
    return out


def transfer_findings(runs: pd.DataFrame, tests: pd.DataFrame) -> Findings:
    """Notebook 07: the dissertation's claims on the limited-data sweep, checked on ``runs``."""
    v = verdict(runs)
    cells = len(v)
    names = {"ww": "L2T-ww", "ufm": "UFM (15 pairs)", "scratch": "scratch"}
    wins = {k: int((v[f"www_minus_{k}"] > 0).sum()) for k in names}
    rule = tests.attrs.get("rule", "raw")
    sig = tests[tests["significant"]] if "significant" in tests else tests.iloc[:0]
    holm_sig = tests[tests["significant_holm"]] if "significant_holm" in tests else sig
    min_p = float(tests["min_p"].min()) if len(tests) else float("nan")
    power = (
        f" With these seeds the smallest attainable two-sided p is {min_p:.2f}, so no difference "
        "can be significant here."
        if min_p >= 0.05
        else ""
    )
    items = []
    for k, label in names.items():
        d = v[f"www_minus_{k}"]
        other = f"l2t_{k}" if k == "ww" else k
        n_sig = int((sig["b"] == other).sum())
        n_holm = int((holm_sig["b"] == other).sum())
        rule_txt = (
            f"significant at the dissertation's per-cell p < 0.05 in {n_sig} of them "
            f"({n_holm} after Holm correction)"
            if rule == "raw"
            else f"significant after Holm correction in {n_holm} of them"
        )
        items.append(
            Finding(
                f"L2T-www reaches a higher accuracy than {label}",
                None if d.isna().all() else bool(wins[k] == cells),
                f"Higher mean in {wins[k]} of {cells} cells (differences "
                f"{d.min():+.1f} to {d.max():+.1f} points); {rule_txt}."
                f"{power if k == 'ww' else ''}",
                {"wins": wins[k], "cells": cells, "significant": n_sig, "holm": n_holm},
            )
        )
    best = v.set_index(["dataset", "n"])["order"].str.split(" > ").str[0]
    note = (
        "Best method per cell: "
        + ", ".join(f"{ds} N = {n}: {m}" for (ds, n), m in best.items())
        + ". Verdict rule: "
        + (
            "the dissertation's (a cell is significant at its own Mann-Whitney p < 0.05), "
            "Holm-adjusted counts beside it."
            if rule == "raw"
            else "Holm-adjusted p < 0.05 across the cells."
        )
    )
    return Findings("L2T-www against the other methods (limited data)", items, v, note)


def compare_runs(records: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Runs side by side: accuracy at the best and the final epoch, time, and how far γ moved.

    Parameters
    ----------
    records : dict of label -> record of :func:`cnnexplore_nb.transfer.run`

    Returns
    -------
    DataFrame
        One row per label: ``test_acc``, ``final_test_acc``, ``best_epoch``, ``seconds`` and,
        for runs with snapshots of γ, ``max |γ − 1| at the end`` and ``mean |γ − 1| at the end``.
    """
    rows = []
    for label, rec in records.items():
        row = {"run": label}
        row.update({k: rec.get(k) for k in ("test_acc", "final_test_acc", "best_epoch", "seconds")})
        if any("gamma" in s for s in rec.get("snapshots") or []):
            moved = meta_movement(rec)
            row["max |γ − 1| at the end"] = moved["max |γ − 1| at the end"]
            row["mean |γ − 1| at the end"] = moved["mean |γ − 1| at the end"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


# ------------------------------------------------------------------ diagnostics (07)
def _meta_change(record: Mapping[str, Any]) -> dict[str, float]:
    """Relative change of λ, w and γ between the first and the last snapshot of a run."""
    lam, w = lambda_w_frame(record)
    lam0, lam1 = lam.iloc[0, 1:].to_numpy(float), lam.iloc[-1, 1:].to_numpy(float)
    sizes = w[w["epoch"] == w["epoch"].min()].groupby("pair")["w"].transform("size")
    first = w[w["epoch"] == w["epoch"].min()]
    last = w[w["epoch"] == w["epoch"].max()]
    uniform = 1.0 / sizes.to_numpy(float)
    out = {
        "lambda_change": float(np.max(np.abs(lam1 - lam0) / np.maximum(np.abs(lam0), 1e-12))),
        "w_change": float(np.max(np.abs(last["w"].to_numpy() - first["w"].to_numpy()) / uniform)),
        "gamma_change": float("nan"),
    }
    snaps = record["snapshots"]
    if "gamma" in snaps[0]:
        g = gamma_frame(record)
        out["gamma_change"] = float(np.abs(g[g["epoch"] == g["epoch"].max()]["gamma"] - 1).max())
    return out


def protocol_diagnostics(
    runs: pd.DataFrame, value: str = "test_acc", *, threshold: float = 0.1
) -> Findings:
    """Why the meta-learned methods do or do not beat UFM in this run, measured per cell.

    Three checks, each from the sweep's own records: **model selection** (the test
    accuracy at the best validation epoch, ``value``, against the final epoch's,
    ``final_test_acc``: does the choice change whether L2T-ww beats UFM?), **meta-network
    movement** (the largest relative change of λ and of w·C between the first and the last
    snapshot, and of γ from 1: above ``threshold`` the meta-networks have learned
    something in this budget) and **statistical power** (with the measured spread of UFM
    and L2T-ww, the probability that this many seeds detect the dissertation's L2T-ww − UFM
    difference at the same N, and the seeds that would need; the measured difference where
    the dissertation has no cell).
    """
    from ..experiments import dissertation_results, mann_whitney_power, seeds_needed, summarize

    ok = runs[runs["status"] == "ok"] if "status" in runs else runs
    pub = dissertation_results()
    pub = pub[pub["experiment"] == "limited_data"].set_index(["dataset", "n", "method"])["mean"]
    rows = []
    for (ds, n), cell in ok.groupby(["dataset", "n"], sort=True):
        row: dict[str, Any] = {"dataset": ds, "n": int(n)}
        for col, label in ((value, "best"), ("final_test_acc", "final")):
            if col not in cell:
                continue
            means = summarize(cell, ["method"], col).set_index("method")["mean"]
            for m in ("ufm", "l2t_ww", "l2t_www"):
                row[f"{m}_{label}"] = float(means.get(m, np.nan))
        acc = {m: 100 * cell.loc[cell["method"] == m, value].dropna().to_numpy(float)
               for m in ("ufm", "l2t_ww")}  # fmt: skip
        seeds = min(len(a) for a in acc.values())
        row["seeds"] = seeds
        row["ww_minus_ufm"] = row.get("l2t_ww_best", np.nan) - row.get("ufm_best", np.nan)
        spread = [a.std(ddof=1) for a in acc.values() if len(a) > 1]
        row["std"] = float(np.sqrt(np.mean(np.square(spread)))) if spread else np.nan
        published = pub.get((ds, int(n), "l2t_ww"), np.nan) - pub.get((ds, int(n), "ufm"), np.nan)
        row["published_ww_minus_ufm"] = published
        target = published if np.isfinite(published) else row["ww_minus_ufm"]
        if seeds >= 1 and np.isfinite(target) and target != 0 and row["std"] > 0:
            row["power"] = mann_whitney_power(abs(target), row["std"], seeds)
            row["seeds_for_80pct"] = seeds_needed(target, row["std"])
        else:
            row["power"], row["seeds_for_80pct"] = np.nan, None
        moves = pd.DataFrame(
            [
                _meta_change(r)
                for _, r in cell[cell["method"].isin(["l2t_ww", "l2t_www"])].iterrows()
                if isinstance(r.get("snapshots"), list) and r["snapshots"]
                and "lam" in r["snapshots"][0]
            ]
        )  # fmt: skip
        for key in ("lambda_change", "w_change", "gamma_change"):
            row[key] = float(moves[key].median()) if key in moves else np.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    return Findings(
        "Why the meta-learned methods do or do not beat UFM (15 pairs) here (measured)",
        [_selection_finding(table), _movement_finding(table, threshold), _power_finding(table)],
        table,
        "Each line is a candidate explanation checked on this sweep's records; numbers are "
        "percentage points of test accuracy, changes are medians over the L2T runs of a cell.",
    )


_YES_NO = ("yes", "**no**")


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:.0f} %"


def _cells(table: pd.DataFrame) -> list[str]:
    return [f"{r.dataset} N = {r.n}" for r in table.itertuples()]


def _selection_finding(table: pd.DataFrame) -> Finding:
    if "ufm_final" not in table:
        return Finding("Model selection decides whether L2T-ww beats UFM (15 pairs)", None,
                       "The records hold no final-epoch accuracy.")  # fmt: skip
    best = table["l2t_ww_best"] - table["ufm_best"]
    final = table["l2t_ww_final"] - table["ufm_final"]
    flips = [c for c, b, f in zip(_cells(table), best, final) if np.sign(b) != np.sign(f)]
    parts = [f"{c}: {b:+.1f} at the best-validation epoch, {f:+.1f} at the final epoch"
             for c, b, f in zip(_cells(table), best, final)]  # fmt: skip
    return Finding(
        "Model selection (test accuracy at the best-validation epoch, as the reference "
        "reports it, or at the final epoch) decides whether L2T-ww beats UFM (15 pairs)",
        bool(flips),
        "L2T-ww − UFM (15 pairs), " + "; ".join(parts) + ".",
        {"flipped_cells": flips},
        _YES_NO,
    )


def _movement_finding(table: pd.DataFrame, threshold: float) -> Finding:
    if table[["lambda_change", "w_change"]].isna().all().all():
        return Finding("The meta-networks learn within this budget", None,
                       "The sweep recorded no λ/w snapshots (snapshot_sweep off).")  # fmt: skip
    moved = (table[["lambda_change", "w_change"]].max(axis=1) > threshold) | (
        table["gamma_change"] > threshold
    )
    parts = [
        f"{c}: λ {_pct(r.lambda_change)}, w·C {_pct(r.w_change)}"
        + ("" if np.isnan(r.gamma_change) else f", γ {_pct(r.gamma_change)}")
        for c, r in zip(_cells(table), table.itertuples())
    ]
    return Finding(
        f"The meta-networks learn within this budget (λ, w or γ change by more than "
        f"{_pct(threshold)} from their start)",
        bool(moved.all()),
        "Largest relative change from the first to the last epoch, "
        + "; ".join(parts)
        + ". Below the threshold, L2T-ww is UFM (15 pairs) with fixed pair weights λ (w starts "
        "uniform, as UFM's channel mean) and cannot be expected to beat it.",
        {"moved": moved.tolist()},
        _YES_NO,
    )


def _power_finding(table: pd.DataFrame) -> Finding:
    parts = []
    for c, r in zip(_cells(table), table.itertuples()):
        ref = r.published_ww_minus_ufm
        diff = f"published {ref:+.1f}" if np.isfinite(ref) else f"measured {r.ww_minus_ufm:+.1f}"
        if not np.isfinite(r.power):
            parts.append(f"{c}: {diff} points with a spread of {r.std:.1f}: no power to compute")
            continue
        need = r.seeds_for_80pct
        need = "more than 200" if need is None or not np.isfinite(need) else str(int(need))
        parts.append(
            f"{c}: spread {r.std:.1f} points, {diff} points → power {_pct(r.power)} with "
            f"{r.seeds} seeds, {need} seeds for 80 %"
        )
    power = table["power"]
    return Finding(
        "This many seeds can detect the dissertation's L2T-ww − UFM difference (15 pairs; Mann-Whitney, "
        "p < 0.05, power ≥ 80 %)",
        None if power.isna().all() else bool((power >= 0.8).all()),
        "; ".join(parts) + ".",
        {"power": power.tolist()},
        _YES_NO,
    )
