"""Draw a HoloViews figure as a paper figure: Matplotlib, print size, no collisions.

:func:`draw` lays the panels of a Layout (or a single element / Overlay) out on a grid
with Matplotlib's constrained layout at a paper width (3.5 in column, 7.16 in page), with
fonts at print size, legends outside the data, one shared colour bar (and colour range)
for panels showing the same quantity, panel letters in the titles, and a fitting pass
that wraps long titles, turns or thins colliding tick labels and shrinks (or drops) value
labels that do not fit their cells. :func:`~cnnexplore_nb.plots.export` saves this figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import holoviews as hv
import numpy as np

from ._decor import (
    _colorbars,
    _legend_width,
    _legends,
    _share_labels,
    _shared_legend,
    wrap,
)
from ._elements import (
    Drawn,
    call_hooks,
    draw_element,
    element_options,
    finish_labels,
    series_of,
)
from .style import PAPER, paper_rc, paper_width

__all__ = ["draw", "static_view"]

_RASTERS = (hv.Image, hv.RGB, hv.HeatMap)
_CHAR = 0.56 / 72  # average glyph width per point of font size, in inches


def static_view(fig: Any) -> Any:
    """A static HoloViews object for ``fig``: a DynamicMap is evaluated at its current state."""
    if isinstance(fig, hv.DynamicMap):
        if fig.kdims:
            raise ValueError(
                "cannot export a DynamicMap with key dimensions "
                f"{[d.name for d in fig.kdims]}; select a frame first, e.g. dmap[key]"
            )
        return fig[()]
    if isinstance(fig, (hv.Layout, hv.NdLayout, hv.Overlay)) and any(
        isinstance(x, hv.DynamicMap) for x in fig.traverse(lambda x: x, [hv.DynamicMap])
    ):
        return fig.map(lambda d: static_view(d), [hv.DynamicMap])
    return fig


@dataclass
class _Plan:
    elements: list
    opts: dict
    raster: bool
    axes_off: bool
    aspect: float
    legend_chars: int
    legend_entries: int
    colorbar: bool
    ytick_chars: int
    xtick_chars: int
    cells: tuple[float, int] | None = None  # (columns, rows) of a categorical heatmap


def _width_ratios(plans: list[_Plan], ncols: int) -> list[float]:
    """Columns as wide as their heatmaps have cells, when every panel is a heatmap (so cells
    come out the same size in every panel); else equal columns."""
    real = [p for p in plans if p.elements and not isinstance(p.elements[0], hv.Empty)]
    if not real or any(p.cells is None for p in real):
        return [1.0] * ncols
    widths = [0.0] * ncols
    for k, p in enumerate(plans):
        if p.cells is not None:
            if widths[k % ncols] and widths[k % ncols] != float(p.cells[0]):
                return [1.0] * ncols  # a column of heatmaps of different widths: equal columns
            widths[k % ncols] = float(p.cells[0])
    top = max(widths)
    return [max(v, 2.5) / top for v in widths]


def _heading(obj: Any) -> str:
    """The figure's heading: the ``title`` option of a Layout (e.g. ``map_grid(heading=)``)."""
    if not isinstance(obj, (hv.Layout, hv.NdLayout)):
        return ""
    return str(hv.Store.lookup_options("matplotlib", obj, "plot").kwargs.get("title") or "")


def _split(obj: Any) -> tuple[list[Any], int, bool]:
    """Panels, columns, and whether the layout asks for panel letters."""
    if isinstance(obj, hv.AdjointLayout):
        obj = obj.main
    if isinstance(obj, (hv.Layout, hv.NdLayout)):
        items = list(obj.values()) if isinstance(obj, hv.NdLayout) else list(obj)
        panels = [p.main if isinstance(p, hv.AdjointLayout) else p for p in items]
        ncols = int(getattr(obj, "_max_cols", None) or 4)
        sub = hv.Store.lookup_options("matplotlib", obj, "plot").kwargs.get("sublabel_format")
        return panels, max(1, min(ncols, len(panels))), sub != "" and len(panels) > 1
    return [obj], 1, False


def _plan(panel: Any) -> _Plan:
    if isinstance(panel, hv.Empty):  # a gap in the grid
        return _Plan([panel], {}, True, True, 0.01, 0, 0, False, 0, 0)
    elements = list(panel) if isinstance(panel, hv.Overlay) else [panel]
    main = elements[0]
    opts = {**element_options(main)}
    if isinstance(panel, hv.Overlay):
        own = element_options(panel)
        for key in ("title", "xlabel", "ylabel"):
            if not own.get(key):
                own.pop(key, None)
        opts.update(own)
    raster = isinstance(main, _RASTERS)
    axes_off = opts.get("xaxis", True) is None and opts.get("yaxis", True) is None
    aspect = 0.7
    if raster:
        if isinstance(main, hv.HeatMap):
            nx = len(set(map(str, main.dimension_values(0))))
            ny = len(set(map(str, main.dimension_values(1))))
            aspect = ny / max(nx, 2.5)  # a one-column heatmap still gets some width
        else:
            left, b, r, t = main.bounds.lbrt()
            aspect = (t - b) / (r - left) if r > left else 1.0
    elif opts.get("aspect") in ("square", "equal"):
        aspect = 1.0
    elif isinstance(opts.get("fig_inches"), tuple) and len(opts["fig_inches"]) == 2:
        fw, fh = opts["fig_inches"]
        aspect = float(np.clip(fh / fw, 0.2, 1.2)) if fw else aspect
    labels = [str(e.label) for e in elements if str(e.label) and not isinstance(e, _RASTERS)]
    if isinstance(main, hv.Bars) and len(main.kdims) > 1:
        labels += [str(v) for v in main.dimension_values(1)]
    show = opts.get("show_legend", True) is not False
    legend_chars = max((len(s) for s in labels), default=0) if show and labels else 0

    def tick_chars(key: str, dim: int) -> int:
        ticks = opts.get(key)
        if isinstance(ticks, (list, tuple)) and ticks and isinstance(ticks[0], tuple):
            return max(len(str(t[1])) for t in ticks)
        if isinstance(main, (hv.HeatMap, hv.Bars)) and len(main.kdims) > dim:
            return max((len(str(v)) for v in main.dimension_values(dim)), default=0)
        return 5

    entries = len(dict.fromkeys(labels)) if legend_chars else 0
    cells = None
    if isinstance(main, hv.HeatMap):
        cells = (max(len(set(map(str, main.dimension_values(0)))), 2.5),
                 len(set(map(str, main.dimension_values(1)))))  # fmt: skip
    return _Plan(
        elements, opts, raster, axes_off, aspect, legend_chars, entries,
        bool(opts.get("colorbar")),
        tick_chars("yticks", 1), tick_chars("xticks", 0), cells,
    )  # fmt: skip


def _extra_width(p: _Plan, own_legend: bool, own_cbar: bool) -> float:
    fs = PAPER["fontsize"]
    w = 0.0 if p.axes_off else 0.2 + min(p.ytick_chars, 14) * fs["tick"] * _CHAR
    if own_cbar:
        w += 0.6
    if own_legend and p.legend_chars:
        w += 0.35 + min(p.legend_chars, 30) * fs["legend"] * _CHAR
    return w


def _extra_height(p: _Plan) -> float:
    h = 0.2  # title
    if not p.axes_off:
        h += 0.32 + (0.5 * min(p.xtick_chars, 14) * PAPER["fontsize"]["tick"] * _CHAR)
    return h


def _min_axes(p: _Plan) -> float:
    return 0.5 if p.axes_off else (1.0 if p.raster else 1.3)


def _label(opts: dict, key: str, dim: Any) -> str:
    text = opts.get(key)
    return str(text) if text else (dim.pprint_label if dim is not None else "")


def _title(panel: Any, opts: dict) -> str:
    title = opts.get("title") or ""
    if "{" in str(title):
        label, group = str(getattr(panel, "label", "")), str(getattr(panel, "group", ""))
        group = "" if group == type(panel).__name__ else group
        title = str(title).format(label=label, group=group, dimensions="").strip()
    return str(title)


def _axis_dims(main: Any) -> tuple[Any, Any]:
    if isinstance(main, _RASTERS) or isinstance(main, hv.Points):
        return main.kdims[0], (main.kdims[1] if len(main.kdims) > 1 else None)
    return (main.kdims[0] if main.kdims else None), (main.vdims[0] if main.vdims else None)


def _apply_ticks(ax: Any, axis: Literal["x", "y"], ticks: Any, width_in: float) -> None:
    from matplotlib.ticker import FixedLocator, MaxNLocator

    target = ax.xaxis if axis == "x" else ax.yaxis
    if isinstance(ticks, (list, tuple)) and ticks:
        if isinstance(ticks[0], tuple):
            pos, text = zip(*ticks)
            (ax.set_xticks if axis == "x" else ax.set_yticks)(list(pos), [str(t) for t in text])
        else:
            target.set_major_locator(FixedLocator([float(t) for t in ticks]))
    elif isinstance(ticks, int):
        target.set_major_locator(MaxNLocator(nbins=ticks))
    elif not target.get_ticklabels() or not any(t.get_text() for t in target.get_ticklabels()):
        target.set_major_locator(MaxNLocator(nbins=max(3, int(width_in * 2.2))))


def _draw_panel(ax: Any, panel: Any, plan: _Plan, letter: str, width_in: float) -> Drawn:
    drawn = Drawn()
    series = series_of([e for e in plan.elements if not isinstance(e, _RASTERS)])
    for el in plan.elements:
        draw_element(ax, el, drawn, series)
    finish_labels(drawn)
    opts, main = plan.opts, plan.elements[0]
    xdim, ydim = _axis_dims(main)
    title = _title(panel, opts)
    title = f"({letter}) {title}".strip() if letter else title
    axes_w = max(width_in - _extra_width(plan, False, plan.colorbar), 0.8)
    ax.set_title(wrap(title, axes_w * 0.95, PAPER["fontsize"]["title"]),
                 loc="left" if letter else "center")  # fmt: skip
    if opts.get("xaxis", True) is None:
        ax.set_xticks([])
    else:
        ax.set_xlabel(_label(opts, "xlabel", xdim))
        _apply_ticks(ax, "x", opts.get("xticks"), width_in)
        if opts.get("xticks") is None and not plan.raster and _integer_x(plan.elements):
            from matplotlib.ticker import MaxNLocator

            nbins = max(3, int(width_in * 2.2))
            ax.xaxis.set_major_locator(MaxNLocator(nbins=nbins, integer=True, min_n_ticks=1))
    if opts.get("yaxis", True) is None:
        ax.set_yticks([])
    else:
        ax.set_ylabel(_label(opts, "ylabel", ydim))
        _apply_ticks(ax, "y", opts.get("yticks"), width_in)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    if any(labels) and drawn.categories[0] is not None or isinstance(opts.get("xticks"), list):
        longest = max((len(t) for t in labels), default=0)
        axes_w = width_in - _extra_width(plan, False, plan.colorbar)
        if len(labels) * (longest + 1) * PAPER["fontsize"]["tick"] * _CHAR > axes_w:
            _turn(ax, 45 if longest <= 10 else 90)
    if plan.cells is not None:
        ax.set_aspect("auto")
        ax.set_box_aspect(plan.aspect)  # cells of one size across panels (see _width_ratios)
    if plan.raster:
        for spine in ax.spines.values():
            spine.set_visible(not plan.axes_off)
        ax.tick_params(length=0 if drawn.categories[0] or opts.get("xticks") else 2.5)
    else:
        pad = opts.get("padding", 0.05)
        pad = pad if isinstance(pad, (int, float)) else 0.05
        ax.margins(x=float(pad), y=float(pad))
    if opts.get("logx"):
        ax.set_xscale("log")
    if opts.get("logy"):
        ax.set_yscale("log")
    for key, setter in (("xlim", ax.set_xlim), ("ylim", ax.set_ylim)):
        lim = opts.get(key)
        if isinstance(lim, (tuple, list)) and len(lim) == 2:
            lo, hi = (None if v is None or not np.isfinite(v) else float(v) for v in lim)
            if lo is not None or hi is not None:
                setter(lo, hi)
    if opts.get("invert_xaxis"):
        ax.invert_xaxis()
    if opts.get("invert_yaxis"):
        ax.invert_yaxis()
    for el in plan.elements:
        call_hooks(ax, el, drawn)
    return drawn


def _integer_x(elements: list) -> bool:
    """All x values are integers (epochs, module numbers): ticks only at integers."""
    for el in elements:
        if isinstance(el, (hv.Curve, hv.Scatter, hv.ErrorBars)):
            xs = np.asarray(el.dimension_values(0))
            if xs.dtype.kind not in "iuf" or not np.all(np.round(xs) == xs):
                return False
        elif not isinstance(el, (hv.VLine, hv.HLine, hv.Labels)):
            return False
    return True


def _turn(ax: Any, angle: float) -> None:
    """Turn the x tick labels (anchored at their ends, so they hang under their ticks)."""
    for t in ax.get_xticklabels():
        t.set_rotation(angle)
        t.set_ha("right")
        t.set_rotation_mode("anchor")
        if angle == 90:
            t.set_va("center")


def _reflow(panels: list, plans: list, own: list, asked: int, ncols: int) -> tuple:
    """Wrap each row of ``asked`` panels onto rows of ``ncols``, padding with gaps."""
    gap = _plan(hv.Empty())
    out_p, out_plan, out_own = [], [], []
    for start in range(0, len(panels), asked):
        chunk = list(zip(panels, plans, own))[start : start + asked]
        while chunk:
            row, chunk = chunk[:ncols], chunk[ncols:]
            row += [(hv.Empty(), gap, False)] * (ncols - len(row))
            for p, q, o in row:
                out_p.append(p)
                out_plan.append(q)
                out_own.append(o)
    return out_p, out_plan, out_own


def draw(
    obj: Any,
    *,
    width: Literal["column", "page"] | float | None = None,
    height: float | None = None,
    letters: bool | None = None,
    share_colors: bool = True,
    height_scale: float = 1.0,
    dpi: int | None = None,
) -> Any:
    """Draw ``obj`` as a Matplotlib figure in the paper style (see the module docstring).

    Parameters
    ----------
    obj : HoloViews object
        An element, Overlay, Layout (panels in its ``cols`` order) or DynamicMap (drawn at
        its current state).
    width : "column", "page" or float
        3.5 in, 7.16 in, or inches; default a column for one panel, a page for several.
    height : float, optional
        Inches; default from the panels' aspect ratios (at most ``PAPER["max_height"]``).
    letters : bool, optional
        "(a)", "(b)"... before the panel titles; default for layouts of several panels
        unless the layout turns sub-labels off (``sublabel_format=""``, as map grids do).
    share_colors : bool
        Panels with colour bars for the same quantity share one colour range and one bar.
    height_scale : float
        Multiplies the automatic height.

    Returns
    -------
    matplotlib.figure.Figure
        Constrained layout, size in inches = print size. Draw it inside
        ``matplotlib.rc_context(paper_rc())`` to keep the paper fonts when saving.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    view = static_view(obj)
    heading = _heading(view)
    panels, ncols, want_letters = _split(view)
    plans = [_plan(p) for p in panels]
    if letters is None:
        letters = want_letters and not all(p.axes_off for p in plans)
    if width is None and (ncols == 1 or (all(p.axes_off for p in plans) and ncols <= 4)):
        width = "column"  # a few maps side by side, or panels stacked, fit a column
    w = paper_width(width, len(panels))
    shared_legend = _shared_legend(plans)
    below = len(plans) == 1 and plans[0].legend_chars and _legend_width(plans[0]) > 0.42 * w
    side_legends = not (shared_legend or below)  # legends beside each panel
    cbar_groups = sum(p.colorbar for p in plans)
    asked = ncols
    own_cbar = [p.colorbar and not (share_colors and cbar_groups > 1) for p in plans]
    while ncols > 1:
        cell = w / ncols
        if all(
            cell - _extra_width(p, side_legends, c) >= _min_axes(p) for p, c in zip(plans, own_cbar)
        ):
            break
        ncols -= 1
    if ncols < asked and len(panels) > asked:
        # keep the rows the figure asked for (a row per statistic, per network...): each
        # one wraps onto rows of its own, gaps filling the ends
        panels, plans, own_cbar = _reflow(panels, plans, own_cbar, asked, ncols)
    nrows = math.ceil(len(panels) / ncols)
    spare = 0.7 if (cbar_groups > 1 and share_colors) else 0.0
    if shared_legend:
        spare += _legend_width(plans[0])
    cell = (w - spare) / ncols
    rows_h = []
    for r in range(nrows):
        row = list(zip(plans, own_cbar))[r * ncols : (r + 1) * ncols]
        rows_h.append(
            max(
                max(
                    max(cell - _extra_width(p, side_legends, c), 0.4) * p.aspect + _extra_height(p),
                    0.3 + 0.14 * p.legend_entries * side_legends,
                )
                for p, c in row
            )
        )
    if below:
        per_row = max(1, int((w - 0.1) // _legend_width(plans[0])))
        rows_h.append(0.2 + 0.15 * math.ceil(plans[0].legend_entries / per_row))
    # generous at first (a layout that collapses helps nobody); the fitting pass trims it
    h = height or min(sum(rows_h) * height_scale * 1.3 + 0.3, PAPER["max_height"])
    with matplotlib.rc_context(paper_rc()):
        fig = Figure(figsize=(w, h), dpi=dpi or PAPER["dpi"], layout="constrained")
        FigureCanvasAgg(fig)
        fig.get_layout_engine().set(w_pad=3 / 72, h_pad=3 / 72, hspace=0.03, wspace=0.05)
        widths = _width_ratios(plans, ncols)
        ratios = [
            max(widths[k % ncols] * p.aspect for k, p in enumerate(plans) if k // ncols == r)
            for r in range(nrows)
        ]
        grid = fig.add_gridspec(nrows, ncols, height_ratios=ratios, width_ratios=widths)
        axes, drawn, kept = [], [], []
        letter_index = 0
        for k, (panel, plan) in enumerate(zip(panels, plans)):
            if isinstance(panel, hv.Empty):
                continue
            ax = fig.add_subplot(grid[k // ncols, k % ncols])
            letter = "abcdefghijklmnopqrstuvwxyz"[letter_index] if letters else ""
            letter_index += 1
            drawn.append(_draw_panel(ax, panel, plan, letter, cell))
            axes.append(ax)
            kept.append(plan)
        plans = kept
        if heading:  # one heading for the whole figure (e.g. the layer of a map grid)
            fig.suptitle(wrap(heading, w * 0.95, PAPER["fontsize"]["title"]),
                         fontsize=PAPER["fontsize"]["title"])  # fmt: skip
        _share_labels(axes, ncols)
        _colorbars(fig, axes, drawn, plans, share_colors)
        _legends(fig, axes, drawn, plans, shared_legend, w)
        from ._fit import fit_figure

        fit_figure(
            fig, axes, drawn, None if height else [p.aspect * height_scale for p in plans],
            max_height=PAPER["max_height"],
        )  # fmt: skip
    return fig
