"""Experiments: resumable sweeps (inline, local processes, Dask) and their statistics.

``run_sweep(grid, run, store, executor=...)`` runs a grid of configurations and keeps one
JSON record per run in ``store``; ``summarize``, ``compare_methods`` and
``dissertation_table`` turn the results into the dissertation's tables;
``dissertation_results`` holds the published numbers for side-by-side comparison.
"""

from __future__ import annotations

from .executors import GroupedRun
from .reference import dissertation_comparisons, dissertation_results, side_by_side
from .stats import (
    compare_methods,
    dissertation_table,
    holm,
    mann_whitney_power,
    min_attainable_p,
    seeds_needed,
    summarize,
    vargha_delaney_a12,
)
from .store import CorruptRecordWarning, ResultStore, config_key
from .sweep import (
    SweepStatus,
    expand_grid,
    group_configs,
    load_results,
    records_to_frame,
    run_sweep,
    sweep_status,
)

__all__ = [
    "CorruptRecordWarning",
    "GroupedRun",
    "ResultStore",
    "SweepStatus",
    "compare_methods",
    "config_key",
    "dissertation_comparisons",
    "dissertation_results",
    "dissertation_table",
    "expand_grid",
    "group_configs",
    "holm",
    "load_results",
    "mann_whitney_power",
    "min_attainable_p",
    "records_to_frame",
    "run_sweep",
    "seeds_needed",
    "side_by_side",
    "summarize",
    "sweep_status",
    "vargha_delaney_a12",
]
