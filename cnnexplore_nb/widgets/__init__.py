"""Notebook panels wiring ipywidgets controls to :mod:`cnnexplore_nb.plots` (no analysis here).

Call :func:`setup_notebook` once in a notebook (loads BokehJS inline, works offline), then
display a panel: ``MapBrowser(maps)``, ``CorrelationPanel(maps_a)``, or controls redrawing
a figure of your own: ``FigureControls(fn, channel=IntSlider(0, 0, 15))``. Panel state is readable
and settable from Python (``panel.threshold = 0.9``), so notebooks stay reproducible.
"""

from __future__ import annotations

from ._base import BokehView, ExportBox, figure_folder, set_figure_folder, setup_notebook
from .browser import LayerPicker, MapBrowser
from .correlation import CorrelationPanel
from .figure import FigureControls

__all__ = [
    "BokehView",
    "CorrelationPanel",
    "ExportBox",
    "FigureControls",
    "LayerPicker",
    "MapBrowser",
    "figure_folder",
    "set_figure_folder",
    "setup_notebook",
]
