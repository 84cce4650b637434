"""Write figures to files: PNG/SVG/PDF through Matplotlib (no browser), HTML through Bokeh.

PNG, SVG and PDF come from one Matplotlib drawing in the paper style
(:func:`cnnexplore_nb.plots.paper.draw`): a column (3.5 in) or page (7.16 in) wide, fonts at
print size, PNG at 300 dpi, SVG and PDF with text kept as text (``svg.fonttype = "none"``,
``pdf.fonttype = 42``), so a figure goes into a paper unedited and stays editable.

Every format is rendered to a temporary file beside the target and all are moved into place
only when all succeeded, so a failure never leaves half-written or partial sets of files.
SVG and PDF are byte-identical across runs (fixed ``SOURCE_DATE_EPOCH`` and SVG hash salt).
With ``check=True`` (or ``CNNX_FIGURE_CHECK=1`` in the environment) the drawn figure is
checked (:func:`cnnexplore_nb.plots.check.check_figure`) and the report is written beside
it as ``<name>.layout.json``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import holoviews as hv

from .._checks import check_positive_int, unknown_name_message
from ..io import check_writable_dir
from ._style import ensure_backends
from .paper import draw, static_view
from .style import paper_rc

__all__ = ["CHECK_ENV", "FORMATS", "export", "static_view"]

#: Supported output formats.
FORMATS = ("png", "svg", "pdf", "html")
_DEFAULT = ("png", "svg", "pdf")
#: Environment variable that makes every export write its layout report.
CHECK_ENV = "CNNX_FIGURE_CHECK"


@contextlib.contextmanager
def _reproducible(epoch: str = "0") -> Iterator[None]:
    """Fix the timestamps and SVG ids Matplotlib writes, restoring the environment after."""
    import matplotlib

    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = old if old is not None else epoch
    try:
        with matplotlib.rc_context(paper_rc()):
            yield
    finally:
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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


def _check_wanted(check: bool | None) -> bool:
    if check is not None:
        return bool(check)
    return os.environ.get(CHECK_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def export(
    fig: Any,
    path: str | os.PathLike,
    formats: Sequence[str] | str | None = None,
    *,
    dpi: int = 300,
    fig_size: float | None = None,
    title: str | None = None,
    width: Literal["column", "page"] | float | None = None,
    height: float | None = None,
    letters: bool | None = None,
    share_colors: bool = True,
    check: bool | None = None,
    full_page: bool = False,
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
        Resolution of raster output (300 for print).
    fig_size : float, optional
        Height in percent of the automatic height (the width is set by ``width``).
    title : str, optional
        Page title of the HTML file.
    width : "column", "page" or float, optional
        3.5 in, 7.16 in or inches; default a column for one panel, a page for several.
    height : float, optional
        Inches; default from the panels' aspect ratios.
    letters : bool, optional
        Panel letters "(a)", "(b)"... in the titles (default: layouts of several panels).
    share_colors : bool
        Panels with colour bars for the same quantity share one colour range and one bar.
    check : bool, optional
        Check the drawn figure and write ``<stem>.layout.json`` beside it; default from the
        environment variable ``CNNX_FIGURE_CHECK``.
    full_page : bool
        The figure is a full-page figure: the checker accepts any width.

    Raises
    ------
    ValueError
        Unknown format (the valid ones are listed) or width.
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
    report = None
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
                        figure = draw(
                            obj, width=width, height=height, letters=letters, dpi=dpi,
                            share_colors=share_colors,
                            height_scale=(fig_size or 100.0) / 100.0,
                        )  # fmt: skip
                    figure.savefig(tmp, format=fmt, dpi=dpi, metadata=_metadata(fmt))
            if tmp.stat().st_size == 0:
                raise RuntimeError(f"rendering {fmt!r} produced an empty file")
        if figure is not None and _check_wanted(check):
            from .check import check_figure

            with _reproducible():
                report = check_figure(figure, name=stem.name, full_page=full_page)
        mode = 0o666 & ~_umask()
        for tmp, target in temps:
            os.chmod(tmp, mode)  # mkstemp creates 0600; give the usual permissions
            os.replace(tmp, target)
    finally:
        for tmp, _ in temps:
            if tmp.exists():
                tmp.unlink()
    if report is not None:
        from .check import write_report

        write_report(report, stem.with_name(f"{stem.name}.layout.json"))
    return [target for _, target in temps]


def _metadata(fmt: str) -> dict[str, Any] | None:
    """File metadata without the Matplotlib version (stable files across upgrades)."""
    if fmt == "svg":
        return {"Creator": "cnnexplore_nb"}
    if fmt == "pdf":
        return {"Creator": "cnnexplore_nb", "Producer": "cnnexplore_nb"}
    if fmt == "png":
        return {"Software": "cnnexplore_nb"}
    return None
