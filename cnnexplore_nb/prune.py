"""Act on redundancy: choose redundant maps, ablate them, or physically remove them.

The maps are the ones the correlation analysis looks at: for CNN-N the outputs of the
modules ``conv_moduleK`` (Conv2d -> BatchNorm2d -> ReLU), i.e. after BatchNorm *and* ReLU.

* :func:`redundant_maps` / :func:`select_redundant` / :func:`choose_redundant` pick, per
  layer, the maps to remove (one representative kept per group of mutually correlated maps,
  constant "dead" maps removed); :func:`l1_smallest` is the classical baseline criterion.
* :func:`mean_ablation` replaces maps by their dataset mean (:func:`map_means`) with hooks.
* :func:`prune_maps` rebuilds a plain conv chain (CNN-N) with fewer channels, optionally
  folding the removed maps' means into the next conv's bias.
* Reports (:func:`count_params`, :func:`count_flops`, :func:`speedup`, :func:`prune_report`)
  live in :mod:`cnnexplore_nb._flops`; :func:`pruning_curve` / :class:`PruningStudy` in
  :mod:`cnnexplore_nb._prune_curve`. All are re-exported here.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ._checks import check_choice, check_fraction, check_positive_int, unknown_name_message
from ._prune_chain import Block, as_batches, check_ids, prunable_chain

__all__ = [
    "PruningStudy",
    "choose_redundant",
    "count_flops",
    "count_params",
    "l1_smallest",
    "map_means",
    "mean_ablation",
    "prune_maps",
    "prune_report",
    "pruning_curve",
    "redundant_maps",
    "select_redundant",
    "speedup",
]

Rule = Literal["greedy", "components"]


# ----------------------------------------------------------------------------- selection
def redundant_maps(
    similarity: Any,
    threshold: float = 0.8,
    *,
    rule: Rule = "greedy",
    constant: Sequence[bool] | None = None,
) -> list[int]:
    """Maps of one layer to remove, from the layer's self-similarity matrix.

    Parameters
    ----------
    similarity : array of shape (K, K)
        Within-layer similarity (e.g. Pearson r); its absolute value is used. NaN marks an
        undefined similarity (a constant map) and is never an edge.
    threshold : float in [0, 1]
        Two maps are "mutually correlated" when ``|r| >= threshold``.
    rule : {"greedy", "components"}
        ``"greedy"``: repeatedly keep the map with the most remaining partners (ties: lowest
        id) and remove all its remaining partners, until no remaining map has a partner; no
        two kept maps are then correlated at the threshold. ``"components"``: keep one map per
        connected component of the graph (the one with most partners, ties: lowest id) and
        remove the rest of the component (more aggressive on chains a~b~c).
    constant : sequence of bool of length K, optional
        Constant (dead) maps, which are always removed. Default: the maps whose whole row is
        NaN (their self-similarity is undefined too).

    Returns
    -------
    list of int
        Sorted ids of the maps to remove. At least one map is always kept.

    Examples
    --------
    >>> s = np.array([[1, .9, 0], [.9, 1, 0], [0, 0, 1]])
    >>> redundant_maps(s, 0.8)
    [1]
    """
    threshold = check_fraction("threshold", threshold)
    check_choice("rule", rule, ["greedy", "components"])
    s = np.abs(np.asarray(similarity, dtype=np.float64))
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"similarity must be a square (K, K) matrix, got shape {s.shape}")
    k = s.shape[0]
    if constant is None:
        dead = np.isnan(s).all(axis=1)
    else:
        dead = np.asarray(constant, dtype=bool)
        if dead.shape != (k,):
            raise ValueError(f"constant must have length {k}, got shape {dead.shape}")
    adj = np.nan_to_num(s, nan=0.0) >= threshold
    np.fill_diagonal(adj, False)
    adj[dead, :] = False
    adj[:, dead] = False
    removed = set(np.flatnonzero(dead).tolist())
    if rule == "greedy":
        alive = ~dead
        while True:
            deg = (adj[:, alive].sum(axis=1)) * alive
            if deg.max(initial=0) == 0:
                break
            rep = int(np.argmax(deg))  # first maximum = lowest id among ties
            partners = np.flatnonzero(adj[rep] & alive)
            removed.update(partners.tolist())
            alive[partners] = False
            alive[rep] = False  # kept, and out of the game
    else:
        from scipy.sparse.csgraph import connected_components

        _, labels = connected_components(adj, directed=False)
        deg = adj.sum(axis=1)
        for lab in np.unique(labels[~dead]):
            members = np.flatnonzero((labels == lab) & ~dead)
            rep = members[np.argmax(deg[members])]
            removed.update(int(m) for m in members if m != rep)
    if len(removed) == k:  # everything dead: keep map 0 so the layer still exists
        removed.discard(0)
    return sorted(int(i) for i in removed)


def _similarity(maps: Any, measure: str) -> np.ndarray:
    from .similarity import similarity_matrix

    return np.asarray(similarity_matrix(maps, measure=measure), dtype=np.float64)


def _constant(maps: Any) -> np.ndarray:
    from .similarity import zero_flags

    return np.asarray(zero_flags(maps), dtype=bool)


def select_redundant(
    maps: Mapping[str, Any],
    threshold: float = 0.8,
    *,
    layers: Sequence[str] | None = None,
    measure: str = "pearson",
    rule: Rule = "greedy",
) -> dict[str, list[int]]:
    """Redundant maps of every layer, from activations (within-layer ``|similarity|``).

    Parameters
    ----------
    maps : dict of layer path -> Tensor of shape (N, C, H, W)
        Activations (e.g. from :func:`cnnexplore_nb.extract_activations`).
    threshold : float in [0, 1]
        Edge threshold on ``|r|``, see :func:`redundant_maps`.
    layers : list of str, optional
        Layers to use (default: all of ``maps``).
    measure : str
        Passed to :func:`cnnexplore_nb.similarity_matrix`.
    rule : {"greedy", "components"}
        Grouping rule, see :func:`redundant_maps`.

    Returns
    -------
    dict of layer path -> list of int
        Sorted map ids to remove; constant maps (zero variance over all images and pixels)
        are included.
    """
    threshold = check_fraction("threshold", threshold)
    layers = _check_layers(maps, layers)
    out = {}
    for layer in layers:
        x = maps[layer]
        out[layer] = redundant_maps(
            _similarity(x, measure), threshold, rule=rule, constant=_constant(x)
        )
    return out


def choose_redundant(
    tables: Any,
    layer: str,
    threshold: float = 0.8,
    *,
    rule: Rule = "greedy",
) -> list[int]:
    """Redundant maps of ``layer`` from correlation tables or a dict of matrices.

    Parameters
    ----------
    tables : CorrelationTables or dict of (layer_a, layer_b) -> array (K_a, K_b)
        Anything with the self-pair ``(layer, layer)`` matrix (``tables.matrices`` is used
        when present).
    layer : str
        Layer path.
    threshold : float in [0, 1]
    rule : {"greedy", "components"}

    Returns
    -------
    list of int
        Sorted ids to remove (see :func:`redundant_maps`).
    """
    matrices = getattr(tables, "matrices", tables)
    if (layer, layer) not in matrices:
        names = sorted({a for a, b in matrices if a == b})
        raise KeyError(unknown_name_message("layer (no self-comparison)", layer, names))
    return redundant_maps(matrices[(layer, layer)], threshold, rule=rule)


def l1_smallest(model: nn.Module, layer: str, k: int) -> list[int]:
    """Baseline criterion: the ``k`` maps of ``layer`` with the smallest filter L1 norm.

    The norm of map ``c`` is ``sum |W[c, :, :, :]|`` of the block's conv (Li et al. 2017,
    "Pruning filters for efficient ConvNets"); BatchNorm scales are ignored, as in the paper.

    Returns
    -------
    list of int
        Sorted ids of the ``k`` smallest-norm maps (ties: lowest id).
    """
    block = _block(model, layer)
    k = check_positive_int("k", k, minimum=0)
    norms = block.conv.weight.detach().abs().sum(dim=(1, 2, 3)).double().numpy()
    if k > len(norms):
        raise ValueError(f"k must be <= {len(norms)} maps of {layer!r}, got {k}")
    order = np.argsort(norms, kind="stable")
    return sorted(int(i) for i in order[:k])


def _check_layers(maps: Mapping[str, Any], layers: Sequence[str] | None) -> list[str]:
    if layers is None:
        return list(maps)
    if isinstance(layers, str):
        layers = [layers]
    for layer in layers:
        if layer not in maps:
            raise KeyError(unknown_name_message("layer", layer, list(maps)))
    return list(layers)


def _block(model: nn.Module, layer: str) -> Block:
    blocks = {b.path: b for b in prunable_chain(model)[0]}
    if layer not in blocks:
        raise KeyError(unknown_name_message("prunable layer", layer, list(blocks)))
    return blocks[layer]


# ------------------------------------------------------------------------------ ablation
@torch.no_grad()
def map_means(
    model: nn.Module,
    images: Any,
    layers: Sequence[str],
    *,
    batch_size: int = 8,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """Dataset mean of every map of ``layers`` (output of each module), in eval mode.

    Parameters
    ----------
    model : nn.Module
    images : Tensor or ndarray of shape (N, C, H, W) or (N, H, W), or a Dataset
        A Dataset's items are an image or a tuple whose first element is the image.
    layers : list of str
        Module paths; the mean is over images and pixels of the module's output.
    batch_size : int
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    dict of layer path -> Tensor of shape (C,)
        float32 means (accumulated in float64).
    """
    from tqdm.auto import tqdm

    batch_size = check_positive_int("batch_size", batch_size)
    if isinstance(layers, str):
        layers = [layers]
    modules = dict(model.named_modules())
    for layer in layers:
        if layer not in modules or layer == "":
            raise KeyError(unknown_name_message("layer", layer, [n for n in modules if n]))
    sums: dict[str, torch.Tensor] = {}
    counts = dict.fromkeys(layers, 0)

    def hook_for(name: str):
        def hook(_mod, _inp, out):
            o = out.detach().double()
            s = o.sum(dim=(0, 2, 3))
            sums[name] = sums[name] + s if name in sums else s
            counts[name] += o.shape[0] * o.shape[2] * o.shape[3]

        return hook

    was_training = model.training
    handles = [modules[n].register_forward_hook(hook_for(n)) for n in layers]
    try:
        model.eval()
        device = next(model.parameters()).device
        for batch in tqdm(as_batches(images, batch_size), disable=not progress, desc="means"):
            model(batch.to(device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not sums:
        raise ValueError("images is empty: no map means can be computed")
    return {n: (sums[n] / counts[n]).float().cpu() for n in layers}


@contextlib.contextmanager
def mean_ablation(
    model: nn.Module,
    maps: Mapping[str, Sequence[int]],
    means: Mapping[str, Any],
) -> Iterator[nn.Module]:
    """Context manager replacing chosen maps by their dataset mean during forwards.

    A forward hook on each module path replaces channels ``maps[path]`` of the module's
    output by ``means[path][c]`` everywhere. For CNN-N give the ``conv_moduleK`` paths: the
    output of the module is after BatchNorm and ReLU, the map the correlation analysis saw.

    Parameters
    ----------
    model : nn.Module
    maps : dict of module path -> list of int
        Map ids to ablate.
    means : dict of module path -> Tensor of shape (C,)
        Per-map means, e.g. from :func:`map_means`.

    Yields
    ------
    nn.Module
        ``model`` itself; the hooks are removed on exit, even after an exception.
    """
    modules = dict(model.named_modules())
    plans = []
    for layer, ids in maps.items():
        if layer not in modules or layer == "":
            raise KeyError(unknown_name_message("layer", layer, [n for n in modules if n]))
        if layer not in means:
            raise KeyError(f"means has no entry for layer {layer!r}; it has {list(means)}")
        mean = torch.as_tensor(means[layer]).detach().flatten()
        ids = check_ids(layer, ids, mean.numel(), allow_all=True)
        if ids:
            plans.append((layer, ids, mean))

    def hook_for(ids: list[int], mean: torch.Tensor):
        def hook(_mod, _inp, out):
            if out.shape[1] != mean.numel():
                raise ValueError(
                    f"means has {mean.numel()} values but the output has {out.shape[1]} maps"
                )
            out = out.clone()
            out[:, ids] = mean[ids].to(out).view(1, -1, 1, 1)
            return out

        return hook

    handles = []
    try:
        for layer, ids, mean in plans:
            handles.append(modules[layer].register_forward_hook(hook_for(ids, mean)))
        yield model
    finally:
        for h in handles:
            h.remove()


# ----------------------------------------------------------------------- physical removal
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
        plan[layer] = check_ids(layer, ids, _by_path(blocks, layer).conv.out_channels)

    new = copy.deepcopy(model)
    new_blocks, new_head = prunable_chain(new, trace=False)
    in_keep: list[int] | None = None  # kept input channels of the current conv
    carry: torch.Tensor | None = None  # bias change of the current conv from folded means
    for old, blk in zip(blocks, new_blocks, strict=True):
        c = old.conv.out_channels
        removed = plan.get(old.path, [])
        keep = [i for i in range(c) if i not in set(removed)]
        _set_conv(blk, _slice_conv(old.conv, keep, in_keep, carry))
        if old.bn is not None:
            setattr(blk.module, blk.bn_name, _slice_bn(old.bn, keep))
        carry = None
        mean = _fold_vector(fold_means, old) if removed else None
        nxt = _next_conv(blocks, head, old)
        if mean is not None:
            w = nxt.weight.detach().double()[:, removed].sum(dim=(2, 3))  # (C_next, R)
            carry = w @ mean[removed]
        in_keep = keep if removed else None
    new_conv = _slice_conv(head, None, in_keep, carry)
    _set_module(new, new_head.path, new_conv)
    _update_feature_info(new, new_blocks)
    return new


def _by_path(blocks: list[Block], path: str) -> Block:
    return next(b for b in blocks if b.path == path)


def _next_conv(blocks: list[Block], head: Any, blk: Block) -> nn.Conv2d:
    i = blocks.index(blk)
    return blocks[i + 1].conv if i + 1 < len(blocks) else head.module


def _slice_conv(
    conv: Any, out_keep: list[int] | None, in_keep: list[int] | None, carry: Any
) -> nn.Conv2d:
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


def _slice_bn(bn: nn.BatchNorm2d, keep: list[int]) -> nn.BatchNorm2d:
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


def _set_conv(blk: Block, conv: nn.Conv2d) -> None:
    setattr(blk.module, blk.conv_name, conv)


def _set_module(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, name, module)


def _update_feature_info(model: nn.Module, blocks: list[Block]) -> None:
    info = getattr(model, "feature_info", None)
    if not isinstance(info, list):
        return
    chans = {b.path: b.module.get_submodule(b.conv_name).out_channels for b in blocks}
    for entry in info:
        path = entry.get("module") if isinstance(entry, dict) else None
        root = next((p for p in chans if path == p or str(path).startswith(p + ".")), None)
        if root is not None:
            entry["num_chs"] = chans[root]


# re-exports (defined in helper modules to keep this file short)
from ._flops import count_flops, count_params, prune_report, speedup  # noqa: E402
from ._prune_curve import PruningStudy, pruning_curve  # noqa: E402
