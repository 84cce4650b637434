"""Shared pieces of the panels: Bokeh plots inside ipywidgets, status line, export box.

A panel renders each HoloViews view once with the Bokeh renderer and wraps the Bokeh
figure in a ``jupyter_bokeh.BokehModel`` widget. Controls send stream events; HoloViews
then patches the existing Bokeh data sources in place and ``jupyter_bokeh`` forwards the
patches to the browser (no figure rebuild, zoom is kept).
"""

from __future__ import annotations

import asyncio
import functools
import html
import os
import re
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import holoviews as hv
import ipywidgets as ipw

from .. import plots

__all__ = [
    "BokehView",
    "canvas_renderer",
    "ExportBox",
    "PanelBase",
    "figure_folder",
    "load_now",
    "set_figure_folder",
    "setup_notebook",
]

_FIGURES: dict[str, Path | None] = {"folder": None}


def set_figure_folder(folder: str | os.PathLike | None) -> None:
    """Make ``folder`` the export boxes' default folder (None: back to the automatic one)."""
    _FIGURES["folder"] = None if folder is None else Path(folder)


def _notebook_name() -> str | None:
    """Stem of the running notebook's file, when the front end tells the kernel."""
    path = os.environ.get("JPY_SESSION_NAME")  # set by Jupyter Server for a notebook kernel
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            path = (
                shell.user_ns.get("__session__") or shell.user_ns.get("__vsc_ipynb_file__") or path
            )
    except ImportError:  # pragma: no cover - IPython is a dependency
        pass
    if not path or not str(path).endswith(".ipynb"):
        return None
    return Path(str(path)).stem


def figure_folder() -> Path:
    """Where export boxes write by default: the folder set with :func:`set_figure_folder` or
    ``setup_notebook(figures=...)``, else the running notebook's figure folder
    (:func:`cnnexplore_nb.notebook.figures_dir`, ``figures/<notebook>/``), else
    ``figures/panels/`` under the project root."""
    if _FIGURES["folder"] is not None:
        return _FIGURES["folder"]
    from ..notebook.scales import project_root

    # figures_dir() without creating the folder: the export creates it when it writes
    base = Path(os.environ.get("CNNX_FIGURES") or project_root() / "figures")
    return base / (_notebook_name() or "panels")


def setup_notebook(*, figures: str | os.PathLike | None = None) -> None:
    """Set a notebook up for figures and panels; call once, instead of ``hv.extension``.

    Loads BokehJS inline into the page (offline), makes Bokeh HoloViews' display backend
    (Matplotlib is loaded too, for :func:`~cnnexplore_nb.plots.export`) and uses Panel's
    ipywidgets bridge (``comms="ipywidgets"``), which works in JupyterLab and Voila alike.

    Nothing is fetched online: Panel's stylesheets of a HoloViews figure shown in a cell
    are inlined too (Panel links them to its CDN on that path). Figures draw with the 2-D
    canvas, not WebGL (see :func:`canvas_renderer`).

    Safe with "Run All": the loader scripts of ``hv.extension`` / ``pn.extension`` defer
    loading BokehJS by 100 ms (``setTimeout(load_or_wait, 100)``), so a panel displayed by
    the next cell could build its ``jupyter_bokeh`` view before ``window.Bokeh`` exists
    ("Click to show javascript error"). Here the same scripts are published with the load
    run at once (see :func:`load_now`): BokehJS is defined as soon as this cell's output is
    attached to the page, before any later output renders.

    Parameters
    ----------
    figures : str or PathLike, optional
        Default folder of the panels' export boxes (e.g. ``figures_dir(NB)``); by default
        the notebook's own figure folder when the front end names the notebook.
    """
    import holoviews as hv
    import panel as pn
    from IPython.display import publish_display_data
    from IPython.utils.capture import capture_output

    with capture_output(stdout=False, stderr=False, display=True) as captured:
        hv.extension("bokeh", inline=True)  # display hooks + the full inline BokehJS bundle
        pn.extension(comms="ipywidgets", inline=True)
    canvas_renderer()  # figures shown in cells draw with the 2-D canvas too (no WebGL)
    for out in captured.outputs:
        publish_display_data(
            data=load_now(out.data), metadata=out.metadata, transient=out.transient
        )
    from panel.viewable import Viewable

    if _inline_styles not in Viewable._preprocessing_hooks:  # Panel's hook list for roots
        Viewable._preprocessing_hooks.append(_inline_styles)
    plots.ensure_backends()
    if figures is not None:
        set_figure_folder(figures)


def _inline_styles(viewable: Any, root: Any, changed: Any = None, old_models: Any = None) -> None:
    """Panel's CSS inline in a figure shown through its ipywidgets bridge (a HoloViews
    object displayed in a cell): Panel links its stylesheets to its CDN there, which an
    offline notebook cannot reach (Panel inlines them only on its own display path)."""
    from bokeh.models import UIElement
    from panel.io.notebook import patch_inline_stylesheets

    for model in root.select({"type": UIElement}):
        patch_inline_stylesheets(model)


#: Panel's autoload template starts loading after a delay (a head start for older loaders).
_DEFERRED_LOAD = re.compile(r"setTimeout\(\s*load_or_wait\s*,\s*\d+\s*\)")


def load_now(data: dict[str, Any]) -> dict[str, Any]:
    """A display bundle whose BokehJS loader scripts run their load immediately.

    Parameters
    ----------
    data : dict
        Mime type -> content, as published by ``pn.extension`` / ``hv.extension``.

    Returns
    -------
    dict
        The same bundle; in JavaScript entries ``setTimeout(load_or_wait, 100)`` becomes
        ``load_or_wait()`` (inline resources need no download, so the load is synchronous).
    """
    out = dict(data)
    for mime, content in data.items():
        if isinstance(content, str) and (mime.endswith("javascript") or "_load." in mime):
            out[mime] = _DEFERRED_LOAD.sub("load_or_wait()", content)
    return out


class _CellSync:
    """Keep the whole figure of Bokeh widgets current in their widget state.

    ``jupyter_bokeh`` forwards document changes as patches to the widget's *existing* views,
    but its ``render_bundle`` (the state a view created later starts from, e.g. after the
    page is reloaded) stays the one made when the widget was built. So:

    * a view created later (the panel is displayed after ``panel.map_index = 5`` in the
      same cell, or a "Run All" outruns the browser) would show a stale figure, and
    * after moving a slider in the browser, reloading the page would show the figure of
      the end of "Run All" beside controls showing the live values.

    Widgets patched while a cell runs therefore get a fresh render bundle, sent to the
    browser, when the cell ends. Widgets patched by a browser event (a slider, a heatmap
    click) already show the change; their bundle is refreshed and sent too, once the events
    stop for :attr:`delay` seconds (once after a slider drag): the browser's copy of the
    widget state, which JupyterLab saves into the notebook file, then holds the figure the
    controls describe, and a reloaded page (which asks the kernel) gets it as well. The
    browser redraws the figure from it once, at rest.
    """

    #: seconds without new patches before a browser-driven change is stored whole and
    #: re-sent (long enough for a pause between clicks; short enough to beat a save)
    delay = 1.0

    def __init__(self) -> None:
        self.active = False
        self.dirty: weakref.WeakSet = weakref.WeakSet()
        self.quiet: weakref.WeakSet = weakref.WeakSet()
        self.shell: Any = None
        self._timer: Any = None

    def watch(self) -> None:
        """Follow cell executions of the running IPython shell (once per shell)."""
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython is a dependency
            return
        shell = get_ipython()
        if shell is None or shell is self.shell:
            return
        # run_cell events: ipykernel also fires pre/post_execute around comm messages
        shell.events.register("pre_run_cell", self._pre)
        shell.events.register("post_run_cell", self._post)
        self.shell, self.active = shell, True  # we are inside a cell right now

    def _pre(self, *_: Any) -> None:
        self.active = True

    def _post(self, *_: Any) -> None:
        self.active = False
        changed, self.dirty = list(self.dirty), weakref.WeakSet()
        for widget in changed:
            widget.update_from_model(widget._model)
            self.quiet.discard(widget)

    def patched(self, widget: Any) -> None:
        """``widget`` sent a patch: store its whole figure after the cell or the events."""
        if self.active:
            self.dirty.add(widget)  # the cell's end re-sends it
            return
        self.quiet.add(widget)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop, so no front end (a script): flush() on demand
            return
        self._timer = loop.call_later(self.delay, self.flush)

    def flush(self) -> None:
        """Store the whole figure of every widget patched by browser events in its state
        and send it to the browser (whose saved widget state then holds it)."""
        self._timer = None
        changed, self.quiet = list(self.quiet), weakref.WeakSet()
        for widget in changed:
            if widget.comm is not None:  # closed widgets have no state to keep
                widget.store_figure()


_SYNC = _CellSync()


@functools.cache
def _model_class() -> type:
    from jupyter_bokeh import BokehModel

    class SyncedBokehModel(BokehModel):
        """A ``BokehModel`` whose widget state follows its patches (see ``_CellSync``)."""

        def _document_patched(self, event: Any) -> None:
            super()._document_patched(event)
            if event.setter is not self:  # not an echo of the browser's own change
                _SYNC.patched(self)

        def store_figure(self) -> None:
            """The render bundle of the figure as it is now, in the widget state of the
            kernel and of the browser (what a saved notebook and a reloaded page show)."""
            self.render_bundle = self._model_to_traits(self._model)

    return SyncedBokehModel


def canvas_renderer() -> Any:
    """HoloViews' Bokeh renderer, drawing with the 2-D canvas instead of WebGL.

    HoloViews asks Bokeh for WebGL by default. A browser without a GPU (headless, remote
    desktops, many laptops' software GL) can lose its WebGL context, and then every WebGL
    glyph of the page (heatmap cells, map images, scatter points) stays blank while axes,
    titles and text are drawn: seen here after a page reload. The toolkit's figures are
    small (a heatmap, a few 2-D maps, a few thousand points), so the canvas costs nothing.
    """
    renderer = hv.renderer("bokeh")
    renderer.webgl = False
    return renderer


class BokehView:
    """A HoloViews object rendered once with Bokeh and shown as an ipywidget.

    Attributes
    ----------
    plot : holoviews plot
        The live HoloViews Bokeh plot (``plot.handles["source"]`` holds the drawn data).
    widget : ipywidgets.Widget
        The ``jupyter_bokeh.BokehModel`` showing ``plot.state``; changes made from Python in
        a notebook cell are fully re-sent when the cell ends, so the panel shows them even
        if it is displayed later.
    """

    def __init__(self, obj: Any) -> None:
        _SYNC.watch()
        self.obj = obj
        self.plot = canvas_renderer().get_plot(obj)
        self.widget = _model_class()(self.plot.state)

    def replace(self, obj: Any) -> None:
        """Show another HoloViews object in the same widget (used for structural changes)."""
        self.plot.cleanup()
        self.obj = obj
        self.plot = canvas_renderer().get_plot(obj)
        self.widget.update_from_model(self.plot.state)


class ExportBox:
    """Folder, file name, formats and a button writing the panel's current view to files.

    The folder defaults to the notebook's figure folder (:func:`figure_folder`); the written
    paths (or the error) are shown next to the button, replacing the previous message.
    """

    def __init__(
        self,
        figure: Callable[[], Any],
        report: Callable[[str, bool], None] | None = None,
        *,
        stem: str = "figure",
        folder: str | os.PathLike | None = None,
    ) -> None:
        self._figure = figure
        self._report = report
        self.folder = ipw.Text(
            value=os.fspath(folder if folder is not None else figure_folder()),
            description="folder",
            layout=ipw.Layout(width="460px"),
        )
        self.stem = ipw.Text(value=stem, description="file name", layout=ipw.Layout(width="460px"))
        self.formats = ipw.SelectMultiple(
            options=list(plots.FORMATS),
            value=("png", "svg", "pdf"),
            description="formats",
            rows=4,
            layout=ipw.Layout(width="180px"),
        )
        self.button = ipw.Button(description="Export", icon="download")
        self.button.on_click(lambda _: self.run())
        self.status = ipw.HTML(value="", layout=ipw.Layout(max_width="520px"))
        self.widget = ipw.HBox(
            [ipw.VBox([self.folder, self.stem]), self.formats, ipw.VBox([self.button, self.status])]
        )

    def show(self, message: str, error: bool = False) -> None:
        """Replace the message next to the button."""
        color = "#b00020" if error else "#2e7d32"
        self.status.value = f'<span style="color:{color}">{message}</span>'

    def run(self) -> list[Path]:
        """Export now with the box's settings; show the written files or the error."""
        try:
            written = plots.export(
                self._figure(), Path(self.folder.value) / self.stem.value, self.formats.value
            )
        except (OSError, ValueError, TypeError, RuntimeError) as exc:
            self.show(html.escape(f"export failed: {exc}"), True)
            return []
        self.show("wrote<br>" + "<br>".join(html.escape(os.fspath(p)) for p in written))
        return written


class PanelBase:
    """Common behaviour: a status line, an export box, display in notebooks, export()."""

    widget: ipw.Widget

    def __init__(self, stem: str, figures: str | os.PathLike | None = None) -> None:
        self.status = ipw.HTML(value="")
        self.export_box = ExportBox(self.figure, stem=stem, folder=figures)

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
            self.export_box.show(html.escape(f"export failed: {exc}"), True)
            raise self._fail(exc) from None
        self.export_box.show("wrote<br>" + "<br>".join(html.escape(os.fspath(p)) for p in written))
        return written

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):  # what a viewer without the live kernel shows instead
            bundle["text/plain"] = (
                f"{type(self).__name__}: an interactive panel (run the notebook in JupyterLab "
                "to use it; its figures are exported to the notebook's figure folder)"
            )
        return bundle
