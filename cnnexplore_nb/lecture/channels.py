"""Convolution over several input channels, worked by hand (the lectures' "3D convolution").

A kernel of a layer with C_in input channels is a stack of C_in 2-D kernels; one output
value is the sum over channels of each channel's sliding weighted sum, plus one bias:
``y[o, i, j] = b[o] + Σ_c Σ_{u,v} x[c, i s + u, j s + v] w[o, c, u, v]``. So a layer of
C_out kernels of size k x k x C_in has ``C_out (k² C_in + 1)`` parameters (the slides' six
5 x 5 x 3 filters on a 32 x 32 x 3 image: 456 parameters, a 28 x 28 x 6 output volume).

:data:`RGB_PATCH`, :data:`RGB_KERNEL` and :data:`RGB_BIAS` are a small example whose
per-channel sums are easy to check by hand (0, 5 and 2, plus the bias 1: output 8);
:func:`channel_sums` lays them out and :func:`conv_multichannel` is the same definition as
explicit loops, checked against :func:`torch.nn.functional.conv2d` in the tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._checks import check_positive_int

__all__ = ["RGB_BIAS", "RGB_KERNEL", "RGB_PATCH", "channel_sums", "conv_multichannel"]

#: A 3 x 3 patch with C_in = 3 channels (R, G, B), shape (3, 3, 3).
RGB_PATCH = np.array(
    [
        [[1.0, 2, 0], [0, 1, 3], [2, 1, 0]],  # R
        [[0.0, 1, 1], [2, 0, 1], [1, 1, 2]],  # G
        [[3.0, 0, 1], [1, 2, 0], [0, 1, 1]],  # B
    ]
)
#: One 3-channel kernel: a vertical-edge filter on R, a Laplacian on G, a horizontal-edge
#: filter on B; shape (3, 3, 3).
RGB_KERNEL = np.array(
    [
        [[1.0, 0, -1], [1, 0, -1], [1, 0, -1]],
        [[0.0, 1, 0], [1, -4, 1], [0, 1, 0]],
        [[1.0, 1, 1], [0, 0, 0], [-1, -1, -1]],
    ]
)
#: The kernel's bias.
RGB_BIAS = 1.0


def _planes(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 3:
        raise ValueError(f"{name} must have shape (C, H, W), got shape {a.shape}")
    return a


def channel_sums(
    patch: Any = RGB_PATCH, kernel: Any = RGB_KERNEL, bias: float = RGB_BIAS
) -> pd.DataFrame:
    """One output value of a multi-channel convolution, term by term.

    Parameters
    ----------
    patch : array of shape (C, k, k)
        The input window under the kernel.
    kernel : array of shape (C, k, k)
        One output kernel (its 2-D kernel for each input channel).
    bias : float

    Returns
    -------
    DataFrame
        Rows ``channel 0`` ... ``channel C-1`` (the sum of the products patch x kernel of
        that channel), ``bias`` and ``output`` (their sum); columns ``term`` and ``value``.

    Examples
    --------
    >>> channel_sums()["value"].tolist()
    [0.0, 5.0, 2.0, 1.0, 8.0]
    """
    p, w = _planes(patch, "patch"), _planes(kernel, "kernel")
    if p.shape != w.shape:
        raise ValueError(f"patch and kernel must have the same shape, got {p.shape} and {w.shape}")
    per = [float((p[c] * w[c]).sum()) for c in range(p.shape[0])]
    terms = [f"channel {c}" for c in range(p.shape[0])] + ["bias", "output"]
    return pd.DataFrame({"term": terms, "value": [*per, float(bias), sum(per) + float(bias)]})


def conv_multichannel(
    image: Any, kernels: Any, bias: Any = None, *, stride: int = 1, padding: int = 0
) -> np.ndarray:
    """Multi-channel convolution (cross-correlation, as in CNNs) by its definition.

    Parameters
    ----------
    image : array of shape (C_in, H, W)
    kernels : array of shape (C_out, C_in, k, k)
    bias : array of shape (C_out,), optional
    stride, padding : int
        Zero padding on every side.

    Returns
    -------
    ndarray of shape (C_out, H', W')
        ``H' = (H - k + 2 padding) // stride + 1`` (same for W'), float64; every value is
        the sum over input channels of the window x kernel products, plus the bias.
    """
    x = _planes(image, "image")
    w = np.asarray(kernels, dtype=np.float64)
    if w.ndim != 4 or w.shape[1] != x.shape[0] or w.shape[2] != w.shape[3]:
        raise ValueError(
            f"kernels must have shape (C_out, C_in={x.shape[0]}, k, k), got shape {w.shape}"
        )
    stride = check_positive_int("stride", stride)
    padding = check_positive_int("padding", padding, minimum=0)
    b = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64)
    x = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    k = w.shape[-1]
    h_out, w_out = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
    if h_out < 1 or w_out < 1:
        raise ValueError(f"a {k} x {k} kernel does not fit the {x.shape[1:]} (padded) image")
    out = np.empty((w.shape[0], h_out, w_out))
    for o in range(w.shape[0]):
        for i in range(h_out):
            for j in range(w_out):
                window = x[:, i * stride : i * stride + k, j * stride : j * stride + k]
                out[o, i, j] = sum((window[c] * w[o, c]).sum() for c in range(x.shape[0]))
                out[o, i, j] += b[o]
    return out
