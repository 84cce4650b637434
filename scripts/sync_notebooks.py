"""Write each ``notebooks/NN_*.py`` (jupytext percent format, the reviewed source) to its
paired ``.ipynb`` with a kernelspec and no outputs.

    python scripts/sync_notebooks.py          # write the .ipynb files
    python scripts/sync_notebooks.py --check  # exit 1 if any .ipynb is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def render(py: Path) -> str:
    nb = jupytext.read(py)
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata.setdefault("jupytext", {})["formats"] = "ipynb,py:percent"
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:03d}"  # deterministic ids, so --check compares content only
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = []
    for py in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
        target = py.with_suffix(".ipynb")
        text = render(py)
        if not target.exists() or target.read_text() != text:
            stale.append(target.name)
            if not args.check:
                target.write_text(text)
    if args.check and stale:
        print("out of date (run python scripts/sync_notebooks.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
