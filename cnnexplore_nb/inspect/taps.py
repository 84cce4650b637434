"""Feature taps of any model: ``feature_info`` when it has one, else inferred from a forward.

:func:`feature_layers` is what the rest of the toolkit asks for when the user names no
layers. A registered model lists its taps (``feature_info``); for any other network one dry
forward with an example batch finds them by the rule of timm's ``feature_info`` and
torchvision's feature extractors: **the output of the last module at each spatial
resolution** (the stage ends), and for a network that keeps one resolution (a fully
convolutional network) **its conv blocks**. The rule, step by step, is in
:func:`feature_layers`' Notes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .._hooks import check_module
from ..models import feature_layers as registered_taps
from ._trace import trace_forward

__all__ = ["feature_layers", "taps_from_trace"]

Row = dict[str, Any]


def feature_layers(model: nn.Module, example: torch.Tensor | None = None) -> list[str]:
    """Module paths of the feature taps of ``model``: its ``feature_info``, or inferred.

    Parameters
    ----------
    model : nn.Module
        Any network. A model with ``feature_info`` (every registered model) returns those
        taps and needs no example.
    example : Tensor of shape (C, H, W) or (N, C, H, W), optional
        An input the model accepts (one small image is enough): one dry forward in eval
        mode under ``torch.no_grad`` (hooks removed and the mode restored afterwards)
        infers the taps of a model without ``feature_info``.

    Returns
    -------
    list of str
        ``named_modules()`` paths in execution order, ready for
        :func:`~cnnexplore_nb.extract_activations` and :func:`~cnnexplore_nb.select_layers`.

    Raises
    ------
    TypeError
        For a model without ``feature_info`` when no ``example`` is given.
    ValueError
        When no module of the model produces a spatial map (N, C, H, W) with H·W > 1.

    Notes
    -----
    The inferred taps follow the modules in the order they finish (a container finishes
    after its children); only outputs of shape (N, C, H, W) with H·W > 1 count (global
    pooling, squeeze-and-excitation gates and classifier heads are skipped), and a module
    whose output the model returns (the logits of a segmentation network) is never a tap.

    1. *Transition blocks.* The innermost container whose modules produce maps at exactly
       two resolutions, with a module holding parameters after the change (an inverted
       residual whose depthwise convolution has the stride, a bottleneck with the stride in
       its 3x3 conv), is a transition between stages: its modules before the change (the
       1x1 expansion) are the start of the next stage, not the end of this one, and are
       skipped. A VGG stage written as conv-ReLU-conv-ReLU-max-pool, or a DenseNet
       transition, only pools after the change and is not skipped.
    2. *Stages.* The remaining modules are grouped into runs of equal output resolution
       (H, W), in finishing order; a resolution revisited later (a U-Net's decoder) is a
       new run. A run where no module with parameters runs (a resolution reached by a last
       max-pool) has no tap.
    3. *The tap of a run* is the last module to finish in it (so the outermost container
       that ends there, e.g. ``layer1`` rather than ``layer1.1``), unless that container
       also holds the end of another run (a ``features`` Sequential holding every stage),
       in which case the last module before it that does not. A module called several
       times in one forward (a shared ReLU) gives way to the last module of the run called
       once, when there is one.
    4. *One resolution.* When every map of the network has the same H x W, each
       convolution makes a block: the outermost module around it holding no other
       convolution (CNN6's ``conv_module3``), or, in a flat Sequential, the last module
       after the convolution before the next one (its ReLU).

    On torchvision's and timm's layouts this gives the stem's activation and the four
    stage ends of a ResNet (timm's ``act1``, ``layer1`` ... ``layer4``), the ReLU before each
    max-pool of a VGG, and each stage end of a MobileNetV2 / EfficientNet.

    Examples
    --------
    >>> feature_layers(my_resnet18, torch.zeros(1, 3, 224, 224))  # doctest: +SKIP
    ['relu', 'layer1', 'layer2', 'layer3', 'layer4']
    """
    check_module(model)
    if getattr(model, "feature_info", None) is not None or example is None:
        return registered_taps(model)
    return [r["path"] for r in taps_from_trace(trace_forward(model, example))]


# -- the rule, on the rows of trace_forward ----------------------------------------------------
def _grid(row: Row) -> tuple[int, int] | None:
    """(H, W) of a 4-D output with more than one pixel, else None (skipped)."""
    shape = row.get("output_shape")
    if shape is None or len(shape) != 4 or int(shape[2]) * int(shape[3]) <= 1:
        return None
    return int(shape[2]), int(shape[3])


def _runs(values: Sequence[Any]) -> list[tuple[int, int]]:
    """[start, stop) of the maximal runs of equal consecutive values."""
    out, start = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            out.append((start, i))
            start = i
    return out


def _tree(rows: list[Row]) -> tuple[dict[int, Row], dict[int, list[int]], dict[int, list[int]]]:
    """Rows by id, the children of each id, and the spatial leaves (ids) under each id."""
    by_id = {r["id"]: r for r in rows}
    children: dict[int, list[int]] = {r["id"]: [] for r in rows}
    for r in rows:
        if r["parent"] in children:
            children[r["parent"]].append(r["id"])
    leaves: dict[int, list[int]] = {}
    for r in sorted(rows, key=lambda r: r["done"]):  # children before their container
        own = [r["id"]] if r["leaf"] and _grid(r) is not None else []
        leaves[r["id"]] = own + [k for c in children[r["id"]] for k in leaves[c]]
    for k in leaves:
        leaves[k].sort(key=lambda i: by_id[i]["done"])
    return by_id, children, leaves


def _partial(rows: list[Row], by_id: dict, leaves: dict) -> set[int]:
    """Leaves before the resolution change of a transition block (Notes, step 1)."""
    transition = {}
    for r in rows:
        ids = leaves[r["id"]]
        runs = _runs([_grid(by_id[i]) for i in ids])
        transition[r["id"]] = (
            not r["leaf"]
            and len(runs) == 2
            and any(by_id[i]["own_params"] for i in ids[runs[1][0] :])
        )
    inner: dict[int, bool] = dict.fromkeys(transition, False)  # holds a transition block
    for r in sorted(rows, key=lambda r: r["done"]):  # children before their container
        p = r["parent"]
        if p is not None and (transition[r["id"]] or inner[r["id"]]):
            inner[p] = True
    out: set[int] = set()
    for r in rows:
        if transition[r["id"]] and not inner[r["id"]]:  # the innermost block decides
            ids = leaves[r["id"]]
            out.update(ids[: _runs([_grid(by_id[i]) for i in ids])[0][1]])
    return out


def _conv_blocks(rows: list[Row], by_id: dict, children: dict) -> list[Row]:
    """Taps of a one-resolution network: one per convolution (Notes, step 4)."""
    convs = [r for r in rows if r["conv"] and not r["is_output"]]
    holds: dict[int, int] = {r["id"]: 0 for r in rows}
    for c in convs:
        parent = c["parent"]
        while parent is not None:
            holds[parent] += 1
            parent = by_id[parent]["parent"]
    out: list[Row] = []
    for c in convs:
        block = c
        while block["parent"] is not None and holds[block["parent"]] == 1:
            block = by_id[block["parent"]]
        if block is c:  # flat layout: the modules after the conv, up to the next conv
            siblings = children[c["parent"]] if c["parent"] is not None else [
                r["id"] for r in rows if r["parent"] is None
            ]  # fmt: skip
            for k in siblings[siblings.index(c["id"]) + 1 :]:
                nxt = by_id[k]
                if nxt["conv"] or holds[k] or _grid(nxt) is None:
                    break
                if not nxt["is_output"]:
                    block = nxt
        if _grid(block) is not None and not block["is_output"] and block not in out:
            out.append(block)
    return out


def taps_from_trace(rows: list[Row]) -> list[Row]:
    """The tap rows among the rows of :func:`._trace.trace_forward` (see
    :func:`feature_layers` for the rule)."""
    by_id, children, leaves = _tree(rows)
    spatial = [r for r in rows if _grid(r) is not None and not r["is_output"]]
    if not spatial:
        raise ValueError(
            "no module of the model produces a spatial map (N, C, H, W) with H x W > 1 for "
            "this example; pass layer paths explicitly (see list_layers(model, example))"
        )
    if len({_grid(by_id[i]) for r in rows if r["parent"] is None for i in leaves[r["id"]]}) == 1:
        return _conv_blocks(rows, by_id, children)
    partial = _partial(rows, by_id, leaves)
    kept = [r for r in spatial if not (leaves[r["id"]] and set(leaves[r["id"]]) <= partial)]
    kept.sort(key=lambda r: r["done"])
    grids = [_grid(r) for r in kept]
    spans = _runs(grids)
    run_of = {}  # leaf id -> run number
    for n, (a, b) in enumerate(spans):
        for r in kept[a:b]:
            if r["leaf"]:
                run_of[r["id"]] = n
    calls: dict[str, int] = {}
    for r in rows:
        calls[r["path"]] = calls.get(r["path"], 0) + 1
    taps: list[Row] = []
    for n, (a, b) in enumerate(spans):
        run = kept[a:b]
        own = [
            r for r in run
            if r["own_params"] or (not r["leaf"] and any(by_id[i]["own_params"] for i in
                                   leaves[r["id"]]) and {run_of.get(i) for i in
                                   leaves[r["id"]] if i not in partial} == {n})
        ]  # fmt: skip
        if not own:
            continue  # only pooling at this resolution
        fits = [
            r for r in run
            if {run_of.get(i, n) for i in leaves[r["id"]] if i not in partial} <= {n}
        ]  # fmt: skip
        if not fits:
            continue
        once = [r for r in fits if calls[r["path"]] == 1]
        taps.append((once or fits)[-1])
    return taps
