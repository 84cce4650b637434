"""Write figures to files: PNG/SVG/PDF through Matplotlib (no browser), HTML through Bokeh.

Every format is rendered to a temporary file beside the target and all are moved into place
only when all succeeded, so a failure never leaves half-written or partial sets of files.
SVG and PDF are byte-identical across runs (fixed ``SOURCE_DATE_EPOCH`` and SVG hash salt).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import holoviews as hv

from .._checks import check_positive_int, unknown_name_message
from ..io import check_writable_dir
from ._style import ensure_backends

__all__ = ["FORMATS", "export", "static_view"]

#: Supported output formats.
FORMATS = ("png", "svg", "pdf", "html")
_DEFAULT = ("png", "svg", "pdf")


@contextlib.contextmanager
def _reproducible(epoch: str = "0") -> Iterator[None]:
    """Fix the timestamps and SVG ids Matplotlib writes, restoring the environment after."""
    import matplotlib

    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = old if old is not None else epoch
    try:
        with matplotlib.rc_context({"svg.hashsalt": "cnnexplore_nb", "svg.fonttype": "path"}):
            yield
    finally:
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def static_view(fig: Any) -> Any:
    """A static HoloViews object for ``fig``: a DynamicMap is evaluated at its current state."""
    if isinstance(fig, hv.DynamicMap):
        if fig.kdims:
            raise ValueError(
                "cannot export a DynamicMap with key dimensions "
                f"{[d.name for d in fig.kdims]}; select a frame first, e.g. dmap[key]"
            )
        return fig[()]
    if isinstance(fig, (hv.Layout, hv.NdLayout, hv.Overlay)) and any(
        isinstance(x, hv.DynamicMap) for x in fig.traverse(lambda x: x, [hv.DynamicMap])
    ):
        return fig.map(lambda d: static_view(d), [hv.DynamicMap])
    return fig


def _parse_formats(formats: Sequence[str] | str | None, path: Path) -> tuple[Path, list[str]]:
    suffix = path.suffix.lower().lstrip(".")
    stem = path.with_suffix("") if suffix in FORMATS else path
    if formats is None:
        formats = [suffix] if suffix in FORMATS else list(_DEFAULT)
    elif isinstance(formats, str):
        formats = [formats]
    out = []
    for f in formats:
        f = str(f).lower().lstrip(".")
        if f not in FORMATS:
            raise ValueError(unknown_name_message("export format", f, FORMATS))
        if f not in out:
            out.append(f)
    if not out:
        raise ValueError(f"formats must name at least one of {', '.join(FORMATS)}, got none")
    return stem, out


def export(
    fig: Any,
    path: str | os.PathLike,
    formats: Sequence[str] | str | None = None,
    *,
    dpi: int = 300,
    fig_size: float | None = None,
    title: str | None = None,
) -> list[Path]:
    """Write ``fig`` to ``path`` in several formats; return the written paths.

    Parameters
    ----------
    fig : HoloViews object
        A figure from :mod:`cnnexplore_nb.plots` (a stream-driven DynamicMap is exported at its
        current state).
    path : str or PathLike
        File stem (``figures/heatmap``); a known extension (``figures/heatmap.pdf``) is
        stripped and, when ``formats`` is None, selects the only format written.
    formats : sequence of {"png", "svg", "pdf", "html"}, optional
        Default ``("png", "svg", "pdf")``. PNG/SVG/PDF are drawn with Matplotlib; HTML is an
        interactive Bokeh page with BokehJS inlined (works offline).
    dpi : int
        Resolution of raster output.
    fig_size : float, optional
        Matplotlib figure size in percent (HoloViews ``fig_size``, default 100).

    Raises
    ------
    ValueError
        Unknown format (the valid ones are listed).
    NotADirectoryError, PermissionError
        The destination directory cannot be written; nothing is written then.
    """
    dpi = check_positive_int("dpi", dpi)
    stem, fmts = _parse_formats(formats, Path(path))
    directory = check_writable_dir(stem.parent if str(stem.parent) else Path("."))
    obj = static_view(fig)
    ensure_backends()
    temps: list[tuple[Path, Path]] = []
    figure = None
    try:
        for fmt in fmts:
            fd, name = tempfile.mkstemp(prefix=f".{stem.name}.", suffix=f".{fmt}", dir=directory)
            os.close(fd)
            tmp = Path(name)
            temps.append((tmp, stem.with_name(f"{stem.name}.{fmt}")))
            if fmt == "html":
                from bokeh.resources import INLINE

                hv.save(obj, str(tmp), backend="bokeh", resources=INLINE, title=title or stem.name)
            else:
                with _reproducible():
                    if figure is None:  # draw once, save every static format from it
                        figure = _matplotlib_figure(obj, dpi=dpi, fig_size=fig_size)
                    figure.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
            if tmp.stat().st_size == 0:
                raise RuntimeError(f"rendering {fmt!r} produced an empty file")
        mode = 0o666 & ~_umask()
        for tmp, target in temps:
            os.chmod(tmp, mode)  # mkstemp creates 0600; give the usual permissions
            os.replace(tmp, target)
    finally:
        if figure is not None:
            import matplotlib.pyplot as plt

            plt.close(figure)
        for tmp, _ in temps:
            if tmp.exists():
                tmp.unlink()
    return [target for _, target in temps]


def _matplotlib_figure(obj: Any, *, dpi: int, fig_size: float | None) -> Any:
    """Render ``obj`` with HoloViews' Matplotlib backend and return the Matplotlib figure."""
    renderer = hv.renderer("matplotlib")
    kw: dict[str, Any] = {"dpi": dpi}
    if fig_size is not None:
        kw["fig_size"] = fig_size
    renderer = renderer.instance(**kw)
    plot = renderer.get_plot(obj)
    return plot.state
