"""Figures of the fundamentals and pruning notebooks: small value grids, line curves,
1-D sequences and a labelled matrix heatmap (data in, HoloViews object out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd

from ._style import STYLE, as_array, cell_labels, fonts, styled
from .general import _need_columns
from .maps import _grid_layout

__all__ = ["grid_of", "line_curves", "matrix_heatmap", "sequence_bars", "value_grid"]


def value_grid(
    values: Any, *, title: str = "", fmt: str = "{:.2f}", cmap: str | None = None
) -> hv.Overlay:
    """A small matrix (patch, kernel, pooled map) as coloured cells with their values printed.

    Parameters
    ----------
    values : array of shape (H, W)
        Row 0 is drawn at the top.
    fmt : str
        Format of the printed values.
    """
    arr = as_array(values, "values", (2,))
    h, w = arr.shape
    img = hv.Image(arr, bounds=(0, 0, w, h), kdims=["x", "y"], vdims=["value"])  # row 0 on top
    side = STYLE["panel_px"] * max(h, w) // 4 + 60
    img = styled(
        img,
        {"cmap": cmap or STYLE["cmap"], "title": title, "xaxis": None, "yaxis": None, **fonts()},
        bokeh={"frame_width": side * w // max(h, w), "frame_height": side * h // max(h, w)},
        mpl={"fig_inches": STYLE["panel_inches"] * max(1.0, max(h, w) / 3), "aspect": w / h},
    )
    xs, ys = np.meshgrid(np.arange(w) + 0.5, h - 0.5 - np.arange(h))
    text = [fmt.format(v) for v in arr.ravel()]
    return img * cell_labels(xs, ys, text, ["x", "y"], size=8)


def line_curves(
    df: pd.DataFrame,
    x: str,
    y: str,
    by: str | None = None,
    *,
    title: str = "",
    xlabel: str | None = None,
    ylabel: str | None = None,
    invert_x: bool = False,
) -> hv.Overlay:
    """Line-and-marker curves of ``y`` against ``x``, one per value of ``by``.

    Parameters
    ----------
    df : DataFrame
        Tidy rows; each ``by`` group is sorted by ``x``.
    by : str, optional
        Grouping column (legend entries); one curve when omitted.
    invert_x : bool
        Draw ``x`` decreasing to the right (e.g. a threshold going down).
    """
    _need_columns(df, [x, y] + ([by] if by else []), "line_curves")
    groups = [(None, df)] if by is None else [(k, df[df[by] == k]) for k in dict.fromkeys(df[by])]
    parts = []
    for key, sub in groups:
        sub = sub.sort_values(x)
        data = (sub[x].to_numpy(float), sub[y].to_numpy(float))
        label = "" if key is None else str(key)
        curve = hv.Curve(data, kdims=[x], vdims=[y], label=label)
        pts = hv.Scatter(data, kdims=[x], vdims=[y], label=label)
        parts += [
            styled(curve, {}, bokeh={"tools": ["hover"]}),
            styled(pts, {}, bokeh={"size": 6}, mpl={"s": 15}),
        ]
    w, h = STYLE["plot_px"]
    return styled(
        hv.Overlay(parts),
        {
            "title": title,
            "xlabel": xlabel or x,
            "ylabel": ylabel or y,
            "invert_xaxis": invert_x,
            "show_legend": by is not None,
            "legend_position": "right",
            **fonts(),
        },
        bokeh={"width": w + (120 if by else 0), "height": h},
        mpl={"fig_inches": STYLE["plot_inches"]},
    )


def sequence_bars(values: Mapping[str, Sequence[float]], *, title: str = "") -> hv.Layout:
    """1-D sequences (signal, mask, correlation...) as bar charts stacked in one column.

    Parameters
    ----------
    values : dict of name -> 1-D array
        Bars at positions ``offset, offset + 1, ...``; give ``(offset, array)`` as the value
        to shift a sequence (e.g. a valid correlation starts at ``len(w) // 2``). NaN values
        are drawn as missing bars.
    """
    if not values:
        raise ValueError("values must hold at least one sequence")
    w, _ = STYLE["plot_px"]
    panels = []
    for i, (name, seq) in enumerate(values.items()):
        offset = 0
        if isinstance(seq, tuple) and len(seq) == 2 and np.ndim(seq[1]) == 1:
            offset, seq = int(seq[0]), seq[1]
        arr = as_array(seq, name, (1,))
        pos = np.arange(len(arr)) + offset
        keep = np.isfinite(arr)
        bars = hv.Bars((pos[keep].astype(str), arr[keep]), kdims=["position"], vdims=[name])
        panels.append(
            styled(
                bars,
                {"title": title if i == 0 else "", "ylabel": name, **fonts()},
                bokeh={"width": w + 80, "height": 150, "tools": ["hover"]},
                mpl={"fig_inches": (STYLE["plot_inches"][0] * 1.3, 1.4)},
            )
        )
    return hv.Layout(panels).cols(1).opts(shared_axes=False, backend="bokeh")


def matrix_heatmap(
    df: pd.DataFrame, *, value: str = "value", title: str = "", clim: tuple | None = (0.0, 1.0)
) -> hv.Overlay:
    """A labelled heatmap of a square-ish DataFrame (index = rows top to bottom, columns =
    left to right), e.g. :func:`cnnexplore_nb.embedding.cka_matrix`, values printed."""
    grid = df.to_numpy(float)
    rows, cols = [str(r) for r in df.index], [str(c) for c in df.columns]
    ny, nx = grid.shape
    ylab = str(df.index.name or "rows")
    xlab = str(df.columns.name or "columns")
    heat = hv.Image(
        np.flipud(grid), bounds=(-0.5, -0.5, nx - 0.5, ny - 0.5), kdims=[xlab, ylab], vdims=[value]
    )
    opts: dict[str, Any] = {
        "cmap": STYLE["cmap"],
        "colorbar": True,
        "invert_yaxis": True,
        "xticks": list(enumerate(cols)),
        "yticks": list(enumerate(rows)),
        "xrotation": 45,
        "title": title,
        **fonts(),
    }
    if clim is not None:
        opts["clim"] = tuple(clim)
    h = STYLE["plot_px"][1]
    heat = styled(
        heat,
        opts,
        bokeh={"frame_width": h, "frame_height": h, "tools": ["hover"]},
        mpl={"fig_inches": STYLE["plot_inches"][1], "aspect": "square"},
    )
    jj, ii = np.meshgrid(np.arange(nx), np.arange(ny))
    text = [f"{v:.2f}" if np.isfinite(v) else "" for v in grid.ravel()]
    return heat * cell_labels(jj, ii, text, [xlab, ylab], size=7)


def grid_of(panels: Sequence[Any], ncols: int) -> hv.Layout:
    """Panels (e.g. several :func:`value_grid`) in a grid with independent axes."""
    return _grid_layout(list(panels), ncols)
