"""Notebook plumbing: scales (``smoke``, ``embedded``, ``cpu``, ``full``), output folders,
and headless execution of the notebooks (``python -m cnnexplore_nb.notebook``)."""

from __future__ import annotations

from .run import executed_dir, list_notebooks, make_viewable, run_notebook, run_notebooks
from .scales import SCALES, artifacts_dir, figures_dir, project_root, scale_settings

__all__ = [
    "SCALES",
    "artifacts_dir",
    "executed_dir",
    "figures_dir",
    "list_notebooks",
    "make_viewable",
    "project_root",
    "run_notebook",
    "run_notebooks",
    "scale_settings",
]
