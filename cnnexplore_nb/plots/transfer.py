"""Figures of the transfer study: every arm's accuracy, seed by seed, beside the published
mean (one cell of the limited-data sweep)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import holoviews as hv
import numpy as np
import pandas as pd

from ._style import STYLE, fonts, styled
from .names import method_name
from .style import series_styles

__all__ = ["arm_points"]


def arm_points(
    runs: pd.DataFrame,
    *,
    arms: Sequence[str] | None = None,
    published: Mapping[str, float] | None = None,
    value: str = "test_acc",
    title: str = "",
    xlabel: str = "test accuracy (%)",
) -> hv.Overlay:
    """One row per arm: each seed's accuracy (dots), the mean ± std (bar) and the published
    mean (open diamond) where there is one.

    Parameters
    ----------
    runs : DataFrame
        One row per run of one cell: ``method`` (the arm) and ``value`` (a fraction or %).
    arms : sequence of str, optional
        Arms from top to bottom (default: order of appearance).
    published : mapping of arm -> float, optional
        Published mean accuracy (%) to draw beside an arm.
    """
    missing = [c for c in ("method", value) if c not in runs.columns]
    if missing:
        raise KeyError(f"arm_points: missing column(s) {missing}; got {list(runs.columns)}")
    ok = runs[runs["status"] == "ok"] if "status" in runs else runs
    ok = ok[ok[value].notna()]
    arms = [a for a in (arms or list(dict.fromkeys(ok["method"]))) if a in set(ok["method"])]
    if not arms:
        raise ValueError("arm_points: no finished runs to draw")
    values = ok[value].to_numpy(float)
    factor = 100.0 if values.size and values.min() >= 0 and values.max() <= 1 else 1.0
    pos = {a: float(len(arms) - 1 - i) for i, a in enumerate(arms)}  # first arm on top
    kx = hv.Dimension("accuracy", label=xlabel)
    ky = hv.Dimension("arm", label="method")
    seed_x, seed_y, mean_x, mean_y, segs = [], [], [], [], []
    for a in arms:
        acc = ok.loc[ok["method"] == a, value].to_numpy(float) * factor
        jitter = np.linspace(-0.12, 0.12, acc.size) if acc.size > 1 else np.zeros(1)
        seed_x += acc.tolist()
        seed_y += (pos[a] + jitter).tolist()
        m = float(acc.mean())
        s = float(acc.std(ddof=1)) if acc.size > 1 else 0.0
        mean_x.append(m)
        mean_y.append(pos[a])
        segs.append((m - s, pos[a], m + s, pos[a]))
    color = series_styles(2)
    seeds = styled(
        hv.Scatter((seed_x, seed_y), kdims=[kx], vdims=[ky], label="seeds"),
        {"color": "#7f7f7f"}, bokeh={"size": 5, "alpha": 0.7}, mpl={"s": 10, "alpha": 0.7},
    )  # fmt: skip
    bars = styled(
        hv.ErrorBars([(m, y, (x1 - x0) / 2) for m, y, (x0, _, x1, _) in zip(mean_x, mean_y, segs)],
                     kdims=[kx], vdims=[ky, "err"], horizontal=True, label="mean ± std"),
        {"color": color[0]["color"]}, bokeh={"line_width": 2}, mpl={"linewidth": 1.5},
    )  # fmt: skip
    means = styled(
        hv.Scatter((mean_x, mean_y), kdims=[kx], vdims=[ky], label="mean ± std"),
        {"color": color[0]["color"]}, bokeh={"size": 8}, mpl={"s": 22},
    )  # fmt: skip
    parts = [seeds, bars, means]
    pub = [(float(published[a]), pos[a]) for a in arms if published and a in published
           and np.isfinite(published[a])]  # fmt: skip
    if pub:
        parts.append(styled(
            hv.Scatter(pub, kdims=[kx], vdims=[ky], label="published mean (30 runs)"),
            {"color": color[1]["color"]},
            bokeh={"marker": "diamond", "size": 11, "fill_alpha": 0, "line_width": 2},
            mpl={"marker": "D", "s": 30, "facecolors": "none", "edgecolors": color[1]["color"],
                 "linewidth": 1.2},
        ))  # fmt: skip
    ticks = [(pos[a], method_name(a)) for a in arms]
    w, h = STYLE["plot_px"]
    return styled(
        hv.Overlay(parts),
        {"title": title, "yticks": ticks, "ylim": (-0.6, len(arms) - 0.4),
         "show_legend": True, **fonts()},
        bokeh={"width": w + 180, "height": max(h, 40 * len(arms) + 120),
               "legend_position": "right", "padding": (0.08, 0)},
        mpl={"fig_inches": (STYLE["plot_inches"][0], 0.32 * len(arms) + 1.2),
             "legend_position": "right"},
    )  # fmt: skip
