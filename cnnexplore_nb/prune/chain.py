"""Which models can be pruned, and their blocks.

A model is prunable when its children are ``Conv2d -> [BatchNorm2d] -> activation``
Sequential blocks followed by one final ``Conv2d`` (the head), and its ``forward`` calls
them once each, in order, each on the previous one's output (a traced forward proves it, so
skip connections or extra operations between children are detected). Also: map-id checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .._checks import unknown_name_message
from .._hooks import Hooks, model_device, model_dtype

__all__ = ["Block", "Head", "block_of", "check_ids", "next_conv", "prunable_chain"]

_ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Identity,
)
_CHAIN_HELP = (
    "prune_maps supports plain chains (CNN-N): Sequential blocks Conv2d -> [BatchNorm2d] -> "
    "activation, then a final Conv2d, called in order"
)


@dataclass(eq=False)
class Block:
    """One prunable module: ``module`` at ``path`` with its conv and optional BN children."""

    path: str
    module: nn.Sequential
    conv_name: str
    bn_name: str | None

    @property
    def conv(self) -> nn.Conv2d:
        return self.module.get_submodule(self.conv_name)

    @property
    def bn(self) -> nn.BatchNorm2d | None:
        return self.module.get_submodule(self.bn_name) if self.bn_name else None


@dataclass(eq=False)
class Head:
    """The final conv (classifier) at ``path``."""

    path: str
    module: nn.Conv2d


def _check_conv(path: str, conv: nn.Conv2d) -> None:
    if type(conv) is not nn.Conv2d:
        raise TypeError(f"{_CHAIN_HELP}; unsupported layer {path!r} ({type(conv).__name__})")
    if conv.groups != 1:
        raise TypeError(
            f"{_CHAIN_HELP}; unsupported layer {path!r}: grouped conv (groups={conv.groups})"
        )


def _parse_block(path: str, module: nn.Module) -> Block:
    if not isinstance(module, nn.Sequential):
        raise TypeError(f"{_CHAIN_HELP}; unsupported layer {path!r} ({type(module).__name__})")
    names = list(module._modules)
    kids = [module._modules[n] for n in names]
    if not kids or not isinstance(kids[0], nn.Conv2d):
        raise TypeError(f"{_CHAIN_HELP}; unsupported layer {path!r}: does not start with Conv2d")
    _check_conv(f"{path}.{names[0]}", kids[0])
    bn_name = None
    rest = list(zip(names[1:], kids[1:], strict=True))
    if rest and type(rest[0][1]) is nn.BatchNorm2d:
        bn_name = rest[0][0]
        rest = rest[1:]
    for name, kid in rest:
        if not isinstance(kid, _ELEMENTWISE):
            raise TypeError(
                f"{_CHAIN_HELP}; unsupported layer '{path}.{name}' ({type(kid).__name__})"
            )
    return Block(path, module, names[0], bn_name)


def prunable_chain(model: nn.Module, *, trace: bool = True) -> tuple[list[Block], Head]:
    """Blocks and head of a prunable model, or ``TypeError`` naming the unsupported layer."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    children = list(model.named_children())
    if len(children) < 2:
        raise TypeError(f"{_CHAIN_HELP}; {type(model).__name__} has {len(children)} children")
    *body, (head_name, head) = children
    blocks = [_parse_block(name, mod) for name, mod in body]
    if not isinstance(head, nn.Conv2d):
        raise TypeError(
            f"{_CHAIN_HELP}; unsupported layer {head_name!r} ({type(head).__name__}) "
            "where the final Conv2d was expected"
        )
    _check_conv(head_name, head)
    prev = blocks[0].conv.in_channels
    for name, conv in [(b.path, b.conv) for b in blocks] + [(head_name, head)]:
        if conv.in_channels != prev:
            raise TypeError(
                f"{_CHAIN_HELP}; layer {name!r} takes {conv.in_channels} channels but the "
                f"previous layer gives {prev}"
            )
        prev = conv.out_channels
    if trace:
        _trace(model, [b.path for b in blocks] + [head_name])
    return blocks, Head(head_name, head)


def _trace(model: nn.Module, order: list[str]) -> None:
    """Run one 16x16 forward and check that children are called as a plain chain."""
    calls: list[tuple[str, Any, Any]] = []

    def hook_for(name: str):
        def hook(_mod, inp, out):
            calls.append((name, inp[0] if inp else None, out))

        return hook

    first = model.get_submodule(order[0])
    conv = first if isinstance(first, nn.Conv2d) else first[0]
    shape = (1, conv.in_channels, 16, 16)
    x = torch.zeros(shape, device=model_device(model), dtype=model_dtype(model))
    with Hooks(model, mode="eval", grad=False) as hooks:
        for n in order:
            hooks.forward(n, hook_for(n))
        y = model(x)
    names = [c[0] for c in calls]
    if names != order:
        raise TypeError(f"{_CHAIN_HELP}; forward calls children as {names}, expected {order}")
    prev_out = x
    for name, inp, out in calls:
        if inp is not prev_out:
            raise TypeError(
                f"{_CHAIN_HELP}; unsupported layer {name!r}: its input is not the previous "
                "layer's output (skip connection or extra operation in forward?)"
            )
        prev_out = out
    if y is not prev_out:
        raise TypeError(f"{_CHAIN_HELP}; the model output is not the output of {order[-1]!r}")


def check_ids(layer: str, ids: Sequence[int], n: int, *, allow_all: bool = False) -> list[int]:
    """Sorted unique ids in ``[0, n)``; ``ValueError`` naming duplicates / bad values."""
    arr = np.asarray(list(ids))
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"map ids of {layer!r} must be integers, got {list(ids)!r}")
    vals = [int(i) for i in arr.tolist()]
    dups = sorted({i for i in vals if vals.count(i) > 1})
    if dups:
        raise ValueError(f"duplicate map ids for {layer!r}: {dups}")
    bad = [i for i in vals if not 0 <= i < n]
    if bad:
        raise ValueError(f"map ids of {layer!r} must be in [0, {n - 1}], got {bad}")
    if not allow_all and len(vals) == n:
        raise ValueError(
            f"cannot remove every map of {layer!r} ({n} of {n}); keep at least one map"
        )
    return sorted(vals)


def next_conv(blocks: list[Block], head: Head, blk: Block) -> nn.Conv2d:
    """The conv that reads ``blk``'s maps: the next block's conv, or the head."""
    i = blocks.index(blk)
    return blocks[i + 1].conv if i + 1 < len(blocks) else head.module


def block_of(model: nn.Module, layer: str) -> Block:
    """The prunable block at path ``layer`` (``KeyError`` listing the prunable ones)."""
    blocks = {b.path: b for b in prunable_chain(model)[0]}
    if layer not in blocks:
        raise KeyError(unknown_name_message("prunable layer", layer, list(blocks)))
    return blocks[layer]
