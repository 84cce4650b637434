"""Linear CKA between layers under the conventions of the literature.

Three choices change the number a figure shows, so each is an argument and is named in
every result (:func:`cka_convention`):

``examples="pixels"`` (default)
    every pixel of every image is an example and the C maps are the features
    (X: n pixels x C). This compares layers map by map, like the thesis's correlations,
    and streams through the float64 :class:`~.moments.Moments` engine (memory O(C²)).
``examples="images"``
    the N images are the examples and the activations the features (X: N x C·H·W, or
    N x C with ``features="mean"``), the layer CKA of Kornblith et al. (2019). Only the
    N x N Gram matrices are kept, built channel block by channel block.
``unbiased=True``
    the unbiased HSIC estimator of Song et al. (2012) instead of ``tr(KHLH)/(n-1)²``; with
    ``batch_size`` (images as examples) HSIC is averaged over minibatches, the minibatch
    CKA of Nguyen, Raghu and Kornblith (2021).

Notes
-----
With Gram matrices K, L (linear kernels) of n examples, H = I - 11ᵀ/n:
biased ``HSIC = tr(KHLH) / (n-1)²``; unbiased, with K̃, L̃ the Gram matrices with a zero
diagonal, ``HSIC₁ = [tr(K̃L̃) + 1ᵀK̃1 1ᵀL̃1 / ((n-1)(n-2)) - 2/(n-2) 1ᵀK̃L̃1] / (n(n-3))``;
``CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``. Both estimators are unchanged when a
constant is added to the features, so the Grams are built from centred (images) or shifted
(pixels) features. For pixels as examples the unbiased terms are sums over pixels of
Σxyᵀ, Σx‖y‖² and Σ‖x‖²‖y‖², streamed in float64 without any n x n matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from .._arrays import resample as resample_maps
from .._checks import check_choice, check_positive_int
from .region import (
    Crop,
    MaskMode,
    Resample,
    common_grid,
    make_region,
    resample_mode,
    steps_on_grid,
)
from .stream import as_maps, check_pair_grid, stream_moments

__all__ = [
    "EXAMPLES",
    "FEATURES",
    "centred_gram",
    "cka_convention",
    "cka_from_grams",
    "image_cka",
    "layer_cka",
    "pixel_cka_unbiased",
]

EXAMPLES = ("pixels", "images")
FEATURES = ("flatten", "mean")
_GRAM_FLOATS = 1 << 23  # activations converted to float64 at once while building a Gram
_PIXEL_CHUNK = 8192  # pixels per float64 product in the unbiased pixel pass


def cka_convention(
    examples: Literal["pixels", "images"] = "pixels",
    unbiased: bool = False,
    features: Literal["flatten", "mean"] = "flatten",
    batch_size: int | None = None,
) -> str:
    """A short label naming a CKA convention, for titles and legends.

    Examples
    --------
    >>> cka_convention()
    'linear CKA, pixels as examples'
    >>> cka_convention("images", unbiased=True, batch_size=32)
    'linear CKA, images as examples (C·H·W features), unbiased HSIC, minibatches of 32'
    """
    check_choice("examples", examples, list(EXAMPLES))
    check_choice("features", features, list(FEATURES))
    label = f"linear CKA, {examples} as examples"
    if examples == "images":
        label += " (C·H·W features)" if features == "flatten" else " (C pooled features)"
    if unbiased:
        label += ", unbiased HSIC"
    if batch_size is not None:
        label += f", minibatches of {batch_size}"
    return label


# ------------------------------------------------------------------ HSIC on Gram matrices
def _hsic_biased(k: np.ndarray, l_: np.ndarray) -> float:
    """tr(KHLH) / (m - 1)²."""
    m = k.shape[0]
    kc = k - k.mean(axis=0) - k.mean(axis=1)[:, None] + k.mean()
    lc = l_ - l_.mean(axis=0) - l_.mean(axis=1)[:, None] + l_.mean()
    return float(np.sum(kc * lc)) / (m - 1) ** 2


def _hsic_unbiased(k: np.ndarray, l_: np.ndarray) -> float:
    """Song et al. (2012)'s unbiased HSIC₁ of two symmetric Gram matrices."""
    m = k.shape[0]
    kt, lt = k.copy(), l_.copy()
    np.fill_diagonal(kt, 0.0)
    np.fill_diagonal(lt, 0.0)
    rk, rl = kt.sum(axis=0), lt.sum(axis=0)
    value = np.sum(kt * lt) + rk.sum() * rl.sum() / ((m - 1) * (m - 2)) - 2 * (rk @ rl) / (m - 2)
    return float(value) / (m * (m - 3))


def _ratio(kl: float, kk: float, ll: float) -> float:
    den = kk * ll
    return float(kl / np.sqrt(den)) if den > 0 else float("nan")


def cka_from_grams(
    k: np.ndarray, l_: np.ndarray, *, unbiased: bool = False, batch_size: int | None = None
) -> float:
    """Linear CKA of two N x N Gram matrices of the same examples.

    Parameters
    ----------
    k, l_ : ndarray of shape (N, N)
        Linear-kernel Gram matrices (centred or not: both estimators ignore constant shifts
        of the features).
    unbiased : bool
        Unbiased HSIC (needs at least 4 examples per batch) instead of the biased one.
    batch_size : int, optional
        Average the HSIC terms over consecutive batches of this many examples (the last
        one may be smaller); ``None``: one batch of all N.

    Returns
    -------
    float
        NaN when HSIC(K, K) HSIC(L, L) <= 0 (constant features, or an unbiased estimate
        below zero on very few examples).
    """
    n = k.shape[0]
    if k.shape != (n, n) or l_.shape != (n, n):
        raise ValueError(f"k and l_ must be square of one size, got {k.shape} and {l_.shape}")
    size = n if batch_size is None else check_positive_int("batch_size", batch_size)
    need = 4 if unbiased else 2
    hsic = _hsic_unbiased if unbiased else _hsic_biased
    kl = kk = ll = 0.0
    for i0 in range(0, n, size):
        s = slice(i0, min(n, i0 + size))
        m = s.stop - s.start
        if m < need:
            raise ValueError(
                f"{'unbiased' if unbiased else 'biased'} HSIC needs at least {need} examples "
                f"per batch, got a batch of {m} (N={n}, batch_size={batch_size})"
            )
        kb, lb = k[s, s], l_[s, s]
        kl, kk, ll = kl + hsic(kb, lb), kk + hsic(kb, kb), ll + hsic(lb, lb)
    return _ratio(kl, kk, ll)


def centred_gram(
    x: Any,
    *,
    features: Literal["flatten", "mean"] = "flatten",
    grid: tuple[int, int] | None = None,
    mode: str = "bilinear",
    window: tuple[slice, slice] | None = None,
) -> np.ndarray:
    """N x N Gram matrix of the centred features of one layer, images as examples.

    Parameters
    ----------
    x : Tensor or ndarray of shape (N, C, H, W)
    features : {"flatten", "mean"}
        C·H·W values per image, or the C spatial means.
    grid : (H, W), optional
        Resample to this grid first (``mode`` interpolation).
    window : pair of slices, optional
        Keep only this window of the grid.

    Returns
    -------
    ndarray of shape (N, N), float64, exactly symmetric
        ``F Fᵀ`` with F the features minus their mean over the N images, accumulated over
        blocks of channels (at most ~8 M values in float64 at once).
    """
    check_choice("features", features, list(FEATURES))
    x = as_maps(x, "x")
    n, c = int(x.shape[0]), int(x.shape[1])
    h, w = grid or tuple(int(s) for s in x.shape[-2:])
    step = max(1, _GRAM_FLOATS // (n * max(h * w, int(x.shape[-2] * x.shape[-1]))))
    gram = np.zeros((n, n))
    for c0 in range(0, c, step):
        xs = x[:, c0 : c0 + step]
        if grid is not None:
            xs = resample_maps(xs, grid, mode=mode)
        if window is not None:
            xs = xs[:, :, window[0], window[1]]
        if isinstance(xs, torch.Tensor):
            xs = xs.detach().cpu().double().numpy()
        xs = np.asarray(xs, dtype=np.float64)
        f = xs.mean(axis=(2, 3)) if features == "mean" else xs.reshape(n, -1)
        f = f - f.mean(axis=0)
        gram += f @ f.T
    gram += gram.T.copy()
    gram *= 0.5
    return gram


def image_cka(
    a: Any,
    b: Any | None = None,
    *,
    unbiased: bool = False,
    features: Literal["flatten", "mean"] = "flatten",
    batch_size: int | None = None,
    resample: Resample = None,
    crop: Crop = None,
) -> float:
    """Linear CKA with the N images as examples (see :func:`layer_cka`)."""
    a = as_maps(a, "a")
    b = None if b is None else as_maps(b, "b")
    layers = [a] if b is None else [a, b]
    grid = None
    if resample is not None or crop is not None:
        grid = common_grid([tuple(int(s) for s in x.shape[-2:]) for x in layers], resample)
    window = None
    if crop is not None:
        window = make_region(None, crop, grid, int(a.shape[0]), resample).window
    opts = {"features": features, "grid": grid, "mode": resample_mode(resample),
            "window": window}  # fmt: skip
    k = centred_gram(a, **opts)
    l_ = k if b is None else centred_gram(b, **opts)
    return cka_from_grams(k, l_, unbiased=unbiased, batch_size=batch_size)


# ------------------------------------------------------- unbiased HSIC, pixels as examples
class _PixelSums:
    """Float64 sums over pixels for the unbiased HSIC of two blocks of maps.

    For features x_i (K_x) and y_i (K_y) shifted by the first chunk's means, with
    q_i = ‖x_i‖², r_i = ‖y_i‖²: Σxyᵀ, Σx, Σx r, Σq r and the same for (x, x), (y, y).
    """

    def __init__(self) -> None:
        self.n, self.shift = 0, None
        self.g: dict[str, np.ndarray] = {}
        self.t: dict[str, np.ndarray] = {}
        self.q: dict[str, float] = {}
        self.s: dict[str, np.ndarray] = {}

    def _add(self, d: dict, key: str, value: Any) -> None:
        d[key] = d[key] + value if key in d else value

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        if self.shift is None:
            self.shift = (x.mean(axis=1), y.mean(axis=1))
        u, v = x - self.shift[0][:, None], y - self.shift[1][:, None]
        sides = {"x": u, "y": v}
        sq = {key: np.einsum("kn,kn->n", z, z) for key, z in sides.items()}
        for key, z in sides.items():
            self._add(self.s, key, z.sum(axis=1))
            self._add(self.q, key, float(sq[key].sum()))
            for other in ("x", "y"):
                self._add(self.t, key + other, z @ sq[other])
        for a_, b_ in (("x", "y"), ("x", "x"), ("y", "y")):
            self._add(self.g, a_ + b_, sides[a_] @ sides[b_].T)
            self._add(self.q, a_ + b_, float(sq[a_] @ sq[b_]))
        self.n += x.shape[1]

    def hsic(self, a: str, b: str) -> float:
        n = self.n
        g, sa, sb = self.g[a + b], self.s[a], self.s[b]
        tr = float(np.sum(g * g)) - self.q[a + b]
        ka, kb = sa @ sa - self.q[a], sb @ sb - self.q[b]
        kab = sa @ g @ sb - sa @ self.t[a + b] - sb @ self.t[b + a] + self.q[a + b]
        return float(tr + ka * kb / ((n - 1) * (n - 2)) - 2 * kab / (n - 2)) / (n * (n - 3))


def _pixels(xs: list[Any]) -> np.ndarray:
    """Layers of one step, (G, C_i, h, w) each, as one float64 (sum C_i, G·h·w) array."""
    rows = []
    for x in xs:
        c = int(x.shape[1])
        if isinstance(x, torch.Tensor):
            rows.append(x.detach().permute(1, 0, 2, 3).reshape(c, -1).cpu().double().numpy())
        else:
            rows.append(np.asarray(x.transpose(1, 0, 2, 3).reshape(c, -1), dtype=np.float64))
    return np.concatenate(rows) if len(rows) > 1 else rows[0]


def pixel_cka_unbiased(
    a: Sequence[Any],
    b: Sequence[Any] | None = None,
    *,
    resample: Resample = None,
    mask: Any = None,
    crop: Crop = None,
    mask_mode: MaskMode = "select",
) -> float:
    """Linear CKA with pixels as examples and the unbiased HSIC (see :func:`layer_cka`).

    ``a`` and ``b`` are lists of layers (joined along channels), as for
    :func:`~.stream.stream_moments`; the region options are those of
    :func:`~.measures.similarity_matrix`.
    """
    a = [as_maps(x, "a") for x in a]
    b = None if b is None else [as_maps(x, "b") for x in b]
    layers = a + (b or [])
    grid = common_grid([tuple(int(s) for s in x.shape[-2:]) for x in layers], resample)
    region = make_region(mask, crop, grid, int(a[0].shape[0]), resample, mask_mode)
    sums = _PixelSums()
    steps = steps_on_grid(a, b, grid, mode=resample_mode(resample), region=region)
    for ga, gb in steps:
        u = _pixels(ga)
        v = u if gb is None else _pixels(gb)
        for p0 in range(0, u.shape[1], _PIXEL_CHUNK):
            sums.add(u[:, p0 : p0 + _PIXEL_CHUNK], v[:, p0 : p0 + _PIXEL_CHUNK])
    if sums.n < 4:
        raise ValueError(f"unbiased HSIC needs at least 4 examples (pixels), got {sums.n}")
    return _ratio(sums.hsic("x", "y"), sums.hsic("x", "x"), sums.hsic("y", "y"))


def layer_cka(
    a: Any,
    b: Any | None = None,
    *,
    examples: Literal["pixels", "images"] = "pixels",
    unbiased: bool = False,
    features: Literal["flatten", "mean"] = "flatten",
    batch_size: int | None = None,
    resample: Resample = None,
    mask: Any = None,
    crop: Crop = None,
    mask_mode: MaskMode = "select",
) -> float:
    """Linear CKA between two layers, with pixels or images as examples.

    Parameters
    ----------
    a, b : Tensor or ndarray of shape (N, C, H, W) (or (C, H, W))
        Activations of two layers on the same N images; ``b=None`` compares ``a`` with
        itself (1, or NaN when every map of ``a`` is constant).
    examples : {"pixels", "images"}
        ``"pixels"`` (default): every pixel of every image is an example and the C maps are
        the features (X is n pixels x C; the toolkit's map-level view, computed by the
        streaming :class:`~.moments.Moments` engine). ``"images"``: the N images are the
        examples and the flattened activations are the features (X is N x C·H·W), the
        layer CKA of Kornblith et al. (2019).
    unbiased : bool
        Use the unbiased HSIC estimator of Song et al. (2012) instead of the biased
        ``tr(KHLH)`` (the minibatch CKA of Nguyen, Raghu and Kornblith (2021) with
        ``batch_size``). Needs at least 4 examples (per batch).
    features : {"flatten", "mean"}
        With ``examples="images"``: all C·H·W values, or the C spatial means (global
        average pooling) as features.
    batch_size : int, optional
        With ``examples="images"``: average the HSIC terms over consecutive batches of this
        many images (minibatch CKA) instead of one batch of all N.
    resample : None, policy or (H, W)
        Common grid (:mod:`.region`). With ``examples="images"`` layers of different sizes
        need no common grid (``None`` keeps each on its own).
    mask, crop, mask_mode
        Region of the grid that counts (:func:`similarity_matrix`); ``mask`` only with
        ``examples="pixels"``.

    Returns
    -------
    float
        NaN if every feature of a layer is constant.

    Notes
    -----
    With centred features X, Y the biased value is ``‖XᵀY‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F)``; the
    HSIC formulas of both estimators are in the module docstring.

    References
    ----------
    Kornblith, Norouzi, Lee, Hinton, "Similarity of neural network representations
    revisited", ICML 2019. Song, Smola, Gretton, Bedo, Borgwardt, "Feature selection via
    dependence maximization", JMLR 2012. Nguyen, Raghu, Kornblith, "Do wide and deep
    networks learn the same things?", ICLR 2021.
    """
    check_choice("examples", examples, list(EXAMPLES))
    check_choice("features", features, list(FEATURES))
    a = as_maps(a, "a")
    b = a if b is None else as_maps(b, "b")
    if int(a.shape[0]) != int(b.shape[0]):
        raise ValueError(
            f"a and b must hold the same number of images N, got N={int(a.shape[0])} for a "
            f"and N={int(b.shape[0])} for b"
        )
    other = None if b is a else [b]
    if examples == "images":
        if mask is not None:
            raise ValueError(
                "mask= selects pixels, which are examples only with examples='pixels'; with "
                "examples='images' restrict the features with crop= instead"
            )
        return image_cka(
            a, None if b is a else b, unbiased=unbiased, features=features,
            batch_size=batch_size, resample=resample, crop=crop,
        )  # fmt: skip
    if batch_size is not None or features != "flatten":
        raise ValueError(
            "batch_size= and features= apply to examples='images', got examples='pixels' with "
            f"batch_size={batch_size!r}, features={features!r}"
        )
    check_pair_grid(a, None if b is a else b, resample)
    if unbiased:
        return pixel_cka_unbiased(
            [a], other, resample=resample, mask=mask, crop=crop, mask_mode=mask_mode
        )
    region = {"mask": mask, "crop": crop, "mask_mode": mask_mode}
    return stream_moments([a], other, resample=resample, within=True, **region).cka()
