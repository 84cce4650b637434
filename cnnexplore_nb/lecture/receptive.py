"""Receptive-field growth, theoretical vs effective, per layer (lecture fundamentals)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._checks import check_fraction
from .._hooks import Hooks
from ..inspect.receptive import effective_receptive_field, erf_radius, receptive_fields

__all__ = ["effective_side", "receptive_growth"]


def receptive_growth(
    model: nn.Module,
    example: torch.Tensor,
    layers: Sequence[str] | None = None,
    *,
    n: int = 16,
    mass: float = 0.95,
    rng: int | np.random.Generator | None = 0,
    inputs: Literal["random", "given"] = "random",
) -> pd.DataFrame:
    """Theoretical vs effective receptive field of each layer of a model.

    Parameters
    ----------
    model : nn.Module
    example : Tensor of shape (C, H, W) or (N, C, H, W)
        Input shape (and the inputs themselves with ``inputs="given"``); make it larger
        than the deepest theoretical field.
    layers : list of str, optional
        Module paths (default: ``model.feature_info`` modules).
    n, rng, inputs
        See :func:`cnnexplore_nb.effective_receptive_field`.
    mass : float
        Share of the ERF mass inside the effective radius.

    Returns
    -------
    DataFrame
        ``layer, depth`` (1, 2, ...), ``theoretical`` (side in input pixels), ``jump``,
        ``effective_radius`` (Euclidean, :func:`cnnexplore_nb.inspect.receptive.erf_radius` around
        the central unit's input position), ``effective`` (:func:`effective_side`: side of
        the centred square holding ``mass`` of the ERF, comparable with ``theoretical``)
        and ``ratio`` = effective / theoretical.
    """
    if layers is None:
        layers = [f["module"] for f in getattr(model, "feature_info", [])]
        if not layers:
            raise ValueError("model has no feature_info: pass layers=[...] explicitly")
    x = example if example.dim() == 4 else example[None]
    rf = receptive_fields(model, x[:1])
    shapes = _output_sides(model, x[:1].float(), list(layers))
    rows = []
    for depth, layer in enumerate(layers, start=1):
        sel = rf[rf["path"] == layer]
        if sel.empty:
            raise KeyError(f"layer {layer!r} not in the traced forward; traced {list(rf['path'])}")
        row = sel.iloc[-1]
        erf = effective_receptive_field(model, x, layer=layer, n=n, rng=rng, inputs=inputs)
        oh, ow = shapes[layer][0] // 2, shapes[layer][1] // 2
        centre = (row["start"] + oh * row["jump"], row["start"] + ow * row["jump"])
        radius = erf_radius(erf, mass, center=centre)
        side = effective_side(erf, mass, center=centre)
        theo = float(row["receptive_field"])
        rows.append(
            {
                "layer": layer,
                "depth": depth,
                "theoretical": theo,
                "jump": float(row["jump"]),
                "effective_radius": radius,
                "effective": side,
                "ratio": side / theo,
            }
        )
    return pd.DataFrame(rows)


def effective_side(
    erf_map: np.ndarray, mass: float = 0.95, *, center: tuple[float, float] | None = None
) -> float:
    """Side of the smallest square around ``center`` holding ``mass`` of a non-negative map.

    Pixels are taken in order of their Chebyshev distance ``max(|dy|, |dx|)`` to ``center``
    (default ``(H // 2, W // 2)``); the side is ``2 d + 1`` with d the distance of the last
    pixel needed. A map whose mass fills a K x K square centred on a pixel gives K.
    """
    mass = check_fraction("mass", mass)
    arr = np.asarray(erf_map, dtype=np.float64)
    if arr.ndim != 2 or np.any(arr < 0) or not np.all(np.isfinite(arr)) or arr.sum() <= 0:
        raise ValueError("erf_map must be a finite, non-negative (H, W) map, not all zero")
    cy, cx = center if center is not None else (arr.shape[0] // 2, arr.shape[1] // 2)
    yy, xx = np.indices(arr.shape)
    dist = np.maximum(np.abs(yy - cy), np.abs(xx - cx)).ravel()
    order = np.argsort(dist, kind="stable")
    cum = np.cumsum(arr.ravel()[order])
    idx = int(np.searchsorted(cum, mass * cum[-1] * (1 - 1e-12)))
    return float(2 * dist[order][min(idx, len(order) - 1)] + 1)


def _output_sides(model: nn.Module, x: torch.Tensor, layers: list[str]) -> dict:
    sides: dict[str, tuple[int, int]] = {}

    def hook_for(layer: str):
        def hook(_m, _a, out):
            sides[layer] = (int(out.shape[2]), int(out.shape[3]))

        return hook

    with Hooks(model, mode="eval", grad=False) as hooks:
        for layer in layers:
            hooks.forward(layer, hook_for(layer))
        model(x)
    return sides
