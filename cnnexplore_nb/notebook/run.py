"""Execute the notebooks top to bottom, headless, at a chosen scale, and keep them viewable.

``python -m cnnexplore_nb.notebook --scale embedded`` runs every ``notebooks/NN_*.ipynb`` in
order with papermill, injecting ``SCALE``. Executed copies go to ``notebooks/executed/``
(never over the sources in ``notebooks/``, which stay output-free in git; the folder holds a
``.gitignore`` of its own), so ``jupyter lab notebooks/`` shows them. Each executed notebook
is

* **trusted** (signed with Jupyter's notary, as if you had run it yourself), so JupyterLab
  shows its figures and saved panels instead of blank outputs, and
* also written as **HTML** (``<name>.html``, images embedded, BokehJS inline: opens offline
  in any browser; the live panels need a kernel and show a note instead, their figures are
  in ``figures/<notebook>/``).

Each notebook exports its figures to ``figures/<notebook>/``.

Parameters: ``-p NAME=VALUE`` (repeatable) sets a value of the notebooks' parameters cell
(``-p SEED=1``; values are Python literals, else strings), and the environment variable
``DATA_DIR`` sets ``DATA_DIR`` (a relative path is taken from the current folder), in every
notebook whose parameters cell has that name. Per notebook the runner prints its wall time,
its CPU time (this process and its children: the kernel) and the load average.

Every exported figure is reviewed as printed (:func:`cnnexplore_nb.plots.check_figure`:
overlapping or clipped labels, raw identifiers, widths): the runner sets
``CNNX_FIGURE_CHECK=1`` unless it is set, and after each notebook prints how many of the
figures it exported are clean and every problem of the others (``CNNX_FIGURE_CHECK=0``
turns the review off).
"""

from __future__ import annotations

import argparse
import ast
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .scales import SCALES, project_root

__all__ = [
    "executed_dir",
    "figure_review",
    "list_notebooks",
    "make_viewable",
    "notebook_parameters",
    "parse_parameters",
    "run_notebook",
    "run_notebooks",
]

DATA_ENV = "DATA_DIR"


def parse_parameters(items: Sequence[str]) -> dict[str, Any]:
    """``["SEED=1", "DATA_DIR=../data"]`` -> ``{"SEED": 1, "DATA_DIR": "../data"}``.

    A value is read as a Python literal (``1``, ``0.5``, ``None``, ``True``, ``"x"``,
    ``[1, 2]``) and is otherwise the string as given; later items win.

    Raises
    ------
    ValueError
        An item without ``=`` or whose name is not a Python identifier.
    """
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = str(item).partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ValueError(
                f"expected NAME=VALUE with NAME a Python identifier (e.g. SEED=1), got {item!r}"
            )
        try:
            out[name] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            out[name] = text
    return out


def notebook_parameters(path: str | os.PathLike) -> list[str]:
    """The names assigned in a notebook's cell tagged ``parameters`` (in order)."""
    import nbformat

    nb = nbformat.read(Path(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            names = []
            for node in ast.parse(cell.source).body:
                targets = (
                    node.targets
                    if isinstance(node, ast.Assign)
                    else ([node.target] if isinstance(node, ast.AnnAssign) else [])
                )
                names += [t.id for t in targets if isinstance(t, ast.Name)]
            return names
    return []


def _resolved(parameters: dict[str, Any] | None) -> dict[str, Any]:
    """``parameters`` with ``DATA_DIR`` from the environment unless given; paths absolute
    (the notebooks run in ``notebooks/``)."""
    params = dict(parameters or {})
    env = os.environ.get(DATA_ENV, "").strip()
    if env and DATA_ENV not in params:
        params[DATA_ENV] = env
    if isinstance(params.get(DATA_ENV), str):
        params[DATA_ENV] = str(Path(params[DATA_ENV]).expanduser().resolve())
    return params


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its finished children."""
    t = os.times()
    return t.user + t.system, t.children_user + t.children_system


def figure_review(folder: str | os.PathLike, since: float = 0.0) -> tuple[int, list[str]]:
    """``(figures checked, problem lines)`` of the figure reports under ``folder`` written at
    or after ``since`` (a ``time.time()``): what one notebook's run exported."""
    from ..plots.check import read_reports

    folder = Path(folder)
    fresh = {p.name for p in folder.rglob("*.layout.json") if p.stat().st_mtime >= since}
    reports = [r for r in read_reports(folder) if f"{r.name}.layout.json" in fresh]
    return len(reports), [line for r in reports if not r.ok for line in r.summary().splitlines()]


def list_notebooks(root: str | os.PathLike | None = None) -> list[Path]:
    """The notebooks of ``<root>/notebooks`` in execution order (by file name)."""
    folder = Path(root or project_root()) / "notebooks"
    if not folder.is_dir():
        raise FileNotFoundError(f"expected a notebooks/ folder under {str(folder.parent)!r}")
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def executed_dir(root: str | os.PathLike | None = None) -> Path:
    """``<root>/notebooks/executed/`` (created, git-ignored by its own ``.gitignore``)."""
    folder = Path(root or project_root()) / "notebooks" / "executed"
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text(
            "# executed notebooks and their HTML: made by cnnexplore_nb.notebook\n*\n"
        )
    return folder


def make_viewable(path: str | os.PathLike, *, trust: bool = True, html: bool = True) -> list[Path]:
    """Trust an executed notebook and write it as HTML beside it; return the HTML path(s).

    Parameters
    ----------
    path : str or PathLike
        An executed ``.ipynb``.
    trust : bool
        Sign it with Jupyter's notary (the database of the current user), so JupyterLab
        renders its JavaScript and widget outputs.
    html : bool
        Write ``<name>.html`` (nbconvert's lab template, images embedded).

    Notes
    -----
    A notary that cannot write its database (a read-only home) leaves the notebook
    untrusted and says so; the HTML is written either way.
    """
    import nbformat

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    if trust:
        try:
            from nbformat.sign import NotebookNotary

            NotebookNotary().sign(nb)
        except Exception as exc:  # noqa: BLE001 - a trust database we cannot write
            print(f"[run_notebooks] could not trust {path.name}: {exc}", flush=True)
    written = []
    if html:
        from nbconvert import HTMLExporter

        from ..io import atomic_path

        exporter = HTMLExporter(embed_images=True)
        page = _without_widget_views(nb)
        with warnings.catch_warnings():
            # nbconvert notes outputs it has no renderer for (e.g. an empty display)
            warnings.simplefilter("ignore", UserWarning)
            body, _ = exporter.from_notebook_node(page, resources={"metadata": {"name": path.stem}})
        target = path.with_suffix(".html")
        with atomic_path(target) as tmp:
            Path(tmp).write_text(body, encoding="utf-8")
        mask = os.umask(0o022)
        os.umask(mask)
        target.chmod(0o666 & ~mask)  # the usual permissions, not the temporary file's 0600
        written.append(target)
    return written


_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _without_widget_views(nb: Any) -> Any:
    """A copy of ``nb`` whose widget outputs show their text instead (a static page has no
    kernel to drive them, and their JavaScript would have to come from the internet)."""
    import copy

    page = copy.deepcopy(nb)
    page.metadata.pop("widgets", None)
    for cell in page.cells:
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data and _WIDGET_VIEW in data and len(data) > 1:
                del data[_WIDGET_VIEW]
    return page


def run_notebook(
    path: str | os.PathLike,
    *,
    scale: str = "embedded",
    output_dir: str | os.PathLike | None = None,
    parameters: dict | None = None,
    timeout: int | None = None,
    trust: bool = True,
    html: bool = True,
) -> Path:
    """Execute one notebook with papermill at ``scale``; return the executed copy's path.

    The copy goes to ``output_dir`` (default :func:`executed_dir`), trusted and with an HTML
    twin (see :func:`make_viewable`; ``trust=False`` / ``html=False`` skip either).
    ``parameters`` the notebook's parameters cell does not name are not injected.
    """
    import papermill as pm

    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    path = Path(path)
    out_dir = Path(output_dir) if output_dir is not None else executed_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    params = {"SCALE": scale, **(parameters or {})}
    declared = notebook_parameters(path)
    params = {k: v for k, v in params.items() if k in declared or k == "SCALE"}
    pm.execute_notebook(
        str(path),
        str(out),
        parameters=params,
        cwd=str(path.parent),
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=timeout,
    )
    if trust or html:
        make_viewable(out, trust=trust, html=html)
    return out


def run_notebooks(
    names: Sequence[str] | None = None,
    *,
    scale: str = "embedded",
    output_dir: str | os.PathLike | None = None,
    timeout: int | None = None,
    html: bool = True,
    parameters: dict[str, Any] | None = None,
) -> list[tuple[str, float]]:
    """Execute the notebooks (all, or those whose name starts with one of ``names``).

    ``parameters`` (and ``$DATA_DIR``, see the module docstring) go to every notebook whose
    parameters cell names them; a name no selected notebook has is an error. Returns
    ``(notebook stem, wall seconds)`` per notebook; the wall and CPU times and the load
    average are printed as each one ends.
    """
    notebooks = list_notebooks()
    if names:
        notebooks = [p for p in notebooks if any(p.stem.startswith(n) for n in names)]
        if not notebooks:
            raise ValueError(f"no notebook matches {list(names)}; have {list_notebooks()}")
    params = _resolved(parameters)
    declared = {nb.stem: notebook_parameters(nb) for nb in notebooks}
    known = sorted({n for names_ in declared.values() for n in names_})
    unknown = sorted(set(parameters or {}) - set(known))
    if unknown:
        raise ValueError(
            f"no selected notebook has the parameter(s) {unknown} in its parameters cell; "
            f"they have {known}"
        )
    out_dir = Path(output_dir) if output_dir is not None else executed_dir()
    os.environ.setdefault("CNNX_FIGURE_CHECK", "1")  # the kernels inherit it
    review = os.environ["CNNX_FIGURE_CHECK"].strip().lower() not in ("", "0", "false", "no")
    timings = []
    cpu_total = 0.0
    for nb in notebooks:
        t0, (own0, kids0) = time.perf_counter(), _cpu_seconds()
        started = time.time() - 1.0  # file times may be rounded down
        given = {k: v for k, v in params.items() if k in declared[nb.stem]}
        shown = "".join(f", {k}={v!r}" for k, v in given.items())
        print(f"[run_notebooks] {nb.name} (scale={scale}{shown}) ...", flush=True)
        run_notebook(
            nb, scale=scale, output_dir=out_dir, timeout=timeout, html=html, parameters=given
        )
        dt = time.perf_counter() - t0
        own1, kids1 = _cpu_seconds()
        cpu = (own1 - own0) + (kids1 - kids0)
        cpu_total += cpu
        timings.append((nb.stem, dt))
        load = "/".join(f"{v:.2f}" for v in os.getloadavg())
        print(
            f"[run_notebooks] {nb.name} done: wall {dt:.1f} s, CPU {cpu:.1f} s (runner "
            f"{own1 - own0:.1f} + kernel {kids1 - kids0:.1f}), load {load} (1/5/15 min)",
            flush=True,
        )
        if review:
            from .scales import figures_dir

            n, problems = figure_review(figures_dir(nb.stem), since=started)
            verdict = "all clean" if not problems else f"{len(problems)} problem(s):"
            print(f"[run_notebooks] {nb.name}: {n} exported figure(s) checked, {verdict}")
            for line in problems:
                print(f"    {line}")
    total = sum(t for _, t in timings)
    figures = Path(os.environ.get("CNNX_FIGURES") or project_root() / "figures")
    print(
        f"[run_notebooks] {len(timings)} notebooks: wall {total:.1f} s ({total / 60:.1f} min), "
        f"CPU {cpu_total:.1f} s ({cpu_total / 60:.1f} min); executed notebooks "
        f"(trusted{', with HTML' if html else ''}) in {out_dir}; figures in {figures}"
    )
    return timings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook name prefixes (default: all)")
    parser.add_argument("--scale", default="embedded", choices=SCALES)
    parser.add_argument(
        "--output-dir", default=None, help="executed notebooks (default notebooks/executed/)"
    )
    parser.add_argument("--timeout", type=int, default=None, help="seconds per cell")
    parser.add_argument("--no-html", action="store_true", help="do not write HTML copies")
    parser.add_argument(
        "-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
        help="set a parameters-cell value, e.g. -p SEED=1 (repeatable; $DATA_DIR sets DATA_DIR)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        params = parse_parameters(args.parameter)
    except ValueError as exc:
        parser.error(str(exc))
    if "SCALE" in params:
        parser.error("set the scale with --scale (or SCALE= for scripts/run.sh), not -p SCALE")
    run_notebooks(
        args.names,
        scale=args.scale,
        output_dir=args.output_dir,
        timeout=args.timeout,
        html=not args.no_html,
        parameters=params,
    )
    return 0
