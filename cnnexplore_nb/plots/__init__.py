"""Paper-ready figures: data in, HoloViews object out (never displayed, no analysis).

Importing this module loads HoloViews' Bokeh and Matplotlib backends (the current backend is
kept): figures are styled for both, shown with Bokeh in notebooks and exported with
Matplotlib by :func:`export` in the paper style (:mod:`~cnnexplore_nb.plots.style`: column
or page width, print-size fonts, text kept as text). Every title, axis, legend, colour bar
and tooltip shows display names (:mod:`~cnnexplore_nb.plots.names`; override them through
:data:`NAMES` or :func:`display_names`). :func:`check_figure` reviews a drawn figure
(collisions, raw identifiers, sizes, fonts). Notebook fonts and sizes come from
:data:`STYLE`, print sizes from :data:`PAPER`.
"""

from __future__ import annotations

from ._style import STYLE, ensure_backends
from .check import FigureReport, Problem, check_figure, read_reports
from .correlation import (
    correlation_hist,
    correlation_image,
    for_print,
    layer_columns,
    layer_heatmap,
    percent_bars,
    statistic_range,
)
from .export import FORMATS, export, static_view
from .fundamentals import grid_of, line_curves, matrix_heatmap, sequence_bars, value_grid
from .general import embedding_scatter, errorbar_curves, segmentation_figure, training_history
from .maps import kernel_grid, map_grid, map_image, map_pair
from .names import (
    NAMES,
    display_name,
    display_names,
    layer_name,
    measure_name,
    method_name,
    metric_name,
    pair_name,
    series_label,
    statistic_name,
    weight_name,
)
from .paper import draw
from .style import PAPER, WIDTHS, paper_rc, series_styles
from .transfer import arm_points
from .vessels import layer_map_rows

__all__ = [
    "FORMATS",
    "NAMES",
    "PAPER",
    "STYLE",
    "WIDTHS",
    "FigureReport",
    "arm_points",
    "Problem",
    "check_figure",
    "correlation_hist",
    "correlation_image",
    "display_name",
    "display_names",
    "draw",
    "embedding_scatter",
    "ensure_backends",
    "errorbar_curves",
    "export",
    "for_print",
    "grid_of",
    "kernel_grid",
    "layer_columns",
    "layer_heatmap",
    "layer_map_rows",
    "layer_name",
    "line_curves",
    "map_grid",
    "map_image",
    "map_pair",
    "matrix_heatmap",
    "measure_name",
    "method_name",
    "metric_name",
    "pair_name",
    "paper_rc",
    "percent_bars",
    "read_reports",
    "segmentation_figure",
    "sequence_bars",
    "series_label",
    "series_styles",
    "statistic_name",
    "statistic_range",
    "static_view",
    "training_history",
    "value_grid",
    "weight_name",
]
