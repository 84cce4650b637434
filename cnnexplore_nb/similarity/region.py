"""Where maps are compared: the common grid, the interpolation, a crop window and a mask.

Every similarity function compares maps on one grid of pixels. This module decides that
grid (``resample`` policies), brings masks to it, and cuts each batch of maps down to the
pixels that count, so the streaming engine (:class:`~.moments.Moments`) sees only those.

Grid policies (``resample=``):

``None``
    no resampling; maps of different sizes raise ``ValueError``.
``"bilinear-down"`` / ``"bicubic-down"``
    every map is resampled to the smallest grid ``(min H, min W)``, antialiased.
``"bilinear-up"`` / ``"bicubic-up"``
    every map is resampled to the largest grid ``(max H, max W)``.
``(H, W)`` or ``(H, W, "bicubic")``
    every map is resampled to this grid (bilinear unless a mode is given).

Interpolation is :func:`torch.nn.functional.interpolate` with ``align_corners=False``
(CNN Explorer's ``feature_maps_interp`` used the same two modes). Bicubic can overshoot:
a ReLU map upsampled bicubically may hold small negative values.

Regions (``crop=``, ``mask=``), applied on the common grid after resampling:

``crop``
    a window ``(top, left, height, width)`` in pixels of the common grid, or a pair of
    slices ``(rows, cols)``; CNN Explorer's ``crop_feature_maps`` took the same four numbers.
``mask``
    boolean (or 0/1) of shape (H, W) for every image, or (N, H, W) / (N, 1, H, W) per
    image. A mask on another grid is resampled to the common grid by nearest neighbour
    (``"nearest-exact"``: pixel centres) when a ``resample`` policy is given, and is an error
    otherwise. :func:`dilated_mask` grows a ground truth by ``k`` pixels, as the original did
    with ``scipy.ndimage.binary_dilation`` before correlating.
``mask_mode``
    ``"select"`` (default): only the pixels inside the mask are samples. ``"zero"``: CNN
    Explorer's ``feature_maps_masking``, which multiplies the maps by the mask, so the
    pixels outside stay in as zeros (they count, and pull correlations of maps with
    zero outside towards each other).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from .._arrays import RESAMPLE_MODES
from .._arrays import resample as resample_maps
from .._checks import check_choice, check_positive_int

__all__ = [
    "RESAMPLE_POLICIES",
    "EmptyRegionError",
    "Region",
    "common_grid",
    "dilated_mask",
    "make_region",
    "resample_mode",
    "steps_on_grid",
]

RESAMPLE_POLICIES = ("bilinear-down", "bilinear-up", "bicubic-down", "bicubic-up")
Resample = (
    Literal["bilinear-down", "bilinear-up", "bicubic-down", "bicubic-up"]
    | tuple[int, int]
    | tuple[int, int, str]
    | None
)
Crop = tuple[int, int, int, int] | tuple[slice, slice] | None
MaskMode = Literal["select", "zero"]

_STEP_FLOATS = 1 << 23  # resampled floats held at once while streaming (32 MB)


class EmptyRegionError(ValueError):
    """The mask (inside the crop window) selects no pixel."""


def _is_grid(resample: Any) -> bool:
    return isinstance(resample, (tuple, list))


def _check_grid(resample: Any) -> None:
    ints = resample[:2]
    ok = len(resample) in (2, 3) and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in ints
    )
    if ok and len(resample) == 3:
        ok = resample[2] in RESAMPLE_MODES
    if not ok:
        raise ValueError(
            "resample as a grid must be (H, W) of positive ints or (H, W, mode) with mode in "
            f"{list(RESAMPLE_MODES)}, got {resample}"
        )


def resample_mode(resample: Resample) -> Literal["bilinear", "bicubic"]:
    """The interpolation of a ``resample`` policy: ``"bilinear"`` or ``"bicubic"``."""
    if isinstance(resample, str) and resample in RESAMPLE_POLICIES:
        return "bicubic" if resample.startswith("bicubic") else "bilinear"
    if _is_grid(resample) and len(resample) == 3:
        return resample[2]
    return "bilinear"


def common_grid(shapes: Sequence[tuple[int, int]], resample: Resample) -> tuple[int, int]:
    """The (H, W) grid on which maps of the given sizes are compared under ``resample``.

    Raises ``ValueError`` for different sizes with ``resample=None`` or an unknown policy.
    """
    shapes = [(int(h), int(w)) for h, w in shapes]
    if _is_grid(resample):
        _check_grid(resample)
        return int(resample[0]), int(resample[1])
    if resample is None:
        if len(set(shapes)) > 1:
            raise ValueError(
                f"maps have different sizes H x W: {sorted(set(shapes))}; pass "
                "resample='bilinear-down', resample='bilinear-up' (or 'bicubic-down', "
                "'bicubic-up') or resample=(H, W)"
            )
        return shapes[0]
    check_choice(
        "resample policy", resample, [*RESAMPLE_POLICIES, "(H, W) tuple", "(H, W, mode)", "None"]
    )
    pick = min if resample.endswith("-down") else max
    return pick(h for h, _ in shapes), pick(w for _, w in shapes)


def dilated_mask(mask: Any, k: int = 1, *, connectivity: Literal[1, 2] = 1) -> np.ndarray:
    """A binary mask grown by ``k`` pixels in every image (``k`` dilations).

    Parameters
    ----------
    mask : ndarray or Tensor of shape (H, W), (N, H, W) or (N, 1, H, W)
        Boolean or 0/1 (e.g. a vessel ground truth).
    k : int
        Number of dilations (CNN Explorer's ``iterations_level``); 0 returns the mask.
    connectivity : {1, 2}
        1: the 3 x 3 cross (``scipy.ndimage.binary_dilation``'s default, as the original
        used), each step grows by one pixel along rows and columns; 2: the full 3 x 3 square.

    Returns
    -------
    ndarray of bool, same shape as ``mask``
        Images are dilated independently (never into each other).
    """
    from scipy import ndimage

    k = check_positive_int("k", k, minimum=0)
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 (cross) or 2 (square), got {connectivity!r}")
    m = _as_bool(mask, "mask")
    flat = m.reshape((-1, *m.shape[-2:]))
    if k == 0:
        return m.copy()
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = ndimage.generate_binary_structure(2, connectivity)
    out = ndimage.binary_dilation(flat, structure=structure, iterations=k)
    return out.reshape(m.shape)


def _as_bool(mask: Any, name: str) -> np.ndarray:
    m = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if m.ndim not in (2, 3, 4) or (m.ndim == 4 and m.shape[1] != 1):
        raise ValueError(
            f"{name} must have shape (H, W), (N, H, W) or (N, 1, H, W), got shape {m.shape}"
        )
    if m.dtype != bool:
        if not np.issubdtype(m.dtype, np.number):
            raise TypeError(f"{name} must be boolean or 0/1 numbers, got dtype {m.dtype}")
        odd = np.setdiff1d(np.unique(m), [0, 1])
        if odd.size:
            raise ValueError(
                f"{name} must be boolean or 0/1, got other values {odd[:5].tolist()} "
                "(threshold it first, e.g. mask > 0.5)"
            )
        m = m.astype(bool)
    return m


def _window(crop: Crop, grid: tuple[int, int]) -> tuple[slice, slice]:
    h, w = grid
    if crop is None:
        return slice(0, h), slice(0, w)
    if (
        isinstance(crop, (tuple, list))
        and len(crop) == 2
        and all(isinstance(s, slice) for s in crop)
    ):
        rows, cols = (range(n)[s] for s, n in zip(crop, grid))
        if rows.step != 1 or cols.step != 1 or not len(rows) or not len(cols):
            raise ValueError(
                f"crop slices must select a non-empty window with step 1 of the {h} x {w} "
                f"grid, got {crop}"
            )
        return slice(rows.start, rows.stop), slice(cols.start, cols.stop)
    ok = isinstance(crop, (tuple, list)) and len(crop) == 4
    ok = ok and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in crop)
    if not ok:
        raise TypeError(
            f"crop must be (top, left, height, width) ints or (rows, cols) slices, got {crop!r}"
        )
    top, left, hh, ww = (int(v) for v in crop)
    if top < 0 or left < 0 or hh < 1 or ww < 1 or top + hh > h or left + ww > w:
        raise ValueError(
            f"crop (top={top}, left={left}, height={hh}, width={ww}) must lie inside the "
            f"{h} x {w} grid of the maps (top + height <= {h}, left + width <= {w})"
        )
    return slice(top, top + hh), slice(left, left + ww)


@dataclass(frozen=True)
class Region:
    """The pixels of the common grid that count: a window and an optional mask.

    Attributes
    ----------
    window : tuple of two slices
        Rows and columns of the common grid.
    mask : ndarray of bool, shape (N or 1, h, w), or None
        On the window; one shared mask has N = 1.
    mode : {"select", "zero"}
        See the module docstring.
    """

    window: tuple[slice, slice]
    mask: np.ndarray | None
    mode: str

    def mask_at(self, i0: int, i1: int) -> np.ndarray | None:
        """The mask of images i0:i1, shape (i1 - i0 or 1, h, w)."""
        if self.mask is None:
            return None
        return self.mask if self.mask.shape[0] == 1 else self.mask[i0:i1]

    def apply(self, x: Any, i0: int, i1: int) -> Any:
        """Maps (G, C, H, W) of images i0:i1 on the grid -> the pixels that count.

        ``"select"`` returns (1, C, 1, P) with the P selected pixels (None if P = 0);
        ``"zero"`` returns the window (G, C, h, w) times the mask.
        """
        x = x[:, :, self.window[0], self.window[1]]
        m = self.mask_at(i0, i1)
        if m is None:
            return x
        m = np.broadcast_to(m, (int(x.shape[0]), *m.shape[1:]))
        if isinstance(x, torch.Tensor):
            mt = torch.from_numpy(np.array(m)).to(x.device)
            if self.mode == "zero":
                return x * mt[:, None].to(x.dtype)
            picked = x.permute(1, 0, 2, 3)[:, mt]
        else:
            if self.mode == "zero":
                return x * m[:, None].astype(x.dtype)
            picked = x.transpose(1, 0, 2, 3)[:, m]
        if picked.shape[1] == 0:
            return None
        return picked.reshape(int(picked.shape[0]), 1, -1)[None]


def make_region(
    mask: Any,
    crop: Crop,
    grid: tuple[int, int],
    n_images: int,
    resample: Resample,
    mask_mode: MaskMode = "select",
) -> Region | None:
    """The :class:`Region` of ``mask`` and ``crop`` on ``grid`` (None if both are None).

    Raises
    ------
    ValueError
        For a mask of another N, on another grid without a ``resample`` policy, or a crop
        outside the grid. :class:`EmptyRegionError` (a ValueError) when no pixel is left.
    """
    check_choice("mask_mode", mask_mode, ["select", "zero"])
    if mask is None and crop is None:
        return None
    window = _window(crop, grid)
    m = None
    if mask is not None:
        m = _as_bool(mask, "mask")
        m = m[None] if m.ndim == 2 else m.reshape(m.shape[0], *m.shape[-2:])
        if m.shape[0] not in (1, n_images):
            raise ValueError(
                f"mask holds {m.shape[0]} image(s) but the maps hold N={n_images}: give one "
                "(H, W) mask for all images or one per image"
            )
        if tuple(m.shape[-2:]) != tuple(grid):
            if resample is None:
                raise ValueError(
                    f"mask has H x W {tuple(m.shape[-2:])} but the maps are compared on "
                    f"{tuple(grid)}: pass a mask on that grid, or a resample policy (the "
                    "mask is then resampled by nearest neighbour)"
                )
            t = torch.from_numpy(m[:, None].astype(np.float32))
            m = F.interpolate(t, size=tuple(grid), mode="nearest-exact")[:, 0].numpy() > 0.5
        m = np.ascontiguousarray(m[:, window[0], window[1]])
        if not m.any():
            raise EmptyRegionError(
                "mask selects no pixel"
                + ("" if crop is None else f" inside the crop window {crop}")
                + f" of the {grid[0]} x {grid[1]} grid"
            )
    return Region(window, m, mask_mode)


def steps_on_grid(
    a: Sequence[Any],
    b: Sequence[Any] | None,
    grid: tuple[int, int],
    *,
    mode: str = "bilinear",
    region: Region | None = None,
    progress: bool = False,
    desc: str = "similarity moments",
) -> Iterator[tuple[list[Any], list[Any] | None]]:
    """Batches of images of every layer of ``a`` (and ``b``): resampled, cut to the region.

    Each step holds at most ~8 M resampled floats. Steps whose mask selects no pixel are
    skipped. Layers are (N, C_i, H_i, W_i) arrays or tensors with one N.
    """
    layers = list(a) + list(b or [])
    n = int(layers[0].shape[0])
    k = sum(int(x.shape[1]) for x in layers)
    step = max(1, _STEP_FLOATS // (k * grid[0] * grid[1]))
    from tqdm.auto import tqdm

    for i0 in tqdm(range(0, n, step), desc=desc, disable=not progress):
        i1 = min(n, i0 + step)
        ga = [resample_maps(x[i0:i1], grid, mode=mode) for x in a]
        gb = None if b is None else [resample_maps(x[i0:i1], grid, mode=mode) for x in b]
        if region is not None:
            ga = [region.apply(x, i0, i1) for x in ga]
            gb = None if gb is None else [region.apply(x, i0, i1) for x in gb]
            if ga[0] is None:
                continue
        yield ga, gb
