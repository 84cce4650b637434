"""Physical removal of maps from a conv chain (CNN-N): smaller convs and BatchNorms.

:func:`prune_maps` rebuilds every pruned block with the kept maps only, the next conv loses
the matching input channels, and the removed maps' means can be folded into its bias.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .._checks import unknown_name_message
from .chain import Block, check_ids, next_conv, prunable_chain

__all__ = ["prune_maps", "set_module", "slice_bn", "slice_conv", "update_feature_info"]


def _fold_vector(fold_means: Mapping[str, Any] | None, block: Block) -> torch.Tensor | None:
    if fold_means is None:
        return None
    if block.path not in fold_means:
        raise KeyError(
            f"fold_means has no entry for pruned layer {block.path!r}; it has {list(fold_means)}"
        )
    mean = torch.as_tensor(fold_means[block.path]).detach().double().flatten()
    c = block.conv.out_channels
    if mean.numel() != c:
        raise ValueError(f"fold_means[{block.path!r}] must have {c} values, got {mean.numel()}")
    return mean


@torch.no_grad()
def prune_maps(
    model: nn.Module,
    maps: Mapping[str, Sequence[int]],
    *,
    fold_means: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Physically remove maps from a plain conv chain (CNN-N); return a smaller copy.

    For every pruned module ``conv_moduleK`` the conv (output channels) and BatchNorm
    (features, affine parameters and running statistics) are rebuilt with the kept maps only,
    and the next conv (next module's conv, or the classifier) loses the matching input
    channels. ``model`` itself is not modified.

    Parameters
    ----------
    model : nn.Module
        A chain of ``Conv2d -> [BatchNorm2d] -> activation`` Sequential modules followed by a
        final Conv2d, called in order in ``forward`` (checked by tracing one small forward).
    maps : dict of module path -> list of int
        Map ids to remove per module (e.g. ``{"conv_module2": [3, 7]}``).
    fold_means : dict of module path -> Tensor of shape (C,), optional
        Means of the maps (all C of them) of every pruned module, e.g. from :func:`map_means`.
        Removed map ``c`` with mean ``m_c`` is folded into the next conv's bias:
        ``b_next += m_c * sum_{kh, kw} W_next[:, c, kh, kw]``, so the pruned model equals mean
        ablation of the same maps except within the zero-padded border.

    Returns
    -------
    nn.Module
        A deep copy with fewer channels; ``feature_info`` ``num_chs`` updated.

    Raises
    ------
    TypeError
        If the model is not such a chain (the message names the unsupported layer).
    KeyError
        For an unknown or non-prunable layer path.
    ValueError
        For duplicate or out-of-range ids, or when every map of a layer would be removed.
    """
    blocks, head = prunable_chain(model)
    paths = [b.path for b in blocks]
    plan: dict[str, list[int]] = {}
    for layer, ids in maps.items():
        if layer not in paths:
            raise KeyError(unknown_name_message("prunable layer", layer, paths))
        plan[layer] = check_ids(layer, ids, blocks[paths.index(layer)].conv.out_channels)

    new = copy.deepcopy(model)
    new_blocks, new_head = prunable_chain(new, trace=False)
    in_keep: list[int] | None = None  # kept input channels of the current conv
    carry: torch.Tensor | None = None  # bias change of the current conv from folded means
    for old, blk in zip(blocks, new_blocks, strict=True):
        c = old.conv.out_channels
        removed = plan.get(old.path, [])
        keep = [i for i in range(c) if i not in set(removed)]
        setattr(blk.module, blk.conv_name, slice_conv(old.conv, keep, in_keep, carry))
        if old.bn is not None:
            setattr(blk.module, blk.bn_name, slice_bn(old.bn, keep))
        carry = None
        mean = _fold_vector(fold_means, old) if removed else None
        nxt = next_conv(blocks, head, old)
        if mean is not None:
            w = nxt.weight.detach().double()[:, removed].sum(dim=(2, 3))  # (C_next, R)
            carry = w @ mean[removed]
        in_keep = keep if removed else None
    new_conv = slice_conv(head, None, in_keep, carry)
    set_module(new, new_head.path, new_conv)
    update_feature_info(new, new_blocks)
    return new


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
