"""Small teaching widgets: ipywidgets ``interactive`` wiring only (the numbers come from
:mod:`cnnexplore_nb.fundamentals` and :class:`cnnexplore_nb.prune.PruningStudy`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import pandas as pd

__all__ = ["output_size_explorer", "threshold_explorer"]


def _output_size_text(w: int, k: int, p: int, s: int, d: int) -> str:
    from ..lecture.fundamentals import effective_kernel, output_size

    k_eff = effective_kernel(k, d)
    try:
        out = output_size(w, k, padding=p, stride=s, dilation=d)
    except ValueError as err:
        return f"<b>invalid:</b> {err}"
    return (
        f"K_eff = K + (K-1)(D-1) = {k} + {k - 1}·{d - 1} = <b>{k_eff}</b>; "
        f"W_out = ⌊(W − K_eff + 2P)/S⌋ + 1 = ⌊({w} − {k_eff} + {2 * p})/{s}⌋ + 1 = <b>{out}</b>"
        + (" (same size)" if out == w else "")
    )


def output_size_explorer(
    size: int = 32, kernel: int = 3, padding: int = 0, stride: int = 1, dilation: int = 1
) -> widgets.interactive:
    """Sliders for W, K, P, S, D showing the output size formula and its value.

    Returns
    -------
    ipywidgets.interactive
        ``.result`` is the HTML text of the current setting; its ``children[:5]`` are the
        sliders (settable from Python).
    """

    def show(W: int, K: int, P: int, S: int, D: int) -> str:
        text = _output_size_text(W, K, P, S, D)
        html.value = text
        return text

    html = widgets.HTML()
    ui = widgets.interactive(
        show,
        W=widgets.IntSlider(value=size, min=1, max=128, description="W (input)"),
        K=widgets.IntSlider(value=kernel, min=1, max=11, description="K (kernel)"),
        P=widgets.IntSlider(value=padding, min=0, max=8, description="P (padding)"),
        S=widgets.IntSlider(value=stride, min=1, max=6, description="S (stride)"),
        D=widgets.IntSlider(value=dilation, min=1, max=6, description="D (dilation)"),
    )
    ui.children = (*ui.children[:-1], html)
    return ui


def threshold_explorer(
    study: Any, thresholds: Sequence[float], *, value: float | None = None
) -> widgets.interactive:
    """A threshold slider showing ``study.at(threshold)`` (pruned maps, params, metrics).

    Parameters
    ----------
    study : PruningStudy
        Its ``at`` results are cached, so revisiting a threshold costs nothing; a new
        threshold prunes (and evaluates) once.
    thresholds : sequence of float
        The slider's values.
    value : float, optional
        Initial threshold (default the middle one).

    Returns
    -------
    ipywidgets.interactive
        ``.result`` is the DataFrame shown for the current threshold.
    """
    options = [float(t) for t in thresholds]
    if not options:
        raise ValueError("thresholds must hold at least one value")
    start = options[len(options) // 2] if value is None else float(value)
    if start not in options:
        raise ValueError(f"value must be one of the thresholds {options}, got {value!r}")
    from ..studies.pruning import readable_pruning

    html = widgets.HTML()

    def show(threshold: float) -> pd.DataFrame:
        df = study.at(threshold)
        html.value = readable_pruning(df).to_html(index=False, na_rep="–")
        return df

    ui = widgets.interactive(
        show,
        threshold=widgets.SelectionSlider(
            options=options, value=start, description="|r| threshold", continuous_update=False
        ),
    )
    ui.children = (*ui.children[:-1], html)
    return ui
