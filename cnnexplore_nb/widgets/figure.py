"""Controls redrawing a HoloViews figure in place: ``interact`` for figures, without an
Output widget."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import ipywidgets as ipw

from ._base import BokehView, PanelBase

__all__ = ["FigureControls"]


class FigureControls(PanelBase):
    """ipywidgets controls whose values redraw ``fn(**values)`` in one Bokeh view.

    Like :func:`ipywidgets.interact` for a function returning a HoloViews figure, but the
    figure is a single Bokeh widget updated in place: no ``Output`` widget and no
    ``clear_output`` (headless runners such as papermill can stall on a cell that
    ``interact`` draws into), and the panel has an export box like the other panels.

    Parameters
    ----------
    fn : callable
        ``fn(**values)`` -> a HoloViews object; called once now and on every change.
    stem : str
        File name stem of the export box.
    figures : str or PathLike, optional
        Folder of the export box (default: the notebook's figure folder).
    **controls : ipywidgets.ValueWidget
        One control per keyword of ``fn`` (e.g. ``channel=IntSlider(0, 0, 15)``).

    Attributes
    ----------
    controls : dict
        The controls by keyword; setting ``controls["channel"].value`` redraws.
    view : BokehView
        The figure; ``view.obj`` is the HoloViews object shown.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        stem: str = "figure",
        figures: str | os.PathLike | None = None,
        **controls: ipw.ValueWidget,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable (returning a HoloViews object), got {fn!r}")
        if not controls:
            raise ValueError("give at least one control, e.g. channel=IntSlider(0, 0, 15)")
        for name, control in controls.items():
            if not isinstance(control, ipw.ValueWidget):
                raise TypeError(
                    f"control {name!r} must be an ipywidgets value widget (IntSlider, "
                    f"Dropdown, ...), got {type(control).__name__}"
                )
        super().__init__(stem, figures)
        self.fn = fn
        self.controls = dict(controls)
        self.view = BokehView(fn(**self.values))
        for control in self.controls.values():
            control.observe(self._redraw, names="value")
        self.widget = ipw.VBox(
            [
                ipw.HBox(list(self.controls.values())),
                self.view.widget,
                self.export_box.widget,
                self.status,
            ]  # fmt: skip
        )

    @property
    def values(self) -> dict[str, Any]:
        """The controls' current values, by keyword."""
        return {name: control.value for name, control in self.controls.items()}

    def figure(self) -> Any:
        """The HoloViews object shown now."""
        return self.view.obj

    def _redraw(self, _change: Any = None) -> None:
        try:
            self.view.replace(self.fn(**self.values))
        except Exception as exc:  # shown beside the figure, then raised for the log
            raise self._fail(exc) from exc
        self.status.value = ""
