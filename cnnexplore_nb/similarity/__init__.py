"""How similar are activation maps: the streaming engine, the measures, the thesis tables.

``Moments`` (streaming float64 sums), ``similarity_matrix`` / ``similarity_stats`` (Pearson,
``|r|``, cosine, Euclidean) on a common grid, optionally restricted to a region (``crop``,
``mask``, :func:`dilated_mask`), ``layer_cka`` (pixels or images as examples, biased or
unbiased HSIC, named by :func:`cka_convention`), ``correlation_tables`` (CNN Explorer's
tables) with ``save_tables`` / ``load_tables``, groups of correlated maps, and
``map_embedding`` / ``cka_matrix`` beyond the thesis.
"""

from __future__ import annotations

from .cka import cka_convention
from .embedding import cka_matrix, map_embedding
from .groups import correlation_graph, correlation_groups
from .measures import (
    MEASURES,
    RESAMPLE_POLICIES,
    SimilarityStats,
    common_grid,
    layer_cka,
    map_support,
    similarity_matrix,
    similarity_stats,
    stream_moments,
    zero_flags,
)
from .moments import Moments, full_fp32_precision
from .region import EmptyRegionError, dilated_mask
from .tables import TABLE_MEASURES, CorrelationTables, correlation_tables
from .tables_io import TablesFormatError, load_tables, save_tables

__all__ = [
    "MEASURES",
    "RESAMPLE_POLICIES",
    "TABLE_MEASURES",
    "CorrelationTables",
    "EmptyRegionError",
    "Moments",
    "SimilarityStats",
    "TablesFormatError",
    "cka_convention",
    "cka_matrix",
    "common_grid",
    "correlation_graph",
    "correlation_groups",
    "correlation_tables",
    "dilated_mask",
    "full_fp32_precision",
    "layer_cka",
    "load_tables",
    "map_embedding",
    "map_support",
    "save_tables",
    "similarity_matrix",
    "similarity_stats",
    "stream_moments",
    "zero_flags",
]
