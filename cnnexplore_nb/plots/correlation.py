"""Figures of correlation results: matrix image, layer-pair heatmap, bars and histogram.

The DataFrames are those of :mod:`cnnexplore_nb.similarity.tables` (neutral columns
``A_layer``, ``B_layer``, statistics such as ``mean``, ``percent``, ``mean_max``); the
figures show display names (:mod:`cnnexplore_nb.plots.names`): "module 3" for
``conv_module3``, "% maps with max |r| ≥ 0.8" for ``percent``. A ``CorrelationTables`` can be
passed in place of its ``stats``: its names, threshold and measure then label the figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd

from .._checks import check_choice, check_positive_int
from ._style import STYLE, as_array, cell_labels, fonts, styled, text_colors
from .names import display_name, layer_names, measure_symbol, model_names, statistic_name

__all__ = [
    "correlation_hist",
    "correlation_image",
    "for_print",
    "layer_columns",
    "layer_heatmap",
    "percent_bars",
    "statistic_range",
]

_UNIT_STATS = ("mean", "median", "max", "min", "mean_max", "median_max", "std")


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
    """Key dimensions of the two layer axes, labelled with the model names (distinct labels:
    the rows are the maps' layers, the columns their partners' layers)."""
    na, nb = model_names(names)
    la, lb = f"{na} layer", f"{nb} layer"
    if la == lb:
        lb = f"{nb} partner layer"
    return hv.Dimension("A_layer", label=la), hv.Dimension("B_layer", label=lb)


def _unpack(stats: Any, names: Any, threshold: Any, measure: Any) -> tuple:
    """Accept a CorrelationTables in place of its ``stats`` (names, threshold, measure)."""
    if hasattr(stats, "stats") and hasattr(stats, "names"):
        tables = stats
        names = names or tuple(tables.names)
        threshold = tables.threshold if threshold is None else threshold
        measure = measure or tables.measure
        stats = tables.stats
    attrs = getattr(stats, "attrs", {}) or {}
    threshold = attrs.get("threshold") if threshold is None else threshold
    return stats, names, threshold, measure or attrs.get("measure") or "pearson"


def statistic_range(value: str, stats: pd.DataFrame | None = None) -> tuple[float, float] | None:
    """Fixed colour/axis range of a statistic, so that figures of it compare: [0, 1] for
    max-|r| statistics, [0, 100] for percentages, [0, maps in the layer] for counts."""
    base = value.rsplit("_", 1)[0] if value.endswith(("_mean", "_std")) else value
    if value.endswith("_std"):
        return None
    if base in _UNIT_STATS and base != "std":
        return (0.0, 1.0)
    if base == "percent":
        return (0.0, 100.0)
    if base in ("count", "n_maps") and stats is not None and "n_maps" in stats.columns:
        top = float(np.nanmax(stats["n_maps"].to_numpy(float), initial=0.0))
        return (0.0, top or 1.0)
    return None


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
    measure: str = "pearson",
) -> hv.Image:
    """A correlation matrix as an image: row ``i`` (map i of A) at the top, column ``j`` of B.

    Parameters
    ----------
    matrix : array of shape (K_a, K_b)
        Correlations (NaN for undefined pairs is drawn transparent).
    names : (str, str)
        What the rows and columns are maps of (model names or layer paths; layer paths are
        shown by their display names).
    signed : bool
        Diverging colours over [-1, 1] for signed r; else [0, 1] for |r|.
    max_size : int
        Larger matrices are decimated by block means to at most ``max_size`` cells per side
        (the title says so), so huge layers stay light in the browser and in files.
    measure : str
        Names the colour bar ("r", "cos"...).

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
    sym = measure_symbol(measure)
    vdim = hv.Dimension("r" if signed else "|r|", label=sym if signed else f"|{sym}|")
    # layer paths to their names first ("conv_module1" -> "module 1"), then the sides
    na, nb = model_names([display_name(str(n), "layer") for n in (names or ("A", "B"))])
    ya, xb = f"map of {na}", f"map of {nb}"
    if ya == xb:
        ya, xb = f"{na} map i", f"{nb} map j"
    # hv.Image puts array row 0 at the top of the bounds; flip so row i sits at y = i
    img = hv.Image(
        np.flipud(mat),
        bounds=bounds,
        kdims=[hv.Dimension("map_b", label=xb), hv.Dimension("map_a", label=ya)],
        vdims=[vdim],
    )
    clim = (-1.0, 1.0) if signed else (0.0, 1.0)
    cmap = STYLE["diverging_cmap"] if signed else STYLE["cmap"]
    h = STYLE["plot_px"][1]
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
    stats: Any,
    value: str = "percent",
    *,
    labels: bool = True,
    rows: Sequence[str] | None = None,
    cols: Sequence[str] | None = None,
    title: str = "",
    names: tuple[str, str] | None = None,
    threshold: float | None = None,
    measure: str | None = None,
    clim: tuple[float, float] | None = None,
) -> hv.Overlay:
    """Heatmap of one statistic per (layer of A, layer of B), e.g. the % of well-correlated
    maps or the mean max-|r|.

    Parameters
    ----------
    stats : DataFrame or CorrelationTables
        ``CorrelationTables.stats`` (columns ``A_layer``, ``B_layer`` and ``value``), a
        ``layer_pair_summary`` / aggregated summary, or the tables themselves.
    value : str
        Column shown as colour (``"percent"``, ``"mean"``, ``"count"``, ``"mean_max"``,
        ``"mean_max_mean"``...); its display name labels the colour bar.
    labels : bool
        Print the value in each cell.
    rows, cols : sequence of str, optional
        Order of the layers of A (rows, top to bottom) and of B (columns, left to right);
        default: order of first appearance in ``stats``.
    names : (str, str), optional
        Model names for the axis labels (e.g. ``tables.names``).
    threshold, measure : optional
        Name the statistic ("% maps with max |r| ≥ 0.8"); taken from the tables if given.
    clim : (low, high), optional
        Colour range; default the statistic's fixed range (:func:`statistic_range`), so
        heatmaps of the same statistic compare.

    Returns
    -------
    hv.Overlay
        An ``hv.HeatMap`` (categorical axes with the layers' display names; hover names the
        layers) and, with ``labels``, the value labels. Cell (x=j, y=i) is (cols[j], rows[i]).
    """
    stats, names, threshold, measure = _unpack(stats, names, threshold, measure)
    la, lb = layer_columns(stats)
    dim_a, dim_b = _layer_dims(names)
    check_choice("stats column", value, [str(c) for c in stats.columns if c not in (la, lb)])
    paths_a, paths_b = stats[la].astype(str), stats[lb].astype(str)
    order_a = [str(r) for r in rows] if rows is not None else list(dict.fromkeys(paths_a))
    order_b = [str(c) for c in cols] if cols is not None else list(dict.fromkeys(paths_b))
    grid = np.full((len(order_a), len(order_b)), np.nan)
    pos_a = {n: i for i, n in enumerate(order_a)}
    pos_b = {n: j for j, n in enumerate(order_b)}
    for pa, pb, v in zip(paths_a, paths_b, stats[value].to_numpy(float)):
        if pa in pos_a and pb in pos_b:
            grid[pos_a[pa], pos_b[pb]] = v
    show_a, show_b = layer_names(order_a), layer_names(order_b)
    vdim = hv.Dimension(value, label=statistic_name(value, threshold=threshold, measure=measure))
    cells = [
        (show_b[pb], show_a[pa], grid[i, j])
        for i, pa in enumerate(order_a)
        for j, pb in enumerate(order_b)
    ]
    heat = hv.HeatMap(cells, kdims=[dim_b, dim_a], vdims=[vdim])
    if clim is None:
        clim = statistic_range(value, stats)
    if clim is None:
        finite = grid[np.isfinite(grid)]
        clim = (float(finite.min(initial=0.0)), float(finite.max(initial=1.0)))
    h = STYLE["plot_px"][1]
    longest = max((len(n) for n in show_b.values()), default=0)
    heat = styled(
        heat,
        {
            "cmap": STYLE["cmap"],
            "clim": tuple(clim),
            "colorbar": True,
            "invert_yaxis": True,
            "title": title,
            **fonts(),
        },
        bokeh={
            "frame_width": max(h, 40 * len(order_b)),
            "frame_height": max(h, 40 * len(order_a)),
            "tools": ["hover", "tap"],
            "xrotation": 45 if longest * len(order_b) > 40 else 0,
            "colorbar_opts": {"title": vdim.label},
        },
        mpl={"fig_inches": STYLE["plot_inches"][1], "aspect": "square"},
    )
    if not labels:
        return hv.Overlay([heat])
    base = value.rsplit("_", 1)[0] if value.endswith(("_mean", "_std")) else value
    fmt = "{:.0f}" if base in ("count", "n_maps", "percent") else "{:.2f}"
    text = [(x, y, fmt.format(v) if np.isfinite(v) else "") for x, y, v in cells]
    xs, ys, ts = zip(*text) if text else ((), (), ())
    colors = text_colors([v for _, _, v in cells], STYLE["cmap"], clim)
    return heat * cell_labels(list(xs), list(ys), list(ts), [dim_b, dim_a], size=7, colors=colors)


def percent_bars(
    stats: Any,
    value: str = "percent",
    *,
    diagonal_only: bool = True,
    title: str = "",
    names: tuple[str, str] | None = None,
    threshold: float | None = None,
    measure: str | None = None,
) -> hv.Bars:
    """Bar chart of the % of well-correlated maps per layer (``value`` column of ``stats``).

    With ``diagonal_only`` only rows comparing a layer with itself are shown (one bar per
    layer); otherwise one bar per (layer of A, layer of B). Layers are shown by their display
    names, the value by its statistic name (``threshold``/``measure`` or the tables').
    """
    stats, names, threshold, measure = _unpack(stats, names, threshold, measure)
    la, lb = layer_columns(stats)
    dim_a, dim_b = _layer_dims(names)
    check_choice("stats column", value, [str(c) for c in stats.columns if c not in (la, lb)])
    df = stats.copy()
    df[la], df[lb] = df[la].astype(str), df[lb].astype(str)
    shown = layer_names(list(dict.fromkeys([*df[la], *df[lb]])))
    vdim = hv.Dimension(value, label=statistic_name(value, threshold=threshold, measure=measure))
    if diagonal_only:
        df = df[df[la] == df[lb]]
        if df.empty:
            raise ValueError(
                "diagonal_only=True needs rows with the same layer on both sides; "
                "use diagonal_only=False for comparisons between different layers"
            )
        data = pd.DataFrame({"A_layer": df[la].map(shown), value: df[value].astype(float)})
        bars = hv.Bars(data, kdims=[dim_a], vdims=[vdim])
    else:
        data = pd.DataFrame(
            {
                "A_layer": df[la].map(shown),
                "B_layer": df[lb].map(shown),
                value: df[value].astype(float),
            }
        )
        bars = hv.Bars(data, kdims=[dim_a, dim_b], vdims=[vdim])
    w, h = STYLE["plot_px"]
    return styled(
        bars,
        {
            "title": title,
            "ylim": statistic_range(value, stats),
            **fonts(),
        },
        bokeh={"frame_width": w, "frame_height": h, "tools": ["hover"], "xrotation": 45},
        mpl={"fig_inches": STYLE["plot_inches"]},
    )


def for_print(heat: Any, bars: Any, *, title: str = "") -> tuple[Any, Any]:
    """A heatmap and a bar chart of the same statistic set side by side for print.

    The heatmap's cells print their values, so it names its statistic in its title (under
    ``title``) instead of a colour bar; the bars' axis is "% maps" with the threshold in
    their title. Two identical long labels (the colour bar's and the bars' axis) would
    each wrap and crowd the gap between the panels.

    Parameters
    ----------
    heat : hv.Overlay or hv.HeatMap
        From :func:`layer_heatmap`.
    bars : hv.Bars
        From :func:`percent_bars`.
    title : str
        First line of the heatmap's title (e.g. "within CNN6"); default its own title.

    Returns
    -------
    (heatmap, bars)
    """

    def retitle(el: Any) -> Any:
        own = title or el.opts.get("plot", backend="matplotlib").kwargs.get("title", "")
        label = el.vdims[0].pprint_label
        return styled(el, {"colorbar": False, "title": f"{own}\n{label}" if own else label})

    heat = heat.map(retitle, hv.HeatMap)
    label = bars.vdims[0].pprint_label
    head = bars.opts.get("plot", backend="matplotlib").kwargs.get("title", "")
    if label.startswith("% maps with "):
        tail = label[len("% maps with ") :]
        bars = styled(bars, {"ylabel": "% maps", "title": f"{head}\n{tail}" if head else tail})
    return heat, bars


def correlation_hist(
    values: Any,
    *,
    bins: int = 40,
    value_range: tuple[float, float] = (0.0, 1.0),
    threshold: float | None = None,
    label: str | None = None,
    title: str = "",
    measure: str = "pearson",
    count_label: str = "count",
) -> hv.Overlay:
    """Histogram of correlation values (NaN dropped), with an optional threshold line.

    ``label`` names the values (default "|r|", or the measure's symbol); ``count_label``
    names what is counted ("maps", "map pairs"...).
    """
    arr = as_array(np.asarray(values, dtype=float), "values", (1, 2)).ravel()
    arr = arr[np.isfinite(arr)]
    bins = check_positive_int("bins", bins)
    counts, edges = np.histogram(arr, bins=bins, range=value_range)
    label = label or f"|{measure_symbol(measure)}|"
    hist = hv.Histogram(
        (edges, counts),
        kdims=[hv.Dimension("value", label=label)],
        vdims=[hv.Dimension("count", label=count_label)],
    )
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
