"""The front door: metadata, environment file, light import, notebook hygiene."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}


def _parse(req: str) -> set[tuple[str, str]]:
    m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[([^\]]+)\])?\s*(.*)", req.strip())
    assert m, req
    name, extras, spec = m.group(1).lower().replace("_", "-"), m.group(3), m.group(4)
    out = {(CONDA_NAMES.get(name, name), spec.replace(" ", ""))}
    if name == "dask" and extras == "distributed":
        out.add(("distributed", spec.replace(" ", "")))
    return out


def test_environment_yml_lists_the_pyproject_dependencies():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted: set[tuple[str, str]] = set()
    for req in project["dependencies"]:
        wanted |= _parse(req)
    for extra in ("dask", "test"):
        for req in project["optional-dependencies"][extra]:
            wanted |= _parse(req)
    env_lines = (ROOT / "environment.yml").read_text().splitlines()
    listed = set()
    for line in env_lines:
        m = re.fullmatch(r"\s*-\s*([A-Za-z0-9_.-]+)\s*(\S*)\s*", line)
        if m and m.group(1) not in ("conda-forge", "pip", "python"):
            listed.add((m.group(1).lower().replace("_", "-"), m.group(2)))
    assert wanted == listed, (
        f"only in pyproject: {sorted(wanted - listed)}; only in environment.yml: "
        f"{sorted(listed - wanted)}"
    )


def test_import_is_light():
    code = (
        "import sys, cnnexplore_nb as c; c.list_models; "
        "bad = [m for m in ('holoviews', 'bokeh', 'ipywidgets', 'matplotlib') if m in sys.modules];"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_resolve():
    import cnnexplore_nb

    missing = []
    for name in cnnexplore_nb.__all__:
        try:
            getattr(cnnexplore_nb, name)
        except (AttributeError, ImportError) as exc:
            missing.append(f"{name}: {exc}")
    assert not missing


def test_py_typed_is_shipped():
    assert (ROOT / "cnnexplore_nb" / "py.typed").is_file()


def _notebooks():
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_notebooks_are_stripped_and_in_sync():
    nbs = _notebooks()
    assert nbs, "no notebooks found"
    for nb_path in nbs:
        nb = json.loads(nb_path.read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "python3", nb_path.name
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, nb_path.name
        assert nb_path.with_suffix(".py").is_file(), f"{nb_path.name} has no paired .py"
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sync_notebooks.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_every_notebook_starts_with_a_parameters_cell():
    for nb_path in _notebooks():
        nb = json.loads(nb_path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        first = code[0]
        assert "parameters" in first["metadata"].get("tags", []), nb_path.name
        assert re.search(r'^SCALE\s*=\s*"embedded"', "".join(first["source"]), re.M), nb_path.name
