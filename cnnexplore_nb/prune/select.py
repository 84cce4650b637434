"""Choose the maps to remove: redundant ones from correlations, or the L1-norm baseline.

The maps are the ones the correlation analysis looks at: for CNN-N the outputs of the
modules ``conv_moduleK`` (Conv2d -> BatchNorm2d -> ReLU), i.e. after BatchNorm *and* ReLU.
:func:`redundant_maps` / :func:`select_redundant` / :func:`choose_redundant` pick, per
layer, the maps to remove (one representative kept per group of mutually correlated maps,
constant "dead" maps removed); :func:`l1_smallest` is the classical baseline criterion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from torch import nn

from .._checks import (
    check_choice,
    check_fraction,
    check_keys,
    check_positive_int,
    unknown_name_message,
)
from ..similarity.groups import correlation_graph, correlation_groups
from ..similarity.measures import similarity_matrix, zero_flags
from .chain import block_of

__all__ = [
    "choose_redundant",
    "constant_maps",
    "l1_smallest",
    "layer_similarity",
    "redundant_maps",
    "select_redundant",
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
    adj = correlation_graph(s, threshold, exclude=dead)
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
        labels = correlation_groups(s, threshold, exclude=dead)
        deg = adj.sum(axis=1)
        for lab in np.unique(labels[~dead]):
            members = np.flatnonzero((labels == lab) & ~dead)
            rep = members[np.argmax(deg[members])]
            removed.update(int(m) for m in members if m != rep)
    if len(removed) == k:  # everything dead: keep map 0 so the layer still exists
        removed.discard(0)
    return sorted(int(i) for i in removed)


def layer_similarity(maps: Any, measure: str = "pearson") -> np.ndarray:
    """Within-layer similarity matrix (K, K) of maps (N, K, H, W), float64."""
    return np.asarray(similarity_matrix(maps, measure=measure), dtype=np.float64)


def constant_maps(maps: Any) -> np.ndarray:
    """Constant (dead) maps of a layer: bool (K,)."""
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
            layer_similarity(x, measure), threshold, rule=rule, constant=constant_maps(x)
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
    block = block_of(model, layer)
    k = check_positive_int("k", k, minimum=0)
    norms = block.conv.weight.detach().abs().sum(dim=(1, 2, 3)).double().numpy()
    if k > len(norms):
        raise ValueError(f"k must be <= {len(norms)} maps of {layer!r}, got {k}")
    order = np.argsort(norms, kind="stable")
    return sorted(int(i) for i in order[:k])
