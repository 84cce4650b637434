"""Correlation part of the vessel study: maps of the thesis-selected layers, per-image
tables, their aggregation over many images, and the numbers behind the conclusions.

The thesis analysed each of three input images separately; :func:`aggregate_correlation`
repeats the analysis for every image of a set and reports the mean and std across images of
the per-layer-pair statistics, which the original tool could not do.

Every helper that computes tables takes the tables' ``resample`` policy (layers of
different H x W, e.g. a ResNet's stages) and region (``mask``, ``crop``, ``mask_mode``) and
passes them to :func:`~cnnexplore_nb.correlation_tables`; a model without ``feature_info``
gets its inferred taps (:func:`~cnnexplore_nb.feature_layers`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._arrays import stack_images
from .._checks import as_rng, check_choice, check_fraction, check_positive_int
from ..inspect.extract import extract_activations
from ..inspect.layers import select_layers
from ..inspect.taps import feature_layers
from ..similarity.groups import correlation_groups
from ..similarity.region import Crop, MaskMode, Resample
from ..similarity.tables import CorrelationTables, correlation_tables

__all__ = [
    "aggregate_correlation",
    "block_summary",
    "correlation_study",
    "image_tables",
    "cross_network_profile",
    "layer_maps",
    "layer_pair_summary",
    "layer_values",
    "map_blocks",
    "module_number",
    "module_numbers",
    "random_maps",
    "redundancy_profile",
    "redundancy_verdict",
    "selected_layers",
]

SUMMARY_VALUES = ("mean_max", "median_max", "percent", "count", "n_maps")


def module_number(layer: str) -> int:
    """The module number at the end of a layer path: ``"conv_module6"`` -> 6."""
    found = re.search(r"(\d+)$", str(layer))
    if found is None:
        raise ValueError(f"layer path {layer!r} does not end with a module number")
    return int(found.group(1))


def module_numbers(layers: Sequence[str]) -> dict[str, int]:
    """Layer -> its module number, or its 1-based position when the paths do not all end
    with distinct numbers (``relu``, ``layer1``... of a ResNet: 1, 2...)."""
    layers = [str(v) for v in layers]
    found = [re.search(r"(\d+)$", v) for v in layers]
    numbers = [int(f.group(1)) for f in found if f is not None]
    if len(numbers) == len(layers) and len(set(numbers)) == len(numbers):
        return dict(zip(layers, numbers))
    return {v: i for i, v in enumerate(layers, start=1)}


def selected_layers(model: nn.Module, example: Any = None) -> list[str]:
    """The thesis selection (first, even, last) of the model's feature taps (its
    ``feature_info``, else the taps inferred from ``example``, see
    :func:`~cnnexplore_nb.feature_layers`)."""
    return select_layers(feature_layers(model, example))


def _region(mask: Any, crop: Crop, mask_mode: MaskMode, image: int | None = None) -> dict:
    """The tables' region options; a per-image mask (N, H, W) is cut to ``image``."""
    if mask is not None and image is not None and np.ndim(mask) >= 3 and np.shape(mask)[0] > 1:
        mask = mask[image : image + 1]
    return {"mask": mask, "crop": crop, "mask_mode": mask_mode}


def _as_images(images: Any) -> torch.Tensor:
    return stack_images(images).float()


def layer_maps(
    model: nn.Module, images: Any, layers: Sequence[str] | None = None, *, progress: bool = False
) -> dict[str, torch.Tensor]:
    """Activation maps of the selected layers (default: :func:`selected_layers`, from the
    first image for a model without ``feature_info``).

    Returns
    -------
    dict of layer path -> Tensor of shape (N, C, H, W)
    """
    x = _as_images(images)
    layers = selected_layers(model, x[:1]) if layers is None else list(layers)
    return extract_activations(model, x, layers, progress=progress)


def correlation_study(
    model_a: nn.Module,
    images: Any,
    model_b: nn.Module | None = None,
    *,
    names: tuple[str, str] = ("A", "B"),
    threshold: float = 0.8,
    progress: bool = False,
    resample: Resample = None,
    mask: Any = None,
    crop: Crop = None,
    mask_mode: MaskMode = "select",
) -> CorrelationTables:
    """Correlation tables of the selected layers of A with themselves or with those of B.

    ``images`` (Tensor (N, C, H, W), (C, H, W) or a Dataset) are pooled: one image gives
    the thesis's per-image analysis. ``resample`` and the region (``mask``, ``crop``,
    ``mask_mode``) are those of :func:`~cnnexplore_nb.correlation_tables`.
    """
    x = _as_images(images)
    maps_a = layer_maps(model_a, x)
    maps_b = None if model_b is None else layer_maps(model_b, x)
    if model_b is None:
        names = (names[0], names[0])
    return correlation_tables(
        maps_a, maps_b, names=names, threshold=threshold, progress=progress,
        resample=resample, **_region(mask, crop, mask_mode),
    )  # fmt: skip


def image_tables(
    maps_a: dict[str, torch.Tensor],
    image: int,
    maps_b: dict[str, torch.Tensor] | None = None,
    *,
    names: tuple[str, str] = ("A", "B"),
    threshold: float = 0.8,
    resample: Resample = None,
    mask: Any = None,
    crop: Crop = None,
    mask_mode: MaskMode = "select",
) -> CorrelationTables:
    """Correlation tables of image ``image`` from maps already extracted for many images
    (``layer_maps`` output, (N, C, H, W) per layer): one forward pass serves every image
    and every pair of networks. A per-image ``mask`` (N, H, W) is cut to that image."""
    a = {k: v[image : image + 1] for k, v in maps_a.items()}
    b = None if maps_b is None else {k: v[image : image + 1] for k, v in maps_b.items()}
    if b is None:
        names = (names[0], names[0])
    return correlation_tables(
        a, b, names=names, threshold=threshold, progress=False, resample=resample,
        **_region(mask, crop, mask_mode, image),
    )  # fmt: skip


def layer_pair_summary(tables: CorrelationTables) -> pd.DataFrame:
    """Per layer pair: statistics of the max |r| of every map of A.

    Returns
    -------
    DataFrame
        ``A_layer``, ``B_layer`` (as in ``tables.stats``), ``mean_max`` and
        ``median_max`` (over all non-constant maps of A, no threshold), ``percent`` and
        ``count`` (maps with max |r| >= ``tables.threshold``), ``n_maps``, and the module
        numbers ``module_a``, ``module_b`` (positions 1, 2... for layer paths without
        distinct trailing numbers, see :func:`module_numbers`).
    """
    every = tables.stats_at(0.0)
    out = every[["A_layer", "B_layer"]].copy()
    out["mean_max"] = every["mean"].to_numpy()
    out["median_max"] = every["median"].to_numpy()
    out["percent"] = tables.stats["percent"].to_numpy()
    out["count"] = tables.stats["count"].to_numpy()
    out["n_maps"] = tables.stats["n_maps"].to_numpy()
    num_a, num_b = module_numbers(tables.layers_a), module_numbers(tables.layers_b)
    out["module_a"] = [num_a[v] for v in out["A_layer"].astype(str)]
    out["module_b"] = [num_b[v] for v in out["B_layer"].astype(str)]
    return out


def aggregate_correlation(
    model_a: nn.Module,
    images: Any,
    model_b: nn.Module | None = None,
    *,
    names: tuple[str, str] = ("A", "B"),
    threshold: float = 0.8,
    chunk: int = 8,
    progress: bool = True,
    resample: Resample = None,
    mask: Any = None,
    crop: Crop = None,
    mask_mode: MaskMode = "select",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-image analysis repeated over every image; mean and std across images.

    Each image is analysed on its own (tables, summary); maps are extracted ``chunk``
    images at a time (one forward pass each), so memory holds the maps of ``chunk``
    images (use ``chunk=1`` for full-resolution images).

    Parameters
    ----------
    images : Tensor of shape (N, C, H, W) or a Dataset
        At least 2 images.
    resample, mask, crop, mask_mode
        As in :func:`~cnnexplore_nb.correlation_tables`; a per-image ``mask`` (N, H, W)
        gives each image its own.

    Returns
    -------
    per_image : DataFrame
        :func:`layer_pair_summary` rows with an ``image`` column.
    summary : DataFrame
        Per layer pair: ``A_layer``, ``B_layer``, ``module_a``, ``module_b``,
        ``mean_max_mean``, ``mean_max_std``, ``percent_mean``, ``percent_std`` (std with
        ddof=1 across images) and ``n_images``.
    """
    from tqdm.auto import tqdm

    check_fraction("threshold", threshold)
    x = _as_images(images)
    check_positive_int("number of images", len(x), minimum=2)
    chunk = check_positive_int("chunk", chunk)
    frames = []
    bar = tqdm(total=len(x), desc="images", disable=not progress)
    for start in range(0, len(x), chunk):
        part = x[start : start + chunk]
        maps_a = layer_maps(model_a, part)
        maps_b = None if model_b is None else layer_maps(model_b, part)
        for j in range(len(part)):
            region = _region(mask, crop, mask_mode, start + j)  # this image's mask
            tables = image_tables(
                maps_a, j, maps_b, names=names, threshold=threshold, resample=resample, **region
            )
            frame = layer_pair_summary(tables)
            frame.insert(0, "image", start + j)
            frames.append(frame)
            bar.update()
    bar.close()
    per_image = pd.concat(frames, ignore_index=True)
    keys = ["A_layer", "B_layer", "module_a", "module_b"]
    grouped = per_image.groupby(keys, observed=True, sort=False)
    summary = grouped.agg(
        mean_max_mean=("mean_max", "mean"),
        mean_max_std=("mean_max", "std"),
        percent_mean=("percent", "mean"),
        percent_std=("percent", "std"),
        n_images=("image", "nunique"),
    ).reset_index()
    return per_image, summary


def redundancy_profile(summary: pd.DataFrame, value: str = "percent") -> pd.DataFrame:
    """Within-network rows (a layer against itself) of a summary, by module number.

    ``summary`` is a :func:`layer_pair_summary` or the ``summary`` of
    :func:`aggregate_correlation` (then ``value`` names e.g. ``"percent_mean"``).

    Returns
    -------
    DataFrame
        ``module``, ``value`` and ``position`` ("first", "middle" or "last").
    """
    if value not in summary.columns:
        raise KeyError(f"value {value!r} is not a column; got {list(summary.columns)}")
    diag = summary[summary["module_a"] == summary["module_b"]].sort_values("module_a")
    modules = diag["module_a"].to_numpy()
    if modules.size == 0:
        raise ValueError("no within-layer rows (module_a == module_b) in the summary")
    pos = np.where(modules == modules.min(), "first", "middle")
    pos = np.where(modules == modules.max(), "last", pos)
    return pd.DataFrame({"module": modules, "value": diag[value].to_numpy(float), "position": pos})


def redundancy_verdict(summary: pd.DataFrame, value: str = "percent") -> dict[str, Any]:
    """The thesis statements checked on one network's within-layer ``value``.

    Returns
    -------
    dict
        ``first``, ``middle`` (mean over the middle layers, NaN without any), ``last``;
        ``first_above_middle``, ``last_above_middle`` (None without middle layers) and
        ``last_highest`` (the last layer has the highest value). A one-layer network
        has ``first == last``.
    """
    prof = redundancy_profile(summary, value)
    v = prof["value"].to_numpy(float)
    middle = v[1:-1]
    mid = float(middle.mean()) if middle.size else float("nan")
    return {
        "first": float(v[0]),
        "middle": mid,
        "last": float(v[-1]),
        "first_above_middle": bool(v[0] > mid) if middle.size else None,
        "last_above_middle": bool(v[-1] > mid) if middle.size else None,
        "last_highest": bool(v[-1] >= np.nanmax(v)),
    }


def cross_network_profile(summary: pd.DataFrame, value: str = "mean_max") -> dict[str, float]:
    """Similarity of corresponding layers of two networks of different depth.

    Returns ``first`` (first layer of A vs first of B), ``last`` (last vs last) and
    ``others`` (mean of every other layer pair) of the ``value`` column.
    """
    if value not in summary.columns:
        raise KeyError(f"value {value!r} is not a column; got {list(summary.columns)}")
    ma, mb = summary["module_a"].to_numpy(), summary["module_b"].to_numpy()
    v = summary[value].to_numpy(float)
    first = (ma == ma.min()) & (mb == mb.min())
    last = (ma == ma.max()) & (mb == mb.max())
    rest = ~(first | last)
    return {
        "first": float(v[first].mean()),
        "last": float(v[last].mean()),
        "others": float(np.nanmean(v[rest])) if rest.any() else float("nan"),
    }


def map_blocks(matrix: Any, threshold: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """Blocks of correlated maps: connected groups in the graph |r| >= ``threshold``.

    Parameters
    ----------
    matrix : array of shape (K, K)
        Signed correlations of the maps of one layer with themselves (NaN = undefined).

    Returns
    -------
    labels : ndarray of int, shape (K,)
        Block of each map (maps without a partner are blocks of size 1).
    order : ndarray of int, shape (K,)
        A permutation grouping the maps by block, largest block first (for a reordered
        correlation image).
    """
    labels = correlation_groups(matrix, threshold)
    sizes = np.bincount(labels)
    order = np.lexsort((np.arange(labels.size), labels, -sizes[labels]))
    return labels, order


def random_maps(
    tables: CorrelationTables,
    layer: str,
    *,
    n: int = 8,
    rng: int | np.random.Generator | None = 0,
) -> tuple[list[int], list[int]]:
    """``n`` random maps of a layer and those of them that have a similar map in the layer.

    Returns
    -------
    ids : list of int
        Random map ids (sorted).
    similar : list of int
        The ids among them whose max |r| with another map of the same layer is
        >= ``tables.threshold``.
    """
    key = (layer, layer)
    if key not in tables.matrices:
        raise KeyError(f"layer {layer!r} not in the tables; layers: {tables.layers_a}")
    r = np.abs(tables.matrices[key]).copy()
    np.fill_diagonal(r, np.nan)
    n = min(check_positive_int("n", n), r.shape[0])
    ids = sorted(int(i) for i in as_rng(rng).choice(r.shape[0], size=n, replace=False))
    with np.errstate(invalid="ignore"):
        best = np.array([np.nanmax(r[i]) if np.isfinite(r[i]).any() else np.nan for i in ids])
    return ids, [i for i, b in zip(ids, best) if b >= tables.threshold]


def layer_values(
    tables: CorrelationTables, layer: str, kind: Literal["pairs", "max"] = "pairs"
) -> np.ndarray:
    """|r| values of one layer with itself: every distinct map pair (upper triangle) or
    each map's max |r| with another map. NaN (constant maps) included.

    Returns
    -------
    ndarray of shape (K (K - 1) / 2,) for ``"pairs"`` or (K,) for ``"max"``
    """
    check_choice("kind", kind, ["pairs", "max"])
    key = (layer, layer)
    if key not in tables.matrices:
        raise KeyError(f"layer {layer!r} not in the tables; layers: {tables.layers_a}")
    if kind == "pairs":
        mat = np.abs(tables.matrices[key])
        return mat[np.triu_indices(mat.shape[0], 1)]
    mx = tables.maxima
    sel = (mx["A_layer"].astype(str) == layer) & (mx["B_layer"].astype(str) == layer)
    return mx.loc[sel, "correlation"].to_numpy(float)


def block_summary(tables: CorrelationTables, threshold: float | None = None) -> pd.DataFrame:
    """Blocks of correlated maps (see :func:`map_blocks`) in every layer of A.

    Returns
    -------
    DataFrame
        One row per layer: ``layer``, ``module``, ``n_maps``, ``blocks`` (groups of at
        least 2 maps), ``largest`` (maps in the largest block) and ``in_blocks`` (% of the
        maps that belong to a block of at least 2).
    """
    t = tables.threshold if threshold is None else check_fraction("threshold", threshold)
    rows = []
    for layer in tables.layers_a:
        if (layer, layer) not in tables.matrices:
            continue
        labels, _ = map_blocks(tables.matrices[layer, layer], t)
        sizes = np.bincount(labels)
        rows.append(
            {
                "layer": layer,
                "module": module_numbers(tables.layers_a)[layer],
                "n_maps": labels.size,
                "blocks": int((sizes >= 2).sum()),
                "largest": int(sizes.max()),
                "in_blocks": 100.0 * sizes[sizes >= 2].sum() / labels.size,
            }
        )
    return pd.DataFrame(rows)
