"""Every notebook executes top to bottom at smoke scale and exports its figures.

The run is shared with the figure check (``tests/test_figure_check.py``) through the
session fixture ``smoke_notebooks`` (``tests/conftest.py``): each notebook runs once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnexplore_nb.notebook import list_notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = list_notebooks(ROOT)


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_at_smoke_scale(notebook, smoke_notebooks):
    out = smoke_notebooks.run(notebook)
    assert out.is_file()
    exported = list((smoke_notebooks.figures / notebook.stem).glob("*"))
    suffixes = {p.suffix for p in exported}
    assert {".png", ".svg", ".pdf"} <= suffixes, f"{notebook.stem} exported {sorted(suffixes)}"
