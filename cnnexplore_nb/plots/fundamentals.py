"""Figures of the fundamentals and pruning notebooks: small value grids, line curves,
1-D sequences and a labelled matrix heatmap (data in, HoloViews object out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd

from ._style import STYLE, as_array, cell_labels, fonts, styled, text_colors
from .general import _need_columns, series_elements
from .maps import _grid_layout
from .names import display_name, layer_names, series_label
from .style import series_styles

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
    finite = arr[np.isfinite(arr)]
    clim = (float(finite.min(initial=0.0)), float(finite.max(initial=1.0)))
    colors = text_colors(arr.ravel(), cmap or STYLE["cmap"], clim)
    return img * cell_labels(xs, ys, text, ["x", "y"], size=8, colors=colors)


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
    ordered: bool = False,
) -> hv.Overlay:
    """Line-and-marker curves of ``y`` against ``x``, one per value of ``by``.

    Parameters
    ----------
    df : DataFrame
        Tidy rows; each ``by`` group is sorted by ``x``.
    by : str, optional
        Grouping column (legend entries, display names of its values); one curve when
        omitted.
    xlabel, ylabel : str, optional
        Axis labels (default the display names of ``x`` and ``y``).
    invert_x : bool
        Draw ``x`` decreasing to the right (e.g. a threshold going down).
    ordered : bool
        Ordered groups: an ordered palette.
    """
    _need_columns(df, [x, y] + ([by] if by else []), "line_curves")
    groups = [(None, df)] if by is None else [(k, df[df[by] == k]) for k in dict.fromkeys(df[by])]
    kdim = hv.Dimension(x, label=xlabel or display_name(x))
    vdim = hv.Dimension(y, label=ylabel or display_name(y))
    parts = []
    for (key, sub), style in zip(groups, series_styles(len(groups), ordered=ordered)):
        sub = sub.sort_values(x)
        label = "" if key is None else series_label(by, key)
        parts += series_elements(
            sub[x].to_numpy(float), sub[y].to_numpy(float), kdim=kdim, vdim=vdim, label=label,
            style=style,
        )  # fmt: skip
    w, h = STYLE["plot_px"]
    return styled(
        hv.Overlay(parts),
        {
            "title": title,
            "xlabel": kdim.label,
            "ylabel": vdim.label,
            "invert_xaxis": invert_x,
            "show_legend": by is not None,
            **fonts(),
        },
        bokeh={"width": w + (160 if by else 0), "height": h, "legend_position": "right"},
        mpl={"fig_inches": STYLE["plot_inches"], "legend_position": "right"},
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
    left to right), e.g. :func:`cnnexplore_nb.similarity.cka_matrix`, values printed.

    Row and column labels that are built-in layer paths show their display names; the
    index and column names label the axes and ``value`` the colour bar.
    """
    grid = df.to_numpy(float)
    rows = list(layer_names([str(r) for r in df.index]).values())
    cols = list(layer_names([str(c) for c in df.columns]).values())
    ny, nx = grid.shape
    ylab = display_name(df.index.name or "rows")
    xlab = display_name(df.columns.name or "columns")
    if xlab == ylab:
        xlab = f"{xlab} (columns)"
    kx, ky = hv.Dimension("col", label=xlab), hv.Dimension("row", label=ylab)
    vdim = hv.Dimension(value, label=display_name(value))
    heat = hv.Image(np.flipud(grid), bounds=(-0.5, -0.5, nx - 0.5, ny - 0.5), kdims=[kx, ky],
                    vdims=[vdim])  # fmt: skip
    opts: dict[str, Any] = {
        "cmap": STYLE["cmap"],
        "colorbar": True,
        "invert_yaxis": True,
        "xticks": list(enumerate(cols)),
        "yticks": list(enumerate(rows)),
        "title": title,
        **fonts(),
    }
    if clim is not None:
        opts["clim"] = tuple(clim)
    h = STYLE["plot_px"][1]
    heat = styled(
        heat,
        opts,
        bokeh={"frame_width": h, "frame_height": h, "tools": ["hover"], "xrotation": 45},
        mpl={"fig_inches": STYLE["plot_inches"][1], "aspect": "square"},
    )
    jj, ii = np.meshgrid(np.arange(nx), np.arange(ny))
    text = [f"{v:.2f}" if np.isfinite(v) else "" for v in grid.ravel()]
    finite = grid[np.isfinite(grid)]
    lim = clim if clim is not None else (finite.min(initial=0.0), finite.max(initial=1.0))
    colors = text_colors(grid.ravel(), STYLE["cmap"], lim)
    return heat * cell_labels(jj, ii, text, [kx, ky], size=7, colors=colors)


def grid_of(panels: Sequence[Any], ncols: int) -> hv.Layout:
    """Panels (e.g. several :func:`value_grid`) in a grid with independent axes.

    A panel that is itself a grid (e.g. a :func:`~cnnexplore_nb.plots.kernel_grid`) keeps
    its rows: ``grid_of([grid_a, grid_b], 1)`` stacks the two grids (HoloViews would merge
    them into one long list of panels).
    """
    items = list(panels)
    if not any(isinstance(p, (hv.Layout, hv.NdLayout)) for p in items):
        return _grid_layout(items, ncols)
    rows: list[list[Any]] = []
    line: list[Any] = []
    for p in items:
        if isinstance(p, (hv.Layout, hv.NdLayout)):
            if line:
                rows.append(line)
                line = []
            inner = list(p.values()) if isinstance(p, hv.NdLayout) else list(p)
            cols = int(getattr(p, "_max_cols", None) or len(inner))
            rows += [inner[i : i + cols] for i in range(0, len(inner), cols)]
        else:
            line.append(p)
            if len(line) == ncols:
                rows.append(line)
                line = []
    if line:
        rows.append(line)
    width = max(len(r) for r in rows)
    flat = [q for r in rows for q in r + [hv.Empty()] * (width - len(r))]
    return _grid_layout(flat, width)
