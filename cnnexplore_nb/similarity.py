"""All-pairs similarity of activation maps: Pearson, cosine, Euclidean and linear CKA.

Every map is a vector of pixels; with N images the pixels of all images are pooled (each
pixel of each image is one sample). All pairs come from one streaming pass of
:class:`~cnnexplore_nb.moments.Moments` (centre + one GEMM per chunk), never from a loop
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

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ._checks import check_choice, check_positive_int

if TYPE_CHECKING:
    from .moments import Moments

__all__ = [
    "MEASURES",
    "RESAMPLE_POLICIES",
    "SimilarityStats",
    "common_grid",
    "full_fp32_precision",
    "layer_cka",
    "similarity_matrix",
    "similarity_stats",
    "stream_moments",
    "zero_flags",
]

MEASURES = ("pearson", "abs_pearson", "cosine", "euclidean")
RESAMPLE_POLICIES = ("bilinear-down", "bilinear-up")
Measure = Literal["pearson", "abs_pearson", "cosine", "euclidean"]
Resample = Literal["bilinear-down", "bilinear-up"] | tuple[int, int] | None
ArrayLike = Any

_RESAMPLE_FLOATS = 1 << 23  # resampled floats held at once while streaming (32 MB)


@contextlib.contextmanager
def full_fp32_precision() -> Iterator[None]:
    """Force full fp32 matmul precision in torch (no TF32/bf16) and restore it afterwards.

    Uses ``torch.set_float32_matmul_precision("highest")`` (which also turns off
    ``torch.backends.cuda.matmul.allow_tf32``); if the process mixed the legacy and the new
    per-backend precision APIs, the per-backend ``fp32_precision`` flags are set to "ieee".
    """
    import torch

    try:
        old: Any = torch.get_float32_matmul_precision()
    except RuntimeError:  # legacy and new APIs mixed: use the new per-backend flags
        backends = [torch.backends.cuda.matmul, torch.backends.mkldnn.matmul]
        old = [b.fp32_precision for b in backends]
        try:
            for b in backends:
                b.fp32_precision = "ieee"
            yield
        finally:
            for b, v in zip(backends, old):
                b.fp32_precision = v
        return
    try:
        torch.set_float32_matmul_precision("highest")
        yield
    finally:
        torch.set_float32_matmul_precision(old)


def _as4d(x: ArrayLike, name: str) -> Any:
    """Tensor/array of shape (C, H, W) or (N, C, H, W) -> (N, C, H, W), validated."""
    x = x.detach() if hasattr(x, "detach") else np.asarray(x)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(
            f"{name} must have shape (C, H, W) or (N, C, H, W), got ndim={x.ndim} "
            f"with shape {tuple(x.shape)}"
        )
    if any(int(s) == 0 for s in x.shape):
        raise ValueError(
            f"{name} must be non-empty (N images, C channels, H x W pixels all > 0), "
            f"got shape {tuple(x.shape)}"
        )
    return x


def _as_blocks(x: ArrayLike | Sequence[ArrayLike], name: str) -> list[Any]:
    """One array or a list of arrays (to be joined along channels) as a list of (N, C, P)."""
    parts = list(x) if isinstance(x, (list, tuple)) else [x]
    if not parts:
        raise ValueError(f"{name} must hold at least one array, got an empty {type(x).__name__}")
    out = [p.reshape(p.shape[0], p.shape[1], -1) for p in (_as4d(p, name) for p in parts)]
    if len({(int(p.shape[0]), int(p.shape[2])) for p in out}) != 1:
        shapes = [tuple(p.shape) for p in out]
        raise ValueError(f"arrays joined in {name} must share N and H x W, got shapes {shapes}")
    return out


def _slab(p: Any, i0: int, i1: int, p0: int, p1: int) -> np.ndarray:
    """Images i0:i1, pixels p0:p1 of one (N, C, P) block as a numpy array (G, C, n)."""
    s = p[i0:i1, :, p0:p1]
    if hasattr(s, "numpy"):
        import torch

        if s.dtype not in (torch.float32, torch.float64):
            s = s.float()
        s = s.cpu().numpy()
    return s


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


def _resample(x: Any, grid: tuple[int, int]) -> Any:
    """Bilinear resampling of (G, C, H, W) to ``grid`` (antialiased when shrinking)."""
    if tuple(int(s) for s in x.shape[-2:]) == grid:
        return x
    import torch
    import torch.nn.functional as F

    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    shrink = grid[0] < t.shape[-2] or grid[1] < t.shape[-1]
    return F.interpolate(t, size=grid, mode="bilinear", align_corners=False, antialias=shrink)


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
    from .moments import Moments

    mom = Moments(within=within)
    same_grid = all(tuple(int(s) for s in x.shape[-2:]) == grid for x in layers)
    if same_grid and not progress:
        return mom.update(a, b)  # Moments chunks the pixels itself: no copy of the input
    n = n_imgs[0]
    k = sum(int(x.shape[1]) for x in layers)
    step = max(1, _RESAMPLE_FLOATS // (k * grid[0] * grid[1]))
    from tqdm.auto import tqdm

    for i0 in tqdm(range(0, n, step), desc="similarity moments", disable=not progress):
        ga = [_resample(x[i0 : i0 + step], grid) for x in a]
        gb = None if b is None else [_resample(x[i0 : i0 + step], grid) for x in b]
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
    if measure == "pearson":
        return mom.pearson()
    if measure == "abs_pearson":
        return np.abs(mom.pearson())
    if measure == "cosine":
        return mom.cosine()
    return mom.euclidean()


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
