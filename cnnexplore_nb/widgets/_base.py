"""Shared pieces of the panels: Bokeh plots inside ipywidgets, status line, export box.

A panel renders each HoloViews view once with the Bokeh renderer and wraps the Bokeh
figure in a ``jupyter_bokeh.BokehModel`` widget. Controls send stream events; HoloViews
then patches the existing Bokeh data sources in place and ``jupyter_bokeh`` forwards the
patches to the browser (no figure rebuild, zoom is kept).
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import holoviews as hv
import ipywidgets as ipw

from .. import plots

__all__ = ["BokehView", "ExportBox", "PanelBase", "setup_notebook"]


def setup_notebook() -> None:
    """Load BokehJS inline into the notebook page (offline); call once before showing panels.

    Uses Panel's ipywidgets bridge (``comms="ipywidgets"``), which works in JupyterLab and
    Voila alike; the current HoloViews backend is left as it was.
    """
    import panel as pn

    plots.ensure_backends()
    pn.extension(comms="ipywidgets", inline=True)


class BokehView:
    """A HoloViews object rendered once with Bokeh and shown as an ipywidget.

    Attributes
    ----------
    plot : holoviews plot
        The live HoloViews Bokeh plot (``plot.handles["source"]`` holds the drawn data).
    widget : ipywidgets.Widget
        The ``jupyter_bokeh.BokehModel`` showing ``plot.state``.
    """

    def __init__(self, obj: Any) -> None:
        from jupyter_bokeh import BokehModel

        self.obj = obj
        self.plot = hv.renderer("bokeh").get_plot(obj)
        self.widget = BokehModel(self.plot.state)

    def replace(self, obj: Any) -> None:
        """Show another HoloViews object in the same widget (used for structural changes)."""
        self.plot.cleanup()
        self.obj = obj
        self.plot = hv.renderer("bokeh").get_plot(obj)
        self.widget.update_from_model(self.plot.state)


class ExportBox:
    """Folder, file name, formats and a button writing the panel's current view to files."""

    def __init__(
        self,
        figure: Callable[[], Any],
        report: Callable[[str, bool], None],
        *,
        stem: str = "figure",
    ) -> None:
        self._figure = figure
        self._report = report
        self.folder = ipw.Text(value="figures", description="folder")
        self.stem = ipw.Text(value=stem, description="file name")
        self.formats = ipw.SelectMultiple(
            options=list(plots.FORMATS),
            value=("png", "svg", "pdf"),
            description="formats",
            rows=4,
        )
        self.button = ipw.Button(description="Export", icon="download")
        self.button.on_click(lambda _: self.run())
        self.widget = ipw.HBox([ipw.VBox([self.folder, self.stem]), self.formats, self.button])

    def run(self) -> list[Path]:
        """Export now with the box's settings; report written files or the error."""
        try:
            written = plots.export(
                self._figure(), Path(self.folder.value) / self.stem.value, self.formats.value
            )
        except (OSError, ValueError, TypeError, RuntimeError) as exc:
            self._report(f"export failed: {exc}", True)
            return []
        self._report("wrote " + ", ".join(os.fspath(p) for p in written), False)
        return written


class PanelBase:
    """Common behaviour: a status line, an export box, display in notebooks, export()."""

    widget: ipw.Widget

    def __init__(self, stem: str) -> None:
        self.status = ipw.HTML(value="")
        self.export_box = ExportBox(self.figure, self._report, stem=stem)

    # -- messages --------------------------------------------------------------------------
    def _report(self, message: str, error: bool = False) -> None:
        color = "#b00020" if error else "#2e7d32"
        self.status.value = f'<span style="color:{color}">{html.escape(message)}</span>'

    def _fail(self, exc: Exception) -> Exception:
        """Show ``exc`` in the status line and return it for raising."""
        self._report(str(exc.args[0]) if exc.args else str(exc), True)
        return exc

    # -- output ----------------------------------------------------------------------------
    def figure(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def export(self, path: str | os.PathLike, formats: Any = None, **kwargs: Any) -> list[Path]:
        """Write the current view with :func:`cnnexplore_nb.plots.export`; errors also shown."""
        try:
            written = plots.export(self.figure(), path, formats, **kwargs)
        except (OSError, ValueError, TypeError) as exc:
            raise self._fail(exc) from None
        self._report("wrote " + ", ".join(os.fspath(p) for p in written))
        return written

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
