"""All-pairs similarity of activation maps: Pearson, ``|r|``, cosine and Euclidean distance.

Every map is a vector of pixels; with N images the pixels of all images are pooled (each
pixel of each image is one sample). All pairs come from one streaming pass of
:class:`~cnnexplore_nb.similarity.moments.Moments` (centre + one GEMM per chunk), never from a loop
over pairs, so memory is O(K_a K_b) plus one chunk.

Maps of different H x W are compared on a common grid chosen by ``resample`` (nearest
neighbour for masks), and a ``crop`` window and a ``mask`` restrict the comparison to a
region; :mod:`.region` documents the policies. Maps already on the target grid are never
touched, and without a region the engine reads the input in place. Layer-level linear CKA
(:func:`layer_cka`) lives in :mod:`.cka` and is re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._checks import check_choice, check_positive_int
from .cka import layer_cka
from .moments import Moments
from .region import (
    RESAMPLE_POLICIES,
    Crop,
    EmptyRegionError,
    MaskMode,
    Resample,
    common_grid,
    make_region,
)
from .stream import as_maps, check_pair_grid, stream_moments

__all__ = [
    "MEASURES",
    "RESAMPLE_POLICIES",
    "SimilarityStats",
    "common_grid",
    "layer_cka",
    "map_support",
    "similarity_matrix",
    "similarity_stats",
    "stream_moments",
    "zero_flags",
]

#: The measures, one line each: name -> the matrix it reads off a :class:`Moments`.
MEASURES: dict[str, Callable[[Moments], np.ndarray]] = {
    "pearson": Moments.pearson,
    "abs_pearson": lambda m: np.abs(m.pearson()),
    "cosine": Moments.cosine,
    "euclidean": Moments.euclidean,
}
Measure = Literal["pearson", "abs_pearson", "cosine", "euclidean"]
ArrayLike = Any


def _result(mom: Moments, measure: str) -> np.ndarray:
    return MEASURES[measure](mom)


def _images(x: Any) -> Iterator[Any]:
    for i in range(int(x.shape[0])):
        yield x[i : i + 1]


def _mask_of(mask: Any, i: int, n: int) -> Any:
    """The mask of image i: a per-image mask (N, ...) is sliced, a shared one kept."""
    if mask is None or np.ndim(mask) == 2 or int(np.shape(mask)[0]) != n:
        return mask
    return mask[i : i + 1]


def similarity_matrix(
    a: ArrayLike,
    b: ArrayLike | None = None,
    *,
    measure: Measure = "pearson",
    resample: Resample = None,
    reduce: Literal["pooled", "per_image"] = "pooled",
    mask: Any = None,
    crop: Crop = None,
    mask_mode: MaskMode = "select",
) -> np.ndarray:
    """Similarity of every map of ``a`` with every map of ``b``.

    Parameters
    ----------
    a : Tensor or ndarray of shape (C, H, W) or (N, C, H, W)
        K_a = C maps; with N images the pixels of all images are pooled.
    b : same as ``a``, optional
        K_b maps with the same N; ``None`` compares ``a`` with itself.
    measure : {"pearson", "abs_pearson", "cosine", "euclidean"}
        Signed Pearson r, its absolute value, cosine x·y/(‖x‖ ‖y‖) or Euclidean distance.
    resample : None, "bilinear-down", "bilinear-up", "bicubic-down", "bicubic-up" or (H, W)
        Policy for maps of different H x W (:mod:`.region`).
    reduce : {"pooled", "per_image"}
        One matrix over all pixels, or one matrix per image.
    mask : array of bool, shape (H, W), (N, H, W) or (N, 1, H, W), optional
        Only these pixels count (e.g. :func:`~.region.dilated_mask` of a ground truth).
    crop : (top, left, height, width) or (rows, cols) slices, optional
        Only this window of the common grid counts.
    mask_mode : {"select", "zero"}
        ``"zero"`` reproduces CNN Explorer: maps multiplied by the mask, all pixels count.

    Returns
    -------
    ndarray of shape (K_a, K_b), or (N, K_a, K_b) for ``reduce="per_image"``
        float64. Correlation with a constant map, and cosine with an all-zero map, is NaN;
        with ``reduce="per_image"`` an image whose mask selects no pixel gives NaN.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(1, 8, 8))
    >>> maps = np.concatenate([x, 2 * x + 1, -x])
    >>> similarity_matrix(maps).round(6)
    array([[ 1.,  1., -1.],
           [ 1.,  1., -1.],
           [-1., -1.,  1.]])
    """
    check_choice("measure", measure, MEASURES)
    check_choice("reduce", reduce, ["pooled", "per_image"])
    a = as_maps(a, "a")
    same = b is None or b is a
    b = None if same else as_maps(b, "b")
    if b is not None and int(a.shape[0]) != int(b.shape[0]):
        raise ValueError(
            f"a and b must hold the same number of images N, got N={int(a.shape[0])} for a "
            f"and N={int(b.shape[0])} for b"
        )
    check_pair_grid(a, b, resample)
    region = {"crop": crop, "mask_mode": mask_mode}
    if reduce == "pooled":
        mom = stream_moments([a], None if same else [b], resample=resample, mask=mask, **region)
        return _result(mom, measure)
    # validate the grid and the region once, before the per-image loop
    shapes = [tuple(a.shape[-2:])] + ([] if same else [tuple(b.shape[-2:])])
    n = int(a.shape[0])
    grid = common_grid(shapes, resample)
    if mask is not None:
        try:
            make_region(mask, crop, grid, n, resample, mask_mode)
        except EmptyRegionError:
            pass  # every image empty: all-NaN below
    bs = _images(a) if same else _images(b)
    k_b = int((a if same else b).shape[1])
    out = []
    for i, (xa, xb) in enumerate(zip(_images(a), bs)):
        try:
            mom = stream_moments(
                [xa], None if same else [xb], resample=resample, mask=_mask_of(mask, i, n),
                **region,
            )  # fmt: skip
        except EmptyRegionError:
            out.append(np.full((int(a.shape[1]), k_b), np.nan))
            continue
        out.append(_result(mom, measure))
    return np.stack(out)


@dataclass(frozen=True)
class SimilarityStats:
    """Mean and std across images of per-image similarity matrices.

    Attributes
    ----------
    mean, std : ndarray of shape (K_a, K_b)
        Over the images where the value is defined (NaN entries skipped); ``std`` uses
        ``ddof`` (default 1, like pandas); NaN where fewer than ``ddof + 1`` values exist.
    count : ndarray of int, shape (K_a, K_b)
        Number of images where the value is defined.
    per_image : ndarray of shape (N, K_a, K_b)
    """

    mean: np.ndarray
    std: np.ndarray
    count: np.ndarray
    per_image: np.ndarray
    ddof: int = 1


def similarity_stats(
    a: ArrayLike,
    b: ArrayLike | None = None,
    *,
    measure: Measure = "pearson",
    resample: Resample = None,
    ddof: int = 1,
    mask: Any = None,
    crop: Crop = None,
    mask_mode: MaskMode = "select",
) -> SimilarityStats:
    """Mean and std across images of the per-image similarity matrices (NaN skipped).

    Parameters are those of :func:`similarity_matrix`; ``ddof`` is the std's delta degrees
    of freedom (1 = sample std, as pandas).
    """
    ddof = check_positive_int("ddof", ddof, minimum=0)
    per = similarity_matrix(
        a, b, measure=measure, resample=resample, reduce="per_image", mask=mask, crop=crop,
        mask_mode=mask_mode,
    )  # fmt: skip
    ok = np.isfinite(per)
    count = ok.sum(axis=0)
    total = np.where(ok, per, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        dev = np.where(ok, per - mean[None], 0.0)
        var = (dev**2).sum(axis=0) / np.maximum(count - ddof, 1)
    std = np.where(count > ddof, np.sqrt(var), np.nan)
    return SimilarityStats(mean=mean, std=std, count=count, per_image=per, ddof=ddof)


def zero_flags(maps: ArrayLike) -> np.ndarray:
    """Flag maps that are constant over all pixels of all images.

    The original CNN Explorer flagged maps that are "mostly zeros"; here a map is flagged
    when its std over all pooled pixels is exactly 0 (max == min), i.e. exactly the maps
    whose correlation is undefined (NaN).

    Parameters
    ----------
    maps : Tensor or ndarray of shape (C, H, W) or (N, C, H, W)

    Returns
    -------
    ndarray of bool, shape (C,)
    """
    x = as_maps(maps, "maps")
    if hasattr(x, "detach"):
        x = x.detach()
        lo, hi = x.amin(dim=(0, 2, 3)).cpu().numpy(), x.amax(dim=(0, 2, 3)).cpu().numpy()
    else:
        lo, hi = x.min(axis=(0, 2, 3)), x.max(axis=(0, 2, 3))
    bad = ~(np.isfinite(lo) & np.isfinite(hi))
    if bad.any():
        raise ValueError(
            f"maps must be finite, got NaN/Inf in channel(s) {np.flatnonzero(bad).tolist()[:10]}"
        )
    return np.asarray(hi == lo)


def map_support(maps: ArrayLike) -> np.ndarray:
    """How many pixels, over all images, each map is non-zero at (its own resolution).

    A map that is non-zero at a handful of pixels has a correlation decided by those few
    pixels: two such maps lit at the same pixel have r = 1 whatever they encode. The
    correlation tables flag maps whose support is below ``min_support`` as degenerate.

    Parameters
    ----------
    maps : Tensor or ndarray of shape (C, H, W) or (N, C, H, W)

    Returns
    -------
    ndarray of int64, shape (C,)
        Counted in blocks of at most 2**24 values (no full boolean copy of the maps).
    """
    x = as_maps(maps, "maps")
    n, c = int(x.shape[0]), int(x.shape[1])
    per = max(1, int(x.shape[2]) * int(x.shape[3]))
    step = max(1, (1 << 24) // per)
    out = np.zeros(c, dtype=np.int64)
    for i in range(n):
        for c0 in range(0, c, step):
            block = x[i, c0 : c0 + step]
            if hasattr(block, "detach"):
                got = (block != 0).sum(dim=(1, 2)).cpu().numpy()
            else:
                got = np.count_nonzero(block, axis=(1, 2))
            out[c0 : c0 + step] += got
    return out
