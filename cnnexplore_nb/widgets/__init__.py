"""Notebook panels wiring ipywidgets controls to :mod:`cnnexplore_nb.plots` (no analysis here).

Call :func:`setup_notebook` once in a notebook (loads BokehJS inline, works offline), then
display a panel: ``MapBrowser(maps)``, ``CorrelationPanel(maps_a)``. Panel state is readable
and settable from Python (``panel.threshold = 0.9``), so notebooks stay reproducible.
"""

from __future__ import annotations

from ._base import BokehView, ExportBox, figure_folder, set_figure_folder, setup_notebook
from .browser import LayerPicker, MapBrowser
from .correlation import CorrelationPanel

__all__ = [
    "BokehView",
    "CorrelationPanel",
    "ExportBox",
    "LayerPicker",
    "MapBrowser",
    "figure_folder",
    "set_figure_folder",
    "setup_notebook",
]
