"""The lectures' worked examples and statements, checked on the values notebook 00 computes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..lecture import fundamentals as fu
from ._report import Finding, Findings

__all__ = ["LECTURE_VALUES", "fundamentals_findings"]

#: The lectures' own numbers (seeds 001-003), as printed on the slides.
LECTURE_VALUES: dict[str, Any] = {
    "worked_convolution": 32.64,
    "min_pool": [[14.0, 13.0], [55.0, 12.0]],
    "sobel": {"flat": 0.0, "vertical edge": 40.0, "corner": 30.0, "horizontal edge": 0.0},
}


def fundamentals_findings(
    *,
    sobel: dict[str, float],
    params: pd.DataFrame,
    bn_error: float,
    matched: tuple[np.ndarray, np.ndarray, np.ndarray],
    growth: pd.DataFrame,
    fgsm: pd.DataFrame,
) -> Findings:
    """Notebook 00: each worked example against the lecture, each statement against the run.

    Parameters
    ----------
    sobel : dict of patch name -> value
        Sobel-x responses of the lectures' four patches.
    params : DataFrame
        :func:`cnnexplore_nb.lecture.conv_param_table` output.
    bn_error : float
        Largest difference between BatchNorm by hand and ``nn.BatchNorm2d``.
    matched : (s, w, r)
        Signal, mask and normalised correlation of the matched-filter example.
    growth : DataFrame
        :func:`cnnexplore_nb.lecture.receptive_growth` rows with a ``network`` column.
    fgsm : DataFrame
        :func:`cnnexplore_nb.lecture.accuracy_vs_epsilon` output.
    """
    worked = fu.conv_at(fu.LECTURE_PATCH, fu.LECTURE_FILTER)
    pooled = fu.pool2d(fu.MIN_POOL_EXAMPLE, "min").tolist()
    sobel_ok = all(abs(sobel[k] - v) < 1e-9 for k, v in LECTURE_VALUES["sobel"].items())
    s, w, r = matched
    best = int(np.nanargmax(r))
    by = params.set_index("variant")
    sep = float(by.loc["depthwise_separable", "ratio"])
    items = [
        Finding(
            "Worked examples: 3×3 patch · vertical-edge filter = 32.64; 2×2 min pooling gives "
            "[[14, 13], [55, 12]]; Sobel-x on the four patches gives 0, 40, 30, 0",
            bool(abs(worked - 32.64) < 5e-3 and pooled == LECTURE_VALUES["min_pool"] and sobel_ok),
            f"Computed: {worked:.2f}; {pooled}; "
            + ", ".join(f"{v:g}" for v in sobel.values())
            + f". Parameter formulas equal nn.Conv2d's counts: "
            f"{bool((params['params'] == params['torch_params']).all())} (depthwise-separable "
            f"3×3, 64 → 128: {sep:.1f}× fewer parameters than a standard conv); BatchNorm by "
            f"hand vs nn.BatchNorm2d: max difference {bn_error:.1e}.",
        ),
        Finding(
            "Normalised correlation is a matched filter: it peaks where the signal looks "
            "most like the mask",
            bool(np.corrcoef(s[best : best + len(w)], w)[0, 1] == np.nanmax(r)),
            f"Peak r = {r[best]:.2f} at the window {s[best : best + len(w)].astype(int).tolist()} "
            f"for w = {w.astype(int).tolist()}.",
        ),
    ]
    deepest = growth.sort_values("depth").groupby("network").tail(1).set_index("network")
    first = growth.sort_values("depth").groupby("network").head(1).set_index("network")
    ratios = deepest["ratio"]
    items.append(
        Finding(
            "The effective receptive field grows more slowly than the theoretical one",
            bool((ratios < first["ratio"].reindex(ratios.index)).any() and (ratios < 1).any()),
            "Effective / theoretical side (95 % of the gradient mass), first → deepest layer: "
            + "; ".join(f"{n} {first.loc[n, 'ratio']:.2f} → {ratios[n]:.2f}" for n in ratios.index)
            + ".",
        )
    )
    acc = fgsm.set_index("epsilon")["accuracy"]
    eps = [e for e in acc.index if e > 0]
    mid = min(eps, key=lambda e: abs(e - 0.1)) if eps else None
    items.append(
        Finding(
            "Small adversarial perturbations (x + ε·sign(∇x J)) cost much accuracy",
            None if mid is None else bool(acc[mid] < acc[0.0] - 0.1),
            f"Clean accuracy {acc[0.0]:.3f}; at ε = {mid:g} of the pixel range "
            f"{acc[mid]:.3f}; at ε = {max(eps):g} {acc[max(eps)]:.3f}."
            if mid is not None
            else "No ε > 0 was evaluated.",
        )
    )
    return Findings("The lectures' examples and statements", items)
