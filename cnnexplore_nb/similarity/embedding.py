"""Beyond the thesis: a 2-D embedding of all maps of a network, and layer-by-layer CKA.

* :func:`map_embedding` places every activation map of every layer as one point (PCA always,
  UMAP when the optional ``umap-learn`` is installed), for a scatter coloured by layer.
* :func:`cka_matrix` compares every layer of one network with every layer of another by
  linear CKA (Kornblith et al. 2019), with pixels (default) or images as examples and the
  biased or unbiased HSIC, beside the thesis's max-``|r|`` heatmaps; the result names its
  convention in ``attrs`` (see :mod:`cnnexplore_nb.similarity.cka`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from .._arrays import as_layer_maps
from .._arrays import resample as resample_maps
from .._checks import as_rng, check_choice, check_keys, check_positive_int
from .cka import layer_cka
from .region import common_grid, resample_mode

__all__ = ["cka_matrix", "map_embedding"]


def _on_grid(x: Any, grid: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    t = torch.as_tensor(x).detach().cpu()
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    return resample_maps(t, grid, mode=mode)


def _checked(maps: Mapping[str, Any], name: str) -> dict[str, Any]:
    return as_layer_maps(maps, name)


def map_embedding(
    maps: Mapping[str, Any],
    *,
    method: Literal["pca", "umap"] = "pca",
    n_components: int = 2,
    rng: int | np.random.Generator | None = 0,
    resample: Any = "bilinear-down",
    max_features: int = 65536,
) -> pd.DataFrame:
    """One point per activation map of every layer, in 2-D (or ``n_components``-D).

    Parameters
    ----------
    maps : dict of layer path -> Tensor of shape (N, C, H, W)
        Activations of one network on the same N images.
    method : {"pca", "umap"}
        PCA (numpy; exact, deterministic up to the documented sign rule) or UMAP (needs the
        optional ``umap-learn``: ``pip install 'cnnexplore_nb[umap]'``).
    n_components : int
    rng : int, Generator or None
        Seeds the pixel subsample and UMAP.
    resample : "bilinear-down", "bilinear-up", (H, W) or None
        Common grid for layers of different H x W (see :mod:`cnnexplore_nb.similarity`).
    max_features : int
        If a map has more values than this (N x H x W on the common grid), the same random
        subset of pixel positions is used for every map.

    Returns
    -------
    DataFrame
        Columns ``layer, map_id, x, y`` (then ``c3, c4, ...`` for more components) and
        ``constant`` (bool). One row per map, layers in the order of ``maps``.

    Notes
    -----
    Each map is flattened over its N images and pixels and standardised (zero mean, unit
    std), so points are close when maps are correlated: the squared Euclidean distance of two
    standardised maps is ``2 n (1 - r)``. Constant maps become all-zero vectors (flagged in
    ``constant``). PCA: the map vectors are centred across maps and projected on their top
    principal axes; each component's sign makes its largest-magnitude score positive.
    """
    check_choice("method", method, ["pca", "umap"])
    n_components = check_positive_int("n_components", n_components)
    max_features = check_positive_int("max_features", max_features)
    maps = _checked(maps, "maps")
    grid = common_grid([tuple(int(s) for s in x.shape[-2:]) for x in maps.values()], resample)
    gen = as_rng(rng)
    n = next(iter(maps.values())).shape[0]
    dim = n * grid[0] * grid[1]
    cols = np.sort(gen.choice(dim, max_features, replace=False)) if dim > max_features else None
    rows, labels, ids = [], [], []
    for layer, x in maps.items():
        flat = (
            _on_grid(x, grid, resample_mode(resample))
            .transpose(0, 1)
            .reshape(x.shape[1], -1)
            .double()
            .numpy()
        )
        if cols is not None:
            flat = flat[:, cols]
        rows.append(flat)
        labels += [layer] * flat.shape[0]
        ids += list(range(flat.shape[0]))
    x = np.concatenate(rows)
    x = x - x.mean(axis=1, keepdims=True)
    std = x.std(axis=1, keepdims=True)
    constant = std[:, 0] == 0
    x = np.divide(x, std, out=np.zeros_like(x), where=std > 0)
    if n_components > min(x.shape):
        raise ValueError(
            f"n_components must be <= min(maps, features) = {min(x.shape)}, got {n_components}"
        )
    if method == "pca":
        coords = _pca(x, n_components)
    else:
        coords = _umap(x, n_components, gen)
    names = ["x", "y"] + [f"c{i}" for i in range(3, n_components + 1)]
    df = pd.DataFrame({"layer": labels, "map_id": np.asarray(ids, dtype=np.int64)})
    for i, name in enumerate(names[:n_components]):
        df[name] = coords[:, i]
    df["constant"] = constant
    return df


def _pca(x: np.ndarray, k: int) -> np.ndarray:
    """Scores of the rows of ``x`` (points x features) on the top ``k`` principal axes."""
    xc = x - x.mean(axis=0, keepdims=True)
    if xc.shape[0] <= xc.shape[1]:  # Gram trick: an eigenproblem of size (points x points)
        vals, vecs = np.linalg.eigh(xc @ xc.T)
        order = np.argsort(vals)[::-1][:k]
        scores = vecs[:, order] * np.sqrt(np.clip(vals[order], 0, None))
    else:
        u, s, _ = np.linalg.svd(xc, full_matrices=False)
        scores = u[:, :k] * s[:k]
    flip = np.sign(scores[np.argmax(np.abs(scores), axis=0), np.arange(scores.shape[1])])
    return scores * np.where(flip == 0, 1.0, flip)


def _umap(x: np.ndarray, k: int, gen: np.random.Generator) -> np.ndarray:
    try:
        import umap
    except ImportError:
        raise ImportError(
            "method='umap' needs the optional package umap-learn: "
            "pip install 'cnnexplore_nb[umap]' (or pip install umap-learn); "
            "method='pca' works without it"
        ) from None
    seed = int(gen.integers(2**31 - 1))
    reducer = umap.UMAP(n_components=k, random_state=seed, n_neighbors=min(15, len(x) - 1))
    return np.asarray(reducer.fit_transform(x), dtype=np.float64)


def cka_matrix(
    maps_a: Mapping[str, Any],
    maps_b: Mapping[str, Any] | None = None,
    *,
    resample: Any = "auto",
    layers_a: Sequence[str] | None = None,
    layers_b: Sequence[str] | None = None,
    examples: Literal["pixels", "images"] = "pixels",
    unbiased: bool = False,
    features: Literal["flatten", "mean"] = "flatten",
    batch_size: int | None = None,
) -> pd.DataFrame:
    """Linear CKA between every layer of network A and every layer of network B.

    Parameters
    ----------
    maps_a, maps_b : dict of layer path -> Tensor of shape (N, C, H, W)
        Activations of the two networks on the same N images (``maps_b=None``: A with A).
    resample : "auto", "bilinear-down", "bilinear-up", "bicubic-down", "bicubic-up", (H, W) or None
        Common grid for layers of different H x W. ``"auto"``: ``"bilinear-down"`` with
        pixels as examples (maps must share a grid), ``None`` with images as examples (each
        layer keeps its own activations, as in Kornblith et al. 2019).
    layers_a, layers_b : list of str, optional
        Subsets / orders of the layers (default: all, in dict order).
    examples, unbiased, features, batch_size
        The CKA convention, see :func:`cnnexplore_nb.similarity.cka.layer_cka`.

    Returns
    -------
    DataFrame of shape (L_a, L_b)
        Index ``layer_a`` and columns ``layer_b`` (layer paths); ``.stack()`` gives the long
        form for a heatmap. NaN where a layer has only constant maps. ``attrs`` names the
        convention: ``attrs["convention"]`` is a label for titles (e.g. ``"linear CKA,
        pixels as examples"``) and ``attrs["cka"]`` holds ``examples``, ``unbiased``,
        ``features``, ``batch_size`` and ``resample``.

    Notes
    -----
    Pixels as examples: X (n pixels x K_a) and Y (n x K_b) hold the maps as columns, each
    centred, and ``CKA = ‖XᵀY‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F)`` (float64 sums of float32 products:
    values good to about 1e-7). Images as examples: the N x N Gram matrix of each layer is
    built once and every pair is read from the two Grams. Both are invariant to orthogonal
    transforms and isotropic scaling of the features, and 1 for identical layers
    (Kornblith et al., "Similarity of neural network representations revisited", ICML 2019).
    """
    from .cka import EXAMPLES, centred_gram, cka_convention, cka_from_grams

    check_choice("examples", examples, list(EXAMPLES))
    label = cka_convention(examples, unbiased, features, batch_size)  # checks features
    if resample == "auto":
        resample = "bilinear-down" if examples == "pixels" else None
    maps_a = _checked(maps_a, "maps_a")
    maps_b = maps_a if maps_b is None else _checked(maps_b, "maps_b")
    la = check_keys("layer in layers_a", layers_a, maps_a)
    lb = check_keys("layer in layers_b", layers_b, maps_b)
    na, nb = next(iter(maps_a.values())).shape[0], next(iter(maps_b.values())).shape[0]
    if na != nb:
        raise ValueError(f"maps_a and maps_b must hold the same N images, got {na} and {nb}")
    shapes = [tuple(int(s) for s in maps_a[n].shape[-2:]) for n in la]
    shapes += [tuple(int(s) for s in maps_b[n].shape[-2:]) for n in lb]
    out = np.full((len(la), len(lb)), np.nan)
    if examples == "images":
        grid = None if resample is None else common_grid(shapes, resample)
        opts = {"features": features, "grid": grid, "mode": resample_mode(resample)}
        grams_a = {n: centred_gram(maps_a[n], **opts) for n in la}
        same = maps_b is maps_a
        grams_b = {n: grams_a[n] if same and n in grams_a else centred_gram(maps_b[n], **opts)
                   for n in lb}  # fmt: skip
        for i, a in enumerate(la):
            for j, b in enumerate(lb):
                out[i, j] = cka_from_grams(
                    grams_a[a], grams_b[b], unbiased=unbiased, batch_size=batch_size
                )
    else:
        grid = common_grid(shapes, resample)
        for i, a in enumerate(la):
            xa = _on_grid(maps_a[a], grid, resample_mode(resample))
            for j, b in enumerate(lb):
                xb = _on_grid(maps_b[b], grid, resample_mode(resample))
                out[i, j] = layer_cka(xa, xb, unbiased=unbiased)
    df = pd.DataFrame(out, index=pd.Index(la, name="layer_a"), columns=pd.Index(lb, name="layer_b"))
    df.attrs["convention"] = label
    df.attrs["cka"] = {"examples": examples, "unbiased": bool(unbiased), "features": features,
                       "batch_size": batch_size, "resample": resample}  # fmt: skip
    return df
