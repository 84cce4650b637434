"""A reviewer's check of a Matplotlib figure: collisions, raw identifiers, sizes, labels.

:func:`check_figure` inspects the figure :func:`~cnnexplore_nb.plots.export` draws (or any
Matplotlib figure) at print size and reports

``overlap``
    two drawn text boxes intersect (titles, axis and tick labels, legend entries, colour-bar
    labels, panel letters, value labels), measured on the turned text, not its bounding box;
``intrusion``
    a text reaches into the plot area of another panel (a colour-bar label over the next
    panel, tick labels turned into the next row);
``legend``
    a legend covers plotted data of its panel, or a figure legend covers a panel;
``raw-name``
    a text shows a raw identifier: snake_case (``mean_max_mean``, ``conv_module3``),
    ``(1)_``-style prefixes, module paths (``features.0.weight``), method or metric ids
    (``l2t_www``, ``ufm``, ``val_iou``), bare pair ids (``pair 14-1``), or a placeholder
    axis label (``x``, ``y``, ``value``);
``unlabelled``
    an axis (colour bars included) shows tick labels but has no label;
``width`` / ``height``
    not one of the paper widths (3.5 in, 7.16 in) unless ``full_page``; taller than a page;
``font``
    a text under 6 pt at print size;
``clipped``
    a text runs off the edge of the figure.

``export(..., check=True)`` or ``CNNX_FIGURE_CHECK=1`` writes the report beside the figure
as ``<name>.layout.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._fit import visible_ticklabels
from .names import raw_tokens
from .style import WIDTHS

__all__ = ["FigureReport", "Problem", "check_figure", "read_reports"]

PAGE_HEIGHT = 9.7  # inches: the text height of a two-column journal page
_PLACEHOLDERS = {"x", "y", "value", "values", "index", "variable", "0", "1"}
_SNAKE = re.compile(r"(?<![\w\\])[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]*[A-Za-z0-9](?!\w)")
_PREFIX = re.compile(r"\)_\w")
_PATH = re.compile(r"\b[a-z][a-z_]*\d*\.(?:\d+|weight|bias|conv|bn|relu)\b")
_PAIR = re.compile(r"(?:\bpair\s+\d+-\d+\b|^\s*\d+-\d+\s*$)")
_MATH = re.compile(r"\$[^$]*\$")


@dataclass
class Problem:
    """One finding: ``kind`` (see the module docstring), a message, the texts involved."""

    kind: str
    message: str
    texts: list[str] = field(default_factory=list)


@dataclass
class FigureReport:
    """What :func:`check_figure` found in one figure."""

    name: str
    width: float
    height: float
    texts: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def summary(self) -> str:
        """One line per problem, prefixed with the figure name."""
        return "\n".join(f"{self.name}: [{p.kind}] {p.message}" for p in self.problems)


# -- text collection -------------------------------------------------------------------------
def _texts(fig: Any) -> list[tuple[Any, Any, str]]:
    """(text artist, owning axes or None, role) of every drawn, non-empty text."""
    found: list[tuple[Any, Any, str]] = []

    def add(text: Any, ax: Any, role: str) -> None:
        if text is not None and text.get_visible() and text.get_text().strip():
            found.append((text, ax, role))

    title = getattr(fig, "_suptitle", None)
    for t in fig.texts:
        if t is not title:  # Matplotlib keeps the suptitle among the figure's texts too
            add(t, None, "figure text")
    if title is not None:
        add(fig._suptitle, None, "figure title")
    for leg in fig.legends:
        for t in leg.get_texts():
            add(t, None, "legend")
        add(leg.get_title(), None, "legend")
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for t in (ax.title, ax._left_title, ax._right_title):
            add(t, ax, "title")
        add(ax.xaxis.label, ax, "axis label")
        add(ax.yaxis.label, ax, "axis label")
        for t in visible_ticklabels(ax.xaxis) + visible_ticklabels(ax.yaxis):
            add(t, ax, "tick label")
        for axis in (ax.xaxis, ax.yaxis):
            add(axis.get_offset_text(), ax, "tick label")
        for t in ax.texts:
            add(t, ax, "annotation")
        leg = ax.get_legend()
        if leg is not None and leg.get_visible():
            for t in leg.get_texts():
                add(t, ax, "legend")
            add(leg.get_title(), ax, "legend")
    return found


def _oriented_box(text: Any, renderer: Any) -> np.ndarray:
    """The four corners (points) of the text's turned rectangle."""
    box = text.get_window_extent(renderer)
    scale = 72.0 / text.figure.dpi
    angle = np.deg2rad(text.get_rotation())
    if angle % (np.pi / 2) == 0:
        turned = round(angle / (np.pi / 2)) % 2 == 1
        w, h = (box.height, box.width) if turned else (box.width, box.height)
    else:  # measure the text unturned: its extent does not depend on its position
        rotation = text.get_rotation()
        text.set_rotation(0)
        try:
            inner = text.get_window_extent(renderer)
        finally:
            text.set_rotation(rotation)
        w, h = inner.width, inner.height
    c = np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])
    u = np.array([np.cos(angle), np.sin(angle)]) * w / 2
    v = np.array([-np.sin(angle), np.cos(angle)]) * h / 2
    return np.array([c - u - v, c + u - v, c + u + v, c - u + v]) * scale


def _overlap_depth(a: np.ndarray, b: np.ndarray) -> float:
    """Separating-axis test of two convex quadrilaterals: the smallest penetration (points,
    <= 0 when they are apart)."""
    depth = np.inf
    for poly in (a, b):
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            norm = np.hypot(*edge)
            if norm == 0:
                continue
            axis = np.array([-edge[1], edge[0]]) / norm
            pa, pb = a @ axis, b @ axis
            depth = min(depth, min(pa.max(), pb.max()) - max(pa.min(), pb.min()))
    return float(depth)


def _box_pt(bbox: Any, fig: Any) -> np.ndarray:
    s = 72.0 / fig.dpi
    return np.array([bbox.x0, bbox.y0, bbox.x1, bbox.y1]) * s


def _rect(b: np.ndarray) -> np.ndarray:
    return np.array([[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]])


def _raw_names(s: str) -> list[str]:
    s = _MATH.sub("", s)
    hits = _SNAKE.findall(s) + _PREFIX.findall(s) + _PATH.findall(s) + _PAIR.findall(s)
    words = re.findall(r"[A-Za-z][A-Za-z0-9]*", s)
    hits += [w for w in words if w in raw_tokens()]
    return hits


def _is_colorbar(ax: Any) -> bool:
    return hasattr(ax, "_colorbar") or ax.get_label() == "<colorbar>"


def _data_points(ax: Any) -> np.ndarray:
    """Display coordinates (pixels) of the plotted points and line vertices of ``ax``."""
    pts = []
    for line in ax.lines:
        xy = np.column_stack(line.get_data()).astype(float)
        if xy.size:
            pts.append(line.get_transform().transform(xy))
    for coll in ax.collections:
        offsets = np.asarray(coll.get_offsets(), dtype=float)
        if offsets.size and offsets.ndim == 2:
            pts.append(coll.get_offset_transform().transform(offsets))
        for path in getattr(coll, "get_paths", list)():
            if len(path.vertices) and path.vertices.size < 20_000:
                pts.append(coll.get_transform().transform(path.vertices))
    for patch in ax.patches:
        verts = patch.get_path().vertices
        if len(verts):
            pts.append(patch.get_transform().transform(verts))
    if not pts:
        return np.empty((0, 2))
    out = np.concatenate(pts)
    return out[np.all(np.isfinite(out), axis=1)]


# -- the check -------------------------------------------------------------------------------
def check_figure(
    fig: Any,
    *,
    name: str = "figure",
    full_page: bool = False,
    widths: Iterable[float] = tuple(WIDTHS.values()),
    min_fontsize: float = 6.0,
    tolerance: float = 0.5,
) -> FigureReport:
    """Check ``fig`` as printed (see the module docstring for the kinds of problem).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        Drawn at its print size (inches).
    name : str
        Figure name used in messages (e.g. the file stem).
    full_page : bool
        Allow any width (a full-page figure, excepted by name by the caller).
    widths : iterable of float
        Allowed widths in inches (default 3.5 and 7.16, ± 0.02).
    min_fontsize : float
        Smallest allowed font size in points.
    tolerance : float
        Points two boxes may overlap before it counts (anti-aliasing, glyph side bearings).
    """
    if fig.canvas is None or not hasattr(fig.canvas, "get_renderer"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    w, h = (float(v) for v in fig.get_size_inches())
    texts = _texts(fig)
    report = FigureReport(name=name, width=round(w, 3), height=round(h, 3), texts=len(texts))
    add = report.problems.append
    if not full_page and not any(abs(w - float(a)) <= 0.02 for a in widths):
        allowed = " or ".join(f"{float(a):g} in" for a in widths)
        add(Problem("width", f"figure is {w:.2f} in wide; a paper figure is {allowed}"))
    if h > PAGE_HEIGHT:
        add(Problem("height", f"figure is {h:.2f} in tall, more than a page ({PAGE_HEIGHT} in)"))
    for text, _, role in texts:
        if text.get_fontsize() < min_fontsize - 1e-6:
            add(Problem("font", f"{role} {text.get_text()!r} is {text.get_fontsize():g} pt "
                        f"(minimum {min_fontsize:g} pt)", [text.get_text()]))  # fmt: skip
        hits = _raw_names(text.get_text())
        if hits:
            add(Problem("raw-name", f"{role} {text.get_text()!r} shows raw identifier(s) "
                        f"{sorted(set(hits))}", [text.get_text()]))  # fmt: skip
    boxes = [_oriented_box(t, renderer) for t, _, _ in texts]
    edge = np.array([0.0, 0.0, w * 72.0, h * 72.0])
    for (text, _, role), box in zip(texts, boxes):
        lo, hi = box.min(axis=0), box.max(axis=0)
        if (
            lo[0] < edge[0] - tolerance
            or lo[1] < edge[1] - tolerance
            or (hi[0] > edge[2] + tolerance or hi[1] > edge[3] + tolerance)
        ):
            add(Problem("clipped", f"{role} {text.get_text()!r} runs off the figure",
                        [text.get_text()]))  # fmt: skip
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if _overlap_depth(boxes[i], boxes[j]) > tolerance:
                a, b = texts[i][0].get_text(), texts[j][0].get_text()
                add(Problem("overlap", f"{texts[i][2]} {a!r} overlaps {texts[j][2]} {b!r}",
                            [a, b]))  # fmt: skip
    areas = [(ax, _box_pt(ax.get_window_extent(renderer), fig)) for ax in fig.axes
             if ax.get_visible() and ax.has_data()]  # fmt: skip
    for (text, owner, role), box in zip(texts, boxes):
        if owner is None and role == "legend":
            continue  # figure legends: checked as a whole below
        for ax, area in areas:
            if ax is owner:
                continue
            if _overlap_depth(box, _rect(area)) > tolerance:
                add(Problem("intrusion", f"{role} {text.get_text()!r} reaches into the plot "
                            f"area of another panel ({ax.get_title() or ax.get_label()!r})",
                            [text.get_text()]))  # fmt: skip
                break
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is not None and leg.get_visible():
            lb = leg.get_window_extent(renderer)
            pts = _data_points(ax)
            inside = (
                (pts[:, 0] > lb.x0)
                & (pts[:, 0] < lb.x1)
                & (pts[:, 1] > lb.y0)
                & (pts[:, 1] < lb.y1)
            )
            if inside.any():
                add(Problem("legend", f"the legend of {ax.get_title()!r} covers "
                            f"{int(inside.sum())} plotted point(s)"))  # fmt: skip
    for leg in fig.legends:
        lb = _rect(_box_pt(leg.get_window_extent(renderer), fig))
        for ax, area in areas:
            if _overlap_depth(lb, _rect(area)) > tolerance:
                add(Problem("legend", f"the figure legend covers panel {ax.get_title()!r}"))
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        cbar = _is_colorbar(ax)
        for axis, kind in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            labelled = axis.label.get_visible() and axis.label.get_text().strip()
            if visible_ticklabels(axis) and not labelled:
                what = "colour bar" if cbar else f"{kind} axis"
                add(Problem("unlabelled", f"the {what} of {ax.get_title()!r} has tick labels "
                            "but no label"))  # fmt: skip
            elif labelled and axis.label.get_text().strip().lower() in _PLACEHOLDERS:
                add(Problem("raw-name", f"{kind} axis of {ax.get_title()!r} is labelled "
                            f"{axis.label.get_text()!r}, a placeholder",
                            [axis.label.get_text()]))  # fmt: skip
    return report


def write_report(report: FigureReport, path: str | Path) -> Path:
    """Write ``report`` as JSON to ``path`` atomically."""
    from ..io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(report.to_dict(), indent=1, ensure_ascii=False))
    return path


def read_reports(folder: str | Path) -> list[FigureReport]:
    """Every ``*.layout.json`` report under ``folder`` (recursively), sorted by path."""
    out = []
    for p in sorted(Path(folder).rglob("*.layout.json")):
        data = json.loads(p.read_text())
        problems = [Problem(**q) for q in data.get("problems", [])]
        out.append(
            FigureReport(
                name=data.get("name", p.name), width=data["width"], height=data["height"],
                texts=data.get("texts", 0), problems=problems,
            )
        )  # fmt: skip
    return out
