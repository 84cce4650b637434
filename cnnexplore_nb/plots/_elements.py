"""Draw single HoloViews elements into a Matplotlib axes for the paper renderer.

Only the data and the standard HoloViews options are read (``title``, ``xlabel``,
``xticks``, ``clim``, ``cmap``, ``color``, ``marker``, ``linestyle``, ``hooks``...), so a
plot function styles a figure once for both backends and the paper layout (sizes, fonts,
legends, colour bars) is decided in :mod:`cnnexplore_nb.plots.paper`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import holoviews as hv
import numpy as np

from .style import PAPER, series_styles

__all__ = ["Drawn", "call_hooks", "draw_element", "element_options", "series_of"]

_RASTERS = (hv.Image, hv.RGB, hv.HeatMap)


#: Options that mean the same in both backends: set for Bokeh only (the notebook's current
#: backend), they still apply to the exported figure.
_SHARED = (
    "title", "xlabel", "ylabel", "xlim", "ylim", "xticks", "yticks", "logx", "logy",
    "invert_xaxis", "invert_yaxis", "xaxis", "yaxis", "clim", "cmap", "colorbar", "color",
    "show_legend", "padding",
)  # fmt: skip


def element_options(el: Any) -> dict[str, Any]:
    """The Matplotlib plot and style options of ``el`` (style last), cycles dropped; the
    options both backends share are taken from Bokeh when Matplotlib has none."""
    out: dict[str, Any] = {}
    for backend in ("bokeh", "matplotlib"):
        for group in ("plot", "style"):
            try:
                kw = hv.Store.lookup_options(backend, el, group).kwargs
            except Exception:  # noqa: BLE001 - an element type the backend does not know
                kw = {}
            for k, v in kw.items():
                if isinstance(v, hv.Cycle) or (backend == "bokeh" and k not in _SHARED):
                    continue
                if backend == "matplotlib" and k in out and v in (None, "", {}):
                    continue  # an unset Matplotlib option keeps the Bokeh value
                out[k] = v
    return out


@dataclass
class Drawn:
    """What drawing an element left behind, for the panel and the figure."""

    mappable: Any = None  # the image of a raster (for its colour bar)
    colorbar: bool = False
    cbar_label: str = ""
    legend: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> style parts
    cell_texts: list = field(default_factory=list)  # value labels to fit into their cells
    categories: tuple[list[str] | None, list[str] | None] = (None, None)


def series_of(elements: list[Any]) -> dict[str, dict[str, Any]]:
    """Series style per label of the labelled elements, in order of first appearance, with
    the series' rank among ``n`` (for the drawing widths)."""
    labels = list(dict.fromkeys(str(e.label) for e in elements if str(e.label)))
    styles = series_styles(len(labels))
    return {
        lab: {**st, "rank": i, "n": len(labels)} for i, (lab, st) in enumerate(zip(labels, styles))
    }


def _color(opts: dict[str, Any], fallback: str) -> str:
    c = opts.get("color")
    return c if isinstance(c, str) and c else fallback


def _raster_limits(data: np.ndarray, clim: Any) -> tuple[float, float]:
    finite = data[np.isfinite(data)]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    if isinstance(clim, (tuple, list)) and len(clim) == 2:
        a, b = clim
        lo = lo if a is None or not np.isfinite(a) else float(a)
        hi = hi if b is None or not np.isfinite(b) else float(b)
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def _cmap(name: Any) -> Any:
    from matplotlib import colormaps

    cmap = colormaps[name if isinstance(name, str) else "viridis"]
    return cmap.with_extremes(bad=(1.0, 1.0, 1.0, 0.0))  # undefined cells stay blank


def _draw_raster(ax: Any, el: Any, opts: dict[str, Any], drawn: Drawn) -> None:
    if isinstance(el, hv.HeatMap):
        xs = [str(v) for v in el.dimension_values(0)]
        ys = [str(v) for v in el.dimension_values(1)]
        zs = el.dimension_values(2).astype(float)
        xc, yc = list(dict.fromkeys(xs)), list(dict.fromkeys(ys))
        grid = np.full((len(yc), len(xc)), np.nan)
        px, py = {v: i for i, v in enumerate(xc)}, {v: i for i, v in enumerate(yc)}
        for x, y, z in zip(xs, ys, zs):
            grid[py[y], px[x]] = z
        extent = (-0.5, len(xc) - 0.5, -0.5, len(yc) - 0.5)
        drawn.categories = (xc, yc)
        ax.set_xticks(range(len(xc)), xc)
        ax.set_yticks(range(len(yc)), yc)
    elif isinstance(el, hv.RGB):
        grid = np.dstack([el.dimension_values(d, flat=False) for d in el.vdims])
        left, b, r, t = el.bounds.lbrt()
        extent = (left, r, b, t)
    else:
        grid = el.dimension_values(2, flat=False).astype(float)
        left, b, r, t = el.bounds.lbrt()
        extent = (left, r, b, t)
    if isinstance(el, hv.RGB):
        drawn.mappable = ax.imshow(grid, origin="lower", extent=extent, interpolation="nearest")
        return
    lo, hi = _raster_limits(grid, opts.get("clim"))
    drawn.mappable = ax.imshow(
        grid, origin="lower", extent=extent, cmap=_cmap(opts.get("cmap")),
        vmin=lo, vmax=hi, interpolation="nearest",
    )  # fmt: skip
    drawn.colorbar = bool(opts.get("colorbar"))
    drawn.cbar_label = opts.get("clabel") or el.vdims[0].pprint_label


def _draw_labels(ax: Any, el: Any, opts: dict[str, Any], drawn: Drawn) -> None:
    xs, ys = el.dimension_values(0), el.dimension_values(1)
    texts = [str(t) for t in el.dimension_values(2)]
    xc, yc = drawn.categories
    size = min(float(opts.get("size", PAPER["fontsize"]["cell"])), PAPER["fontsize"]["cell"])
    for x, y, text in zip(xs, ys, texts):
        if not text:
            continue
        if xc is not None and isinstance(x, str):
            x = xc.index(x) if x in xc else np.nan
        if yc is not None and isinstance(y, str):
            y = yc.index(y) if y in yc else np.nan
        artist = ax.text(float(x), float(y), text, ha="center", va="center", fontsize=size)
        drawn.cell_texts.append(artist)


def _contrast(drawn: Drawn) -> None:
    """Black or white cell labels, whichever reads better on the cell colour."""
    image = drawn.mappable
    if image is None or not drawn.cell_texts:
        for t in drawn.cell_texts:
            t.set_color("black")
        return
    data = np.asarray(image.get_array(), dtype=float)
    left, r, b, t = image.get_extent()
    ny, nx = data.shape[:2]
    for text in drawn.cell_texts:
        x, y = text.get_position()
        j = int(np.clip(np.floor((x - left) / (r - left) * nx), 0, nx - 1))
        i = int(np.clip(np.floor((y - b) / (t - b) * ny), 0, ny - 1))
        value = data[i, j]
        if not np.isfinite(value):
            text.set_color("black")
            continue
        rr, gg, bb, _ = image.to_rgba(value)
        text.set_color("black" if 0.299 * rr + 0.587 * gg + 0.114 * bb > 0.5 else "white")


def _draw_bars(ax: Any, el: Any, opts: dict[str, Any], drawn: Drawn) -> None:
    vals = el.dimension_values(el.vdims[0]).astype(float)
    if len(el.kdims) == 1:
        cats = [str(v) for v in el.dimension_values(0)]
        pos = np.arange(len(cats))
        ax.bar(pos, vals, width=0.75, color=_color(opts, "#1f77b4"), linewidth=0)
        ax.set_xticks(pos, cats)
        drawn.categories = (cats, None)
        return
    outer = [str(v) for v in el.dimension_values(0)]
    inner = [str(v) for v in el.dimension_values(1)]
    oc, ic = list(dict.fromkeys(outer)), list(dict.fromkeys(inner))
    width = 0.8 / len(ic)
    styles = dict(zip(ic, series_styles(len(ic))))
    for o, i, v in zip(outer, inner, vals):
        x = oc.index(o) - 0.4 + width * (ic.index(i) + 0.5)
        ax.bar(x, v, width=width, color=styles[i]["color"], linewidth=0)
    ax.set_xticks(range(len(oc)), oc)
    drawn.categories = (oc, None)
    for i in ic:
        drawn.legend[i] = {"color": styles[i]["color"], "patch": True}


def _draw_series(
    ax: Any, el: Any, opts: dict[str, Any], drawn: Drawn, style: dict[str, Any] | None
) -> None:
    """A series in its own style (colour, marker, line style set by the plot function), else
    in the figure's series style. Series drawn first are drawn wider, so a series that lies
    exactly on an earlier one still shows that one as an outline."""
    label = str(el.label)
    own = style or {"color": "#1f77b4", "marker": "o", "linestyle": "-"}
    color = _color(opts, own["color"])
    rank, n = (style or {}).get("rank", 0), (style or {}).get("n", 1)
    widen = 1.0 + (0.7 * (n - 1 - rank) / (n - 1) if 1 < n <= 6 else 0.0)
    entry = drawn.legend.setdefault(label, {"color": color}) if label else {}
    xs = el.dimension_values(0)
    xc = drawn.categories[0]
    if xc is not None and len(xs) and isinstance(xs[0], str):
        xs = np.array([xc.index(v) if v in xc else np.nan for v in xs], dtype=float)
    if isinstance(el, hv.ErrorBars):
        ys, err = el.dimension_values(1).astype(float), el.dimension_values(2).astype(float)
        along = {"xerr" if getattr(el, "horizontal", False) else "yerr": err}
        ax.errorbar(xs, ys, **along, fmt="none", ecolor=color, elinewidth=0.8, capsize=2)
    elif isinstance(el, (hv.Scatter, hv.Points)):
        ys = el.dimension_values(1).astype(float)
        marker = opts.get("marker") or own["marker"]
        size = float(opts.get("s", PAPER["marker_size"] ** 2))
        if not isinstance(el, hv.Points):  # markers on curves; points keep one size
            size *= widen**2
        alpha = float(opts.get("alpha", 1.0))
        ax.scatter(xs, ys, s=size, color=color, marker=marker, alpha=alpha, linewidths=0,
                   zorder=2 + rank * 0.01)  # fmt: skip
        if label:
            entry["marker"] = marker
    elif isinstance(el, hv.Curve):
        ys = el.dimension_values(1).astype(float)
        ls = opts.get("linestyle") or own["linestyle"]
        ax.plot(xs, ys, color=color, linestyle=ls, linewidth=PAPER["line_width"] * widen,
                zorder=2 + rank * 0.01)  # fmt: skip
        entry["linewidth"] = PAPER["line_width"] * widen
        if label:
            entry["linestyle"] = ls
    elif isinstance(el, hv.Histogram):
        counts = el.dimension_values(1).astype(float)
        ax.stairs(counts, el.edges, fill=True, color=color, alpha=0.85, linewidth=0)


def _draw_line(ax: Any, el: Any, opts: dict[str, Any], drawn: Drawn) -> None:
    color = _color(opts, "#d62728")
    if isinstance(el, hv.VLine):
        ax.axvline(float(el.data), color=color, linestyle="--", linewidth=1.0)
    else:
        ax.axhline(float(el.data), color=color, linestyle="--", linewidth=1.0)
    if str(el.label):
        drawn.legend[str(el.label)] = {"color": color, "linestyle": "--"}


def _call_hooks(ax: Any, el: Any, opts: dict[str, Any], artist: Any) -> None:
    for hook in opts.get("hooks") or []:
        hook(SimpleNamespace(handles={"axis": ax, "fig": ax.figure, "artist": artist}), el)


def draw_element(
    ax: Any, el: Any, drawn: Drawn, series: dict[str, dict[str, str]] | None = None
) -> None:
    """Draw ``el`` into ``ax``, recording colour-bar, legend and label facts in ``drawn``.

    ``series`` gives the style of each labelled series when several share the axes (their
    own colours are then replaced so that colour *and* marker tell them apart).
    """
    opts = element_options(el)
    style = (series or {}).get(str(el.label)) if series and len(series) > 1 else None
    labels = [d.label for d in el.dimensions()]
    if len(set(labels)) < len(labels):  # HoloViews conflates dimensions of equal labels
        el = el.clone(
            kdims=[d.clone(label=d.name) for d in el.kdims],
            vdims=[d.clone(label=d.name) for d in el.vdims],
        )
    if isinstance(el, _RASTERS):
        _draw_raster(ax, el, opts, drawn)
    elif isinstance(el, hv.Labels):
        _draw_labels(ax, el, opts, drawn)
    elif isinstance(el, hv.Bars):
        _draw_bars(ax, el, opts, drawn)
    elif isinstance(el, (hv.Curve, hv.Scatter, hv.Points, hv.ErrorBars, hv.Histogram)):
        _draw_series(ax, el, opts, drawn, style)
    elif isinstance(el, (hv.VLine, hv.HLine)):
        _draw_line(ax, el, opts, drawn)
    elif isinstance(el, hv.Text):
        ax.text(float(el.x), float(el.y), str(el.text), ha="center", va="center")
    else:
        raise NotImplementedError(
            f"the paper renderer cannot draw {type(el).__name__} elements; "
            "supported: Image, RGB, HeatMap, Labels, Bars, Curve, Scatter, Points, "
            "ErrorBars, Histogram, VLine, HLine, Text"
        )


def call_hooks(ax: Any, el: Any, drawn: Drawn) -> None:
    """Run the element's Matplotlib ``hooks`` (e.g. a highlight frame) on the drawn axes."""
    _call_hooks(ax, el, element_options(el), drawn.mappable)


def finish_labels(drawn: Drawn) -> None:
    """Colour the cell labels for contrast once the image is drawn."""
    _contrast(drawn)
