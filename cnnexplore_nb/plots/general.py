"""Generic figures the notebooks need: error-bar curves, training history, segmentation
panels and 2-D embeddings.

Series are labelled with display names (:func:`~cnnexplore_nb.plots.names.series_label`:
``l2t_www`` -> "L2T-www", ``val_iou`` -> "validation IoU", pair ``4-0`` -> "source block 4 →
target conv 0") and told apart by colour and marker (and line style beyond ten series);
ordered series (layer depth) take an ordered palette.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import holoviews as hv
import numpy as np
import pandas as pd

from ._style import STYLE, as_array, fonts, styled
from .maps import _grid_layout, map_image
from .names import display_name, pair_name, pair_title, series_label
from .style import bokeh_series, mpl_series, series_styles

__all__ = ["embedding_scatter", "errorbar_curves", "segmentation_figure", "training_history"]


def _need_columns(df: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"{what}: missing column(s) {missing}; got columns {list(df.columns)}")


def _is_categorical(values: np.ndarray, logx: bool) -> bool:
    """Few integer values (N = 5/10/15, a module number): ticks only at the values."""
    v = values[np.isfinite(values)]
    return (not logx) and 0 < len(v) <= 8 and bool(np.all(v == np.round(v)))


def _tick(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


_MAX_MARKS = 13  # markers / error bars drawn per series at most (e.g. every 5th of 61 epochs)


def series_elements(
    xs: np.ndarray,
    ys: np.ndarray,
    *,
    kdim: hv.Dimension,
    vdim: hv.Dimension,
    label: str,
    style: dict[str, str],
    err: np.ndarray | None = None,
    markers: bool = True,
) -> list[Any]:
    """Curve (+ markers, + error bars) of one series in its style, for both backends.

    A dense series (more than ``_MAX_MARKS`` points) keeps every point on the curve but
    draws markers and error bars at evenly spaced points only, so they do not merge.
    """
    curve = hv.Curve((xs, ys), kdims=[kdim], vdims=[vdim], label=label)
    if len(xs) > _MAX_MARKS:
        keep = np.unique(np.linspace(0, len(xs) - 1, _MAX_MARKS).round().astype(int))
        xs, ys = np.asarray(xs)[keep], np.asarray(ys)[keep]
        err = None if err is None else np.asarray(err)[keep]
    parts = [
        styled(
            curve, {}, bokeh={**bokeh_series(style, "line"), "tools": ["hover"]},
            mpl=mpl_series(style, "line"),
        )
    ]  # fmt: skip
    if markers:
        dots = hv.Scatter((xs, ys), kdims=[kdim], vdims=[vdim], label=label)
        parts.append(
            styled(dots, {}, bokeh={**bokeh_series(style, "marker"), "size": 6},
                   mpl={**mpl_series(style, "marker"), "s": 16})
        )  # fmt: skip
    if err is not None:
        bars = hv.ErrorBars((xs, ys, err), kdims=[kdim], vdims=[vdim, "err"], label=label)
        parts.append(
            styled(bars, {"color": style["color"]},
                   mpl={"edgecolor": style["color"], "capsize": 2})
        )  # fmt: skip
    return parts


def errorbar_curves(
    df: pd.DataFrame,
    x: str,
    y: str,
    by: str,
    *,
    err: Literal["std", "sem"] | str = "std",
    title: str = "",
    logx: bool = False,
    xlabel: str | None = None,
    ylabel: str | None = None,
    categorical: bool | None = None,
    ordered: bool = False,
) -> hv.Overlay:
    """Mean ± error curves of ``y`` against ``x``, one per value of ``by``.

    Parameters
    ----------
    df : DataFrame
        Tidy results, one row per run (e.g. columns ``n``, ``accuracy``, ``method``,
        ``seed``) or already aggregated rows when ``err`` names a column.
    err : "std", "sem" or a column name
        Error bar half-length: the standard deviation or standard error of the runs at each
        (by, x), or an existing column of ``df``.
    xlabel, ylabel : str, optional
        Axis labels (default the display names of ``x`` and ``y``).
    categorical : bool, optional
        Put the x values at evenly spaced categories (ticks only at the values); default
        when ``x`` holds at most 8 integers (N = 5/10/15 samples per class).
    ordered : bool
        The groups are ordered (layer depth, epochs): an ordered palette.

    Notes
    -----
    Series are dodged sideways (a quarter of the x spacing in all) so their error bars do
    not hide one another.
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
    keys = [k for k in dict.fromkeys(df[by]) if k in set(agg[by])]  # order of appearance
    xvals = np.unique(agg[x].to_numpy(float))
    if categorical is None:
        categorical = _is_categorical(xvals, logx)
    kdim = hv.Dimension(x, label=xlabel or display_name(x))
    vdim = hv.Dimension(y, label=ylabel or display_name(y))
    if categorical:
        where = {float(v): float(i) for i, v in enumerate(xvals)}
        step = 1.0
    else:
        where = None
        step = float(np.min(np.diff(xvals))) if len(xvals) > 1 else 1.0
    width = 0.0 if logx else 0.25 * step
    styles = series_styles(len(keys), ordered=ordered)
    labels, legend = _labels(by, keys)
    curves = []
    for i, (key, label, style) in enumerate(zip(keys, labels, styles)):
        sub = agg[agg[by] == key].sort_values(x)
        xs, ys, es = (sub[c].to_numpy(float) for c in (x, y, "err"))
        if where is not None:
            xs = np.array([where[float(v)] for v in xs])
        if len(keys) > 1:
            xs = xs + width * i / (len(keys) - 1) - width / 2
        curves += series_elements(xs, ys, kdim=kdim, vdim=vdim, label=label, style=style, err=es)
    w, h = STYLE["plot_px"]
    opts: dict[str, Any] = {"title": title, "logx": logx, "padding": 0.08, **fonts()}
    if legend:
        opts["legend_opts"] = legend
    if where is not None:
        opts["xticks"] = [(i, _tick(v)) for i, v in enumerate(xvals)]
    return styled(
        hv.Overlay(curves),
        opts,
        bokeh={"width": w + 160, "height": h, "legend_position": "right"},
        mpl={"fig_inches": STYLE["plot_inches"], "legend_position": "right"},
    )


_PAIR = re.compile(r"\s*\d+\s*-\s*\d+\s*")


def _labels(column: str | None, keys: Sequence[Any]) -> tuple[list[str], dict[str, Any]]:
    """Legend labels of the series and the legend options: transfer pairs get short labels
    ("4 → 0") under a title saying what the numbers are."""
    if keys and all(_PAIR.fullmatch(str(k)) for k in keys):
        return [pair_name(str(k), short=True) for k in keys], {"title": pair_title()}
    return [series_label(column, k) for k in keys], {}


def _common_label(names: list[str]) -> str | None:
    if len(names) == 1:
        return names[0]
    low = [n.lower() for n in names]
    if all(n.endswith("loss") or n == "cross-entropy" for n in low):
        return "loss"
    if all("accuracy" in n for n in low):
        return "accuracy"
    return None


def training_history(
    history: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    x: str = "epoch",
    title: str = "",
    xlabel: str | None = None,
    ylabel: str | None = None,
    ordered: bool = False,
    markers: bool | None = None,
) -> hv.Overlay:
    """Curves of training metrics (e.g. loss, validation IoU) against ``x``, one per metric.

    Parameters
    ----------
    history : DataFrame
        Wide: ``x`` and one column per series (metrics, pair ids, methods...).
    metrics : sequence of str, optional
        Columns to draw (default every numeric column besides ``x``); legends show their
        display names (``val_iou`` -> "validation IoU", ``l2t_ww`` -> "L2T-ww").
    ylabel : str, optional
        Default: the metric's name for one metric, "loss" / "accuracy" when all are losses
        or accuracies, else "value" (pass one: the figure checker flags "value").
    ordered : bool
        Ordered series (channels, depth): an ordered palette.
    markers : bool, optional
        Markers on the curves (default when there are at most 30 points).
    """
    _need_columns(history, [x], "training_history")
    if metrics is None:
        metrics = [
            c for c in history.columns if c != x and pd.api.types.is_numeric_dtype(history[c])
        ]
    _need_columns(history, list(metrics), "training_history metrics")
    if not metrics:
        raise ValueError(f"no numeric metric columns besides {x!r} in {list(history.columns)}")
    labels, legend = _labels(None, list(metrics))
    kdim = hv.Dimension(x, label=xlabel or display_name(x))
    vdim = hv.Dimension("value", label=ylabel or _common_label(labels) or "value")
    if markers is None:
        markers = len(history) <= 30
    styles = series_styles(len(metrics), ordered=ordered)
    xs = history[x].to_numpy(float)
    curves = []
    for m, label, style in zip(metrics, labels, styles):
        curves += series_elements(
            xs, history[m].to_numpy(float), kdim=kdim, vdim=vdim, label=label, style=style,
            markers=markers,
        )  # fmt: skip
    w, h = STYLE["plot_px"]
    return styled(
        hv.Overlay(curves),
        {"title": title, **({"legend_opts": legend} if legend else {}), **fonts()},
        bokeh={"width": w + 160, "height": h, "legend_position": "right"},
        mpl={"fig_inches": STYLE["plot_inches"], "legend_position": "right"},
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
    ordered: bool | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
) -> hv.Overlay:
    """2-D embedding (e.g. PCA/UMAP of maps) as points coloured by ``by``, one labelled
    legend entry per group (in order of first appearance).

    ``ordered`` (default: ``by == "layer"``, layers come in depth order) uses an ordered
    palette; axes default to "component 1" / "component 2" for the ``x``/``y`` columns of
    :func:`~cnnexplore_nb.similarity.map_embedding`.
    """
    _need_columns(df, [x, y, by, *hover], "embedding_scatter")
    data = df[[x, y, by, *hover]].copy()
    data[by] = data[by].astype(str)
    keys = list(dict.fromkeys(data[by]))
    if ordered is None:
        ordered = by == "layer"
    styles = series_styles(len(keys), ordered=ordered)
    default = {"x": "component 1", "y": "component 2"}
    kx = hv.Dimension(x, label=xlabel or default.get(x) or display_name(x))
    ky = hv.Dimension(y, label=ylabel or default.get(y) or display_name(y))
    vd = [hv.Dimension(by, label=display_name(by))] + [
        hv.Dimension(c, label=display_name(c)) for c in hover
    ]
    w, h = STYLE["plot_px"]
    layers = []
    for key, style in zip(keys, styles):
        pts = hv.Points(
            data[data[by] == key], kdims=[kx, ky], vdims=vd, label=series_label(by, key)
        )
        layers.append(
            styled(
                pts,
                {},
                bokeh={**bokeh_series(style, "marker"), "size": 6, "tools": ["hover"]},
                mpl={**mpl_series(style, "marker"), "s": 12},
            )
        )
    return styled(
        hv.Overlay(layers),
        {"title": title, **fonts()},
        bokeh={"width": w + 160, "height": h, "legend_position": "right"},
        mpl={"fig_inches": STYLE["plot_inches"], "legend_position": "right"},
    )
