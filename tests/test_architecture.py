"""The package's shape: imports point one way, mechanics exist once, the public face is typed."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "cnnexplore_nb"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _edges(module: str) -> set[str]:
    """Package modules that ``module`` imports (at any depth of its code)."""
    tree = ast.parse(MODULES[module].read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]  # fmt: skip
        for t in targets:
            while t and t not in MODULES:  # "pkg.mod.name" -> "pkg.mod"
                t = t.rpartition(".")[0]
            if t.startswith("cnnexplore_nb") and t != module:
                out.add(t)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_package():
    graph = {m: _edges(m) for m in MODULES}
    assert graph["cnnexplore_nb.prune.study"] >= {"cnnexplore_nb.prune.select"}  # sanity
    assert _cycles(graph) == []


def test_the_root_imports_nothing_heavy():
    code = (
        "import sys, cnnexplore_nb\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'holoviews', 'bokeh', 'ipywidgets', 'matplotlib', 'panel')]\n"
        "assert not heavy, heavy\n"
        "cnnexplore_nb.similarity_matrix\n"
        "assert 'holoviews' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_every_public_name_of_the_stub_resolves():
    import cnnexplore_nb

    stub = ast.parse((PKG / "__init__.pyi").read_text())
    names = [a.asname or a.name for n in stub.body if isinstance(n, ast.ImportFrom)
             for a in n.names]  # fmt: skip
    assert set(names) <= set(cnnexplore_nb.__all__)
    for name in names:
        assert getattr(cnnexplore_nb, name) is not None, name
    with pytest.raises(AttributeError):
        cnnexplore_nb.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    "pattern",
    ["register_forward_hook(", "register_forward_pre_hook(", ".train(was"],
)
def test_hook_mechanics_exist_once(pattern):
    """Hooks on / forward / hooks off / mode restored: only in _hooks.Hooks."""
    users = sorted(
        _module_name(p)
        for p in PKG.rglob("*.py")
        if pattern in p.read_text() and p.name != "_hooks.py"
    )
    assert users == []


def test_every_subpackage_imports():
    for name in MODULES:
        if name.endswith("__main__"):
            continue
        importlib.import_module(name)
