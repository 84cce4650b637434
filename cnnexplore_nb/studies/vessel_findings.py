"""The thesis's claims about vessel CNNs, checked on this run's results (notebooks 01-04).

Each function returns a :class:`~cnnexplore_nb.studies._report.Findings`: the claims of the
thesis, whether this run reproduces them, and the numbers behind each verdict, so the
notebooks state no number that does not come from their own results.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..similarity.tables import CorrelationTables
from ..similarity.tables_io import save_tables
from ._report import Finding, Findings, fmt_pct
from .vessel_correlation import (
    block_summary,
    cross_network_profile,
    image_tables,
    module_number,
    redundancy_profile,
    redundancy_verdict,
)

__all__ = [
    "aggregated_profiles",
    "convention_table",
    "block_statistics",
    "cross_network_findings",
    "retina_findings",
    "same_network_findings",
    "table_sets",
    "training_findings",
    "within_layer_percent",
]

#: The thesis's Table 4 validation IoU, by model.
THESIS_IOU = {"CNN1": 0.81, "CNN6": 0.91, "CNN10": 0.92}


def within_layer_percent(
    tables: CorrelationTables, layers: Sequence[str] | None = None
) -> pd.Series:
    """% of the maps of each layer with a partner at max |r| >= threshold in the same layer.

    Returns
    -------
    Series
        Indexed by layer (in ``layers`` order, default ``tables.layers_a``); 0 for a layer
        without such maps.
    """
    stats = tables.stats
    diag = stats[stats["A_layer"].astype(str) == stats["B_layer"].astype(str)]
    layers = list(tables.layers_a if layers is None else layers)
    out = diag.set_index(diag["A_layer"].astype(str))["percent"].reindex(layers).fillna(0.0)
    out.index.name = "layer"
    return out.rename("percent")


def _profile_text(values: pd.Series, unit: str = " %") -> str:
    return " → ".join(f"{v:.0f}{unit} (L{module_number(k)})" for k, v in values.items())


def retina_findings(tables: CorrelationTables, layers: Sequence[str] | None = None) -> Findings:
    """Notebook 01: is within-layer redundancy higher in deeper layers on this image?"""
    pct = within_layer_percent(tables, layers)
    v = pct.to_numpy(float)
    rising = bool(np.all(np.diff(v) >= 0))
    deeper = bool(v[-1] > v[0])
    t = tables.threshold
    return Findings(
        f"Within-layer redundancy of {tables.names[0].split('(')[0]} on one image "
        f"(% of maps with a partner at |r| ≥ {t:g})",
        [
            Finding(
                "Deeper layers are more redundant",
                deeper,
                f"Here: {_profile_text(pct)}; non-decreasing at every step: {rising}.",
                {"percent": pct.to_dict(), "rising": rising},
            )
        ],
        table=pct.round(1).to_frame(),
    )


def training_findings(table4: pd.DataFrame, target_iou: float = 0.8) -> Findings:
    """Notebook 02: the models' validation scores against the target and the thesis order."""
    best = table4.set_index("model")
    iou = best["IoU"].astype(float)
    items = []
    if "CNN6" in iou:
        items.append(
            Finding(
                f"CNN6 reaches a validation IoU of at least {target_iou:g}",
                bool(iou["CNN6"] >= target_iou),
                f"CNN6: IoU {iou['CNN6']:.3f} (clDice {best.loc['CNN6', 'clDice']:.3f}) at "
                f"epoch {int(best.loc['CNN6', 'best_epoch'])} of {int(best.loc['CNN6', 'epochs'])}.",
            )
        )
    known = [m for m in THESIS_IOU if m in iou]
    if len(known) >= 2:
        order = [m for m in known]
        ours = bool(all(iou[a] < iou[b] for a, b in zip(order, order[1:])))
        shallow_worst = bool(iou[known[0]] < min(iou[m] for m in known[1:]))
        thesis = ", ".join(f"{m} {THESIS_IOU[m]:.2f}" for m in known)
        here = ", ".join(f"{m} {iou[m]:.3f}" for m in known)
        items.append(
            Finding(
                f"Deeper networks segment better (thesis IoU: {thesis})",
                ours,
                f"Here: {here}; the shallowest network is below both deeper ones: "
                f"{shallow_worst}. Training took {best['training_s'].sum():.0f} s in all.",
                {"iou": iou.to_dict(), "strict_order": ours, "shallow_worst": shallow_worst},
            )
        )
    last = int(best["best_epoch"].max()) if "best_epoch" in best else 0
    note = ""
    if "epochs" in best and bool((best["best_epoch"] == best["epochs"]).any()):
        still = ", ".join(
            m for m in best.index if best.loc[m, "best_epoch"] == best.loc[m, "epochs"]
        )
        note = (
            f"{still}: the best epoch is the last one (epoch {last}), so these models were "
            "still improving when training stopped."
        )
    return Findings("Training (validation set)", items, table=table4, note=note)


def table_sets(
    maps_a: Mapping[str, torch.Tensor],
    maps_b: Mapping[str, torch.Tensor] | None = None,
    *,
    names: tuple[str, str],
    threshold: float,
    save_dir: str | os.PathLike | None = None,
    stem: str = "tables",
) -> dict[int, CorrelationTables]:
    """The thesis tables of every image (one per image, as the thesis), optionally saved.

    Parameters
    ----------
    maps_a, maps_b : dict of layer -> Tensor of shape (N, C, H, W)
        Maps of the selected layers on N images (``layer_maps``); ``maps_b=None`` compares
        A with itself.
    save_dir : path, optional
        Each image's tables are saved as ``<save_dir>/<stem>_image<i>`` (CSV).

    Returns
    -------
    dict of image index -> CorrelationTables
    """
    n = int(next(iter(maps_a.values())).shape[0])
    out = {}
    for i in range(n):
        t = image_tables(maps_a, i, maps_b, names=names, threshold=threshold)
        if save_dir is not None:
            save_tables(t, Path(save_dir) / f"{stem}_image{i}")
        out[i] = t
    return out


def block_statistics(
    tables: Mapping[tuple[str, int], CorrelationTables], threshold: float | None = None
) -> pd.DataFrame:
    """Blocks of correlated maps of every (model, image) set of tables.

    Returns
    -------
    DataFrame
        :func:`~cnnexplore_nb.studies.vessel_correlation.block_summary` rows with ``model``
        and ``image`` columns.
    """
    frames = [
        block_summary(t, threshold).assign(model=model, image=image)
        for (model, image), t in tables.items()
    ]
    return pd.concat(frames, ignore_index=True)


def aggregated_profiles(aggregated: Mapping[str, pd.DataFrame], value: str) -> pd.DataFrame:
    """Within-layer ``value`` (mean and std over images) of every network, by module.

    Parameters
    ----------
    aggregated : dict of network name -> summary
        ``aggregate_correlation(...)[1]`` of each network against itself.
    value : {"percent", "mean_max"}

    Returns
    -------
    DataFrame
        ``model``, ``module``, ``position`` (first / middle / last), ``value``, ``std``.
    """
    frames = []
    for name, summary in aggregated.items():
        mean = redundancy_profile(summary, f"{value}_mean")
        std = redundancy_profile(summary, f"{value}_std")["value"].to_numpy()
        frames.append(mean.assign(std=std, model=name))
    out = pd.concat(frames, ignore_index=True)
    return out[["model", "module", "position", "value", "std"]]


def same_network_findings(
    aggregated: Mapping[str, pd.DataFrame],
    blocks: pd.DataFrame,
    *,
    trained: Sequence[str],
    control: str | None = None,
) -> Findings:
    """Notebook 03: the thesis's statements on redundancy within one network.

    ``aggregated`` maps network names to ``aggregate_correlation`` summaries; ``blocks`` is
    :func:`block_statistics` of the per-image tables; ``trained`` names the trained deep
    networks (e.g. CNN6, CNN10); ``control`` an untrained network.
    """
    prof = aggregated_profiles(aggregated, "percent")
    rows = [{"model": m, **redundancy_verdict(aggregated[m], "percent_mean")} for m in aggregated]
    table = pd.DataFrame(rows)
    deep = [m for m in trained if m in aggregated]

    def series(m: str) -> pd.Series:
        p = prof[prof["model"] == m]
        return pd.Series(p["value"].to_numpy(), index=[f"conv_module{k}" for k in p["module"]])

    rising = {m: bool(series(m).iloc[-1] > series(m).iloc[0]) for m in deep}
    last_top = {m: bool(table.set_index("model").loc[m, "last_highest"]) for m in deep}
    std = prof[prof["model"].isin(deep)]["std"]
    items = [
        Finding(
            "Deeper layers are more redundant",
            all(rising.values()) if deep else None,
            " ".join(f"{m}: {_profile_text(series(m))}." for m in deep)
            + f" Std across images {std.min():.0f}-{std.max():.0f} points."
            + " Last layer the most redundant: "
            + ", ".join(f"{m} {last_top[m]}" for m in deep)
            + ".",
            {"rising": rising, "last_highest": last_top},
        )
    ]
    b = blocks.groupby(["model", "module"], sort=False)["largest"].mean().reset_index()
    block_txt, block_ok = [], []
    for m in deep:
        g = b[b["model"] == m].sort_values("module")
        if len(g) < 2:
            continue
        last, first = float(g["largest"].iloc[-1]), float(g["largest"].iloc[0])
        mid = float(g["largest"].iloc[1:-1].mean()) if len(g) > 2 else float("nan")
        block_ok.append(last > first)
        block_txt.append(
            f"{m}: largest block {first:.0f} maps (first layer), {mid:.0f} (middle, mean), "
            f"{last:.0f} (last)"
        )
    items.append(
        Finding(
            "Blocks of highly correlated maps form in the last layers",
            all(block_ok) if block_ok else None,
            "; ".join(block_txt) + " (mean over the per-image tables).",
        )
    )
    first_mid = {m: table.set_index("model").loc[m, "first_above_middle"] for m in deep}
    decided = [v for v in first_mid.values() if v is not None]
    items.append(
        Finding(
            "The first layer is also fairly redundant; the middle layers are the most varied",
            all(decided) if decided else None,
            " ".join(
                f"{m}: first {series(m).iloc[0]:.0f} % vs middle mean "
                f"{table.set_index('model').loc[m, 'middle']:.0f} %."
                for m in deep
            ),
            {"first_above_middle": first_mid},
        )
    )
    note = ""
    if control is not None and control in aggregated:
        c = series(control)
        trained_first = [series(m).iloc[0] for m in deep]
        note = (
            f"Control ({control}, random weights): first layer {fmt_pct(c.iloc[0])}, last layer "
            f"{fmt_pct(c.iloc[-1])}, against {fmt_pct(min(trained_first))}-"
            f"{fmt_pct(max(trained_first))} in the first layers of the trained networks. "
            + (
                "First-layer redundancy appears without training (architecture and input), "
                "deep-layer redundancy only with training."
                if abs(c.iloc[0] - np.mean(trained_first)) < 15
                and c.iloc[-1] < min(series(m).iloc[-1] for m in deep)
                else "The control differs from the trained networks in the first layer too."
            )
        )
    return Findings("Redundancy within a network (aggregated over images)", items, table, note)


def cross_network_findings(
    aggregated: Mapping[tuple[str, str], pd.DataFrame], *, control: tuple[str, str] | None = None
) -> Findings:
    """Notebook 04: do networks of different depth learn similar first and last layers?"""
    rows = []
    for (na, nb), s in aggregated.items():
        mm = cross_network_profile(s, "mean_max_mean")
        pc = cross_network_profile(s, "percent_mean")
        rows.append({
            "pair": f"{na} vs {nb}", "first-first max|r|": mm["first"],
            "last-last max|r|": mm["last"], "other pairs max|r|": mm["others"],
            "first-first %": pc["first"], "last-last %": pc["last"], "other pairs %": pc["others"],
            "first above others": mm["first"] > mm["others"],
            "last above others": mm["last"] > mm["others"],
            "control": (na, nb) == control,
        })  # fmt: skip
    table = pd.DataFrame(rows)
    trained = table[~table["control"]]
    n = len(trained)
    first_ok, last_ok = (
        int(trained["first above others"].sum()),
        int(trained["last above others"].sum()),
    )
    rng = lambda col: f"{trained[col].min():.2f}-{trained[col].max():.2f}"  # noqa: E731
    items = [
        Finding(
            "Networks of different depth learn similar first layers",
            first_ok == n if n else None,
            f"First-first mean max-|r| {rng('first-first max|r|')} in the trained pairs, above "
            f"the other layer pairs in {first_ok} of {n}.",
        ),
        Finding(
            "... and similar last layers",
            last_ok == n if n else None,
            f"Last-last mean max-|r| {rng('last-last max|r|')}, above the other layer pairs in "
            f"{last_ok} of {n}: "
            + "; ".join(f"{r['pair']} {r['last-last max|r|']:.2f}" for _, r in trained.iterrows())
            + ".",
        ),
    ]
    note = ""
    if control is not None and bool(table["control"].any()):
        c = table[table["control"]].iloc[0]
        partner = control[1]
        same = trained[trained["pair"].str.endswith(f"vs {partner}")]
        ref = float(same["first-first max|r|"].mean()) if len(same) else float("nan")
        note = (
            f"Control {c['pair']} (untrained): first-first {c['first-first max|r|']:.2f}, "
            f"last-last {c['last-last max|r|']:.2f} (trained pairs with {partner}: first-first "
            f"{ref:.2f}). "
            + (
                "The untrained network matches first layers about as well: that similarity "
                "comes from the architecture, not from learning."
                if abs(c["first-first max|r|"] - ref) < 0.05
                else "The untrained network matches first layers less well than trained ones."
            )
        )
    return Findings("Similarity between networks (aggregated over images)", items, table, note)


def convention_table(
    maps_a: Mapping[str, torch.Tensor],
    maps_b: Mapping[str, torch.Tensor] | None = None,
    *,
    names: tuple[str, str],
    threshold: float,
    region: Any = None,
) -> pd.DataFrame:
    """What CNN Explorer's conventions change: % well correlated per layer pair, and dead maps.

    Columns per convention: the whole image with constant maps undefined (this toolkit's
    default), the ``region`` (e.g. a dilated ground truth) with the default, the region with
    CNN Explorer's dead-map convention (``constant="explorer"``: two constant maps |r| = 1,
    one constant map 0), and the region CNN Explorer's way (maps multiplied by the mask, so
    the pixels outside count as zeros, plus its dead-map convention).

    Returns
    -------
    DataFrame
        One row per layer pair (``A_layer``, ``B_layer``) with ``percent`` and ``n_dead``
        (constant maps of the A layer) under each convention (column MultiIndex).
    """
    from ..similarity.tables import correlation_tables

    setups = {"whole image": {}}
    if region is not None:
        setups |= {
            "region": {"mask": region},
            "region, CNN Explorer dead maps": {"mask": region, "constant": "explorer"},
            "region as CNN Explorer (zeros outside)": {
                "mask": region, "mask_mode": "zero", "constant": "explorer",
            },
        }  # fmt: skip
    frames = {}
    for label, kw in setups.items():
        t = correlation_tables(maps_a, maps_b, names=names, threshold=threshold,
                               progress=False, **kw)  # fmt: skip
        st = t.stats.set_index(["A_layer", "B_layer"])
        frames[label] = st[["percent", "A_n_dead"]].rename(columns={"A_n_dead": "n_dead"})
    return pd.concat(frames, axis=1)
