"""Figures of correlation results: matrix image, layer-pair heatmap, bars and histogram.

The DataFrames are the ones of :mod:`cnnexplore_nb.tables`, whose column names carry the two
model names as prefixes (``{A}_layer``, ``{B}_layer``); the prefixes are read from the columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd

from .._checks import check_choice, check_positive_int
from ._style import STYLE, as_array, cell_labels, fonts, styled

__all__ = [
    "correlation_hist",
    "correlation_image",
    "layer_columns",
    "layer_heatmap",
    "percent_bars",
]


def layer_columns(df: pd.DataFrame) -> tuple[str, str]:
    """The ``(A_layer, B_layer)`` columns of a tables DataFrame (checked)."""
    missing = [c for c in ("A_layer", "B_layer") if c not in df.columns]
    if missing:
        raise ValueError(
            f"expected a correlation table with columns 'A_layer' and 'B_layer', got columns "
            f"{list(df.columns)}"
        )
    return "A_layer", "B_layer"


def _layer_dims(names: tuple[str, str] | None) -> tuple[hv.Dimension, hv.Dimension]:
    """Key dimensions of the two layer axes, labelled with the model names."""
    na, nb = names or ("A", "B")
    return hv.Dimension("A_layer", label=f"{na} layer"), hv.Dimension(
        "B_layer", label=f"{nb} layer"
    )


def _block_mean(mat: np.ndarray, fy: int, fx: int) -> np.ndarray:
    """Mean over (fy, fx) blocks ignoring NaN (all-NaN blocks stay NaN), padding the edges."""
    ky, kx = mat.shape
    ny, nx = -(-ky // fy), -(-kx // fx)
    pad = np.full((ny * fy, nx * fx), np.nan)
    pad[:ky, :kx] = mat
    blocks = pad.reshape(ny, fy, nx, fx)
    ok = np.isfinite(blocks)
    total = np.where(ok, blocks, 0.0).sum(axis=(1, 3))
    count = ok.sum(axis=(1, 3))
    out = np.full(total.shape, np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out


def correlation_image(
    matrix: Any,
    *,
    names: tuple[str, str] = ("A", "B"),
    signed: bool = True,
    max_size: int = 512,
    title: str = "",
) -> hv.Image:
    """A correlation matrix as an image: row ``i`` (map i of A) at the top, column ``j`` of B.

    Parameters
    ----------
    matrix : array of shape (K_a, K_b)
        Correlations (NaN for undefined pairs is drawn transparent).
    signed : bool
        Diverging colours over [-1, 1] for signed r; else [0, 1] for |r|.
    max_size : int
        Larger matrices are decimated by block means to at most ``max_size`` cells per side
        (the title says so), so huge layers stay light in the browser and in files.

    Notes
    -----
    Cell (x=j, y=i) holds ``matrix[i, j]``; the y axis is inverted so map 0 is at the top.
    """
    mat = as_array(matrix, "matrix", (2,))
    max_size = check_positive_int("max_size", max_size)
    ka, kb = mat.shape
    fy, fx = -(-ka // max_size), -(-kb // max_size)
    if fy > 1 or fx > 1:
        mat = _block_mean(mat, fy, fx)
        title = (title + " " if title else "") + f"(block means {fy}x{fx})"
    ny, nx = mat.shape
    bounds = (-0.5, -0.5, nx * fx - 0.5, ny * fy - 0.5)
    vdim = "r" if signed else "|r|"
    # hv.Image puts array row 0 at the top of the bounds; flip so row i sits at y = i
    img = hv.Image(
        np.flipud(mat), bounds=bounds, kdims=[f"{names[1]} map", f"{names[0]} map"], vdims=[vdim]
    )
    clim = (-1.0, 1.0) if signed else (0.0, 1.0)
    cmap = STYLE["diverging_cmap"] if signed else STYLE["cmap"]
    w, h = STYLE["plot_px"]
    return styled(
        img,
        {
            "cmap": cmap,
            "clim": clim,
            "colorbar": True,
            "invert_yaxis": True,
            "title": title,
            **fonts(),
        },
        bokeh={"frame_width": h, "frame_height": h, "tools": ["hover"]},
        mpl={"fig_inches": STYLE["plot_inches"][1], "aspect": "square"},
    )


def layer_heatmap(
    stats: pd.DataFrame,
    value: str = "mean",
    *,
    labels: bool = True,
    rows: Sequence[str] | None = None,
    cols: Sequence[str] | None = None,
    title: str = "",
    names: tuple[str, str] | None = None,
) -> hv.Overlay:
    """Heatmap of one statistic per (layer of A, layer of B), e.g. the mean max-|r|.

    Parameters
    ----------
    stats : DataFrame
        ``CorrelationTables.stats`` (columns ``A_layer``, ``B_layer`` and ``value``).
    value : str
        Column shown as colour (``"mean"``, ``"median"``, ``"percent"``, ``"count"``...).
    labels : bool
        Print the value in each cell.
    rows, cols : sequence of str, optional
        Order of the layers of A (rows, top to bottom) and of B (columns, left to right);
        default: order of first appearance in ``stats``. Cell (x=j, y=i) is (cols[j], rows[i]).
    names : (str, str), optional
        Model names for the axis labels (e.g. ``tables.names``).
    """
    la, lb = layer_columns(stats)
    dim_a, dim_b = _layer_dims(names)
    check_choice("stats column", value, [str(c) for c in stats.columns if c not in (la, lb)])
    names_a, names_b = stats[la].astype(str), stats[lb].astype(str)
    order_a = [str(r) for r in rows] if rows is not None else list(dict.fromkeys(names_a))
    order_b = [str(c) for c in cols] if cols is not None else list(dict.fromkeys(names_b))
    grid = np.full((len(order_a), len(order_b)), np.nan)
    pos_a = {n: i for i, n in enumerate(order_a)}
    pos_b = {n: j for j, n in enumerate(order_b)}
    for na, nb, v in zip(names_a, names_b, stats[value].to_numpy(float)):
        if na in pos_a and nb in pos_b:
            grid[pos_a[na], pos_b[nb]] = v
    ny, nx = grid.shape
    # integer cells (x = column j of B, y = row i of A, row 0 at the top) with layer-name ticks
    heat = hv.Image(
        np.flipud(grid),
        bounds=(-0.5, -0.5, nx - 0.5, ny - 0.5),
        kdims=[dim_b, dim_a],
        vdims=[value],
    )
    finite = grid[np.isfinite(grid)]
    top = 1.0 if value in ("mean", "median", "max", "min") else float(finite.max(initial=0) or 1)
    h = STYLE["plot_px"][1]
    heat = styled(
        heat,
        {
            "cmap": STYLE["cmap"],
            "clim": (0.0, top),
            "colorbar": True,
            "invert_yaxis": True,
            "xticks": list(enumerate(order_b)),
            "yticks": list(enumerate(order_a)),
            "xrotation": 45,
            "title": title,
            **fonts(),
        },
        bokeh={"frame_width": h, "frame_height": h, "tools": ["hover", "tap"]},
        mpl={"fig_inches": STYLE["plot_inches"][1], "aspect": "square"},
    )
    if not labels:
        return hv.Overlay([heat])
    fmt = "{:.0f}" if value in ("count", "n_maps") else "{:.2f}"
    jj, ii = np.meshgrid(np.arange(nx), np.arange(ny))
    text = [fmt.format(v) if np.isfinite(v) else "" for v in grid.ravel()]
    return heat * cell_labels(jj, ii, text, [dim_b, dim_a], size=7)


def percent_bars(
    stats: pd.DataFrame,
    value: str = "percent",
    *,
    diagonal_only: bool = True,
    title: str = "",
    names: tuple[str, str] | None = None,
) -> hv.Bars:
    """Bar chart of the % of well-correlated maps per layer (``value`` column of ``stats``).

    With ``diagonal_only`` only rows comparing a layer with itself are shown (one bar per
    layer); otherwise one bar per (layer of A, layer of B).
    """
    la, lb = layer_columns(stats)
    dim_a, dim_b = _layer_dims(names)
    check_choice("stats column", value, [str(c) for c in stats.columns if c not in (la, lb)])
    df = stats.copy()
    df[la], df[lb] = df[la].astype(str), df[lb].astype(str)
    if diagonal_only:
        df = df[df[la] == df[lb]]
        if df.empty:
            raise ValueError(
                "diagonal_only=True needs rows with the same layer on both sides; "
                "use diagonal_only=False for comparisons between different layers"
            )
        bars = hv.Bars(df[[la, value]].astype({value: float}), kdims=[dim_a], vdims=[value])
    else:
        bars = hv.Bars(
            df[[la, lb, value]].astype({value: float}), kdims=[dim_a, dim_b], vdims=[value]
        )
    w, h = STYLE["plot_px"]
    return styled(
        bars,
        {
            "title": title,
            "xrotation": 45,
            "ylim": (0, 100) if value == "percent" else None,
            **fonts(),
        },
        bokeh={"frame_width": w, "frame_height": h, "tools": ["hover"]},
        mpl={"fig_inches": STYLE["plot_inches"]},
    )


def correlation_hist(
    values: Any,
    *,
    bins: int = 40,
    value_range: tuple[float, float] = (0.0, 1.0),
    threshold: float | None = None,
    label: str = "|r|",
    title: str = "",
) -> hv.Overlay:
    """Histogram of correlation values (NaN dropped), with an optional threshold line."""
    arr = as_array(np.asarray(values, dtype=float), "values", (1, 2)).ravel()
    arr = arr[np.isfinite(arr)]
    bins = check_positive_int("bins", bins)
    counts, edges = np.histogram(arr, bins=bins, range=value_range)
    hist = hv.Histogram((edges, counts), kdims=[label], vdims=["count"])
    w, h = STYLE["plot_px"]
    hist = styled(
        hist,
        {"title": title or f"n = {arr.size}", **fonts()},
        bokeh={"frame_width": w, "frame_height": h, "tools": ["hover"]},
        mpl={"fig_inches": STYLE["plot_inches"]},
    )
    parts = [hist]
    if threshold is not None:
        line = hv.VLine(float(threshold))
        parts.append(styled(line, {"color": STYLE["highlight_color"]}))
    return hv.Overlay(parts)
