"""Vessel-segmentation data: synthetic microscopy-like vessels with exact masks, the
scikit-image retina photograph with a vesselness *pseudo-label*, torch Datasets over
arrays and over a user's folder of image/mask pairs, intensity normalisation and the
thesis 80/20 split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from .._checks import as_rng, check_choice, check_fraction, check_positive_int
from ._vessel_folder import VesselArrays, VesselFolder
from ._vessel_synth import make_params, render_one

__all__ = [
    "VesselArrays",
    "VesselFolder",
    "normalize_intensity",
    "retina_image",
    "retina_pseudo_label",
    "synthetic_vessels",
    "train_val_split",
]


def _as_shape(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    try:
        h, w = (int(s) for s in size)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise TypeError(f"size must be an int or a pair (H, W), got {size!r}") from None
    if h < 8 or w < 8:
        raise ValueError(f"size must be at least 8 x 8 pixels, got {(h, w)}")
    return h, w


def synthetic_vessels(
    n: int,
    size: int | Sequence[int] = 256,
    *,
    rng: int | np.random.Generator | None = None,
    vessel_fraction: float = 0.12,
    difficulty: float = 0.5,
    tortuosity: float = 0.5,
    max_radius: float | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic 2-D fluorescence-microscopy-like vessel images with exact masks.

    Bright branching vessels on a dark, unevenly lit background. Each tree is a random
    walk whose heading varies smoothly (tortuosity); radii taper along a branch and split
    at bifurcations following Murray's law (r^3 = r1^3 + r2^3); trees enter from the
    borders or pass through an inner point. Trees are grown until the mask covers about
    ``vessel_fraction`` of the image.

    Parameters
    ----------
    n : int
        Number of images.
    size : int or (int, int)
        Image size ``(H, W)`` (an int means square).
    rng : int or numpy.random.Generator, optional
        Seed or generator; the same seed gives identical output.
    vessel_fraction : float
        Target fraction of vessel pixels in (0, 0.6]; reached approximately (slightly
        exceeded, since whole branches are added).
    difficulty : float
        0 (easy) ... 1 (hard): more shot and read noise, a wider blur (PSF), weaker
        contrast, a more uneven background, thinner vessels and more out-of-focus vessels.
    tortuosity : float
        0 (straight) ... 2 (very winding) heading noise of the vessel walks.
    max_radius : float, optional
        Radius of the thickest vessels in pixels (default grows with the image size).
    progress : bool
        Show a tqdm progress bar over images.

    Returns
    -------
    images : ndarray of float32, shape (n, H, W)
        Intensities in [0, 1].
    masks : ndarray of uint8, shape (n, H, W)
        Exact vessel masks in {0, 1}: the union of the discs along the centrelines.

    Notes
    -----
    The image of a vessel is a filled-tube profile (bright centre, smooth fall-off) times a
    per-vessel intensity, blurred by a Gaussian PSF, multiplied by a low-frequency
    illumination field, plus tissue texture and faint defocused vessels that are *not* in
    the mask, then Poisson (shot) and Gaussian (read) noise. Blur makes vessels appear
    slightly wider than their mask, as in real microscopy. About 30 ms per 256 x 256 image.

    Examples
    --------
    >>> images, masks = synthetic_vessels(2, 64, rng=0)
    >>> images.shape, images.dtype, masks.dtype
    ((2, 64, 64), dtype('float32'), dtype('uint8'))
    >>> bool(0.08 < masks.mean() < 0.25)
    True
    """
    n = check_positive_int("n", n)
    shape = _as_shape(size)
    vessel_fraction = check_fraction("vessel_fraction", vessel_fraction, low=0.0, high=0.6)
    if vessel_fraction == 0.0:
        raise ValueError("vessel_fraction must be > 0, got 0")
    difficulty = check_fraction("difficulty", difficulty)
    tortuosity = check_fraction("tortuosity", tortuosity, low=0.0, high=2.0)
    if max_radius is not None and not (0.5 <= float(max_radius) <= min(shape) / 4):
        raise ValueError(
            f"max_radius must be in [0.5, {min(shape) / 4}] pixels for size {shape}, "
            f"got {max_radius!r}"
        )
    params = make_params(
        shape,
        vessel_fraction=vessel_fraction,
        difficulty=difficulty,
        max_radius=max_radius,
        tortuosity=tortuosity,
    )
    gen = as_rng(rng)
    images = np.empty((n, *shape), dtype=np.float32)
    masks = np.empty((n, *shape), dtype=np.uint8)
    from tqdm.auto import tqdm

    for i in tqdm(range(n), desc="synthetic vessels", disable=not progress):
        images[i], masks[i] = render_one(gen, params)
    return images, masks


# ----------------------------------------------------------------------------- retina


def retina_image(
    *, channel: Literal["green", "gray", "rgb"] = "green", size: int | None = None
) -> np.ndarray:
    """The fundus photograph bundled with scikit-image (``skimage.data.retina()``).

    Parameters
    ----------
    channel : {"green", "gray", "rgb"}
        The green channel (best vessel contrast, the usual choice), a grey conversion or
        the colour image.
    size : int, optional
        Downscale (anti-aliased) to ``size x size`` pixels (the original is 1411 x 1411).

    Returns
    -------
    ndarray of float32, shape (H, W) or (H, W, 3)
        Intensities in [0, 1]; vessels are *dark* on a brighter fundus.
    """
    from skimage import data, transform
    from skimage.color import rgb2gray
    from skimage.util import img_as_float32

    check_choice("channel", channel, ["green", "gray", "rgb"])
    rgb = img_as_float32(data.retina())
    image = {"green": lambda: rgb[..., 1], "gray": lambda: rgb2gray(rgb), "rgb": lambda: rgb}[
        channel
    ]()
    if size is not None:
        size = check_positive_int("size", size, minimum=16)
        out = (size, size) + image.shape[2:]
        image = transform.resize(image, out, anti_aliasing=True, preserve_range=True)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def retina_pseudo_label(
    image: np.ndarray | None = None,
    *,
    method: Literal["frangi", "sato"] = "frangi",
    sigmas: Sequence[float] = (1.0, 2.0, 3.0, 4.0),
    threshold: Literal["percentile", "otsu"] = "percentile",
    percentile: float = 90.0,
    min_size: int = 64,
    black_ridges: bool = True,
) -> np.ndarray:
    """A vessel *pseudo-label* from a classic vesselness filter - never ground truth.

    Frangi or Sato vesselness (scikit-image), thresholded (Otsu on the in-field responses,
    or a percentile), small objects removed, restricted to the fundus field of view.
    Useful to explore a real photograph, not to score a model against.

    Parameters
    ----------
    image : ndarray of shape (H, W), optional
        Grey image in [0, 1]; default :func:`retina_image` (green channel, 512 x 512).
    method : {"frangi", "sato"}
        Vesselness filter.
    sigmas : sequence of float
        Filter scales in pixels.
    threshold : {"percentile", "otsu"}
        Keep vesselness above its ``percentile``-th percentile inside the field of view
        (default: the top 10 %, about the vessel density of a fundus), or above Otsu's
        threshold (conservative: only the large vessels).
    percentile : float
        Used with ``threshold="percentile"``.
    min_size : int
        Connected components smaller than this many pixels are removed.
    black_ridges : bool
        True for dark vessels (fundus photographs), False for bright ones (fluorescence).

    Returns
    -------
    ndarray of uint8, shape (H, W)
        Pseudo-label in {0, 1}.
    """
    from scipy import ndimage
    from skimage import filters, morphology

    check_choice("method", method, ["frangi", "sato"])
    check_choice("threshold", threshold, ["otsu", "percentile"])
    check_fraction("percentile", percentile, low=0.0, high=100.0)
    min_size = check_positive_int("min_size", min_size, minimum=0)
    if image is None:
        image = retina_image(size=512)
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"image must be a grey image of shape (H, W), got shape {image.shape}")
    # field of view: the bright disc of the fundus, eroded so its rim is no "vessel"
    smooth = filters.gaussian(image, sigma=2)
    fov = smooth > 0.15 * np.percentile(smooth, 99)
    fov = ndimage.binary_erosion(fov, structure=morphology.disk(int(max(sigmas) * 2 + 1)))
    fn = filters.frangi if method == "frangi" else filters.sato
    response = fn(image, sigmas=list(sigmas), black_ridges=black_ridges)
    inside = response[fov]
    if inside.size == 0 or not np.any(inside > 0):
        return np.zeros(image.shape, dtype=np.uint8)
    if threshold == "otsu":
        cut = filters.threshold_otsu(inside)
    else:
        cut = np.percentile(inside, percentile)
    label = (response > cut) & fov
    # drop components under min_size pixels (8-connectivity; portable across skimage)
    comp, _ = ndimage.label(label, structure=np.ones((3, 3)))
    sizes = np.bincount(comp.ravel())
    keep = sizes >= min_size
    keep[0] = False
    return keep[comp].astype(np.uint8)


# ------------------------------------------------------------ normalisation and split


def normalize_intensity(
    images: np.ndarray,
    *,
    mode: Literal["image", "dataset", "none"] = "image",
    stats: dict[str, Any] | None = None,
    equalize: Literal["hist", "adaptive"] | None = None,
    clip_limit: float = 0.01,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Zero mean, unit standard deviation per image or with dataset statistics, optionally
    after histogram equalisation.

    Parameters
    ----------
    images : ndarray of shape (N, H, W) or (N, C, H, W)
        Images (any real dtype).
    mode : {"image", "dataset", "none"}
        ``"image"``: each image (per channel) by its own mean and std. ``"dataset"``: all
        images by one mean and std per channel, computed here or taken from ``stats``.
        ``"none"``: no z-score (with ``equalize``, the equalised image in [0, 1]).
    stats : dict, optional
        ``{"mean": ..., "std": ...}`` from an earlier call on the training set (mode
        "dataset"), so validation and test images use the training statistics.
    equalize : {None, "hist", "adaptive"}
        Equalise each image (per channel) first: ``"hist"`` is
        :func:`skimage.exposure.equalize_hist` (global, 256 bins), ``"adaptive"`` is CLAHE,
        :func:`skimage.exposure.equalize_adapthist` (the image is scaled to [0, 1] by its
        min and max first, as CLAHE needs). CNN Explorer read an "equalized" image; the
        default (None) keeps the z-score alone.
    clip_limit : float in (0, 1]
        CLAHE's clip limit (``equalize="adaptive"`` only).

    Returns
    -------
    normalised : ndarray of float32, same shape as ``images``
    stats : dict
        ``{"mode", "mean", "std", "equalize"}``; means and stds are float64 arrays of shape
        (C,) for "dataset" and (N, C) for "image" (None for "none"). A constant image (std
        0) is only centred (and stays constant when equalised).
    """
    check_choice("mode", mode, ["image", "dataset", "none"])
    check_choice("equalize", equalize, [None, "hist", "adaptive"])
    arr = np.asarray(images)
    if arr.ndim not in (3, 4) or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(
            f"images must be a numeric array of shape (N, H, W) or (N, C, H, W), "
            f"got shape {arr.shape} and dtype {arr.dtype}"
        )
    x = arr.astype(np.float64)[:, None] if arr.ndim == 3 else arr.astype(np.float64)
    bad = ~np.isfinite(x).reshape(len(x), -1).all(axis=1)
    if bad.any():
        raise ValueError(
            f"images must be finite, got NaN/Inf in image(s) {np.flatnonzero(bad).tolist()[:10]}"
            "; clean them first (e.g. numpy.nan_to_num)"
        )
    if equalize is not None:
        x = _equalized(x, equalize, check_fraction("clip_limit", clip_limit))
    if mode == "none":
        if stats is not None:
            raise ValueError("stats are only used with mode='dataset'")
        out = x[:, 0] if arr.ndim == 3 else x
        return out.astype(np.float32), {"mode": mode, "mean": None, "std": None,
                                        "equalize": equalize}  # fmt: skip
    if mode == "image":
        if stats is not None:
            raise ValueError("stats are only used with mode='dataset'")
        mean, std = x.mean(axis=(2, 3)), x.std(axis=(2, 3))
        shaped = (mean[:, :, None, None], std[:, :, None, None])
    else:
        if stats is None:
            mean, std = x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))
        else:
            try:
                mean = np.atleast_1d(np.asarray(stats["mean"], dtype=np.float64))
                std = np.atleast_1d(np.asarray(stats["std"], dtype=np.float64))
            except (KeyError, TypeError, ValueError):
                raise ValueError(
                    f"stats must be a dict with 'mean' and 'std', got {stats!r}"
                ) from None
            if mean.shape != (x.shape[1],) or std.shape != (x.shape[1],):
                raise ValueError(
                    f"stats hold {mean.size} mean(s) and {std.size} std(s) but the images "
                    f"have {x.shape[1]} channel(s)"
                )
        shaped = (mean[None, :, None, None], std[None, :, None, None])
    m, s = shaped
    out = (x - m) / np.where(s > 0, s, 1.0)
    out = out[:, 0] if arr.ndim == 3 else out
    return out.astype(np.float32), {"mode": mode, "mean": mean, "std": std,
                                    "equalize": equalize}  # fmt: skip


def _equalized(x: np.ndarray, how: str, clip_limit: float) -> np.ndarray:
    """Every (image, channel) plane of a float64 (N, C, H, W) array equalised, in [0, 1]."""
    from skimage import exposure

    out = np.empty_like(x)
    for i, c in np.ndindex(*x.shape[:2]):
        plane = x[i, c]
        if how == "hist":
            out[i, c] = exposure.equalize_hist(plane)
            continue
        lo, hi = plane.min(), plane.max()
        if hi == lo:
            out[i, c] = 0.0
            continue
        out[i, c] = exposure.equalize_adapthist((plane - lo) / (hi - lo), clip_limit=clip_limit)
    return out


def train_val_split(
    n: int, *, val_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The thesis split: a seeded random permutation, ``val_fraction`` for validation.

    Returns
    -------
    train_idx, val_idx : ndarray of int64
        Sorted, disjoint indices covering ``range(n)``; ``round(n * val_fraction)``
        (at least 1) validation indices.

    Examples
    --------
    >>> tr, va = train_val_split(10)
    >>> len(tr), len(va)
    (8, 2)
    """
    n = check_positive_int("n", n, minimum=2)
    val_fraction = check_fraction("val_fraction", val_fraction)
    n_val = max(1, int(round(n * val_fraction)))
    if not 0.0 < val_fraction < 1.0 or n_val >= n:
        raise ValueError(
            f"val_fraction={val_fraction} leaves {n - n_val} training and {n_val} validation "
            f"image(s) of n={n}; both must be at least 1"
        )
    perm = np.random.default_rng(check_positive_int("seed", seed, minimum=0)).permutation(n)
    return np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)
