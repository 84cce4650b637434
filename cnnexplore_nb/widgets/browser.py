"""MapBrowser: step through the activation maps of a layer (picked with a LayerPicker)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import holoviews as hv
import ipywidgets as ipw
import numpy as np
from holoviews.streams import Stream

from .. import plots
from .._arrays import as_layer_maps
from .._arrays import resample as resample_maps
from .._checks import unknown_name_message
from ..plots.maps import panel_px
from ..plots.names import layer_name
from ..similarity.region import common_grid, resample_mode
from ._base import BokehView, PanelBase
from .picker import LayerPicker

__all__ = ["LayerPicker", "MapBrowser"]

_Selection = Stream.define("MapSelection", layer="", image=0, index=0)
_Page = Stream.define("MapPage", layer="", image=0, start=0, shared=False)


def _as_maps(maps: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """layer -> array (N, C, H, W) on the CPU; (C, H, W) becomes N = 1."""
    return as_layer_maps(maps, "maps", to_numpy=True, same_n=False)


def slider_layout(steps: int) -> ipw.Layout:
    """A slider as wide as its range needs (about 6 px per step, 260 to 720 px), so that every
    step of a 64-map layer is reachable with the mouse."""
    return ipw.Layout(width=f"{int(np.clip(140 + 6 * steps, 260, 720))}px")


class MapBrowser(PanelBase):
    """Layer picker + map-index slider (+ image, grid size, colour-scale toggle) over maps.

    Parameters
    ----------
    maps : dict of layer path -> Tensor or array of shape (N, C, H, W) or (C, H, W)
        Extracted activations (e.g. ``extract_activations(model, images)``); kept by
        reference, never recomputed.
    layer, map_index, image : initial state.
    grid : int
        Also show the page of ``grid`` maps holding the selected one (0 or 1: only the map),
        the selected map framed; the page redraws only when the slider leaves it. The
        exported figure frames the selected map too.
    shared_scale : bool
        Page maps share one colour range.
    picker : LayerPicker, optional
        An outside layer picker (e.g. over the model's catalogue) that drives this browser:
        a single choice shows that layer; a multiple choice limits the browser's own layer
        list to the chosen layers.
    figures : str or PathLike, optional
        Default folder of the export box (default: the notebook's figure folder).
    resample : None, "bilinear-down", "bilinear-up", "bicubic-down", "bicubic-up" or (H, W)
        Show every layer's maps on one grid (:mod:`cnnexplore_nb.similarity.region`), e.g.
        ``(224, 224)`` to see them at the input's size; None (default) shows each layer at
        its own size.

    Attributes
    ----------
    layer, map_index, image, grid, shared_scale
        Readable and settable from Python; bad values raise and are shown in the status line.
    plot : holoviews plot of the selected map (``plot.handles["source"]``).
    """

    def __init__(
        self,
        maps: Mapping[str, Any],
        *,
        layer: str | None = None,
        map_index: int = 0,
        image: int = 0,
        grid: int = 8,
        ncols: int = 4,
        shared_scale: bool = False,
        cmap: str | None = None,
        picker: LayerPicker | None = None,
        figures: Any = None,
        resample: Any = None,
    ) -> None:
        super().__init__(stem="maps", figures=figures)
        self.maps = _as_maps(maps)
        self.layers = list(self.maps)
        self.resample, self._shown = resample, ("", None)
        self._on_grid = None
        if resample is not None:
            sizes = [tuple(int(v) for v in x.shape[-2:]) for x in self.maps.values()]
            try:
                self._on_grid = common_grid(sizes, resample)
            except (ValueError, TypeError) as exc:
                raise self._fail(exc) from None
        self.ncols, self.cmap = ncols, cmap
        first = layer if layer is not None else self.layers[0]
        if first not in self.maps:
            raise self._fail(KeyError(unknown_name_message("layer", first, self.layers)))
        self.picker = LayerPicker(self.layers)
        self.picker.value = first
        n, c = self.maps[first].shape[:2]
        self._index = ipw.IntSlider(
            value=0, min=0, max=c - 1, description="map", continuous_update=True,
            layout=slider_layout(c),
        )  # fmt: skip
        self._image = ipw.IntSlider(
            value=0,
            min=0,
            max=n - 1,
            description="image",
            layout=slider_layout(n),
        )
        self._image.layout.display = "" if n > 1 else "none"
        self._grid = ipw.Dropdown(
            options=[0, 4, 8, 16, 32], value=8, description="page", layout=ipw.Layout(width="160px")
        )
        self._shared = ipw.Checkbox(value=bool(shared_scale), description="shared colour scale")
        self.stream = _Selection(layer=first, image=0, index=0)
        # the page only redraws when it changes (not on every slider step inside it)
        self.page_stream = _Page(layer=first, image=0, start=0, shared=bool(shared_scale))
        self._main = BokehView(
            hv.DynamicMap(self._draw_selected, streams=[self.stream]).opts(framewise=True)
        )
        self._page_view: BokehView | None = None
        self._page_box = ipw.Box()
        self.picker.observe(lambda v: self._on_layer(v))
        self._index.observe(self._on_index, names="value")
        self._image.observe(self._on_image, names="value")
        self._shared.observe(lambda ch: self._sync_page(), names="value")
        self._grid.observe(lambda ch: self._rebuild_page(), names="value")
        controls = ipw.VBox(
            [
                ipw.HBox([self.picker.widget, self._grid, self._shared]),
                self._index,
                self._image,
            ]
        )
        self.widget = ipw.VBox(
            [controls, self.status, self._main.widget, self._page_box, self.export_box.widget]
        )
        self.image, self.map_index, self.grid = image, map_index, grid
        if picker is not None:
            self.follow(picker)

    def follow(self, picker: LayerPicker) -> None:
        """Let an outside :class:`LayerPicker` drive this browser (see ``picker=``)."""

        def apply(value: Any) -> None:
            chosen = [value] if isinstance(value, str) else list(value or ())
            known = [v for v in chosen if v in self.maps]
            missing = [v for v in chosen if v not in self.maps]
            if missing:
                self._report(
                    f"no maps extracted for {', '.join(map(layer_name, missing))}; "
                    "extract them (extract_activations) and build the browser again", True,
                )  # fmt: skip
            else:
                self.status.value = ""
            if not known:
                return
            if picker.multiple:
                self.picker.offer(known)
            else:
                self.layer = known[0]

        picker.observe(apply)
        apply(picker.value)

    # -- drawing (plots only) --------------------------------------------------------------
    def _view(self, layer: str) -> np.ndarray:
        """The maps of ``layer`` as shown: on the common grid when ``resample`` is given (the
        layer shown last is kept, not every layer)."""
        if self._on_grid is None:
            return self.maps[layer]
        if self._shown[0] != layer:
            mode = resample_mode(self.resample)
            self._shown = (layer, np.asarray(resample_maps(self.maps[layer], self._on_grid,
                                                           mode=mode)))  # fmt: skip
        return self._shown[1]

    def _draw_selected(self, layer: str, image: int, index: int) -> hv.Image:
        return plots.map_image(
            self._view(layer)[image, index],
            cmap=self.cmap,
            title=f"{layer_name(layer)} · map {index} · image {image}",
            size=360,
        )

    def _page_ids(self) -> list[int]:
        c = self.maps[self.layer].shape[1]
        size = max(1, self.grid)
        start = (self.map_index // size) * size
        return list(range(start, min(c, start + size)))

    def _draw_slot(self, k: int) -> Callable[..., hv.Image]:
        px = panel_px(min(self.ncols, max(1, self.grid)))

        def draw(layer: str, image: int, start: int, shared: bool) -> hv.Image:
            arr = self._view(layer)[image]
            size = max(1, self.grid)
            i = start + k
            clim = None
            if shared:
                stop = min(arr.shape[0], start + size)
                lo, hi = float(arr[start:stop].min()), float(arr[start:stop].max())
                clim = (lo, hi if hi > lo else lo + 1.0)
            if i >= arr.shape[0]:
                return plots.map_image(
                    np.zeros(arr.shape[1:]), title="(none)", clim=(0, 1), size=px
                )
            return plots.map_image(arr[i], title=f"map {i}", clim=clim, cmap=self.cmap, size=px)

        return draw

    def _slot_plots(self) -> list:
        if self._page_view is None:
            return []
        return [
            p
            for p in self._page_view.plot.traverse(lambda p: p)
            if "source" in getattr(p, "handles", {})
        ]

    def _frame_selected(self) -> None:
        """Frame the selected map on the live page (a property change, no redraw)."""
        color, width = plots.STYLE["highlight_color"], plots.STYLE["highlight_width"]
        chosen = self.map_index - self.page_stream.contents["start"]
        for k, p in enumerate(self._slot_plots()):
            fig = p.state
            on = k == chosen
            want = (color if on else None, width if on else 1, 1.0)
            if (fig.outline_line_color, fig.outline_line_width, fig.outline_line_alpha) != want:
                fig.outline_line_color, fig.outline_line_width = want[0], want[1]
                fig.outline_line_alpha = want[2]

    def _rebuild_page(self) -> None:
        if self._page_view is not None:
            self._page_view.plot.cleanup()
        self._sync_page()  # page start for the new page size
        if self.grid <= 1:
            self._page_view, self._page_box.children = None, ()
            return
        slots = [
            hv.DynamicMap(self._draw_slot(k), streams=[self.page_stream]).opts(framewise=True)
            for k in range(self.grid)
        ]
        layout = hv.Layout(slots).cols(self.ncols).opts(shared_axes=False, backend="bokeh")
        self._page_view = BokehView(layout)
        self._page_box.children = (self._page_view.widget,)
        self._frame_selected()

    def _on_layer(self, layer: str) -> None:
        n, c = self.maps[layer].shape[:2]
        # resize the sliders silently, then send one event with the new layer
        self._index.unobserve(self._on_index, names="value")
        self._image.unobserve(self._on_image, names="value")
        try:
            self._index.value = min(self._index.value, c - 1)
            self._index.max = c - 1
            self._index.layout.width = slider_layout(c).width
            self._image.value = min(self._image.value, n - 1)
            self._image.max = n - 1
            self._image.layout.width = slider_layout(n).width
            self._image.layout.display = "" if n > 1 else "none"
        finally:
            self._index.observe(self._on_index, names="value")
            self._image.observe(self._on_image, names="value")
        self.stream.event(layer=layer, index=self._index.value, image=self._image.value)
        self._sync_page()

    def _on_index(self, change: dict) -> None:
        self.stream.event(index=change["new"])
        self._sync_page()

    def _on_image(self, change: dict) -> None:
        self.stream.event(image=change["new"])
        self._sync_page()

    def _sync_page(self, force: bool = False) -> None:
        size = max(1, self.grid)
        state = {
            "layer": self.layer,
            "image": self.image,
            "start": (self.map_index // size) * size,
            "shared": self.shared_scale,
        }
        if force or state != self.page_stream.contents:
            doc = None if self._page_view is None else self._page_view.plot.state.document
            if doc is None:
                self.page_stream.event(**state)
            else:
                # one Bokeh model-graph recompute for the whole page, not one per slot
                with doc.models.freeze():
                    self.page_stream.event(**state)
        self._frame_selected()

    # -- state -----------------------------------------------------------------------------
    @property
    def plot(self) -> Any:
        """The HoloViews Bokeh plot of the selected map."""
        return self._main.plot

    @property
    def page_plot(self) -> Any:
        """The HoloViews Bokeh plot of the page of maps (None when ``grid <= 1``)."""
        return None if self._page_view is None else self._page_view.plot

    @property
    def layer(self) -> str:
        return self.picker.value

    @layer.setter
    def layer(self, value: str) -> None:
        try:
            if value in self.maps and value not in [v for _, v in self.picker.widget.options]:
                self.picker.offer(self.layers)  # an outside picker had narrowed the list
            self.picker.value = value
        except KeyError as exc:
            raise self._fail(exc) from None

    @property
    def map_index(self) -> int:
        return int(self._index.value)

    @map_index.setter
    def map_index(self, value: int) -> None:
        c = self.maps[self.layer].shape[1]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise self._fail(TypeError(f"map_index must be an integer, got {value!r}"))
        if not 0 <= value < c:
            raise self._fail(
                IndexError(
                    f"map_index {value} out of range for layer {self.layer!r}: expected 0 <= index < {c}"
                )
            )
        self._index.value = int(value)

    @property
    def image(self) -> int:
        return int(self._image.value)

    @image.setter
    def image(self, value: int) -> None:
        n = self.maps[self.layer].shape[0]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or not 0 <= value < n
        ):
            raise self._fail(IndexError(f"image must be an integer in [0, {n}), got {value!r}"))
        self._image.value = int(value)

    @property
    def grid(self) -> int:
        return int(self._grid.value)

    @grid.setter
    def grid(self, value: int) -> None:
        check = [str(o) for o in self._grid.options]
        if str(value) not in check:
            raise self._fail(ValueError(unknown_name_message("grid size", value, check)))
        if self._grid.value == value and (self._page_view is not None or value <= 1):
            return
        if self._grid.value == value:
            self._rebuild_page()
        else:
            self._grid.value = int(value)

    @property
    def shared_scale(self) -> bool:
        return bool(self._shared.value)

    @shared_scale.setter
    def shared_scale(self, value: bool) -> None:
        self._shared.value = bool(value)

    def figure(self) -> hv.Layout:
        """Static figure of the current view: the page of maps (or the selected map alone),
        the selected map framed. Tiles of a page are titled "map 5" under one heading naming
        the layer and image (a narrow tile wrapped a longer title); the selected map alone
        names them in its title."""
        arr = self._view(self.layer)[self.image]
        ids = self._page_ids() if self.grid > 1 else [self.map_index]
        where = f"{layer_name(self.layer)} · image {self.image}"
        return plots.map_grid(
            arr,
            ids=ids,
            ncols=self.ncols,
            shared_scale=self.shared_scale,
            highlight=[self.map_index] if len(ids) > 1 else (),
            cmap=self.cmap,
            title="map {id}" if len(ids) > 1 else f"{where} · map {{id}}",
            heading=where if len(ids) > 1 else "",
        )
