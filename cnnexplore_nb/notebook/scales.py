"""Helpers shared by the notebooks: scales, output folders, parameter tables.

Every notebook starts with a ``parameters`` cell (``SCALE = "embedded"``) and asks this
module for the settings of that scale, so the three scales are stated in one place:

``"smoke"``
    seconds; used by the test suite to execute every notebook top to bottom.
``"embedded"``
    the default: a few minutes on a 2-core CPU, offline, on data the packages ship or the
    code generates, still showing the real phenomenon.
``"cpu"``
    the documents' real data (fetched on first use, or from ``DATA_DIR``) at a budget a
    2-core CPU runs (notebooks 00-05 within an hour, 06-07 within two), with the published
    numbers beside the measured ones.
``"full"``
    the source documents' real protocol and data, for a machine with a GPU (or a Dask
    cluster for the transfer sweeps).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from .._checks import check_choice

__all__ = ["SCALES", "artifacts_dir", "figures_dir", "project_root", "scale_settings"]

SCALES = ("smoke", "embedded", "cpu", "full")
Scale = Literal["smoke", "embedded", "cpu", "full"]


def project_root() -> Path:
    """The folder that holds ``notebooks/`` (the repository root), else the working dir.

    ``CNNX_ROOT`` overrides it.
    """
    env = os.environ.get("CNNX_ROOT")
    if env:
        return Path(env)
    cwd = Path.cwd()
    for candidate in (cwd, *cwd.parents):
        if (candidate / "notebooks").is_dir() and (candidate / "pyproject.toml").is_file():
            return candidate
    return cwd


def figures_dir(notebook: str) -> Path:
    """``<root>/figures/<notebook>/`` (created), where a notebook exports its figures.

    ``CNNX_FIGURES`` overrides ``<root>/figures``.
    """
    base = Path(os.environ.get("CNNX_FIGURES") or project_root() / "figures")
    path = base / notebook
    path.mkdir(parents=True, exist_ok=True)
    return path


def artifacts_dir(*parts: str) -> Path:
    """``<root>/artifacts/<parts>`` (created): cached checkpoints and tables shared by
    notebooks. ``CNNX_ARTIFACTS`` overrides ``<root>/artifacts``."""
    base = Path(os.environ.get("CNNX_ARTIFACTS") or project_root() / "artifacts")
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def scale_settings(scale: str, table: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Pick the settings of ``scale`` from ``table`` (scale -> settings dict).

    Examples
    --------
    >>> scale_settings("smoke", {"smoke": {"epochs": 1}, "embedded": {"epochs": 20},
    ...                          "cpu": {"epochs": 40}, "full": {"epochs": 250}})
    {'epochs': 1}
    """
    check_choice("scale", scale, SCALES)
    missing = [s for s in SCALES if s not in table]
    if missing:
        raise ValueError(f"settings table must define every scale {SCALES}, missing {missing}")
    return dict(table[scale])
