"""Kernel views: the weights of one convolution per output kernel or per input channel.

CNN Explorer showed a layer's kernels two ways: ``show_channels_per_kernel`` (one output
kernel, one panel per input channel it reads) and ``show_kernels_per_channel`` (one input
channel, one panel per output kernel). These functions return the same data as arrays and a
tidy table; drawing is :func:`cnnexplore_nb.plots.kernel_grid`'s job (pass
``kernels_of(...)[:, None]``, which has the (panels, 1, kH, kW) shape it takes).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from torch import nn

from .._checks import check_choice
from .layers import resolve_layers

__all__ = ["kernel_table", "kernels_of"]


def _conv(model: nn.Module, layer: str) -> tuple[str, nn.modules.conv._ConvNd]:
    path = resolve_layers(model, layer)[0]
    module = dict(model.named_modules())[path]
    for m in module.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            if m.weight.ndim != 4:
                raise ValueError(
                    f"layer {path!r} holds a {m.weight.ndim - 2}-D convolution "
                    f"({type(m).__name__}); kernel views expect Conv2d weights (out, in, kH, kW)"
                )
            return path, m
    raise ValueError(f"layer {path!r} ({type(module).__name__}) contains no convolution")


def kernels_of(
    model: nn.Module,
    layer: str,
    *,
    by: Literal["output", "input"] = "output",
    index: int = 0,
) -> np.ndarray:
    """The kernels of output map ``index``, or the kernels reading input channel ``index``.

    Parameters
    ----------
    model : nn.Module
    layer : str
        Path of a Conv2d (or of a container: its first Conv2d).
    by : {"output", "input"}
        ``"output"``: kernel ``index`` of the layer, one 2-D slice per input channel it
        reads (CNN Explorer's ``show_channels_per_kernel``). ``"input"``: input channel
        ``index`` as seen by every output kernel that reads it (``show_kernels_per_channel``).
    index : int
        Output map (``by="output"``) or input channel (``by="input"``).

    Returns
    -------
    ndarray of shape (C_in / groups, kH, kW) or (C_out / groups, kH, kW)
        float64 copy. For a grouped convolution ``by="input"`` returns the output kernels of
        the group that reads channel ``index`` (all of them for ``groups=1``).

    Examples
    --------
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 5), nn.ReLU())
    >>> kernels_of(net, "0", by="output", index=2).shape
    (3, 5, 5)
    >>> kernels_of(net, "0", by="input", index=0).shape
    (8, 5, 5)
    """
    check_choice("by", by, ["output", "input"])
    path, conv = _conv(model, layer)
    w = conv.weight.detach().cpu().double().numpy()
    n = conv.out_channels if by == "output" else conv.in_channels
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"index must be an int, got {index!r}")
    if not 0 <= index < n:
        what = "output maps" if by == "output" else "input channels"
        raise IndexError(
            f"index {index} out of range for {path!r}: expected 0 <= index < {n} ({what})"
        )
    if by == "output":
        return w[index].copy()
    per_in, per_out = conv.in_channels // conv.groups, conv.out_channels // conv.groups
    g = int(index) // per_in
    return w[g * per_out : (g + 1) * per_out, int(index) - g * per_in].copy()


def kernel_table(model: nn.Module, layer: str) -> pd.DataFrame:
    """Every weight of a Conv2d as one row, for filtering and grouping.

    Returns
    -------
    DataFrame
        Columns ``out_channel``, ``in_channel`` (the input channel of the layer, also for
        grouped convolutions), ``row``, ``col`` and ``weight``; ordered like the weight
        tensor (out, in, row, col). E.g. ``.groupby(["out_channel", "in_channel"])["weight"]
        .apply(lambda w: w.abs().sum())`` gives the L1 norm of every 2-D kernel.
    """
    _, conv = _conv(model, layer)
    w = conv.weight.detach().cpu().double().numpy()
    c_out, c_in_g, kh, kw = w.shape
    per_out = c_out // conv.groups
    out, cin, row, col = np.meshgrid(
        np.arange(c_out), np.arange(c_in_g), np.arange(kh), np.arange(kw), indexing="ij"
    )
    cin = cin + (out // per_out) * c_in_g  # the layer's own input channel
    return pd.DataFrame(
        {
            "out_channel": out.ravel().astype(np.int64),
            "in_channel": cin.ravel().astype(np.int64),
            "row": row.ravel().astype(np.int64),
            "col": col.ravel().astype(np.int64),
            "weight": w.ravel(),
        }
    )
