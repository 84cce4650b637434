"""Stream maps into the moments engine: the common grid, the region, steps of images.

:func:`stream_moments` is the one entry from layers of maps to a
:class:`~cnnexplore_nb.similarity.moments.Moments`: it checks N, picks the common grid
(:func:`~.region.common_grid`), builds the region (crop, mask) and, without either, hands
the input to the engine in place (no copy). The measures, the tables and CKA all call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._arrays import as_nchw
from .moments import Moments
from .region import (
    Crop,
    MaskMode,
    Resample,
    common_grid,
    make_region,
    resample_mode,
    steps_on_grid,
)

__all__ = ["as_maps", "check_pair_grid", "stream_moments"]

ArrayLike = Any


def as_maps(x: ArrayLike, name: str) -> Any:
    """Maps of shape (C, H, W) or (N, C, H, W) as (N, C, H, W): numpy stays numpy."""
    x = as_nchw(x, name, keep_numpy=True)
    return x.detach() if hasattr(x, "detach") else x


def stream_moments(
    a: Sequence[ArrayLike],
    b: Sequence[ArrayLike] | None = None,
    *,
    resample: Resample = None,
    within: bool = False,
    progress: bool = False,
    mask: Any = None,
    crop: Crop = None,
    mask_mode: MaskMode = "select",
) -> Moments:
    """Accumulate :class:`Moments` of the layers ``a`` (joined along channels) vs ``b``.

    Parameters
    ----------
    a, b : list of Tensor or ndarray of shape (N, C_i, H_i, W_i)
        Layers of each block; all with the same N. ``b=None`` compares A with itself.
    resample : None, "bilinear-down", "bilinear-up", "bicubic-down", "bicubic-up" or (H, W)
        Common-grid policy (:mod:`.region`).
    within : bool
        Keep the within-block Gram matrices (for CKA).
    progress : bool
        Show a tqdm progress bar over steps of images.
    mask : array of bool, shape (H, W), (N, H, W) or (N, 1, H, W), optional
        Pixels that count (see :mod:`.region`); memory stays O(K²) plus one step of images.
    crop : (top, left, height, width) or (rows, cols) slices, optional
        Window of the common grid.
    mask_mode : {"select", "zero"}
        Only the pixels in the mask count, or CNN Explorer's maps x mask (all pixels count).

    Raises
    ------
    ValueError
        For inconsistent N, sizes without a policy, a bad mask or crop, or a mask that
        selects no pixel.
    """
    a = [as_maps(x, "a") for x in a]
    b = None if b is None else [as_maps(x, "b") for x in b]
    layers = a + (b or [])
    n_imgs = sorted({int(x.shape[0]) for x in layers})
    if len(n_imgs) > 1:
        raise ValueError(f"a and b must hold the same number of images N, got N in {n_imgs}")
    grid = common_grid([tuple(x.shape[-2:]) for x in layers], resample)
    region = make_region(mask, crop, grid, n_imgs[0], resample, mask_mode)
    mom = Moments(within=within)
    same_grid = all(tuple(int(s) for s in x.shape[-2:]) == grid for x in layers)
    if same_grid and region is None and not progress:
        return mom.update(a, b)  # Moments chunks the pixels itself: no copy of the input
    mode = resample_mode(resample)
    for ga, gb in steps_on_grid(a, b, grid, mode=mode, region=region, progress=progress):
        mom.update(ga, gb)
    return mom


def check_pair_grid(a: Any, b: Any | None, resample: Resample) -> None:
    """Clear error for two differently sized inputs compared without a policy."""
    if b is None or resample is not None:
        return
    ga, gb = tuple(int(v) for v in a.shape[-2:]), tuple(int(v) for v in b.shape[-2:])
    if ga != gb:
        raise ValueError(
            f"a and b have maps of different sizes H x W: a {ga} vs b {gb}; pass "
            "resample='bilinear-down' (to the smaller grid), 'bilinear-up' (to the larger) "
            "or an explicit (H, W) ('bicubic-down' / 'bicubic-up' for bicubic)"
        )
