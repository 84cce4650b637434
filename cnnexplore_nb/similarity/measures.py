"""All-pairs similarity of activation maps: Pearson, cosine, Euclidean and linear CKA.

Every map is a vector of pixels; with N images the pixels of all images are pooled (each
pixel of each image is one sample). All pairs come from one streaming pass of
:class:`~cnnexplore_nb.similarity.moments.Moments` (centre + one GEMM per chunk), never from a loop
over pairs, so memory is O(K_a K_b) plus one chunk.

Maps of different H x W are compared on a common grid chosen by ``resample``:

``None``
    no resampling; different sizes raise ``ValueError``.
``"bilinear-down"``
    every map is resampled to the smallest grid, ``(min H, min W)``, bilinear with
    antialiasing (``torch.nn.functional.interpolate(..., antialias=True)``).
``"bilinear-up"``
    every map is resampled to the largest grid, ``(max H, max W)``, bilinear.
``(H, W)``
    every map is resampled (bilinear, antialiased when shrinking) to this explicit grid.

Maps already on the target grid are never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._arrays import as_nchw
from .._arrays import resample as resample_maps
from .._checks import check_choice, check_positive_int
from .moments import Moments

__all__ = [
    "MEASURES",
    "RESAMPLE_POLICIES",
    "SimilarityStats",
    "common_grid",
    "layer_cka",
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
RESAMPLE_POLICIES = ("bilinear-down", "bilinear-up")
Measure = Literal["pearson", "abs_pearson", "cosine", "euclidean"]
Resample = Literal["bilinear-down", "bilinear-up"] | tuple[int, int] | None
ArrayLike = Any

_RESAMPLE_FLOATS = 1 << 23  # resampled floats held at once while streaming (32 MB)


def _as4d(x: ArrayLike, name: str) -> Any:
    """Maps of shape (C, H, W) or (N, C, H, W) as (N, C, H, W): numpy stays numpy."""
    x = as_nchw(x, name, keep_numpy=True)
    return x.detach() if hasattr(x, "detach") else x


def common_grid(shapes: Sequence[tuple[int, int]], resample: Resample) -> tuple[int, int]:
    """The (H, W) grid on which maps of the given sizes are compared under ``resample``.

    Raises ``ValueError`` for different sizes with ``resample=None`` or an unknown policy.
    """
    shapes = [(int(h), int(w)) for h, w in shapes]
    if isinstance(resample, (tuple, list)):
        if len(resample) != 2 or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in resample
        ):
            raise ValueError(f"resample as a grid must be (H, W) of positive ints, got {resample}")
        return int(resample[0]), int(resample[1])
    if resample is None:
        if len(set(shapes)) > 1:
            raise ValueError(
                f"maps have different sizes H x W: {sorted(set(shapes))}; pass "
                "resample='bilinear-down', resample='bilinear-up' or resample=(H, W)"
            )
        return shapes[0]
    check_choice("resample policy", resample, [*RESAMPLE_POLICIES, "(H, W) tuple", "None"])
    pick = min if resample == "bilinear-down" else max
    return pick(h for h, _ in shapes), pick(w for _, w in shapes)


def stream_moments(
    a: Sequence[ArrayLike],
    b: Sequence[ArrayLike] | None = None,
    *,
    resample: Resample = None,
    within: bool = False,
    progress: bool = False,
) -> Moments:
    """Accumulate :class:`Moments` of the layers ``a`` (joined along channels) vs ``b``.

    Parameters
    ----------
    a, b : list of Tensor or ndarray of shape (N, C_i, H_i, W_i)
        Layers of each block; all with the same N. ``b=None`` compares A with itself.
    resample : None, "bilinear-down", "bilinear-up" or (H, W)
        Common-grid policy (module docstring).
    within : bool
        Keep the within-block Gram matrices (for CKA).
    progress : bool
        Show a tqdm progress bar over steps of images.
    """
    a = [_as4d(x, "a") for x in a]
    b = None if b is None else [_as4d(x, "b") for x in b]
    layers = a + (b or [])
    n_imgs = sorted({int(x.shape[0]) for x in layers})
    if len(n_imgs) > 1:
        raise ValueError(f"a and b must hold the same number of images N, got N in {n_imgs}")
    grid = common_grid([tuple(x.shape[-2:]) for x in layers], resample)
    mom = Moments(within=within)
    same_grid = all(tuple(int(s) for s in x.shape[-2:]) == grid for x in layers)
    if same_grid and not progress:
        return mom.update(a, b)  # Moments chunks the pixels itself: no copy of the input
    n = n_imgs[0]
    k = sum(int(x.shape[1]) for x in layers)
    step = max(1, _RESAMPLE_FLOATS // (k * grid[0] * grid[1]))
    from tqdm.auto import tqdm

    for i0 in tqdm(range(0, n, step), desc="similarity moments", disable=not progress):
        ga = [resample_maps(x[i0 : i0 + step], grid) for x in a]
        gb = None if b is None else [resample_maps(x[i0 : i0 + step], grid) for x in b]
        mom.update(ga, gb)
    return mom


def _check_pair_grid(a: Any, b: Any | None, resample: Resample) -> None:
    """Clear error for two differently sized inputs compared without a policy."""
    if b is None or resample is not None:
        return
    ga, gb = tuple(int(v) for v in a.shape[-2:]), tuple(int(v) for v in b.shape[-2:])
    if ga != gb:
        raise ValueError(
            f"a and b have maps of different sizes H x W: a {ga} vs b {gb}; pass "
            "resample='bilinear-down' (to the smaller grid), 'bilinear-up' (to the larger) "
            "or an explicit (H, W)"
        )


def _result(mom: Moments, measure: str) -> np.ndarray:
    return MEASURES[measure](mom)


def _images(x: Any) -> Iterator[Any]:
    for i in range(int(x.shape[0])):
        yield x[i : i + 1]


def similarity_matrix(
    a: ArrayLike,
    b: ArrayLike | None = None,
    *,
    measure: Measure = "pearson",
    resample: Resample = None,
    reduce: Literal["pooled", "per_image"] = "pooled",
) -> np.ndarray:
    """Similarity of every map of ``a`` with every map of ``b``.

    Parameters
    ----------
    a : Tensor or ndarray of shape (C, H, W) or (N, C, H, W)
        K_a = C maps; with N images the pixels of all images are pooled.
    b : same as ``a``, optional
        K_b maps with the same N; ``None`` compares ``a`` with itself.
    measure : {"pearson", "abs_pearson", "cosine", "euclidean"}
        Signed Pearson r, its absolute value, cosine x·y/(|x||y|) or Euclidean distance.
    resample : None, "bilinear-down", "bilinear-up" or (H, W)
        Policy for maps of different H x W (module docstring).
    reduce : {"pooled", "per_image"}
        One matrix over all pixels, or one matrix per image.

    Returns
    -------
    ndarray of shape (K_a, K_b), or (N, K_a, K_b) for ``reduce="per_image"``
        float64. Correlation with a constant map, and cosine with an all-zero map, is NaN.

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
    a = _as4d(a, "a")
    same = b is None or b is a
    b = None if same else _as4d(b, "b")
    if b is not None and int(a.shape[0]) != int(b.shape[0]):
        raise ValueError(
            f"a and b must hold the same number of images N, got N={int(a.shape[0])} for a "
            f"and N={int(b.shape[0])} for b"
        )
    _check_pair_grid(a, b, resample)
    if reduce == "pooled":
        return _result(stream_moments([a], None if same else [b], resample=resample), measure)
    # validate the grid once, before the per-image loop
    common_grid([tuple(a.shape[-2:])] + ([] if same else [tuple(b.shape[-2:])]), resample)
    bs = _images(a) if same else _images(b)
    out = [
        _result(stream_moments([xa], None if same else [xb], resample=resample), measure)
        for xa, xb in zip(_images(a), bs)
    ]
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
) -> SimilarityStats:
    """Mean and std across images of the per-image similarity matrices (NaN skipped).

    Parameters are those of :func:`similarity_matrix`; ``ddof`` is the std's delta degrees
    of freedom (1 = sample std, as pandas).
    """
    ddof = check_positive_int("ddof", ddof, minimum=0)
    per = similarity_matrix(a, b, measure=measure, resample=resample, reduce="per_image")
    ok = np.isfinite(per)
    count = ok.sum(axis=0)
    total = np.where(ok, per, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        dev = np.where(ok, per - mean[None], 0.0)
        var = (dev**2).sum(axis=0) / np.maximum(count - ddof, 1)
    std = np.where(count > ddof, np.sqrt(var), np.nan)
    return SimilarityStats(mean=mean, std=std, count=count, per_image=per, ddof=ddof)


def layer_cka(a: ArrayLike, b: ArrayLike | None = None, *, resample: Resample = None) -> float:
    """Linear CKA between two layers with pixels as samples.

    ``‖XᵀY‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F)`` with X (n pixels x K_a) and Y (n x K_b) centred per
    map; 1 for ``b=None``. NaN if every map of a layer is constant.
    """
    a = _as4d(a, "a")
    b = a if b is None else _as4d(b, "b")
    if int(a.shape[0]) != int(b.shape[0]):
        raise ValueError(
            f"a and b must hold the same number of images N, got N={int(a.shape[0])} for a "
            f"and N={int(b.shape[0])} for b"
        )
    _check_pair_grid(a, None if b is a else b, resample)
    return stream_moments([a], None if b is a else [b], resample=resample, within=True).cka()


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
    x = _as4d(maps, "maps")
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
