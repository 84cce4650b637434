"""Structure checks and small helpers for :mod:`cnnexplore_nb.prune`.

A model is prunable when its children are ``Conv2d -> [BatchNorm2d] -> activation``
Sequential blocks followed by one final ``Conv2d`` (the head), and its ``forward`` calls
them once each, in order, each on the previous one's output (a traced forward proves it, so
skip connections or extra operations between children are detected). Also: id checks, batch
iteration, and the conv / BatchNorm surgery used by ``prune_maps``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "Block",
    "Head",
    "as_batches",
    "check_ids",
    "next_conv",
    "prunable_chain",
    "set_module",
    "slice_bn",
    "slice_conv",
    "update_feature_info",
]

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


def _block(path: str, module: nn.Module) -> Block:
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
    blocks = [_block(name, mod) for name, mod in body]
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


@torch.no_grad()
def _trace(model: nn.Module, order: list[str]) -> None:
    """Run one 16x16 forward and check that children are called as a plain chain."""
    calls: list[tuple[str, Any, Any]] = []

    def hook_for(name: str):
        def hook(_mod, inp, out):
            calls.append((name, inp[0] if inp else None, out))

        return hook

    first = model.get_submodule(order[0])
    conv = first if isinstance(first, nn.Conv2d) else first[0]
    p = next(model.parameters())
    x = torch.zeros(1, conv.in_channels, 16, 16, device=p.device, dtype=p.dtype)
    handles = [model.get_submodule(n).register_forward_hook(hook_for(n)) for n in order]
    was_training = model.training
    try:
        model.eval()
        y = model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
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


def as_batches(images: Any, batch_size: int) -> Iterator[torch.Tensor]:
    """Yield float (B, C, H, W) batches from a tensor/array (N,[C,]H,W) or a Dataset."""
    if isinstance(images, (torch.Tensor, np.ndarray)):
        x = torch.as_tensor(images)
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W) or (N, H, W), got {x.shape}")
        for i in range(0, x.shape[0], batch_size):
            yield x[i : i + batch_size].float()
        return
    if not hasattr(images, "__len__") or not hasattr(images, "__getitem__"):
        raise TypeError(f"images must be a Tensor, ndarray or Dataset, got {type(images).__name__}")
    for i in range(0, len(images), batch_size):
        items = []
        for j in range(i, min(i + batch_size, len(images))):
            item = images[j]
            item = item[0] if isinstance(item, (tuple, list)) else item
            t = torch.as_tensor(item).float()
            items.append(t[None] if t.ndim == 2 else t)
        yield torch.stack(items)


# --------------------------------------------------------------- surgery helpers
def next_conv(blocks: list[Block], head: Head, blk: Block) -> nn.Conv2d:
    """The conv that reads ``blk``'s maps: the next block's conv, or the head."""
    i = blocks.index(blk)
    return blocks[i + 1].conv if i + 1 < len(blocks) else head.module


@torch.no_grad()
def slice_conv(
    conv: Any, out_keep: list[int] | None, in_keep: list[int] | None, carry: Any
) -> nn.Conv2d:
    """New conv with kept output / input channels; ``carry`` (C_out,) is added to the bias."""
    conv = getattr(conv, "module", conv)
    w = conv.weight.detach()
    if in_keep is not None:
        w = w[:, in_keep]
    bias = conv.bias.detach().double() if conv.bias is not None else None
    if carry is not None:
        bias = (bias if bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)) + carry
    if out_keep is not None:
        w = w[out_keep]
        bias = bias[out_keep] if bias is not None else None
    new = nn.Conv2d(
        w.shape[1],
        w.shape[0],
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        bias=bias is not None,
        padding_mode=conv.padding_mode,
        device=w.device,
        dtype=w.dtype,
    )
    new.weight.copy_(w)
    if bias is not None:
        new.bias.copy_(bias.to(w.dtype))
    new.train(conv.training)
    return new


@torch.no_grad()
def slice_bn(bn: nn.BatchNorm2d, keep: list[int]) -> nn.BatchNorm2d:
    """New BatchNorm2d over the kept features (affine parameters and running statistics)."""
    new = nn.BatchNorm2d(
        len(keep),
        eps=bn.eps,
        momentum=bn.momentum,
        affine=bn.affine,
        track_running_stats=bn.track_running_stats,
        device=bn.weight.device if bn.weight is not None else None,
        dtype=bn.weight.dtype if bn.weight is not None else None,
    )
    if bn.affine:
        new.weight.copy_(bn.weight.detach()[keep])
        new.bias.copy_(bn.bias.detach()[keep])
    if bn.track_running_stats and bn.running_mean is not None:
        new.running_mean.copy_(bn.running_mean[keep])
        new.running_var.copy_(bn.running_var[keep])
        new.num_batches_tracked.copy_(bn.num_batches_tracked)
    new.train(bn.training)
    return new


def set_module(root: nn.Module, path: str, module: nn.Module) -> None:
    """Replace the submodule at ``path`` (dotted) of ``root``."""
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, name, module)


def update_feature_info(model: nn.Module, blocks: list[Block]) -> None:
    """Set ``num_chs`` of ``model.feature_info`` entries at (or inside) the blocks."""
    info = getattr(model, "feature_info", None)
    if not isinstance(info, list):
        return
    chans = {b.path: b.module.get_submodule(b.conv_name).out_channels for b in blocks}
    for entry in info:
        path = entry.get("module") if isinstance(entry, dict) else None
        root = next((p for p in chans if path == p or str(path).startswith(p + ".")), None)
        if root is not None:
            entry["num_chs"] = chans[root]
