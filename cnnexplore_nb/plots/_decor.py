"""Figure decorations of the paper renderer: legends, colour bars, shared axes, wrapping.

Split from :mod:`cnnexplore_nb.plots.paper` (which lays the panels out and draws them):
these helpers act on a drawn Matplotlib figure and its panels' plans.
"""

from __future__ import annotations

import math
import re
import textwrap
from typing import Any

import numpy as np

from ._elements import Drawn
from .style import PAPER

__all__ = ["wrap"]

_CHAR = 0.56 / 72  # average glyph width per point of font size, in inches


def _legend_handles(entries: dict[str, dict[str, Any]]) -> tuple[list, list[str]]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = []
    for parts in entries.values():
        if parts.get("patch"):
            handles.append(Patch(color=parts["color"]))
            continue
        handles.append(
            Line2D(
                [], [], color=parts["color"], linestyle=parts.get("linestyle", "none"),
                marker=parts.get("marker"), markersize=PAPER["marker_size"],
                linewidth=parts.get("linewidth", PAPER["line_width"]),
            )
        )  # fmt: skip
    return handles, list(entries)


def _colorbars(fig: Any, axes: list, drawn: list[Drawn], plans: list[Any], share: bool) -> None:
    """One colour bar (and colour range) per group of panels showing the same quantity; one
    per panel (ranges still shared) when groups share rows (their bars would collide)."""
    groups: dict[tuple, list[int]] = {}
    for k, d in enumerate(drawn):
        if d.colorbar and d.mappable is not None:
            key = (d.cbar_label, d.mappable.get_cmap().name)
            groups.setdefault(key, []).append(k)
    rows = {
        key: {axes[k].get_subplotspec().rowspan.start for k in members}
        for key, members in groups.items()
    }
    mixed = any(rows[a] & rows[b] for a in rows for b in rows if a != b)
    for (label, _), members in groups.items():
        if share and len(members) > 1 and mixed:
            lows = [drawn[k].mappable.norm.vmin for k in members]
            highs = [drawn[k].mappable.norm.vmax for k in members]
            for k in members:
                drawn[k].mappable.set_clim(min(lows), max(highs))
        if share and len(members) > 1 and not mixed:
            lows = [drawn[k].mappable.norm.vmin for k in members]
            highs = [drawn[k].mappable.norm.vmax for k in members]
            for k in members:
                drawn[k].mappable.set_clim(min(lows), max(highs))
            cb = fig.colorbar(
                drawn[members[0]].mappable, ax=[axes[k] for k in members], shrink=0.9,
                aspect=max(20, 12 * math.ceil(len(members) ** 0.5)),
            )  # fmt: skip
        else:
            cb = None
            for k in members:
                cb = fig.colorbar(drawn[k].mappable, ax=axes[k], fraction=0.06, pad=0.03)
                cb.set_label(label)
                cb.ax.tick_params(labelsize=PAPER["fontsize"]["tick"])
            continue
        cb.set_label(label)
        cb.ax.tick_params(labelsize=PAPER["fontsize"]["tick"])


def _legend_width(plan: Any) -> float:
    return 0.35 + min(plan.legend_chars, 40) * PAPER["fontsize"]["legend"] * _CHAR


def _legends(
    fig: Any, axes: list, drawn: list[Drawn], plans: list[Any], shared: bool, width: float
) -> None:
    """Legends outside the data: one for the figure when the panels share their series, below
    a single panel whose legend would take much of its width, else right of each panel."""
    for ax, d, p in zip(axes, drawn, plans):
        if not (d.legend and p.legend_chars):
            continue
        handles, labels = _legend_handles(d.legend)
        title = (p.opts.get("legend_opts") or {}).get("title")
        lw = _legend_width(p)
        if shared or (len(axes) == 1 and lw > 0.42 * width):
            cols = max(1, min(len(labels), int((width - 0.1) // lw)))
            where = "outside right upper" if shared and lw < 0.3 * width else "outside lower center"
            fig.legend(handles, labels, loc=where, ncols=cols if "lower" in where else 1,
                       title=title)  # fmt: skip
            return
        ax.legend(
            handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
            ncols=2 if len(labels) > 16 or (len(labels) > 10 and max(map(len, labels)) <= 10)
            else 1,
            title=title,
        )  # fmt: skip


def _share_labels(axes: list, ncols: int) -> None:
    """Neighbouring panels of a row with the same y axis (ticks, labels, limits) show it once,
    at the left; neighbours in a column with the same x axis show it once, at the bottom."""

    def sig(ax: Any, axis: str) -> tuple:
        a = ax.yaxis if axis == "y" else ax.xaxis
        return (
            a.get_label().get_text(),
            tuple(t.get_text() for t in a.get_ticklabels()),
            tuple(np.round(a.get_view_interval(), 9)),
            tuple(np.round(a.get_ticklocs(), 9)),
        )

    def runs(cells: dict[int, Any], axis: str) -> list[list]:
        """Runs of panels at consecutive positions with equal axes."""
        out: list[list] = []
        for pos in sorted(cells):
            ax = cells[pos]
            last = out[-1] if out else None
            if last and last[-1][0] == pos - 1 and sig(last[-1][1], axis) == sig(ax, axis):
                last.append((pos, ax))
            else:
                out.append([(pos, ax)])
        return [[ax for _, ax in run] for run in out if len(run) > 1]

    where = {
        ax: (ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start) for ax in axes
    }
    for row in sorted({r for r, _ in where.values()}):
        cells = {c: ax for ax, (r, c) in where.items() if r == row and ax.get_yticks().size}
        for run in runs(cells, "y"):
            for ax in run[1:]:
                ax.set_ylabel("")
                ax.tick_params(axis="y", labelleft=False)
    for col in range(ncols):
        cells = {r: ax for ax, (r, c) in where.items() if c == col and ax.get_xticks().size}
        for run in runs(cells, "x"):
            for ax in run[:-1]:
                ax.set_xlabel("")
                ax.tick_params(axis="x", labelbottom=False)


def _shared_legend(plans: list[Any]) -> bool:
    """Several panels whose legends name the same series get one legend for the figure."""
    keys = []
    for p in plans:
        labels = tuple(
            dict.fromkeys(str(e.label) for e in p.elements if str(e.label) and not p.raster)
        )
        if labels and p.legend_chars:
            keys.append(labels)
    return len(keys) > 1 and len(set(keys)) == 1 and len(keys) == len(plans)


#: a relation and its operand stay on one line ("|r| ≥ 0.8" never ends a line on "≥")
_GLUE = re.compile(r"([≥≤=<>]) (?=\S)")


def wrap(text: str, width_in: float, fontsize: float) -> str:
    """``text`` wrapped to lines fitting ``width_in`` inches at ``fontsize`` points, with
    balanced lines: the narrowest width that needs no more lines than the widest, so no
    line is left holding one short word ("0.8" alone under a long title)."""
    chars = max(8, int(width_in / (fontsize * _CHAR)))
    if len(text) <= chars:
        return text
    glued = _GLUE.sub("\\1\u00a0", text)  # textwrap breaks at ASCII whitespace only

    def lines_at(width: int) -> list[str]:
        return textwrap.wrap(glued, width, break_long_words=False, break_on_hyphens=False)

    best = lines_at(chars)
    for width in range(chars - 1, max(8, chars // 2) - 1, -1):
        candidate = lines_at(width)
        if len(candidate) > len(best) or max(map(len, candidate)) > width:
            break  # one more line, or a word longer than the width: keep the last fit
        best = candidate
    return "\n".join(best).replace("\u00a0", " ")
