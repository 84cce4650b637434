"""Layer catalogue and layer-path resolution.

Layers are named by their ``named_modules()`` path (``"conv_module3"``,
``"conv_module3.bn"``). :func:`list_layers` runs one dry forward with an example input and
lists every module that produced an output; :func:`resolve_layers` validates user-given
paths with helpful errors; :func:`select_layers` implements the thesis selection rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._checks import unknown_name_message
from .._hooks import check_module
from .._layer_origin import note_model_paths
from ..models import feature_layers
from ._trace import trace_forward
from .taps import taps_from_trace

__all__ = ["list_layers", "resolve_layers", "select_layers"]

T = TypeVar("T")

LAYER_COLUMNS = [
    "path",
    "call",
    "type",
    "depth",
    "maps",
    "output_shape",
    "params",
    "params_total",
    "receptive_field",
    "jump",
    "start",
    "tap",
]


def layer_paths(model: nn.Module) -> list[str]:
    """All hookable module paths of ``model`` (``named_modules()`` order, root excluded)."""
    return [p for p, _ in check_module(model).named_modules() if p]


def resolve_layers(model: nn.Module, layers: str | Iterable[str] | None = None) -> list[str]:
    """Validate layer paths and return them as a list (duplicates dropped, order kept).

    Parameters
    ----------
    model : nn.Module
    layers : str, iterable of str or None
        ``named_modules()`` paths. ``None`` means the model's feature taps
        (``model.feature_info``, see :func:`cnnexplore_nb.models.feature_layers`).

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        For an unknown path (the message lists the closest valid paths) or an empty
        selection.
    TypeError
        For a path that is not a string.
    """
    check_module(model)
    if layers is None:
        layers = feature_layers(model)
    if isinstance(layers, str):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise ValueError("zero layers selected: expected at least one layer path, got []")
    valid = layer_paths(model)
    valid_set = set(valid)
    out: list[str] = []
    for path in layers:
        if not isinstance(path, str):
            raise TypeError(f"layer paths must be strings, got {path!r} ({type(path).__name__})")
        if path not in valid_set:
            raise ValueError(unknown_name_message("layer", path, valid))
        if path not in out:
            out.append(path)
    return out


def select_layers(paths: Sequence[T]) -> list[T]:
    """The thesis layer-selection rule: the first, every even and the last module.

    Positions are 1-based: 6 modules -> 1, 2, 4, 6; 10 modules -> 1, 2, 4, 6, 8, 10;
    7 modules -> 1, 2, 4, 6, 7.

    Parameters
    ----------
    paths : sequence
        Ordered layer paths (or any items), e.g. ``feature_layers(model)``.

    Returns
    -------
    list
        The selected items, in their original order.

    Examples
    --------
    >>> select_layers([f"conv_module{i}" for i in range(1, 7)])
    ['conv_module1', 'conv_module2', 'conv_module4', 'conv_module6']
    """
    if isinstance(paths, str):
        raise TypeError("paths must be a sequence of layer paths, got a single string")
    items = list(paths)
    if not items:
        raise ValueError("zero layers selected: expected at least one layer path, got []")
    n = len(items)
    return [item for pos, item in enumerate(items, start=1) if pos in (1, n) or pos % 2 == 0]


def list_layers(
    model: nn.Module, example: torch.Tensor, *, leaves_only: bool = False
) -> pd.DataFrame:
    """Catalogue of the layers of ``model`` from one dry forward pass with ``example``.

    The forward runs in eval mode under ``torch.no_grad`` (the model's mode is restored and
    all hooks are removed afterwards, even on error).

    Parameters
    ----------
    model : nn.Module
    example : Tensor of shape (C, H, W) or (N, C, H, W)
        An input the model accepts (a small one is enough).
    leaves_only : bool
        Keep only modules without children (by default containers such as CNN-N's
        ``conv_module1`` are listed too: they are the thesis's layers).

    Returns
    -------
    DataFrame
        One row per module call, in execution order (a container before its children):
        ``path`` (``named_modules()`` path), ``call`` (0 for the first call of a module in
        the forward, 1 for the second...), ``type`` (class name), ``depth`` (1 for children
        of the root), ``maps`` (channels of a 4-D output, else NaN), ``output_shape``
        (tuple, or None when the output holds no tensor), ``params`` (the module's own
        parameters), ``params_total`` (recursive), ``receptive_field``, ``jump``,
        ``start`` in input pixels (see :func:`cnnexplore_nb.receptive.receptive_fields`;
        missing where undefined) and ``tap`` (True on the model's feature taps: its
        ``feature_info``, else the taps :func:`~cnnexplore_nb.feature_layers` infers from
        this forward). ``maps`` and ``receptive_field`` are integers (pandas ``Int64``,
        ``<NA>`` where undefined; the receptive field stays float when up-sampling makes it
        fractional).
    """
    check_module(model)
    note_model_paths(model)  # display names: a user network's paths stay as they are
    rows = trace_forward(model, example)
    modules = dict(model.named_modules())
    info = getattr(model, "feature_info", None)
    if info is not None:
        wanted = set(feature_layers(model))
        taps = {(r["path"], r["call"]) for r in rows if r["path"] in wanted}
    else:
        try:
            taps = {(r["path"], r["call"]) for r in taps_from_trace(rows)}
        except ValueError:  # no spatial output at all: no taps to mark
            taps = set()
    records = []
    for r in rows:
        module = modules[r["path"]]
        if leaves_only and next(module.children(), None) is not None:
            continue
        shape = r["output_shape"]
        records.append(
            {
                "path": r["path"],
                "call": r["call"],
                "type": type(module).__name__,
                "depth": r["path"].count(".") + 1,
                "maps": int(shape[1]) if shape is not None and len(shape) == 4 else pd.NA,
                "output_shape": shape,
                "params": sum(p.numel() for p in module.parameters(recurse=False)),
                "params_total": sum(p.numel() for p in module.parameters()),
                "receptive_field": r["receptive_field"],
                "jump": r["jump"],
                "start": r["start"],
                "tap": (r["path"], r["call"]) in taps,
            }
        )
    out = pd.DataFrame.from_records(records, columns=LAYER_COLUMNS)
    out["maps"] = out["maps"].astype("Int64")
    rf = out["receptive_field"].to_numpy(dtype=float)
    finite = rf[np.isfinite(rf)]
    if np.array_equal(finite, np.round(finite)):
        out["receptive_field"] = pd.array(
            [int(v) if np.isfinite(v) else pd.NA for v in rf], dtype="Int64"
        )
    out["tap"] = out["tap"].astype(bool)
    return out
