"""Correlation-aware removal: merge a redundant map into its representative.

Mean ablation / mean folding (:func:`cnnexplore_nb.prune.prune_maps` with ``fold_means``)
replaces a removed map by a constant, so whatever the next layer read from it is lost even
when the map is a near-copy (|r| ≈ 1) of a kept map. Merging uses the correlation itself:
removed map ``c`` is approximated by the linear fit ``a * m_rep + b`` on its most correlated
kept map of the same layer, and the next conv's weights for ``c`` are added to those of
``rep`` (``W[:, rep] += a W[:, c]``; bias ``+= b * sum_{kh,kw} W[:, c]``) before ``c`` is
removed. Exact away from the zero-padded border when the fit is exact.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._checks import unknown_name_message
from .chain import check_ids, next_conv, prunable_chain
from .surgery import prune_maps

__all__ = ["merge_curve", "merge_fits", "merge_maps"]


def merge_fits(activations: Mapping[str, Any], maps: Mapping[str, Sequence[int]]) -> pd.DataFrame:
    """Representative and linear fit of every removed map.

    Parameters
    ----------
    activations : dict of layer path -> Tensor of shape (N, C, H, W)
        The maps of each layer on the analysis images.
    maps : dict of layer path -> list of int
        Map ids to remove per layer.

    Returns
    -------
    DataFrame
        ``layer, map, representative`` (kept map with the largest |r|; -1 if none is
        usable), ``r``, ``slope`` a and ``intercept`` b of ``map ≈ a * representative + b``
        (least squares over all pixels; a = 0 and b = the map's mean for a constant map or
        without a usable representative).
    """
    rows = []
    for layer, ids in maps.items():
        if layer not in activations:
            raise KeyError(unknown_name_message("layer", layer, list(activations)))
        x = torch.as_tensor(activations[layer]).detach()
        if x.dim() != 4:
            raise ValueError(f"activations[{layer!r}] must be (N, C, H, W), got {tuple(x.shape)}")
        c = x.shape[1]
        ids = check_ids(layer, ids, c)
        keep = [i for i in range(c) if i not in set(ids)]
        flat = x.transpose(0, 1).reshape(c, -1).double().numpy()
        mean = flat.mean(axis=1)
        centred = flat - mean[:, None]
        norm = np.sqrt((centred**2).sum(axis=1))
        for m in ids:
            r_best, rep = 0.0, -1
            if norm[m] > 0 and keep:
                ok = [k for k in keep if norm[k] > 0]
                if ok:
                    r = centred[ok] @ centred[m] / (norm[ok] * norm[m])
                    j = int(np.argmax(np.abs(r)))
                    r_best, rep = float(r[j]), ok[j]
            if rep >= 0:
                slope = float(centred[rep] @ centred[m] / norm[rep] ** 2)
                intercept = float(mean[m] - slope * mean[rep])
            else:
                slope, intercept = 0.0, float(mean[m])
            rows.append(
                {"layer": layer, "map": m, "representative": rep, "r": r_best,
                 "slope": slope, "intercept": intercept}
            )  # fmt: skip
    return pd.DataFrame(rows, columns=["layer", "map", "representative", "r", "slope", "intercept"])


@torch.no_grad()
def merge_maps(
    model: nn.Module,
    maps: Mapping[str, Sequence[int]],
    activations: Mapping[str, Any],
) -> nn.Module:
    """Remove maps from a CNN-N chain, merging each into its representative.

    Parameters
    ----------
    model : nn.Module
        A prunable chain (see :func:`cnnexplore_nb.prune.surgery.prune_maps`); not modified.
    maps : dict of layer path -> list of int
        Map ids to remove (e.g. from :func:`cnnexplore_nb.prune.choose_redundant`).
    activations : dict of layer path -> Tensor of shape (N, C, H, W)
        The layers' maps on the analysis images (for the fits, :func:`merge_fits`).

    Returns
    -------
    nn.Module
        A smaller copy with the same architecture as ``prune_maps`` gives.
    """
    blocks, _ = prunable_chain(model)
    paths = [b.path for b in blocks]
    for layer in maps:
        if layer not in paths:
            raise KeyError(unknown_name_message("prunable layer", layer, paths))
    fits = merge_fits(activations, maps)
    work = copy.deepcopy(model)
    wblocks, whead = prunable_chain(work, trace=False)
    for layer, group in fits.groupby("layer", sort=False):
        nxt = next_conv(wblocks, whead, wblocks[paths.index(str(layer))])
        w = nxt.weight.data
        if nxt.bias is None:
            nxt.bias = nn.Parameter(torch.zeros(w.shape[0], dtype=w.dtype, device=w.device))
        bias = nxt.bias.data.double()
        w64 = w.double()
        removed = w64.clone()  # weights of the removed maps, before any update
        for row in group.itertuples(index=False):
            m, rep = int(row.map), int(row.representative)
            if rep >= 0:
                w64[:, rep] += row.slope * removed[:, m]
            bias += row.intercept * removed[:, m].sum(dim=(1, 2))
        nxt.weight.data.copy_(w64.to(w.dtype))
        nxt.bias.data.copy_(bias.to(nxt.bias.dtype))
    return prune_maps(work, {k: list(v) for k, v in maps.items()})


def merge_curve(
    model: nn.Module,
    activations: Mapping[str, Any],
    plans: Mapping[float, Mapping[str, Sequence[int]]],
    evaluate: Callable[[nn.Module], Mapping[str, float]],
) -> pd.DataFrame:
    """Evaluate merged models for several removals (e.g. one per threshold).

    Parameters
    ----------
    plans : dict of key (e.g. threshold) -> dict of layer -> list of int
    evaluate : callable
        ``evaluate(model) -> dict of metric -> float``.

    Returns
    -------
    DataFrame
        ``threshold`` (the key), ``removed`` and ``<metric>_merged`` per metric.
    """
    rows = []
    for key, plan in plans.items():
        merged = merge_maps(model, plan, activations)
        row: dict[str, Any] = {"threshold": key, "removed": sum(len(v) for v in plan.values())}
        row.update({f"{m}_merged": float(v) for m, v in evaluate(merged).items()})
        rows.append(row)
    return pd.DataFrame(rows)
