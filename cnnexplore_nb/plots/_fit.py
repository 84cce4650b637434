"""The fitting pass of the paper renderer: after a layout, mend what would collide.

Each step only ever wraps more, turns more or shrinks more, so the loop ends: titles and
axis labels wider than their axes are wrapped, tick labels that touch are turned (45°,
then 90°), set smaller and finally thinned, and value labels that do not fit their cells
are set smaller or, below the minimum print size, dropped for the whole panel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .style import PAPER

__all__ = ["fit_figure", "visible_ticklabels"]

_GAP = 1.0  # points of air wanted between neighbouring tick labels


def visible_ticklabels(axis: Any) -> list:
    """Tick labels that are drawn: visible, non-empty and inside the view."""
    try:
        ticks = axis._update_ticks()  # the ticks inside the view limits, as drawn
    except AttributeError:  # pragma: no cover - very old or future Matplotlib
        ticks = axis.get_major_ticks()
    out = []
    for tick in ticks:
        for label in (tick.label1, tick.label2):
            if label.get_visible() and label.get_text().strip():
                out.append(label)
    return out


def _pt(px: float, fig: Any) -> float:
    return px * 72.0 / fig.dpi


def _rewrap(text: Any, limit_px: float, renderer: Any, vertical: bool = False) -> bool:
    from .paper import wrap

    s = text.get_text()
    if not s.strip() or not text.get_visible():
        return False
    box = text.get_window_extent(renderer)
    size = box.height if vertical else box.width
    if size <= limit_px * 1.02:
        return False
    flat = " ".join(s.split())
    width_in = limit_px / text.figure.dpi
    new = wrap(flat, width_in * 0.97, text.get_fontsize())
    if new == s or new.count("\n") <= s.count("\n"):
        new = wrap(flat, width_in * 0.97 * (s.count("\n") + 1) / (s.count("\n") + 2),
                   text.get_fontsize())  # fmt: skip
    if new == s:
        return False
    text.set_text(new)
    return True


def _crowded(labels: list, renderer: Any, axis: str) -> bool:
    """Do neighbouring labels touch (along the axis, using their turned extent)?"""
    if len(labels) < 2:
        return False
    fig = labels[0].figure
    boxes = []
    for t in labels:
        b = t.get_window_extent(renderer)
        boxes.append((b.x0, b.x1, b.y0, b.y1))
    boxes.sort(key=lambda b: b[0] if axis == "x" else b[2])
    rot = labels[0].get_rotation() % 180
    for a, b in zip(boxes, boxes[1:]):
        if axis == "x":
            if rot in (0.0,):
                if _pt(b[0] - a[1], fig) < _GAP:
                    return True
            else:
                # turned labels: the gap across the text direction must exceed its height
                angle = np.deg2rad(rot)
                height = labels[0].get_fontsize() * 1.15
                step = _pt((b[0] + b[1]) / 2 - (a[0] + a[1]) / 2, fig)
                if abs(step * np.sin(angle)) < height + _GAP * 0.5:
                    return True
        elif _pt(b[2] - a[3], fig) < _GAP * 0.5:
            return True
    return False


def _fit_ticks(ax: Any, renderer: Any) -> bool:
    changed = False
    minimum = PAPER["min_fontsize"]
    xl = visible_ticklabels(ax.xaxis)
    if _crowded(xl, renderer, "x"):
        rot = xl[0].get_rotation() % 180
        if rot == 0:
            for t in ax.get_xticklabels():
                t.set_rotation(45)
                t.set_ha("right")
                t.set_rotation_mode("anchor")
        elif xl[0].get_fontsize() > minimum:
            for t in ax.get_xticklabels():
                t.set_fontsize(minimum)
        elif rot != 90:
            for t in ax.get_xticklabels():
                t.set_rotation(90)
                t.set_ha("right")
                t.set_va("center")
        else:
            _thin(ax.xaxis)
        changed = True
    yl = visible_ticklabels(ax.yaxis)
    if _crowded(yl, renderer, "y"):
        if yl[0].get_fontsize() > minimum:
            for t in ax.get_yticklabels():
                t.set_fontsize(minimum)
        else:
            _thin(ax.yaxis)
        changed = True
    return changed


def _thin(axis: Any) -> None:
    """Keep every other tick (labels of categorical ticks go with them)."""
    ticks = list(axis.get_majorticklocs())
    labels = [t.get_text() for t in axis.get_majorticklabels()]
    if len(ticks) < 2:
        return
    keep = slice(0, None, 2)
    if labels and any(labels):
        axis.set_ticks(ticks[keep], labels[keep])
    else:
        axis.set_ticks(ticks[keep])


def _fit_cells(ax: Any, drawn: Any, renderer: Any) -> bool:
    texts = [t for t in drawn.cell_texts if t.get_visible()]
    image = drawn.mappable
    if not texts or image is None:
        return False
    left, r, b, t = image.get_extent()
    ny, nx = np.asarray(image.get_array()).shape[:2]
    corners = [(left, b), (left + (r - left) / nx, b + (t - b) / ny)]
    (x0, y0), (x1, y1) = ax.transData.transform(corners)
    cell_w, cell_h = abs(x1 - x0), abs(y1 - y0)
    worst = 1.0
    for text in texts:
        box = text.get_window_extent(renderer)
        worst = min(
            worst, 0.9 * cell_w / max(box.width, 1e-9), 0.85 * cell_h / max(box.height, 1e-9)
        )
    if worst >= 1.0:
        return False
    size = np.floor(texts[0].get_fontsize() * worst * 2) / 2
    if size < PAPER["min_fontsize"]:
        for text in texts:
            text.set_visible(False)
    else:
        for text in texts:
            text.set_fontsize(size)
    return True


def fit_figure(fig: Any, axes: list, drawn: list) -> None:
    """Lay ``fig`` out, then mend collisions until nothing changes (at most 6 rounds)."""
    canvas = fig.canvas
    for _ in range(6):
        canvas.draw()
        renderer = canvas.get_renderer()
        changed = False
        for ax in fig.axes:
            box = ax.get_window_extent(renderer)
            is_cbar = hasattr(ax, "_colorbar")
            for title in (ax.title, ax._left_title, ax._right_title):
                changed |= _rewrap(title, box.width, renderer)
            if is_cbar:
                changed |= _rewrap(ax.yaxis.label, box.height, renderer, vertical=True)
                continue
            changed |= _rewrap(ax.xaxis.label, box.width, renderer)
            changed |= _rewrap(ax.yaxis.label, box.height, renderer, vertical=True)
            changed |= _fit_ticks(ax, renderer)
        for ax, d in zip(axes, drawn):
            changed |= _fit_cells(ax, d, renderer)
        if not changed:
            break
    canvas.draw()
