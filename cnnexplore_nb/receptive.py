"""Theoretical and effective receptive fields.

Theoretical: the forward is traced with module hooks in execution order and every tensor
carries a state ``(receptive_field, jump, start)`` in input pixels (along the first
spatial axis, H; the models here are square). Effective: the gradient of a central output
unit with respect to the input, averaged over inputs (Luo et al., 2016).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn

from ._checks import as_rng, check_choice, check_fraction, check_positive_int
from .layers import _as_batch, _check_module, _first_tensor, resolve_layers

__all__ = ["effective_receptive_field", "erf_radius", "receptive_fields", "trace_forward"]

RF_COLUMNS = [
    "path",
    "call",
    "type",
    "kernel",
    "stride",
    "padding",
    "dilation",
    "jump",
    "receptive_field",
    "start",
    "inferred",
]

_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_ADAPTIVE = (
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)
_NAN = float("nan")


class _State(NamedTuple):
    rf: float
    jump: float
    start: float


_UNDEF = _State(_NAN, _NAN, _NAN)


def _first(v: Any) -> Any:
    return v[0] if isinstance(v, (tuple, list)) else v


def _geometry(module: nn.Module) -> tuple[int, float, float, int] | None:
    """(kernel, stride, padding, dilation) of a conv / pool along H, or None."""
    if isinstance(module, nn.modules.conv._ConvNd) or isinstance(module, _POOLS):
        k = int(_first(module.kernel_size))
        s = _first(module.stride) if module.stride is not None else k
        d = int(_first(getattr(module, "dilation", 1)))
        p = module.padding
        if p == "valid":
            p = 0
        elif p == "same":
            p = d * (k - 1) // 2
        return k, float(_first(s)), float(_first(p)), d
    return None


def _propagate(module: nn.Module, s: _State, x: torch.Tensor | None, y: torch.Tensor | None):
    """State of a leaf module's output from its input state; also its geometry."""
    if y is None or y.dim() < 3 or x is None or x.dim() < 3:
        return _UNDEF, None
    geo = _geometry(module)
    if geo is not None:
        k, st, p, d = geo
        k_eff = d * (k - 1) + 1
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            # output o = i*st - p + m*d; at most ceil(k_eff/st) inputs feed one output unit
            span = math.ceil(k_eff / st) - 1
            new = _State(
                s.rf + span * s.jump,
                s.jump / st,
                s.start + (p - (k_eff - 1) / 2) / st * s.jump,
            )
        else:
            new = _State(
                s.rf + (k_eff - 1) * s.jump,
                s.jump * st,
                s.start + ((k_eff - 1) / 2 - p) * s.jump,
            )
        return new, geo
    n_in, n_out = x.shape[2], y.shape[2]
    if isinstance(module, _ADAPTIVE):
        windows = [
            (i * n_in // n_out, -(-(i + 1) * n_in // n_out)) for i in range(n_out)
        ]  # [floor, ceil) bounds
        k = max(e - b for b, e in windows)
        first = (windows[0][0] + windows[0][1] - 1) / 2
        new = _State(s.rf + (k - 1) * s.jump, s.jump * n_in / n_out, s.start + first * s.jump)
        return new, (k, n_in / n_out, 0.0, 1)
    if isinstance(module, nn.Upsample):
        scale = n_out / n_in
        taps = {"nearest": 1, "nearest-exact": 1, "linear": 2, "bilinear": 2, "bicubic": 4}
        span = taps.get(module.mode, 2) - 1 if scale > 1 else math.ceil(1 / scale) - 1
        if module.align_corners:
            step = (n_in - 1) / (n_out - 1) if n_out > 1 else 1.0
            return _State(s.rf + span * s.jump, s.jump * step, s.start), None
        offset = 0.5 / scale - 0.5
        return _State(s.rf + span * s.jump, s.jump / scale, s.start + offset * s.jump), None
    if tuple(y.shape[2:]) == tuple(x.shape[2:]):
        return s, None  # elementwise / channel-wise (BatchNorm, ReLU, Dropout, Identity...)
    return _UNDEF, None


def trace_forward(model: nn.Module, example: torch.Tensor) -> list[dict[str, Any]]:
    """One dry forward recording, per module call, its output shape and receptive field.

    Runs in eval mode under ``torch.no_grad``; hooks are removed and the mode restored in
    ``finally``. Returns a list of dicts (keys of :data:`RF_COLUMNS` plus ``output_shape``)
    in call order, a container before its children.

    Notes
    -----
    Each tensor produced by a hooked leaf carries a state, keyed by object identity. A
    module whose input was produced outside any module (``torch.cat``, ``x + y``,
    ``F.relu``...) gets the state of largest receptive field among the earlier recorded
    tensors of the same spatial size (``inferred=True``): exact for skip concatenations and
    residual sums, whose receptive field is the union of the branches'. With no such
    tensor the state is undefined (NaN).
    """
    _check_module(model)
    x = _as_batch(example)
    param = next(model.parameters(), None)
    if param is not None:
        x = x.to(device=param.device, dtype=param.dtype if x.is_floating_point() else None)
    states: dict[int, tuple[torch.Tensor, _State]] = {id(x): (x, _State(1.0, 1.0, 0.0))}
    history: list[tuple[tuple[int, ...], _State]] = [(tuple(x.shape[2:]), states[id(x)][1])]
    rows: list[dict[str, Any]] = []
    stack: list[tuple[int, torch.Tensor | None, _State, bool]] = []
    calls: dict[str, int] = defaultdict(int)

    def lookup(t: torch.Tensor | None) -> tuple[_State, bool]:
        if t is None or t.dim() < 3:
            return _UNDEF, False
        hit = states.get(id(t))
        if hit is not None and hit[0] is t:
            return hit[1], False
        same = [st for shape, st in history if shape == tuple(t.shape[2:])]
        if not same:
            return _UNDEF, True
        return max(same, key=lambda st: st.rf), True

    def record(t: torch.Tensor, st: _State) -> None:
        states[id(t)] = (t, st)
        history.append((tuple(t.shape[2:]), st))

    def pre_hook(path: str, module: nn.Module, args: tuple) -> None:
        t = _first_tensor(args)
        st, inferred = lookup(t)
        rows.append({"path": path, "call": calls[path], "type": type(module).__name__})
        calls[path] += 1
        stack.append((len(rows) - 1, t, st, inferred))

    def hook(path: str, module: nn.Module, args: tuple, output: Any) -> None:
        idx, t_in, st_in, inferred = stack.pop()
        y = _first_tensor(output)
        geo = None
        if next(module.children(), None) is None:
            st, geo = _propagate(module, st_in, t_in, y)
            if y is not None and y.dim() >= 3:
                record(y, st)
        else:
            st, inferred = lookup(y)
            if inferred and y is not None and not math.isnan(st.rf):
                record(y, st)
        k, s, p, d = geo if geo is not None else (_NAN,) * 4
        rows[idx].update(
            kernel=float(k),
            stride=float(s),
            padding=float(p),
            dilation=float(d),
            jump=st.jump,
            receptive_field=st.rf,
            start=st.start,
            inferred=bool(inferred),
            output_shape=tuple(y.shape) if y is not None else None,
        )

    handles = []
    was_training = model.training
    try:
        for path, module in model.named_modules():
            if not path:
                continue
            handles.append(module.register_forward_pre_hook(_bind(pre_hook, path)))
            handles.append(module.register_forward_hook(_bind(hook, path)))
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return [r for r in rows if "jump" in r]


def _bind(fn, path):
    return lambda *args: fn(path, *args)


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
    _check_module(model)
    check_choice("inputs", inputs, ["random", "given"])
    n = check_positive_int("n", n)
    batch_size = check_positive_int("batch_size", batch_size)
    x = _as_batch(example).float()
    if x.dim() != 4:
        raise ValueError(f"example must be (C, H, W) or (N, C, H, W), got {tuple(x.shape)}")
    if inputs == "random":
        gen = as_rng(rng)
        arr = gen.standard_normal((n, *x.shape[1:])).astype(np.float32)
        x = torch.from_numpy(arr)
    path = resolve_layers(model, layer)[0] if layer is not None else None
    module = dict(model.named_modules())[path] if path is not None else None
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    total = torch.zeros(x.shape[2:], dtype=torch.float64)
    captured: list[torch.Tensor] = []
    handle = None
    was_training = model.training
    try:
        if module is not None:
            handle = module.register_forward_hook(
                lambda m, a, out: captured.append(_first_tensor(out))
            )
        model.eval()
        for i in range(0, x.shape[0], batch_size):
            xb = x[i : i + batch_size].to(device=device, dtype=dtype).requires_grad_(True)
            captured.clear()
            out = model(xb)
            if module is not None:
                if not captured:
                    raise RuntimeError(f"layer {path!r} did not run in the forward pass")
                out = captured[0]
            out = _first_tensor(out)
            if out is None or out.dim() != 4:
                shape = None if out is None else tuple(out.shape)
                raise ValueError(
                    f"expected a (N, C, h, w) output to take a central unit, got {shape}"
                )
            h, w = out.shape[2] // 2, out.shape[3] // 2
            (grad,) = torch.autograd.grad(out[:, :, h, w].sum(), xb)
            total += grad.abs().sum(dim=1).sum(dim=0).double().cpu()
    finally:
        if handle is not None:
            handle.remove()
        model.train(was_training)
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
