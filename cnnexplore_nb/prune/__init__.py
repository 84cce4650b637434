"""Act on redundancy: choose maps, ablate them, remove them, merge them, measure the result.

* :mod:`.select` - ``redundant_maps`` / ``select_redundant`` / ``choose_redundant`` (one
  representative kept per group of correlated maps) and the ``l1_smallest`` baseline;
* :mod:`.ablation` - ``map_means`` and the ``mean_ablation`` context manager;
* :mod:`.surgery` - ``prune_maps``: a smaller conv chain (CNN-N), means optionally folded;
* :mod:`.merge` - ``merge_maps``: removed maps merged into their most correlated kept map;
* :mod:`.flops` - ``count_params``, ``count_flops``, ``speedup``, ``prune_report``;
* :mod:`.study` - ``PruningStudy`` / ``pruning_curve``: threshold -> maps removed -> metrics.
"""

from __future__ import annotations

from .ablation import map_means, mean_ablation
from .chain import prunable_chain
from .flops import count_flops, count_params, prune_report, speedup
from .merge import merge_curve, merge_fits, merge_maps
from .select import (
    choose_redundant,
    constant_maps,
    l1_smallest,
    layer_similarity,
    redundant_maps,
    select_redundant,
)
from .study import PruningStudy, pruning_curve
from .surgery import prune_maps

__all__ = [
    "PruningStudy",
    "choose_redundant",
    "constant_maps",
    "count_flops",
    "count_params",
    "l1_smallest",
    "layer_similarity",
    "map_means",
    "mean_ablation",
    "merge_curve",
    "merge_fits",
    "merge_maps",
    "prunable_chain",
    "prune_maps",
    "prune_report",
    "pruning_curve",
    "redundant_maps",
    "select_redundant",
    "speedup",
]
