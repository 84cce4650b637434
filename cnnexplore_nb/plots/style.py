"""The paper style: widths, fonts, series styles and palettes shared by every figure.

Exported figures are drawn at print size: one column (3.5 in) or two columns / a page
(7.16 in) wide, fonts 7-9 pt, PNG at 300 dpi, SVG and PDF with text kept as text. Series
are told apart by colour *and* marker (and line style beyond ten series), so fifteen
series stay distinguishable, also in grey print. Ordered things (layer depth, epochs) get
an ordered palette.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

__all__ = [
    "CATEGORICAL",
    "PAPER",
    "WIDTHS",
    "bokeh_series",
    "mpl_series",
    "paper_rc",
    "paper_width",
    "series_styles",
]

#: Figure widths in inches: a journal column and a full page width (two columns).
WIDTHS: dict[str, float] = {"column": 3.5, "page": 7.16}

#: Print-size settings of exported figures (edit once, every export follows).
PAPER: dict[str, Any] = {
    "fontsize": {"title": 8, "label": 8, "tick": 7, "legend": 7, "cell": 7, "letter": 8},
    "min_fontsize": 6.0,
    "max_height": 9.0,  # inches; a page of a two-column journal is about 9.7 in tall
    "dpi": 300,
    "line_width": 1.2,
    "marker_size": 3.5,  # points
    "font_family": ["DejaVu Sans"],
}

#: Ten categorical colours (matplotlib's tab10).
CATEGORICAL: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
_MARKERS = ("o", "s", "^", "D", "v", "h", "*")
_BOKEH_MARKERS = {
    "o": "circle", "s": "square", "^": "triangle", "D": "diamond",
    "v": "inverted_triangle", "h": "hex", "*": "star",
}  # fmt: skip
_LINESTYLES = ("-", "--", ":", "-.")
_BOKEH_DASH = {"-": "solid", "--": "dashed", ":": "dotted", "-.": "dashdot"}


def paper_width(width: Literal["column", "page"] | float | None, panels: int = 1) -> float:
    """Figure width in inches: ``"column"`` (3.5), ``"page"`` (7.16) or a number; None
    chooses a column for one panel and a page for several."""
    if width is None:
        return WIDTHS["column"] if panels <= 1 else WIDTHS["page"]
    if isinstance(width, str):
        if width not in WIDTHS:
            raise ValueError(f"width must be 'column', 'page' or a number of inches, got {width!r}")
        return WIDTHS[width]
    value = float(width)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"width must be a positive number of inches, got {width!r}")
    return value


def series_styles(n: int, *, ordered: bool = False, cmap: str = "viridis") -> list[dict[str, str]]:
    """``n`` distinguishable series styles: ``color``, ``marker``, ``linestyle``.

    Categorical series cycle ten colours, seven markers and four line styles (solid, dashed,
    dotted, dash-dot: no two of the first 140 series look alike, and a series lying on
    another one leaves it visible through its gaps); ordered series (layer depth, epochs)
    take evenly spaced colours of ``cmap`` from dark to light, solid.
    """
    if ordered:
        from matplotlib import colormaps
        from matplotlib.colors import to_hex

        cm = colormaps[cmap]
        colors = [to_hex(cm(v)) for v in np.linspace(0.0, 0.85, max(n, 1))]
    else:
        colors = [CATEGORICAL[i % len(CATEGORICAL)] for i in range(n)]
    return [
        {
            "color": colors[i],
            "marker": _MARKERS[i % len(_MARKERS)],
            "linestyle": "-" if ordered else _LINESTYLES[i % len(_LINESTYLES)],
        }
        for i in range(n)
    ]


def mpl_series(style: dict[str, str], kind: Literal["line", "marker"]) -> dict[str, Any]:
    """HoloViews Matplotlib options of one series style for a Curve or Scatter."""
    if kind == "line":
        return {"color": style["color"], "linestyle": style["linestyle"]}
    return {"color": style["color"], "marker": style["marker"]}


def bokeh_series(style: dict[str, str], kind: Literal["line", "marker"]) -> dict[str, Any]:
    """HoloViews Bokeh options of one series style for a Curve or Scatter."""
    if kind == "line":
        return {"color": style["color"], "line_dash": _BOKEH_DASH[style["linestyle"]]}
    return {"color": style["color"], "marker": _BOKEH_MARKERS[style["marker"]]}


def paper_rc() -> dict[str, Any]:
    """Matplotlib rcParams of the paper style (fonts at print size, text kept as text)."""
    f = PAPER["fontsize"]
    return {
        "font.family": "sans-serif",
        "font.sans-serif": list(PAPER["font_family"]) + ["DejaVu Sans"],
        "font.size": f["label"],
        "axes.titlesize": f["title"],
        "axes.labelsize": f["label"],
        "xtick.labelsize": f["tick"],
        "ytick.labelsize": f["tick"],
        "legend.fontsize": f["legend"],
        "legend.title_fontsize": f["legend"],
        "figure.titlesize": f["title"] + 1,
        "axes.linewidth": 0.6,
        "xtick.major.width": 0.6,
        "ytick.major.width": 0.6,
        "xtick.major.size": 2.5,
        "ytick.major.size": 2.5,
        "lines.linewidth": PAPER["line_width"],
        "lines.markersize": PAPER["marker_size"],
        "legend.frameon": False,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlepad": 3.0,
        "svg.fonttype": "none",  # SVG text stays text (editable)
        "pdf.fonttype": 42,  # TrueType fonts embedded in the PDF (editable text)
        "ps.fonttype": 42,
        "svg.hashsalt": "cnnexplore_nb",
        "image.interpolation": "nearest",
        "savefig.dpi": PAPER["dpi"],
    }
