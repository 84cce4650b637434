"""CorrelationPanel: threshold slider, live stats/bars/heatmap, and a linked map-pair view.

Clicking a heatmap cell shows that layer pair's most similar maps (never a degenerate map,
see :meth:`~cnnexplore_nb.similarity.CorrelationTables.best_pair`); the pair view's scatter
holds the two maps' values at every pixel of every image the tables used. Maps of different
sizes (the stages of a ResNet) are compared on a common grid: without ``resample=`` the
panel takes the smallest one, says so in its status line and the exported title, and
offers the choice of grid as a control (:mod:`._grid`). The click reaches the
kernel as the selection of the heatmap's Bokeh data source (a HoloViews ``Tap`` stream is
never fed in JupyterLab: its JavaScript callback talks to a comm that a ``jupyter_bokeh``
widget does not open); the panel reads the selected cell, shows the pair and clears the
selection.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

import holoviews as hv
import ipywidgets as ipw
import numpy as np
import pandas as pd
from holoviews.streams import Stream

from .. import plots
from .._checks import check_fraction, unknown_name_message
from ..plots.correlation import for_print
from ..plots.names import (
    comparison_name,
    display_name,
    layer_names,
    measure_name,
    measure_symbol,
    model_names,
    statistic_name,
)
from ._base import BokehView, PanelBase
from ._grid import CommonGrid
from .browser import _as_maps

__all__ = ["CorrelationPanel"]

_View = Stream.define("CorrelationView", threshold=0.8, measure="pearson", value="percent")
_Pair = Stream.define("MapPair", layer_a="", map_a=0, layer_b="", map_b=0)

_MEASURES = ("pearson", "cosine")
_PAIR_PX = 150  # the pair view's panels: two columns of them fit beside the heatmap
_HEAT_VALUES = ("percent", "mean", "median", "count")


class CorrelationPanel(PanelBase):
    """Correlation tables explored live: threshold, measure, heatmap, bars, map pairs.

    Parameters
    ----------
    maps_a : dict of layer -> Tensor or array of shape (N, C, H, W), optional
        Maps of model A (needed to compute tables and to show map pairs).
    maps_b : same, optional
        Maps of model B; None compares A with itself.
    tables : CorrelationTables, optional
        Already computed tables (used for their measure; computing others needs maps).
    names : (str, str)
        Model names (column prefixes).
    value : str
        Statistic of the heatmap: ``"percent"`` (default), ``"mean"``, ``"median"``,
        ``"count"``.
    compute : callable, optional
        ``compute(maps_a, maps_b, names=..., threshold=..., measure=...)`` returning
        ``CorrelationTables``; default :func:`cnnexplore_nb.correlation_tables`. Called at most
        once per measure: the threshold only re-derives ``stats`` from the cached max table.
    figures : str or PathLike, optional
        Default folder of the export box (default: the notebook's figure folder).
    resample : None, "bilinear-down", "bilinear-up", "bicubic-down", "bicubic-up" or (H, W)
        Common grid of maps of different sizes (:mod:`cnnexplore_nb.similarity.region`).
        None: ``"bilinear-down"`` when the sizes differ (the status line says so).
    mask, crop, mask_mode
        The region of the tables (:func:`~cnnexplore_nb.correlation_tables`); the pair
        view's scatter shows the same pixels.
    min_support : int
        Maps non-zero at fewer pixels are degenerate and never shown as a best pair.

    Attributes
    ----------
    threshold, measure, heat_value, pair, resample
        Readable and settable from Python; bad values raise and are shown in the status line.
    tables : the CorrelationTables at the current threshold, measure and grid.
    """

    def __init__(
        self,
        maps_a: Mapping[str, Any] | None = None,
        maps_b: Mapping[str, Any] | None = None,
        *,
        tables: Any = None,
        names: tuple[str, str] = ("A", "B"),
        threshold: float = 0.8,
        measure: str = "pearson",
        value: str = "percent",
        image: int = 0,
        compute: Callable[..., Any] | None = None,
        figures: Any = None,
        resample: Any = None,
        mask: Any = None,
        crop: Any = None,
        mask_mode: str = "select",
        min_support: int = 5,
    ) -> None:
        super().__init__(stem="correlation", figures=figures)
        if tables is None and maps_a is None:
            raise TypeError("CorrelationPanel needs maps_a (to compute tables) or tables=")
        if value not in _HEAT_VALUES:
            raise ValueError(unknown_name_message("heatmap value", value, _HEAT_VALUES))
        self.maps_a = _as_maps(maps_a) if maps_a is not None else None
        self.maps_b = _as_maps(maps_b) if maps_b is not None else self.maps_a
        self.names, self.image = tuple(names), image
        self._compute = compute
        self._min_support = min_support
        layers = [*(self.maps_a or {}).values(), *(self.maps_b or {}).values()]
        region = {"mask": mask, "crop": crop, "mask_mode": mask_mode}
        try:
            self.grid = CommonGrid(layers, resample, region)
        except (ValueError, TypeError) as exc:
            raise self._fail(exc) from None
        self._cache: dict[tuple[str, Any], Any] = {}
        if tables is not None:
            self._cache[(tables.measure, self.grid.key)] = tables
            measure = tables.measure
        t = check_fraction("threshold", threshold)
        base = self._base(measure)
        self._current = base.with_threshold(t)
        self.rows = [str(x) for x in base.layers_a]
        self.cols = [str(x) for x in base.layers_b]
        self._shown_a, self._shown_b = layer_names(self.rows), layer_names(self.cols)
        self._build_controls(t, base.measure, value)
        self._build_views(t, base.measure, value)
        self._wire()
        self._update_stats_html()
        self.widget = self._layout()
        self.status.value = self.grid.note()
        if self._pair is not None:
            self.select_layers(self.rows[-1], self.cols[-1])

    # -- construction steps ----------------------------------------------------------------
    def _build_controls(self, threshold: float, measure: str, value: str) -> None:
        measures = list(_MEASURES) if self.maps_a is not None else [measure]
        self._threshold = ipw.FloatSlider(
            value=threshold, min=0.0, max=1.0, step=0.01, readout_format=".2f",
            description=f"threshold |{measure_symbol(measure)}|",
            style={"description_width": "initial"}, layout=ipw.Layout(width="360px"),
        )  # fmt: skip
        self._measure = ipw.Dropdown(
            options=[(measure_name(m), m) for m in measures], value=measure, description="measure"
        )
        self._value = ipw.Dropdown(
            options=self._value_options(threshold, measure), value=value, description="heatmap",
            layout=ipw.Layout(width="360px"),
        )  # fmt: skip
        la = [(self._shown_a[p], p) for p in self.rows]
        lb = [(self._shown_b[p], p) for p in self.cols]
        na, nb = model_names(self._current.names)
        narrow = ipw.Layout(width="250px")  # with the map boxes: a column beside the heatmap
        self._la = ipw.Dropdown(options=la, description=f"{na} layer", layout=narrow,
                                style={"description_width": "initial"})  # fmt: skip
        self._lb = ipw.Dropdown(options=lb, description=f"{nb} layer", layout=narrow,
                                style={"description_width": "initial"})  # fmt: skip
        self._ma = ipw.BoundedIntText(
            value=0, min=0, max=self._n_maps("a", self.rows[0]) - 1, description="map",
            layout=ipw.Layout(width="140px"),
        )  # fmt: skip
        self._mb = ipw.BoundedIntText(
            value=0, min=0, max=self._n_maps("b", self.cols[0]) - 1, description="map",
            layout=ipw.Layout(width="140px"),
        )  # fmt: skip
        self.stats_html = ipw.HTML()

    @staticmethod
    def _value_options(threshold: float, measure: str) -> list[tuple[str, str]]:
        return [(statistic_name(v, threshold=round(threshold, 2), measure=measure), v)
                for v in _HEAT_VALUES]  # fmt: skip

    def _build_views(self, threshold: float, measure: str, value: str) -> None:
        self.view_stream = _View(threshold=threshold, measure=measure, value=value)
        heat = hv.DynamicMap(self._draw_heatmap, streams=[self.view_stream])
        self._heat = BokehView(heat.opts(framewise=True))
        self._bars = BokehView(
            hv.DynamicMap(self._draw_bars, streams=[self.view_stream]).opts(framewise=True)
        )
        self.pair_stream = _Pair(layer_a=self.rows[0], map_a=0, layer_b=self.cols[0], map_b=0)
        self._pair: BokehView | None = None
        if self.maps_a is not None:
            pair = hv.DynamicMap(self._draw_pair, streams=[self.pair_stream])
            self._pair = BokehView(pair.opts(framewise=True))
        self._watch_cells()
        self._update_colorbar()

    def _wire(self) -> None:
        for w, fn in (
            (self._threshold, self._on_threshold),
            (self._measure, self._on_measure),
            (self._value, self._on_value),
            (self.grid.widget, self._on_grid),
        ):
            w.observe(fn, names="value")
        for w in (self._la, self._lb, self._ma, self._mb):
            w.observe(self._on_pair_control, names="value")

    def _layout(self) -> ipw.VBox:
        """Controls; the heatmap with the pair view beside it (a click's effect in sight);
        the bars and the statistics; the export box."""
        if self._pair is not None:
            pair = ipw.VBox(
                [ipw.HBox([self._la, self._ma]), ipw.HBox([self._lb, self._mb]),
                 self._pair.widget]
            )  # fmt: skip
            hint = "<i>click a heatmap cell to see that layer pair's most similar maps</i>"
        else:
            pair, hint = ipw.HTML("<i>pass maps_a to see map pairs</i>"), ""
        return ipw.VBox(
            [
                ipw.HBox([self._measure, self._threshold, self._value]),
                *([self.grid.widget] if len(self.grid.sizes) > 1 else []),
                self.status,
                ipw.HTML(hint),
                ipw.HBox([self._heat.widget, pair], layout=ipw.Layout(flex_flow="row wrap")),
                ipw.HBox([self._bars.widget]),
                self.stats_html,
                self.export_box.widget,
            ]
        )

    # -- heatmap clicks: the Bokeh selection of the heatmap's cells ------------------------
    def _heat_source(self) -> Any:
        for p in self._heat.plot.traverse(lambda p: p):
            if type(p).__name__ == "HeatMapPlot" and "source" in p.handles:
                return p.handles["source"]
        return None

    def _watch_cells(self) -> None:
        source = self._heat_source()
        if source is not None and source is not getattr(self, "_watched", None):
            source.selected.on_change("indices", self._on_cell_selected)
            self._watched = source

    def _on_cell_selected(self, attr: str, old: Any, new: Any) -> None:
        """A cell was clicked (browser) or selected (Python): show its best map pair."""
        if not new:
            return
        source = self._watched
        index = int(new[0])
        try:
            shown_b = str(source.data[self._heat_dims[0]][index])
            shown_a = str(source.data[self._heat_dims[1]][index])
            by_a = {v: k for k, v in self._shown_a.items()}
            by_b = {v: k for k, v in self._shown_b.items()}
            self.select_layers(by_a[shown_a], by_b[shown_b])
        except (KeyError, IndexError) as exc:
            self._report(f"could not read the clicked cell: {exc}", True)
        finally:
            source.selected.indices = []  # clear, so the next click on this cell counts

    @property
    def _heat_dims(self) -> tuple[str, str]:
        return ("B_layer", "A_layer")

    def click_cell(self, layer_a: str, layer_b: str) -> tuple[str, int, str, int]:
        """Select the heatmap cell (layer_a, layer_b) as a click in the browser does."""
        source = self._heat_source()
        xs = [str(v) for v in source.data[self._heat_dims[0]]]
        ys = [str(v) for v in source.data[self._heat_dims[1]]]
        want = (self._shown_b[layer_b], self._shown_a[layer_a])
        source.selected.indices = [list(zip(xs, ys)).index(want)]
        return self.pair

    def _update_colorbar(self) -> None:
        """Colour bar title and tooltip = the statistic shown (HoloViews keeps the first)."""
        value = self.heat_value
        label = statistic_name(value, threshold=round(self.threshold, 2),
                               measure=self._current.measure)  # fmt: skip
        for p in self._heat.plot.traverse(lambda p: p):
            bar = getattr(p, "handles", {}).get("colorbar")
            if bar is not None and bar.title != label:
                bar.title = label
        na, nb = model_names(self._current.names)
        tips = [(f"{na} layer", "@{A_layer}"), (f"{nb} layer", "@{B_layer}"),
                (label, f"@{{{value}}}")]  # fmt: skip
        for tool in self._heat.plot.state.tools:
            if type(tool).__name__ == "HoverTool" and tool.tooltips != tips:
                tool.tooltips = tips

    # -- cached analysis (computed once per measure and grid) ------------------------------
    def _base(self, measure: str) -> Any:
        key = (measure, self.grid.key)
        if key not in self._cache:
            if self.maps_a is None:
                raise self._fail(
                    ValueError(
                        unknown_name_message(
                            "measure (no maps to compute others)",
                            measure,
                            sorted({m for m, _ in self._cache}),
                        )  # fmt: skip
                    )
                )
            if measure not in _MEASURES:
                raise self._fail(ValueError(unknown_name_message("measure", measure, _MEASURES)))
            compute = self._compute
            extra: dict[str, Any] = {}
            if compute is None:
                from ..similarity.tables import correlation_tables as compute

                extra["progress"] = False  # no progress bar inside the panel
                extra["min_support"] = self._min_support
            if self.grid.resample is not None:
                extra["resample"] = self.grid.resample
            if any(self.grid.region[k] is not None for k in ("mask", "crop")):
                extra.update(self.grid.region)
            same = self.maps_b is self.maps_a
            self._cache[key] = compute(
                self.maps_a,
                None if same else self.maps_b,
                names=self.names,
                measure=measure,
                threshold=getattr(self, "threshold", 0.8),
                **extra,
            )
        return self._cache[key]

    def _n_maps(self, side: str, layer: str) -> int:
        tables = self._current
        mats = [
            m for (la, lb), m in tables.matrices.items() if (la if side == "a" else lb) == layer
        ]
        return int(mats[0].shape[0 if side == "a" else 1]) if mats else 1

    # -- drawing (plots only) --------------------------------------------------------------
    def _draw_heatmap(self, threshold: float, measure: str, value: str) -> hv.Overlay:
        return plots.layer_heatmap(
            self._current, value, rows=self.rows, cols=self.cols,
            title=f"{comparison_name(self._current.names)} · {measure_name(measure)}"
                  f"{self.grid.title()}",
        )  # fmt: skip

    def _draw_bars(self, threshold: float, measure: str, value: str) -> hv.Bars:
        stats = self._current.stats
        la, lb = plots.layer_columns(stats)
        diagonal = bool((stats[la].astype(str) == stats[lb].astype(str)).any())
        bars = plots.percent_bars(
            self._current, diagonal_only=diagonal,
            title="each layer with itself" if diagonal else "every layer pair",
        )  # fmt: skip
        return bars.opts(frame_width=260, backend="bokeh")  # heatmap and bars fit one row

    def _draw_pair(self, layer_a: str, map_a: int, layer_b: str, map_b: int) -> hv.Layout:
        a = self.maps_a[layer_a][self.image, map_a]
        b = self.maps_b[layer_b][self.image, map_b]
        r = float(self._current.matrices[(layer_a, layer_b)][map_a, map_b])
        same = bool(self._current.self_comparison and layer_a == layer_b and map_a == map_b)
        na, nb = model_names(self._current.names)
        return plots.map_pair(
            a, b, r=r, measure=self._current.measure, same=same,
            names=(f"{na} · map {map_a}\n{self._shown_a[layer_a]}",
                   f"{nb} · map {map_b}\n{self._shown_b[layer_b]}"),
            pixels=self.grid.pixels(self.maps_a[layer_a][:, map_a : map_a + 1],
                                    self.maps_b[layer_b][:, map_b : map_b + 1]),
            size=_PAIR_PX,
        ).cols(2)  # fmt: skip

    def _update_stats_html(self) -> None:
        t = self._current
        stats = t.stats.copy()
        for col, shown in (("A_layer", self._shown_a), ("B_layer", self._shown_b)):
            stats[col] = stats[col].astype(str).map(lambda p, s=shown: s.get(p, p))
        na, nb = model_names(t.names)
        heads = {"A_layer": f"{na} layer", "B_layer": f"{nb} layer"}
        for col in stats.columns:
            if col not in heads:
                heads[col] = (
                    display_name(col, "column").replace(" of A", f" of {na}").replace(
                        " of B", f" of {nb}")
                    if col.endswith("_n_dead")
                    else statistic_name(col, threshold=round(t.threshold, 2), measure=t.measure)
                )  # fmt: skip
        # percentages to 1 decimal, similarities to 3, counts as integers
        digits = {c: 1 if c.startswith("percent") else 3 for c in stats.columns}
        formatters = {
            heads[c]: (lambda v, d=digits[c]: "" if pd.isna(v) else f"{v:.{d}f}")
            for c in stats.columns
            if stats[c].dtype.kind == "f"
        }
        self.stats_html.value = stats.rename(columns=heads).to_html(
            index=False, formatters=formatters, classes="cnnexplore-stats"
        )

    # -- events ----------------------------------------------------------------------------
    def _refresh(self) -> None:
        self._update_stats_html()
        t, m = self._current.threshold, self._current.measure
        value = self._value.value
        self._value.unobserve(self._on_value, names="value")
        try:  # relabel the statistics for the threshold and measure (same values)
            self._value.options = self._value_options(t, m)
            self._value.value = value
        finally:
            self._value.observe(self._on_value, names="value")
        self._threshold.description = f"threshold |{measure_symbol(m)}|"
        self.view_stream.event(threshold=t, measure=m, value=self._value.value)
        self._watch_cells()
        self._update_colorbar()

    def _on_threshold(self, change: dict) -> None:
        self._current = self._base(self._current.measure).with_threshold(change["new"])
        self._refresh()

    def _on_measure(self, change: dict) -> None:
        try:
            self._current = self._base(change["new"]).with_threshold(self._threshold.value)
        except (ValueError, KeyError) as exc:
            self._report(str(exc), True)
            return
        self._refresh()
        self._on_pair_control(None)

    def _on_grid(self, change: dict) -> None:
        old, self.grid.resample = self.grid.resample, change["new"]
        try:
            self._current = self._base(self._current.measure).with_threshold(self.threshold)
        except (ValueError, TypeError) as exc:
            self.grid.resample = old
            self._report(str(exc), True)
            return
        self.grid.auto = False
        self._refresh()
        self.status.value = self.grid.note()
        self.select_layers(self._la.value, self._lb.value)

    def _on_value(self, change: dict) -> None:
        self.view_stream.event(value=change["new"])
        self._watch_cells()
        self._update_colorbar()

    def _on_pair_control(self, change: dict | None) -> None:
        self._ma.max = self._n_maps("a", self._la.value) - 1
        self._mb.max = self._n_maps("b", self._lb.value) - 1
        self.pair_stream.event(
            layer_a=self._la.value,
            map_a=int(self._ma.value),
            layer_b=self._lb.value,
            map_b=int(self._mb.value),
        )

    # -- state -----------------------------------------------------------------------------
    @property
    def tables(self) -> Any:
        return self._current

    @property
    def stats(self) -> pd.DataFrame:
        """The stats table shown (at the current threshold)."""
        return self._current.stats

    @property
    def threshold(self) -> float:
        return float(self._threshold.value)

    @threshold.setter
    def threshold(self, value: float) -> None:
        try:
            t = check_fraction("threshold", value)
        except (TypeError, ValueError) as exc:
            raise self._fail(exc) from None
        self._threshold.value = t

    @property
    def measure(self) -> str:
        return str(self._measure.value)

    @measure.setter
    def measure(self, value: str) -> None:
        valid = [v for _, v in self._measure.options]
        if value not in valid:
            raise self._fail(ValueError(unknown_name_message("measure", value, valid)))
        self._measure.value = value

    @property
    def heat_value(self) -> str:
        return str(self._value.value)

    @heat_value.setter
    def heat_value(self, value: str) -> None:
        if value not in _HEAT_VALUES:
            raise self._fail(ValueError(unknown_name_message("heatmap value", value, _HEAT_VALUES)))
        self._value.value = value

    @property
    def pair(self) -> tuple[str, int, str, int]:
        """(layer A, map of A, layer B, map of B) shown in the pair view."""
        return (self._la.value, int(self._ma.value), self._lb.value, int(self._mb.value))

    @pair.setter
    def pair(self, value: tuple[str, int, str, int]) -> None:
        la, ma, lb, mb = value
        for layer, options, side in ((la, self.rows, "A"), (lb, self.cols, "B")):
            if layer not in options:
                raise self._fail(KeyError(unknown_name_message(f"layer of {side}", layer, options)))
        for m, n, side in ((ma, self._n_maps("a", la), "A"), (mb, self._n_maps("b", lb), "B")):
            if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 0 <= m < n:
                raise self._fail(
                    IndexError(f"map of {side} must be an integer in [0, {n}), got {m!r}")
                )
        for w in (self._la, self._ma, self._lb, self._mb):
            w.unobserve(self._on_pair_control, names="value")
        try:
            self._ma.max, self._mb.max = self._n_maps("a", la) - 1, self._n_maps("b", lb) - 1
            self._la.value, self._ma.value, self._lb.value, self._mb.value = (
                la,
                int(ma),
                lb,
                int(mb),
            )
        finally:
            for w in (self._la, self._ma, self._lb, self._mb):
                w.observe(self._on_pair_control, names="value")
        self._on_pair_control(None)

    @property
    def resample(self) -> Any:
        """The common grid of maps of different sizes (:mod:`._grid`); None for one size."""
        return self.grid.resample

    @resample.setter
    def resample(self, value: Any) -> None:
        try:
            self.grid.choose(value)
        except ValueError as exc:
            raise self._fail(exc) from None
        self.grid.widget.value = tuple(value) if isinstance(value, list) else value

    def select_layers(self, layer_a: str, layer_b: str) -> tuple[str, int, str, int]:
        """Show the most similar pair of maps between two layers (what a heatmap click does).

        Degenerate maps (constant, or non-zero at a handful of pixels, whose r those pixels
        decide) are never chosen.
        """
        best = self._current.best_pair(layer_a, layer_b)
        if best is None:
            ma = mb = 0
            self._report(
                f"no defined similarity between {self._shown_a.get(layer_a, layer_a)} and "
                f"{self._shown_b.get(layer_b, layer_b)} outside degenerate maps (constant, or "
                "non-zero at a handful of pixels)", True,
            )  # fmt: skip
        else:
            ma, mb = best[0], best[1]
            self.status.value = self.grid.note()
        self.pair = (layer_a, ma, layer_b, mb)
        return self.pair

    def figure(self) -> hv.Layout:
        """Static figure of the current view: heatmap, bars (and the map pair), set for
        print with :func:`~cnnexplore_nb.plots.for_print` (the heatmap's title names the
        statistic, no colour bar beside the bars' axis)."""
        v = self.view_stream.contents
        t = self._current
        title = f"{comparison_name(t.names)}{self.grid.title()}"
        parts = list(for_print(self._draw_heatmap(**v), self._draw_bars(**v), title=title))
        if self.maps_a is None:
            return hv.Layout(parts).cols(2)
        parts += [hv.Empty(), *self._draw_pair(**self.pair_stream.contents)]
        return hv.Layout(parts).cols(3)

    def __repr__(self) -> str:
        grid = f", resample={self.resample!r}" if self.resample is not None else ""
        return html.unescape(
            f"CorrelationPanel(names={self._current.names!r}, threshold={self.threshold:.2f}, "
            f"measure={self.measure!r}, heat_value={self.heat_value!r}, pair={self.pair!r}"
            f"{grid})"
        )
