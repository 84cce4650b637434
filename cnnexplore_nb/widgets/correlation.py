"""CorrelationPanel: threshold slider, live stats/bars/heatmap, and a linked map-pair view."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import holoviews as hv
import ipywidgets as ipw
import numpy as np
import pandas as pd
from holoviews.streams import Stream, Tap

from .. import plots
from .._checks import check_fraction, unknown_name_message
from ._base import BokehView, PanelBase
from .browser import _as_maps

__all__ = ["CorrelationPanel"]

_View = Stream.define("CorrelationView", threshold=0.8, measure="pearson", value="mean")
_Pair = Stream.define("MapPair", layer_a="", map_a=0, layer_b="", map_b=0)

_MEASURES = ("pearson", "cosine")
_HEAT_VALUES = ("mean", "median", "percent", "count")


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
    compute : callable, optional
        ``compute(maps_a, maps_b, names=..., threshold=..., measure=...)`` returning
        ``CorrelationTables``; default :func:`cnnexplore_nb.correlation_tables`. Called at most
        once per measure: the threshold only re-derives ``stats`` from the cached max table.

    Attributes
    ----------
    threshold, measure, heat_value, pair
        Readable and settable from Python; bad values raise and are shown in the status line.
    tables : the CorrelationTables at the current threshold and measure.
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
        image: int = 0,
        compute: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(stem="correlation")
        if tables is None and maps_a is None:
            raise TypeError("CorrelationPanel needs maps_a (to compute tables) or tables=")
        self.maps_a = _as_maps(maps_a) if maps_a is not None else None
        self.maps_b = _as_maps(maps_b) if maps_b is not None else self.maps_a
        self.names, self.image = tuple(names), image
        self._compute = compute
        self._cache: dict[str, Any] = {}
        if tables is not None:
            self._cache[tables.measure] = tables
            measure = tables.measure
        t = check_fraction("threshold", threshold)
        base = self._base(measure)
        self._current = base.with_threshold(t)
        self.rows = [str(x) for x in base.layers_a]
        self.cols = [str(x) for x in base.layers_b]
        self._build_controls(t, base.measure)
        self._build_views(t, base.measure)
        self._wire()
        self._update_stats_html()
        self.widget = self._layout()

    # -- construction steps ----------------------------------------------------------------
    def _build_controls(self, threshold: float, measure: str) -> None:
        measures = list(_MEASURES) if self.maps_a is not None else [measure]
        self._threshold = ipw.FloatSlider(
            value=threshold, min=0.0, max=1.0, step=0.01, description="threshold",
            readout_format=".2f",
        )  # fmt: skip
        self._measure = ipw.Dropdown(options=measures, value=measure, description="measure")
        self._value = ipw.Dropdown(options=list(_HEAT_VALUES), value="mean", description="heatmap")
        self._la = ipw.Dropdown(options=self.rows, description="layer A")
        self._lb = ipw.Dropdown(options=self.cols, description="layer B")
        self._ma = ipw.BoundedIntText(
            value=0, min=0, max=self._n_maps("a", self.rows[0]) - 1, description="map A"
        )
        self._mb = ipw.BoundedIntText(
            value=0, min=0, max=self._n_maps("b", self.cols[0]) - 1, description="map B"
        )
        self.stats_html = ipw.HTML()

    def _build_views(self, threshold: float, measure: str) -> None:
        self.view_stream = _View(threshold=threshold, measure=measure, value="mean")
        heat = hv.DynamicMap(self._draw_heatmap, streams=[self.view_stream])
        self.tap = Tap(source=heat, x=None, y=None)
        self.tap.add_subscriber(self._on_tap)
        self._heat = BokehView(heat.opts(framewise=True))
        self._bars = BokehView(
            hv.DynamicMap(self._draw_bars, streams=[self.view_stream]).opts(framewise=True)
        )
        self.pair_stream = _Pair(layer_a=self.rows[0], map_a=0, layer_b=self.cols[0], map_b=0)
        self._pair: BokehView | None = None
        if self.maps_a is not None:
            self._pair = BokehView(hv.DynamicMap(self._draw_pair, streams=[self.pair_stream]))

    def _wire(self) -> None:
        for w, fn in (
            (self._threshold, self._on_threshold),
            (self._measure, self._on_measure),
            (self._value, self._on_value),
        ):
            w.observe(fn, names="value")
        for w in (self._la, self._lb, self._ma, self._mb):
            w.observe(self._on_pair_control, names="value")

    def _layout(self) -> ipw.VBox:
        pair_row = (
            [self._pair.widget]
            if self._pair is not None
            else [ipw.HTML("<i>pass maps_a to see map pairs</i>")]
        )
        return ipw.VBox(
            [
                ipw.HBox([self._measure, self._threshold, self._value]),
                self.status,
                ipw.HBox([self._heat.widget, self._bars.widget]),
                self.stats_html,
                ipw.HBox([self._la, self._ma, self._lb, self._mb]),
                *pair_row,
                self.export_box.widget,
            ]
        )

    # -- cached analysis (computed once per measure) ---------------------------------------
    def _base(self, measure: str) -> Any:
        if measure not in self._cache:
            if self.maps_a is None:
                raise self._fail(
                    ValueError(
                        unknown_name_message(
                            "measure (no maps to compute others)", measure, list(self._cache)
                        )
                    )
                )
            if measure not in _MEASURES:
                raise self._fail(ValueError(unknown_name_message("measure", measure, _MEASURES)))
            compute = self._compute
            if compute is None:
                from ..similarity.tables import correlation_tables as compute
            same = self.maps_b is self.maps_a
            self._cache[measure] = compute(
                self.maps_a,
                None if same else self.maps_b,
                names=self.names,
                measure=measure,
                threshold=getattr(self, "threshold", 0.8),
            )
        return self._cache[measure]

    def _n_maps(self, side: str, layer: str) -> int:
        tables = self._current
        mats = [
            m for (la, lb), m in tables.matrices.items() if (la if side == "a" else lb) == layer
        ]
        return int(mats[0].shape[0 if side == "a" else 1]) if mats else 1

    # -- drawing (plots only) --------------------------------------------------------------
    def _draw_heatmap(self, threshold: float, measure: str, value: str) -> hv.Overlay:
        return plots.layer_heatmap(
            self._current.stats,
            value,
            rows=self.rows,
            cols=self.cols,
            names=self._current.names,
            title=f"{value} of max |r| ≥ {threshold:.2f} ({measure})"
            if value in ("mean", "median")
            else f"{value} at threshold {threshold:.2f} ({measure})",
        )

    def _draw_bars(self, threshold: float, measure: str, value: str) -> hv.Bars:
        stats = self._current.stats
        la, lb = plots.layer_columns(stats)
        diagonal = bool((stats[la].astype(str) == stats[lb].astype(str)).any())
        return plots.percent_bars(
            stats, diagonal_only=diagonal, title=f"% maps with max |r| ≥ {threshold:.2f}",
            names=self._current.names,
        )  # fmt: skip

    def _draw_pair(self, layer_a: str, map_a: int, layer_b: str, map_b: int) -> hv.Layout:
        a = self.maps_a[layer_a][self.image, map_a]
        b = self.maps_b[layer_b][self.image, map_b]
        r = float(self._current.matrices[(layer_a, layer_b)][map_a, map_b])
        na, nb = self.names
        return plots.map_pair(
            a, b, r=r, names=(f"{na} {layer_a} #{map_a}", f"{nb} {layer_b} #{map_b}")
        )

    def _update_stats_html(self) -> None:
        self.stats_html.value = self._current.stats.to_html(
            index=False, float_format=lambda v: f"{v:.3f}", classes="cnnexplore-stats"
        )

    # -- events ----------------------------------------------------------------------------
    def _refresh(self) -> None:
        self._update_stats_html()
        self.view_stream.event(
            threshold=self._current.threshold,
            measure=self._current.measure,
            value=self._value.value,
        )

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

    def _on_value(self, change: dict) -> None:
        self.view_stream.event(value=change["new"])

    def _on_pair_control(self, change: dict | None) -> None:
        self._ma.max = self._n_maps("a", self._la.value) - 1
        self._mb.max = self._n_maps("b", self._lb.value) - 1
        self.pair_stream.event(
            layer_a=self._la.value,
            map_a=int(self._ma.value),
            layer_b=self._lb.value,
            map_b=int(self._mb.value),
        )

    def _on_tap(self, x: float | None = None, y: float | None = None) -> None:
        if x is None or y is None:
            return
        j, i = int(round(x)), int(round(y))
        if 0 <= i < len(self.rows) and 0 <= j < len(self.cols):
            self.select_layers(self.rows[i], self.cols[j])

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
        if value not in self._measure.options:
            raise self._fail(
                ValueError(unknown_name_message("measure", value, list(self._measure.options)))
            )
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

    def select_layers(self, layer_a: str, layer_b: str) -> tuple[str, int, str, int]:
        """Show the most correlated pair of maps between two layers (what a heatmap click does)."""
        mx = self._current.maxima
        rows = mx[(mx["A_layer"].astype(str) == layer_a) & (mx["B_layer"].astype(str) == layer_b)]
        rows = rows[np.isfinite(rows["correlation"].to_numpy(float))]
        if rows.empty:
            ma = mb = 0
        else:
            best = rows.iloc[int(np.argmax(rows["correlation"].to_numpy(float)))]
            ma, mb = int(best["A_map_id"]), int(best["B_map_id"])
        self.pair = (layer_a, ma, layer_b, mb)
        return self.pair

    def figure(self) -> hv.Layout:
        """Static figure of the current view: heatmap, bars (and the map pair)."""
        v = self.view_stream.contents
        parts = [self._draw_heatmap(**v), self._draw_bars(**v)]
        fig = hv.Layout(parts).cols(2)
        if self.maps_a is not None:
            fig = (fig + self._draw_pair(**self.pair_stream.contents)).cols(2)
        return fig.opts(sublabel_format="", backend="matplotlib")
