"""Sphinx configuration: API reference from the numpydoc docstrings, notebooks as gallery.

Build offline (warnings are errors):

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The gallery shows the executed notebooks of the last ``bash scripts/run.sh notebooks`` run
(``notebooks/executed/``) when they exist, else the notebooks without outputs.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

project = "cnnexplore_nb"
author = "cnnexplore_nb developers"
copyright = "2026, cnnexplore_nb developers"  # noqa: A001 - Sphinx's name

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_nb",
]
autosummary_generate = True
# autosummary writes docs/generated/ afresh on every build; pages of names that moved or
# were removed would otherwise linger there and fail the build (not in any toctree)
shutil.rmtree(Path(__file__).resolve().parent / "generated", ignore_errors=True)
autosummary_imported_members = False
autodoc_default_options: dict = {}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
nb_execution_mode = "off"  # the gallery shows notebooks as executed by the main job
nb_merge_streams = True
myst_enable_extensions = ["dollarmath"]
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type", "misc.highlighting_failure"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
html_theme = "pydata_sphinx_theme"
html_theme_options = {"navigation_with_keys": False}
html_title = "cnnexplore_nb"
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
templates_path = ["_templates"]
# docstrings write absolute values and set sizes as |r|, |L ∩ P|: not substitutions
_BARS = ["r", "x||y", "L ∩ P", "L ∪ P", "L", "P", "cos", "d(central output unit) / d(input)"]
rst_prolog = "\n".join(f".. |{b}| replace:: \\|{b}\\|" for b in _BARS)


def _copy_gallery() -> None:
    """Copy the notebooks (executed if available) into docs/gallery/."""
    gallery = Path(__file__).parent / "gallery"
    executed = ROOT / "notebooks" / "executed"
    gallery.mkdir(exist_ok=True)
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        src = executed / nb.name if (executed / nb.name).is_file() else nb
        shutil.copyfile(src, gallery / nb.name)


_copy_gallery()
