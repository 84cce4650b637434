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

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ._ablation import map_means, mean_ablation
from ._checks import (
    check_choice,
    check_fraction,
    check_keys,
    check_positive_int,
    unknown_name_message,
)
from ._prune_chain import (
    Block,
    check_ids,
    next_conv,
    prunable_chain,
    set_module,
    slice_bn,
    slice_conv,
    update_feature_info,
)

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
    >>> import numpy as np
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
    layers = check_keys("layer", layers, maps)
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


def _block(model: nn.Module, layer: str) -> Block:
    blocks = {b.path: b for b in prunable_chain(model)[0]}
    if layer not in blocks:
        raise KeyError(unknown_name_message("prunable layer", layer, list(blocks)))
    return blocks[layer]


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


# re-exports (defined in helper modules to keep this file short)
from ._flops import count_flops, count_params, prune_report, speedup  # noqa: E402
from ._prune_curve import PruningStudy, pruning_curve  # noqa: E402
