"""Every notebook executes top to bottom at smoke scale and exports its figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnexplore_nb.notebook import list_notebooks, run_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = list_notebooks(ROOT)


@pytest.fixture(scope="session")
def shared_dirs(tmp_path_factory):
    # artifacts are shared across notebooks (02 trains, 03/04/05 reuse), as in a real run
    return tmp_path_factory.mktemp("artifacts"), tmp_path_factory.mktemp("figures")


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_at_smoke_scale(notebook, shared_dirs, tmp_path, monkeypatch):
    artifacts, figures = shared_dirs
    monkeypatch.setenv("CNNX_ARTIFACTS", str(artifacts))
    monkeypatch.setenv("CNNX_FIGURES", str(figures))
    monkeypatch.setenv("CNNX_ROOT", str(ROOT))
    out = run_notebook(notebook, scale="smoke", output_dir=tmp_path, timeout=600)
    assert out.is_file()
    exported = list((figures / notebook.stem).glob("*"))
    suffixes = {p.suffix for p in exported}
    assert {".png", ".svg", ".pdf"} <= suffixes, f"{notebook.stem} exported {sorted(suffixes)}"
