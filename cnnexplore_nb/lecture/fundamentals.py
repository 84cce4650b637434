"""The lecture fundamentals (SPEC part C) as small functions on real tensors.

Convolution arithmetic (worked example, output size, padding, dilation, parameter counts of
standard / depthwise-separable / grouped convolutions), pooling (max, average, min),
BatchNorm step by step, Sobel edge maps, 1-D (normalised) correlation as a matched filter,
receptive-field growth (theoretical vs effective, :mod:`cnnexplore_nb.lecture.receptive`)
and FGSM adversarial perturbations on a tiny digits classifier
(:mod:`cnnexplore_nb.lecture.adversarial`). Used by notebook
``00_fundamentals``; each function is checked
against torch / scipy / the lectures' hand values in ``tests/test_fundamentals.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .._arrays import as_nchw
from .._checks import check_choice, check_positive_int, check_real

__all__ = [
    "LECTURE_FILTER",
    "LECTURE_PATCH",
    "MATCHED_FILTER_S",
    "MATCHED_FILTER_W",
    "MIN_POOL_EXAMPLE",
    "SOBEL_X",
    "batchnorm_steps",
    "conv_at",
    "conv_param_table",
    "conv_params",
    "effective_kernel",
    "normalized_correlation",
    "output_size",
    "pool2d",
    "sliding_correlation",
    "sobel_maps",
]

#: The lectures' worked example (seed 002): a 3x3 grey-level patch and a vertical-edge
#: filter; ``conv_at(LECTURE_PATCH, LECTURE_FILTER) == 32.64``.
LECTURE_PATCH = np.array(
    [[189.59, 194.95, 190.90], [172.70, 185.25, 193.31], [175.50, 168.63, 186.22]]
)
LECTURE_FILTER = np.array([[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]])
#: The lectures' 1-D matched-filter example (seed 003): mask w on signal s.
MATCHED_FILTER_W = np.array([3.0, 7.0, 5.0])
MATCHED_FILTER_S = np.array([4.0, 1, 3, 8, 4, 0, 3, 8, 0, 7, 7, 7, 1, 2])
#: The lectures' 4x4 min-pooling example (seed 002); 2x2 min pooling gives [[14, 13], [55, 12]].
MIN_POOL_EXAMPLE = np.array(
    [[15.0, 24, 13, 19], [14, 63, 85, 33], [81, 74, 77, 12], [55, 93, 15, 69]]
)
#: Sobel kernel for horizontal gradients (responds to vertical edges); ``SOBEL_X.T`` is Gy.
SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


ConvKind = Literal["standard", "pointwise", "depthwise", "depthwise_separable", "grouped"]
PoolKind = Literal["max", "avg", "min"]


# ------------------------------------------------------------------ convolution arithmetic
def conv_at(patch: Any, kernel: Any) -> float:
    """One output value of a (deep-learning) convolution: ``sum(patch * kernel)``.

    Parameters
    ----------
    patch, kernel : array of shape (K, K)
        Same shape (no kernel flip: CNN "convolution" is cross-correlation).
    """
    p, k = np.asarray(patch, dtype=np.float64), np.asarray(kernel, dtype=np.float64)
    if p.shape != k.shape:
        raise ValueError(f"patch and kernel must have the same shape, got {p.shape} and {k.shape}")
    return float((p * k).sum())


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Side of a dilated kernel: ``K + (K - 1)(D - 1)`` (K = 3, D = 2 gives 5)."""
    kernel = check_positive_int("kernel", kernel)
    dilation = check_positive_int("dilation", dilation)
    return kernel + (kernel - 1) * (dilation - 1)


def output_size(
    size: int,
    kernel: int,
    *,
    padding: int | Literal["same", "valid"] = 0,
    stride: int = 1,
    dilation: int = 1,
) -> int:
    """Output side of a convolution or pooling: ``floor((W - K_eff + 2P) / S) + 1``.

    Parameters
    ----------
    size : int
        Input side W.
    kernel : int
        Kernel side K (``K_eff = K + (K - 1)(D - 1)`` with dilation D).
    padding : int, "same" or "valid"
        Zero padding P on each side; ``"valid"`` is 0, ``"same"`` is ``(K_eff - 1) // 2``
        (the output keeps the input size when S = 1 and K_eff is odd).
    stride : int
        S.

    Raises
    ------
    ValueError
        If the (padded) input is smaller than the effective kernel.
    """
    size = check_positive_int("size", size)
    k_eff = effective_kernel(kernel, dilation)
    stride = check_positive_int("stride", stride)
    if padding == "valid":
        padding = 0
    elif padding == "same":
        padding = (k_eff - 1) // 2
    elif isinstance(padding, str):
        raise ValueError(f"padding must be an int, 'same' or 'valid', got {padding!r}")
    padding = check_positive_int("padding", padding, minimum=0)
    span = size + 2 * padding - k_eff
    if span < 0:
        raise ValueError(
            f"the padded input ({size} + 2*{padding}) is smaller than the effective kernel "
            f"({k_eff}); expected W + 2P >= K_eff"
        )
    return span // stride + 1


def conv_params(
    c_in: int,
    c_out: int,
    kernel: int,
    kind: ConvKind = "standard",
    *,
    groups: int = 1,
    bias: bool = False,
) -> int:
    """Parameter count of a 2-D convolution layer, by the lectures' formulas.

    ``standard``: ``K² C_in C_out``; ``pointwise`` (1x1): ``C_in C_out``; ``depthwise``
    (one K x K filter per input channel, C_out = C_in): ``K² C_in``; ``depthwise_separable``
    (depthwise then pointwise): ``K² C_in + C_in C_out``; ``grouped`` with G groups:
    ``K² (C_in / G) C_out``. ``bias`` adds one per output channel of every conv involved.
    """
    check_choice(
        "kind", kind, ["standard", "pointwise", "depthwise", "depthwise_separable", "grouped"]
    )
    c_in, c_out = check_positive_int("c_in", c_in), check_positive_int("c_out", c_out)
    k2 = check_positive_int("kernel", kernel) ** 2
    b = int(bool(bias))
    if kind == "standard":
        return k2 * c_in * c_out + b * c_out
    if kind == "pointwise":
        return c_in * c_out + b * c_out
    if kind == "depthwise":
        return k2 * c_in + b * c_in
    if kind == "depthwise_separable":
        return k2 * c_in + b * c_in + c_in * c_out + b * c_out
    groups = check_positive_int("groups", groups)
    if c_in % groups or c_out % groups:
        raise ValueError(
            f"groups must divide c_in and c_out, got groups={groups}, c_in={c_in}, c_out={c_out}"
        )
    return k2 * (c_in // groups) * c_out + b * c_out


def _torch_conv(c_in: int, c_out: int, k: int, kind: str, groups: int, bias: bool) -> nn.Module:
    if kind == "standard":
        return nn.Conv2d(c_in, c_out, k, bias=bias)
    if kind == "pointwise":
        return nn.Conv2d(c_in, c_out, 1, bias=bias)
    if kind == "depthwise":
        return nn.Conv2d(c_in, c_in, k, groups=c_in, bias=bias)
    if kind == "depthwise_separable":
        return nn.Sequential(
            nn.Conv2d(c_in, c_in, k, groups=c_in, bias=bias), nn.Conv2d(c_in, c_out, 1, bias=bias)
        )
    return nn.Conv2d(c_in, c_out, k, groups=groups, bias=bias)


def conv_param_table(
    c_in: int, c_out: int, kernel: int = 3, *, groups: Sequence[int] = (2, 4), bias: bool = False
) -> pd.DataFrame:
    """Formula parameter counts of the conv variants next to real ``nn.Conv2d`` counts.

    Returns
    -------
    DataFrame
        One row per variant (standard, grouped G for each G, depthwise separable, pointwise)
        with columns ``variant, formula, params`` (by :func:`conv_params`), ``torch_params``
        (``numel`` of an equivalent ``nn.Conv2d`` stack) and ``ratio`` (standard / params).
    """
    specs = [("standard", 1, "K²·C_in·C_out")]
    specs += [("grouped", int(g), f"K²·(C_in/{int(g)})·C_out") for g in groups]
    specs += [("depthwise_separable", 1, "K²·C_in + C_in·C_out"), ("pointwise", 1, "C_in·C_out")]
    rows = []
    for kind, g, formula in specs:
        n = conv_params(c_in, c_out, kernel, kind, groups=g, bias=bias)  # type: ignore[arg-type]
        module = _torch_conv(c_in, c_out, kernel, kind, g, bias)
        rows.append(
            {
                "variant": kind if kind != "grouped" else f"grouped (G={g})",
                "formula": formula,
                "params": n,
                "torch_params": sum(p.numel() for p in module.parameters()),
            }
        )
    df = pd.DataFrame(rows)
    df["ratio"] = df["params"].iloc[0] / df["params"]
    return df


# ----------------------------------------------------------------------- pooling, BatchNorm
def _as_4d(x: Any) -> tuple[torch.Tensor, int]:
    """x as a float (N, C, H, W) tensor and its original number of dimensions."""
    arr = x if isinstance(x, torch.Tensor) else np.asarray(x)
    t = as_nchw(arr, "x", two_d=True)
    return (t.double() if t.dtype == torch.float64 else t.float()), arr.ndim


def pool2d(x: Any, kind: PoolKind = "max", size: int = 2, stride: int | None = None) -> Any:
    """Max, average or min pooling (min pooling is ``-maxpool(-x)``), no padding.

    Parameters
    ----------
    x : array or Tensor of shape (H, W), (C, H, W) or (N, C, H, W)
    kind : {"max", "avg", "min"}
    size : int
        Window side.
    stride : int, optional
        Default ``size`` (non-overlapping windows).

    Returns
    -------
    Same type and number of dimensions as ``x``; the spatial sides follow :func:`output_size`.
    """
    check_choice("kind", kind, ["max", "avg", "min"])
    size = check_positive_int("size", size)
    stride = size if stride is None else check_positive_int("stride", stride)
    t, nd = _as_4d(x)
    if kind == "max":
        out = F.max_pool2d(t, size, stride)
    elif kind == "avg":
        out = F.avg_pool2d(t, size, stride)
    else:
        out = -F.max_pool2d(-t, size, stride)
    out = out.reshape(out.shape[4 - nd :])
    return out if isinstance(x, torch.Tensor) else out.numpy()


def batchnorm_steps(
    x: torch.Tensor, gamma: Any = None, beta: Any = None, *, eps: float = 1e-5
) -> dict[str, torch.Tensor]:
    """BatchNorm (training mode) step by step on a batch, per channel.

    Parameters
    ----------
    x : Tensor of shape (N, C, H, W)
    gamma, beta : Tensor of shape (C,), optional
        Scale and shift (default 1 and 0).
    eps : float

    Returns
    -------
    dict
        ``mean`` (C,) = mu_B over N, H, W; ``var`` (C,) = biased sigma²_B;
        ``x_hat`` (N, C, H, W) = (x - mu_B) / sqrt(sigma²_B + eps); ``y`` = gamma x_hat + beta;
        ``var_unbiased`` (C,), what ``nn.BatchNorm2d`` blends into ``running_var``.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"x must be a Tensor of shape (N, C, H, W), got {getattr(x, 'shape', x)}")
    c = x.shape[1]
    if x.shape[0] * x.shape[2] * x.shape[3] < 2:
        raise ValueError("x needs more than one value per channel for batch statistics")
    eps = check_real("eps", eps)
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    g = torch.ones(c, dtype=x.dtype) if gamma is None else torch.as_tensor(gamma, dtype=x.dtype)
    b = torch.zeros(c, dtype=x.dtype) if beta is None else torch.as_tensor(beta, dtype=x.dtype)
    if g.shape != (c,) or b.shape != (c,):
        raise ValueError(f"gamma and beta must have shape ({c},), got {g.shape} and {b.shape}")
    m = x.shape[0] * x.shape[2] * x.shape[3]
    mean = x.sum(dim=(0, 2, 3)) / m
    centred = x - mean.view(1, c, 1, 1)
    var = (centred**2).sum(dim=(0, 2, 3)) / m
    x_hat = centred / torch.sqrt(var + eps).view(1, c, 1, 1)
    y = g.view(1, c, 1, 1) * x_hat + b.view(1, c, 1, 1)
    return {"mean": mean, "var": var, "x_hat": x_hat, "y": y, "var_unbiased": var * m / (m - 1)}


# ------------------------------------------------------------------- edges and 1-D signals
def sobel_maps(image: Any) -> dict[str, np.ndarray]:
    """Sobel activation maps of a grey image (zero padding, output the input's size).

    Parameters
    ----------
    image : array of shape (H, W)

    Returns
    -------
    dict of ndarray of shape (H, W)
        ``gx`` (correlation with :data:`SOBEL_X`: vertical edges), ``gy`` (with its
        transpose: horizontal edges) and ``magnitude`` = sqrt(gx² + gy²).
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"image must have shape (H, W), got {img.shape}")
    weight = torch.from_numpy(np.stack([SOBEL_X, SOBEL_X.T])[:, None])
    out = F.conv2d(torch.from_numpy(img)[None, None], weight, padding=1)[0].numpy()
    gx, gy = out[0], out[1]
    return {"gx": gx, "gy": gy, "magnitude": np.hypot(gx, gy)}


def _signals(s: Any, w: Any, padding: int) -> tuple[np.ndarray, np.ndarray]:
    s, w = np.asarray(s, dtype=np.float64), np.asarray(w, dtype=np.float64)
    if s.ndim != 1 or w.ndim != 1:
        raise ValueError(f"s and w must be 1-D, got shapes {s.shape} and {w.shape}")
    padding = check_positive_int("padding", padding, minimum=0)
    s = np.pad(s, padding)
    if len(w) == 0 or len(w) > len(s):
        raise ValueError(f"w must have 1 to len(s) + 2*padding = {len(s)} values, got {len(w)}")
    return np.lib.stride_tricks.sliding_window_view(s, len(w)), w


def sliding_correlation(s: Any, w: Any, *, padding: int = 0) -> np.ndarray:
    """Non-normalised correlation ``g[i] = sum_j s[i + j] w[j]`` (after zero padding).

    Returns
    -------
    ndarray of shape (len(s) + 2 padding - len(w) + 1,)
        ``dim(g) = dim(s) - dim(w) + 1`` without padding.
    """
    windows, w = _signals(s, w, padding)
    return windows @ w


def normalized_correlation(s: Any, w: Any, *, padding: int = 0) -> np.ndarray:
    """Normalised correlation (Pearson r of each window of ``s`` with ``w``): a matched filter.

    Returns
    -------
    ndarray of shape (len(s) + 2 padding - len(w) + 1,)
        Values in [-1, 1]; NaN where the window (or ``w``) is constant (r undefined).
        The maximum is where ``s`` looks most like ``w``.
    """
    windows, w = _signals(s, w, padding)
    wc = w - w.mean()
    xc = windows - windows.mean(axis=1, keepdims=True)
    den = np.sqrt((xc**2).sum(axis=1) * (wc**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, (xc @ wc) / np.where(den > 0, den, 1.0), np.nan)
    return np.clip(r, -1.0, 1.0)
