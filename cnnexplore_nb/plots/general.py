"""Generic figures the notebooks need: error-bar curves, training history, segmentation
panels and 2-D embeddings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import holoviews as hv
import numpy as np
import pandas as pd

from ._style import STYLE, as_array, fonts, styled
from .maps import _grid_layout, map_image

__all__ = ["embedding_scatter", "errorbar_curves", "segmentation_figure", "training_history"]


def _need_columns(df: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"{what}: missing column(s) {missing}; got columns {list(df.columns)}")


def errorbar_curves(
    df: pd.DataFrame,
    x: str,
    y: str,
    by: str,
    *,
    err: Literal["std", "sem"] | str = "std",
    title: str = "",
    logx: bool = False,
) -> hv.Overlay:
    """Mean ± error curves of ``y`` against ``x``, one per value of ``by``.

    Parameters
    ----------
    df : DataFrame
        Tidy results, one row per run (e.g. columns ``samples_per_class``, ``accuracy``,
        ``method``, ``seed``) or already aggregated rows when ``err`` names a column.
    err : "std", "sem" or a column name
        Error bar half-length: the standard deviation or standard error of the runs at each
        (by, x), or an existing column of ``df``.
    """
    _need_columns(df, [x, y, by], "errorbar_curves")
    if err in ("std", "sem"):
        g = df.groupby([by, x], sort=True)[y]
        agg = g.mean().rename(y).to_frame()
        spread = g.std(ddof=1) if err == "std" else g.sem(ddof=1)
        agg["err"] = spread.fillna(0.0)
        agg = agg.reset_index()
    else:
        _need_columns(df, [err], "errorbar_curves err")
        agg = df[[by, x, y, err]].rename(columns={err: "err"})
    curves = []
    keys = list(dict.fromkeys(agg[by]))
    palette = hv.Cycle.default_cycles["default_colors"]
    xvals = np.unique(agg[x].to_numpy(float))
    # dodge the series sideways so their error bars do not hide one another
    step = np.min(np.diff(xvals)) if len(xvals) > 1 else 1.0
    width = 0.25 * step if not logx else 0.0
    for i, key in enumerate(keys):
        color = palette[i % len(palette)]
        sub = agg[agg[by] == key].sort_values(x)
        xs, ys, es = (sub[c].to_numpy(float) for c in (x, y, "err"))
        if len(keys) > 1:
            xs = xs + width * i / (len(keys) - 1) - width / 2
        curve = hv.Curve((xs, ys), kdims=[x], vdims=[y], label=str(key))
        dots = hv.Scatter((xs, ys), kdims=[x], vdims=[y], label=str(key))
        bars = hv.ErrorBars((xs, ys, es), kdims=[x], vdims=[y, "err"], label=str(key))
        curves += [
            styled(curve, {"color": color}, bokeh={"tools": ["hover"]}),
            styled(dots, {"color": color}, bokeh={"size": 6}, mpl={"s": 25}),
            styled(bars, {"color": color}, mpl={"edgecolor": color, "capsize": 3}),
        ]
    w, h = STYLE["plot_px"]
    return styled(
        hv.Overlay(curves),
        {
            "title": title,
            "logx": logx,
            "legend_position": "bottom_right",
            "padding": 0.08,
            **fonts(),
        },
        bokeh={"width": w + 80, "height": h},
        mpl={"fig_inches": STYLE["plot_inches"]},
    )


def training_history(
    history: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    x: str = "epoch",
    title: str = "",
) -> hv.Overlay:
    """Curves of training metrics (e.g. loss, val IoU) against ``x``, one per metric."""
    _need_columns(history, [x], "training_history")
    if metrics is None:
        metrics = [
            c for c in history.columns if c != x and pd.api.types.is_numeric_dtype(history[c])
        ]
    _need_columns(history, list(metrics), "training_history metrics")
    if not metrics:
        raise ValueError(f"no numeric metric columns besides {x!r} in {list(history.columns)}")
    curves = [
        styled(
            hv.Curve(
                (history[x].to_numpy(float), history[m].to_numpy(float)),
                kdims=[x],
                vdims=["value"],
                label=str(m),
            ),
            {},
            bokeh={"tools": ["hover"]},
        )
        for m in metrics
    ]
    w, h = STYLE["plot_px"]
    return styled(
        hv.Overlay(curves),
        {"title": title, "legend_position": "right", **fonts()},
        bokeh={"width": w + 120, "height": h},
        mpl={"fig_inches": STYLE["plot_inches"]},
    )


def segmentation_figure(
    image: Any,
    truth: Any | None = None,
    predictions: Mapping[str, Any] | None = None,
    *,
    titles: Mapping[str, str] | None = None,
    ncols: int | None = None,
) -> hv.Layout:
    """Image, ground truth and each model's predicted mask side by side.

    Parameters
    ----------
    image : array or Tensor of shape (H, W) or (3, H, W) / (H, W, 3)
        The input image (grey or RGB).
    truth : array of shape (H, W), optional
        Ground-truth mask.
    predictions : mapping name -> array of shape (H, W)
        Predicted masks (or probabilities) per model.
    titles : mapping name -> str, optional
        Extra title text per model (e.g. ``"IoU 0.91"``).
    """
    img = as_array(image, "image", (2, 3))
    panels = []
    if img.ndim == 3:
        if img.shape[0] == 3 and img.shape[-1] != 3:
            img = img.transpose(1, 2, 0)
        if img.shape[-1] != 3:
            raise ValueError(f"a colour image must have 3 channels, got shape {img.shape}")
        lo, hi = float(img.min()), float(img.max())
        rgb = (img - lo) / (hi - lo if hi > lo else 1.0)
        h, w = rgb.shape[:2]
        panels.append(
            styled(
                hv.RGB(rgb, bounds=(0, 0, w, h)),
                {"title": "image", "xaxis": None, "yaxis": None, **fonts()},
                bokeh={
                    "frame_width": STYLE["panel_px"],
                    "frame_height": int(STYLE["panel_px"] * h / w),
                },
                mpl={"fig_inches": STYLE["panel_inches"] * 1.5},
            )
        )
    else:
        panels.append(map_image(img, title="image", cmap="gray", label="intensity"))
    shape = img.shape[:2]
    items = ([("ground truth", truth)] if truth is not None else []) + list(
        (predictions or {}).items()
    )
    for name, mask in items:
        m = as_array(mask, f"mask {name!r}", (2,))
        if m.shape != shape:
            raise ValueError(f"mask {name!r} has shape {m.shape}, expected the image's {shape}")
        extra = (titles or {}).get(name, "")
        panels.append(
            map_image(
                m, title=f"{name} {extra}".strip(), cmap="gray", clim=(0.0, 1.0), label="mask"
            )
        )
    return _grid_layout(panels, ncols or len(panels))


def embedding_scatter(
    df: pd.DataFrame,
    x: str = "x",
    y: str = "y",
    by: str = "layer",
    *,
    hover: Sequence[str] = (),
    title: str = "",
) -> hv.Overlay:
    """2-D embedding (e.g. PCA/UMAP of maps) as points coloured by ``by``, one labelled
    legend entry per group (in order of first appearance)."""
    _need_columns(df, [x, y, by, *hover], "embedding_scatter")
    data = df[[x, y, by, *hover]].copy()
    data[by] = data[by].astype(str)
    palette = hv.Cycle.default_cycles["default_colors"]
    w, h = STYLE["plot_px"]
    layers = []
    for i, key in enumerate(dict.fromkeys(data[by])):
        pts = hv.Points(data[data[by] == key], kdims=[x, y], vdims=[by, *hover], label=key)
        layers.append(
            styled(
                pts,
                {"color": palette[i % len(palette)]},
                bokeh={"size": 6, "tools": ["hover"]},
                mpl={"s": 12},
            )
        )
    return styled(
        hv.Overlay(layers),
        {"title": title, "legend_position": "right", **fonts()},
        bokeh={"width": w + 120, "height": h},
        mpl={"fig_inches": STYLE["plot_inches"]},
    )
