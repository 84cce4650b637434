"""Experiments: resumable sweeps (inline, local processes, Dask) and their statistics.

``run_sweep(grid, run, store, executor=...)`` runs a grid of configurations and keeps one
JSON record per run in ``store``; ``summarize``, ``compare_methods`` and
``dissertation_table`` turn the results into the dissertation's tables;
``dissertation_results`` holds the published numbers for side-by-side comparison.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "run_sweep": "sweep",
    "load_results": "sweep",
    "sweep_status": "sweep",
    "expand_grid": "sweep",
    "records_to_frame": "sweep",
    "SweepStatus": "sweep",
    "config_key": "store",
    "ResultStore": "store",
    "CorruptRecordWarning": "store",
    "summarize": "stats",
    "compare_methods": "stats",
    "dissertation_table": "stats",
    "holm": "stats",
    "vargha_delaney_a12": "stats",
    "min_attainable_p": "stats",
    "dissertation_results": "reference",
    "dissertation_comparisons": "reference",
    "side_by_side": "reference",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
