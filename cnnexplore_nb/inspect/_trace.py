"""One dry forward traced module by module: output shapes and receptive-field states.

Used by :func:`cnnexplore_nb.inspect.layers.list_layers` (the layer catalogue) and
:func:`cnnexplore_nb.inspect.receptive.receptive_fields`. Every tensor produced by a hooked
leaf carries a state ``(receptive_field, jump, start)`` in input pixels along the first
spatial axis (H).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, NamedTuple

import torch
from torch import nn

from .._arrays import as_nchw, call_model, model_input
from .._hooks import Hooks, check_module, first_tensor

__all__ = ["RF_COLUMNS", "trace_forward"]

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
    in call order, a container before its children. Each dict also says where the call
    sits in the forward: ``id`` (its position in call order, counting calls whose hook
    never ran), ``parent`` (the ``id`` of the enclosing call, None for children of the
    root), ``done`` (position in completion order: a container completes after its
    children), ``leaf`` (a module without children), ``own_params`` (the module holds
    parameters of its own), ``conv`` (a convolution) and ``is_output`` (its output tensor is
    returned by the model).

    Notes
    -----
    Each tensor produced by a hooked leaf carries a state, keyed by object identity. A
    module whose input was produced outside any module (``torch.cat``, ``x + y``,
    ``F.relu``...) gets the state of largest receptive field among the earlier recorded
    tensors of the same spatial size (``inferred=True``): exact for skip concatenations and
    residual sums, whose receptive field is the union of the branches'. With no such
    tensor the state is undefined (NaN).
    """
    check_module(model)
    x = model_input(as_nchw(example, "example"), model)
    states: dict[int, tuple[torch.Tensor, _State]] = {id(x): (x, _State(1.0, 1.0, 0.0))}
    history: list[tuple[tuple[int, ...], _State]] = [(tuple(x.shape[2:]), states[id(x)][1])]
    rows: list[dict[str, Any]] = []
    stack: list[tuple[int, torch.Tensor | None, _State, bool]] = []
    calls: dict[str, int] = defaultdict(int)
    done = [0]

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
        t = first_tensor(args)
        st, inferred = lookup(t)
        parent = stack[-1][0] if stack else None
        rows.append({"path": path, "call": calls[path], "type": type(module).__name__,
                     "id": len(rows), "parent": parent})  # fmt: skip
        calls[path] += 1
        stack.append((len(rows) - 1, t, st, inferred))

    def hook(path: str, module: nn.Module, args: tuple, output: Any) -> None:
        idx, t_in, st_in, inferred = stack.pop()
        y = first_tensor(output)
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
            done=done[0],
            leaf=next(module.children(), None) is None,
            own_params=any(True for _ in module.parameters(recurse=False)),
            conv=isinstance(module, nn.modules.conv._ConvNd),
            output=y,
        )
        done[0] += 1

    with Hooks(model, mode="eval", grad=False) as hooks:
        for path, module in model.named_modules():
            if path:
                hooks.pre(module, _bind(pre_hook, path)).forward(module, _bind(hook, path))
        result = call_model(model, x, "example")
    returned = {id(t) for t in _tensors(result)}
    for r in rows:  # identity, not value: the tensors are alive until here
        r["is_output"] = id(r.pop("output", None)) in returned
    return [r for r in rows if "jump" in r]


def _tensors(obj: Any) -> list[torch.Tensor]:
    """Every tensor in a (nested) tensor / tuple / list / dict."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in _tensors(item)]
    return []


def _bind(fn, path):
    return lambda *args: fn(path, *args)
