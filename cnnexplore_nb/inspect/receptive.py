"""Theoretical and effective receptive fields.

Theoretical: the forward is traced with module hooks in execution order and every tensor
carries a state ``(receptive_field, jump, start)`` in input pixels (along the first
spatial axis, H; the models here are square). Effective: the gradient of a central output
unit with respect to the input, averaged over inputs (Luo et al., 2016).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._arrays import as_nchw
from .._checks import as_rng, check_choice, check_fraction, check_positive_int
from .._hooks import Hooks, check_module, first_tensor, model_device, model_dtype
from ._trace import RF_COLUMNS, trace_forward
from .layers import resolve_layers

__all__ = ["effective_receptive_field", "erf_radius", "receptive_fields"]


def receptive_fields(model: nn.Module, example: torch.Tensor) -> pd.DataFrame:
    """Theoretical receptive field, jump and start of every layer of ``model``.

    Parameters
    ----------
    model : nn.Module
    example : Tensor of shape (C, H, W) or (N, C, H, W)
        An input the model accepts; one dry forward traces the layers.

    Returns
    -------
    DataFrame
        One row per module call in execution order with columns ``path``, ``call``,
        ``type``, ``kernel``, ``stride``, ``padding``, ``dilation`` (NaN except for convs
        and pools), ``jump`` (input pixels between neighbouring output units; fractional
        after up-sampling), ``receptive_field`` (side in input pixels), ``start`` (input
        coordinate of the centre of output unit 0; input pixel i is at i) and ``inferred``
        (the input state came from the same-size rule, see :func:`trace_forward`).

    Notes
    -----
    With ``k_eff = k + (k - 1)(d - 1)``: ``RF_l = RF_{l-1} + (k_eff - 1) j_{l-1}``,
    ``j_l = j_{l-1} s_l``, ``start_l = start_{l-1} + ((k_eff - 1)/2 - p) j_{l-1}``, which on a
    plain chain equals the closed form ``1 + sum_l (k_l - 1) prod_{i<l} s_i``. A transposed
    conv of stride s divides the jump by s and adds ``(ceil(k_eff / s) - 1) j_{l-1}`` (the
    most input units one output unit sees); ``nn.Upsample`` divides the jump by its scale
    (nearest adds nothing, bilinear one input step). Layers that keep H x W
    (BatchNorm, ReLU...) pass the state on; containers report their output's state.
    """
    rows = trace_forward(model, example)
    return pd.DataFrame.from_records(rows, columns=RF_COLUMNS)


def effective_receptive_field(
    model: nn.Module,
    example: torch.Tensor,
    *,
    layer: str | None = None,
    n: int = 16,
    rng: int | np.random.Generator | None = None,
    inputs: Literal["random", "given"] = "random",
    batch_size: int = 8,
) -> np.ndarray:
    """Effective receptive field: mean |d(central output unit) / d(input)|, summing to 1.

    Parameters
    ----------
    model : nn.Module
        Evaluated in eval mode (BatchNorm uses running statistics; mode restored).
    example : Tensor of shape (C, H, W) or (N, C, H, W)
        Gives the input shape; with ``inputs="given"`` its N images are the inputs.
    layer : str, optional
        Layer path whose central unit (summed over channels) is differentiated; default
        the model output.
    n : int
        Number of random standard-normal inputs (``inputs="random"``).
    rng : int or numpy Generator, optional
        Seed for the random inputs.
    inputs : {"random", "given"}
    batch_size : int
        Inputs per backward pass.

    Returns
    -------
    ndarray of shape (H, W)
        Non-negative, sums to 1; the central unit is at output pixel (h // 2, w // 2).
    """
    check_module(model)
    check_choice("inputs", inputs, ["random", "given"])
    n = check_positive_int("n", n)
    batch_size = check_positive_int("batch_size", batch_size)
    x = as_nchw(example, "example").float()
    if inputs == "random":
        gen = as_rng(rng)
        arr = gen.standard_normal((n, *x.shape[1:])).astype(np.float32)
        x = torch.from_numpy(arr)
    path = resolve_layers(model, layer)[0] if layer is not None else None
    device, dtype = model_device(model), model_dtype(model)
    total = torch.zeros(x.shape[2:], dtype=torch.float64)
    captured: list[torch.Tensor | None] = []
    with Hooks(model, mode="eval") as hooks:
        if path is not None:
            hooks.forward(path, lambda m, a, out: captured.append(first_tensor(out)))
        for i in range(0, x.shape[0], batch_size):
            xb = x[i : i + batch_size].to(device=device, dtype=dtype).requires_grad_(True)
            captured.clear()
            out = model(xb)
            if path is not None:
                if not captured:
                    raise RuntimeError(f"layer {path!r} did not run in the forward pass")
                out = captured[0]
            out = first_tensor(out)
            if out is None or out.dim() != 4:
                shape = None if out is None else tuple(out.shape)
                raise ValueError(
                    f"expected a (N, C, h, w) output to take a central unit, got {shape}"
                )
            h, w = out.shape[2] // 2, out.shape[3] // 2
            (grad,) = torch.autograd.grad(out[:, :, h, w].sum(), xb)
            total += grad.abs().sum(dim=1).sum(dim=0).double().cpu()
    mass = float(total.sum())
    if mass == 0.0 or not math.isfinite(mass):
        raise ValueError(
            f"the input gradient of the central unit has total mass {mass}; expected > 0"
        )
    return (total / mass).numpy()


def erf_radius(
    erf_map: np.ndarray, mass: float = 0.95, *, center: tuple[float, float] | None = None
) -> float:
    """Smallest Euclidean radius around ``center`` holding ``mass`` of the map's total.

    Parameters
    ----------
    erf_map : ndarray of shape (H, W)
        Non-negative map (e.g. from :func:`effective_receptive_field`).
    mass : float in (0, 1]
    center : (row, col), optional
        Default ``(H // 2, W // 2)``, the central unit of a same-padded network.

    Returns
    -------
    float
        Distance (pixels) of the farthest pixel needed, pixels taken in order of distance.
    """
    mass = check_fraction("mass", mass)
    arr = np.asarray(erf_map, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"erf_map must have shape (H, W), got {arr.shape}")
    if np.any(arr < 0) or not np.all(np.isfinite(arr)) or arr.sum() <= 0:
        raise ValueError("erf_map must be finite, non-negative and not all zero")
    cy, cx = center if center is not None else (arr.shape[0] // 2, arr.shape[1] // 2)
    yy, xx = np.indices(arr.shape)
    dist = np.hypot(yy - cy, xx - cx).ravel()
    order = np.argsort(dist, kind="stable")
    cum = np.cumsum(arr.ravel()[order])
    idx = int(np.searchsorted(cum, mass * cum[-1] * (1 - 1e-12)))
    return float(dist[order][min(idx, len(order) - 1)])
