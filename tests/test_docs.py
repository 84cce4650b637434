"""The API reference (numpydoc docstrings) and the notebook gallery build offline, warning-free."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_docs_build_with_warnings_as_errors(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    pytest.importorskip("myst_nb")
    out = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=1200, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-5000:]
    html = tmp_path / "html"
    api = html / "generated" / "cnnexplore_nb.similarity.measures.similarity_matrix.html"
    assert "Pearson" in api.read_text()  # a numpydoc page with real content
    gallery = sorted(p.name for p in (html / "gallery").glob("*.html"))
    assert len(gallery) == len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
