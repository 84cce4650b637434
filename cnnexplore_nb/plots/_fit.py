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
    if not axis.axes.axison or not axis.get_visible():
        return []
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
    """Wrap ``text`` (from its one-line form) to ``limit_px``; True when it changed."""
    from ._decor import wrap

    if not text.get_visible() or not text.get_text().strip():
        return False
    flat = getattr(text, "_cnnx_flat", None)
    if flat is None:
        flat = " ".join(text.get_text().split())
        text._cnnx_flat = flat
    width_in = limit_px / text.figure.dpi
    natural = len(flat) * text.get_fontsize() * 0.56 / 72
    new = flat if natural <= width_in else wrap(flat, width_in * 0.97, text.get_fontsize())
    if new == text.get_text():
        box = text.get_window_extent(renderer)
        if (box.height if vertical else box.width) <= limit_px * 1.02 or "\n" in new:
            return False
        new = wrap(flat, width_in * 0.85, text.get_fontsize())
        if new == text.get_text():
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
    """Value labels at the largest size (at most the cell font size) that fits their cells in
    the current layout; below the minimum print size none of the panel's labels is shown.
    Recomputed from scratch each round (labels do not move the layout)."""
    texts = drawn.cell_texts
    image = drawn.mappable
    if not texts or image is None:
        return False
    left, r, b, t = image.get_extent()
    ny, nx = np.asarray(image.get_array()).shape[:2]
    corners = [(left, b), (left + (r - left) / nx, b + (t - b) / ny)]
    (x0, y0), (x1, y1) = ax.transData.transform(corners)
    cell_w, cell_h = abs(x1 - x0), abs(y1 - y0)
    base = PAPER["fontsize"]["cell"]
    worst = np.inf
    for text in texts:
        shown = text.get_visible()
        text.set_visible(True)  # a hidden text measures as a 1-pixel box
        box = text.get_window_extent(renderer)  # measured at its current size
        text.set_visible(shown)
        scale = base / text.get_fontsize()
        worst = min(worst, 0.9 * cell_w / max(box.width * scale, 1e-9),
                    0.85 * cell_h / max(box.height * scale, 1e-9))  # fmt: skip
    size = min(base, np.floor(base * worst * 2) / 2)
    show = size >= PAPER["min_fontsize"]
    changed = False
    for text in texts:
        if text.get_visible() != show or (show and text.get_fontsize() != size):
            text.set_visible(show)
            if show:
                text.set_fontsize(size)
            changed = True
    return changed


def _panel_span(ax: Any, renderer: Any) -> tuple[float, float]:
    """Left and right edge (pixels) of a panel: its axes and its y tick and axis labels."""
    box = ax.get_window_extent(renderer)
    x0, x1 = box.x0, box.x1
    ybox = ax.yaxis.get_tightbbox(renderer)
    if ybox is not None and ybox.width > 0 and np.isfinite(ybox.x0):
        x0 = min(x0, ybox.x0)
    return x0, x1


def _place_title(ax: Any, renderer: Any) -> bool:
    """Keep the title inside its axes' width: wrapped (from its one-line form) when it does
    not fit, left-aligned when it carries a panel letter. A title that fits stays as it is,
    so the layout cannot swing between two wrappings."""
    from ._decor import wrap

    flat = getattr(ax, "_cnnx_title", None)
    if flat is None:
        flat = " ".join((ax.title.get_text() or ax._left_title.get_text()).split())
        ax._cnnx_title = flat
        ax._cnnx_left = bool(ax._left_title.get_text())
        if ax._cnnx_left:
            # clear the top y tick label, which sticks out above the axes under the title
            ax._set_title_offset_trans(3.0 + 0.6 * PAPER["fontsize"]["tick"])
    if not flat:
        return False
    target = ax._left_title if ax._cnnx_left else ax.title
    limit = ax.get_window_extent(renderer).width
    small = PAPER["fontsize"]["tick"]
    if limit / ax.figure.dpi < 1.0 and target.get_fontsize() > small:
        target.set_fontsize(small)  # small panels (maps of a grid): titles at tick size
        target.set_text(flat)
        return True
    if target.get_window_extent(renderer).width <= limit * 1.01:
        return False
    text = wrap(flat, limit / ax.figure.dpi * 0.97, target.get_fontsize())
    if text == target.get_text():
        text = wrap(flat, limit / ax.figure.dpi * 0.85, target.get_fontsize())
    if text == target.get_text():
        return False
    target.set_text(text)
    return True


def _fit_height(fig: Any, axes: list, aspects: list[float], max_height: float) -> bool:
    """Resize the figure so that each panel gets the height its width and aspect ask for
    (decorations such as titles then never squeeze fixed-aspect images)."""
    w, h = fig.get_size_inches()
    need: dict[int, float] = {}
    for ax, aspect in zip(axes, aspects):
        pos = ax.get_position(original=True)
        row = ax.get_subplotspec().rowspan.start
        delta = pos.width * w * aspect - pos.height * h
        need[row] = max(need.get(row, -np.inf), delta)
    new = float(np.clip(h + sum(need.values()), 0.6, max_height))
    if abs(new - h) <= 0.03:
        return False
    fig.set_size_inches(w, new)
    return True


def fit_figure(
    fig: Any,
    axes: list,
    drawn: list,
    aspects: list[float] | None = None,
    *,
    max_height: float | None = None,
) -> None:
    """Lay ``fig`` out, then mend collisions and fit the height until nothing changes."""
    _fit_loop(fig, axes, drawn, aspects, max_height)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    if any([_fit_cells(ax, d, renderer) for ax, d in zip(axes, drawn)]):  # every panel
        fig.canvas.draw()  # value labels fitted to the final layout (they do not move it)


def _fit_loop(
    fig: Any, axes: list, drawn: list, aspects: list[float] | None, max_height: float | None
) -> None:
    import warnings

    canvas = fig.canvas
    for _ in range(16):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            canvas.draw()
        if any("collapsed" in str(w.message) for w in caught):
            w, h = fig.get_size_inches()
            if max_height is not None and h < max_height:
                fig.set_size_inches(w, min(h * 1.4, max_height))
                continue
            fixed = [ax for ax in axes if ax.get_box_aspect() is not None]
            if not fixed:
                return  # nothing left to try: the caller's draw will say so
            for ax in fixed:  # the page is full: let heatmap cells stretch instead
                ax.set_box_aspect(None)
            aspects = None
            continue
        renderer = canvas.get_renderer()
        changed = False
        for ax in axes:
            changed |= _place_title(ax, renderer)
        for ax in fig.axes:
            box = ax.get_window_extent(renderer)
            if hasattr(ax, "_colorbar"):
                changed |= _rewrap(ax.yaxis.label, box.height, renderer, vertical=True)
                continue
            changed |= _rewrap(ax.xaxis.label, box.width, renderer)
            changed |= _rewrap(ax.yaxis.label, box.height, renderer, vertical=True)
        for ax in axes:
            changed |= _fit_ticks(ax, renderer)
        for ax, d in zip(axes, drawn):
            changed |= _fit_cells(ax, d, renderer)
        if aspects is not None and max_height is not None:
            changed |= _fit_height(fig, axes, aspects, max_height)
        if not changed:
            break
