"""One style for every figure, and option helpers that style both plotting backends.

HoloViews keeps options per backend. Figures are shown with Bokeh in notebooks and exported
with Matplotlib for papers, so every plot function styles its elements for both backends
through :func:`styled`. Importing this module loads both backends into ``hv.Store`` without
changing the notebook's current backend.
"""

from __future__ import annotations

from typing import Any

import holoviews as hv
import numpy as np

__all__ = ["STYLE", "as_array", "cell_labels", "ensure_backends", "styled", "text_colors"]

#: Fonts, sizes and colour maps shared by all figures (edit once, every figure follows).
STYLE: dict[str, Any] = {
    "fontsize": {"title": 11, "labels": 10, "xticks": 8, "yticks": 8, "legend": 8},
    "cmap": "viridis",
    "diverging_cmap": "RdBu_r",
    "categorical_cmap": "Category10",
    "highlight_color": "#d62728",
    "highlight_width": 3,
    "panel_px": 180,  # side of one small panel in a grid (Bokeh, pixels)
    "plot_px": (420, 320),  # width, height of a single plot (Bokeh, pixels)
    "panel_inches": 1.6,  # side of one small panel in a grid (Matplotlib)
    "plot_inches": (4.0, 3.0),  # width, height of a single plot (Matplotlib)
}


def ensure_backends() -> None:
    """Load the Bokeh and Matplotlib backends into ``hv.Store``; keep the current backend."""
    current = hv.Store.current_backend if hv.Store.renderers else None
    import holoviews.plotting.bokeh  # noqa: F401  (registers the renderer)
    import holoviews.plotting.mpl  # noqa: F401

    if current in hv.Store.renderers:
        hv.Store.set_current_backend(current)


ensure_backends()


def styled(
    obj: Any,
    common: dict[str, Any] | None = None,
    *,
    bokeh: dict[str, Any] | None = None,
    mpl: dict[str, Any] | None = None,
) -> Any:
    """Apply ``common`` options plus backend-specific ones to ``obj`` for both backends."""
    common = dict(common or {})
    obj = obj.opts(**{**common, **(bokeh or {})}, backend="bokeh")
    obj = obj.opts(**{**common, **(mpl or {})}, backend="matplotlib")
    return obj


def text_colors(values: Any, cmap: Any, clim: tuple[float, float]) -> list[str]:
    """Black or white per value, whichever reads better on its colour in ``cmap`` over
    ``clim`` (the luminance rule of the exported figures); black for NaN."""
    from holoviews.plotting.util import process_cmap

    palette = process_cmap(cmap, ncolors=256)
    lo, hi = float(clim[0]), float(clim[1])
    out = []
    for v in np.ravel(np.asarray(values, dtype=float)):
        if not np.isfinite(v):
            out.append("black")
            continue
        k = int(np.clip((v - lo) / (hi - lo) if hi > lo else 0.0, 0.0, 1.0) * 255)
        rgb = [int(palette[k][i : i + 2], 16) / 255 for i in (1, 3, 5)]
        lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
        out.append("black" if lum > 0.5 else "white")
    return out


def _keep_text_on_selection(plot: Any, element: Any) -> None:
    """A click on a heatmap selects a cell; the other cells' numbers stay as they are (Bokeh
    fades non-selected glyphs to 10 % by default)."""
    renderer = plot.handles.get("glyph_renderer")
    if renderer is not None and renderer.nonselection_glyph is not None:
        renderer.nonselection_glyph = None  # None: drawn like the glyph itself


def cell_labels(
    xs: Any, ys: Any, text: list[str], kdims: list, size: int = 8, colors: Any = None
) -> hv.Labels:
    """Value labels centred on heatmap cells (``size`` in points, Bokeh one larger).

    ``colors`` gives each label's colour (e.g. :func:`text_colors` of the cell values);
    default white. A selection (a click) never fades the labels.
    """
    n = len(np.ravel(xs))
    colors = ["white"] * n if colors is None else [str(c) for c in colors]
    labels = hv.Labels(
        (np.ravel(xs), np.ravel(ys), text, colors), kdims=kdims, vdims=["text", "color"]
    )
    return styled(
        labels,
        {},
        bokeh={
            "text_font_size": f"{size + 1}pt",
            "text_color": "color",
            "hooks": [_keep_text_on_selection],
        },
        mpl={"size": size, "color": "white"},
    )


def fonts() -> dict[str, Any]:
    """The shared ``fontsize`` option (a fresh dict)."""
    return {"fontsize": dict(STYLE["fontsize"])}


def as_array(data: Any, name: str, ndim: tuple[int, ...]) -> np.ndarray:
    """Convert a numpy array or torch tensor to a float numpy array with an allowed ndim."""
    if hasattr(data, "detach"):  # torch tensor, without importing torch
        data = data.detach().cpu().float().numpy()
    arr = np.asarray(data)
    if arr.ndim not in ndim:
        want = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"{name} must be {want}, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def border_hooks(color: str, width: float) -> dict[str, list]:
    """Hooks drawing a coloured frame around a panel, one per backend."""

    def bokeh_hook(plot: Any, element: Any) -> None:
        fig = plot.state
        fig.outline_line_color = color
        fig.outline_line_width = width
        fig.outline_line_alpha = 1.0

    def mpl_hook(plot: Any, element: Any) -> None:
        ax = plot.handles["axis"]
        for spine in ax.spines.values():
            spine.set_visible(True)
            spine.set_edgecolor(color)
            spine.set_linewidth(min(width, 1.5))  # points at print size

    return {"bokeh": [bokeh_hook], "matplotlib": [mpl_hook]}
