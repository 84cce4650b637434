"""Paper-ready figures: data in, HoloViews object out (never displayed, no analysis).

Importing this module loads HoloViews' Bokeh and Matplotlib backends (the current backend is
kept): figures are styled for both, shown with Bokeh in notebooks and exported with
Matplotlib by :func:`export`. Fonts and sizes come from one dict, :data:`STYLE`.
"""

from __future__ import annotations

from ._style import STYLE, ensure_backends
from .correlation import (
    correlation_hist,
    correlation_image,
    layer_columns,
    layer_heatmap,
    percent_bars,
)
from .export import FORMATS, export, static_view
from .fundamentals import grid_of, line_curves, matrix_heatmap, sequence_bars, value_grid
from .general import embedding_scatter, errorbar_curves, segmentation_figure, training_history
from .maps import kernel_grid, map_grid, map_image, map_pair
from .vessels import layer_map_rows

__all__ = [
    "FORMATS",
    "STYLE",
    "correlation_hist",
    "correlation_image",
    "embedding_scatter",
    "ensure_backends",
    "grid_of",
    "line_curves",
    "layer_map_rows",
    "matrix_heatmap",
    "sequence_bars",
    "value_grid",
    "errorbar_curves",
    "export",
    "kernel_grid",
    "layer_columns",
    "layer_heatmap",
    "map_grid",
    "map_image",
    "map_pair",
    "percent_bars",
    "segmentation_figure",
    "static_view",
    "training_history",
]
