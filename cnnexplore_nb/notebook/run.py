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
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .scales import SCALES, project_root

__all__ = [
    "executed_dir",
    "list_notebooks",
    "make_viewable",
    "run_notebook",
    "run_notebooks",
]


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
    """
    import papermill as pm

    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    path = Path(path)
    out_dir = Path(output_dir) if output_dir is not None else executed_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    params = {"SCALE": scale, **(parameters or {})}
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
) -> list[tuple[str, float]]:
    """Execute the notebooks (all, or those whose name starts with one of ``names``)."""
    notebooks = list_notebooks()
    if names:
        notebooks = [p for p in notebooks if any(p.stem.startswith(n) for n in names)]
        if not notebooks:
            raise ValueError(f"no notebook matches {list(names)}; have {list_notebooks()}")
    out_dir = Path(output_dir) if output_dir is not None else executed_dir()
    timings = []
    for nb in notebooks:
        t0 = time.perf_counter()
        print(f"[run_notebooks] {nb.name} (scale={scale}) ...", flush=True)
        run_notebook(nb, scale=scale, output_dir=out_dir, timeout=timeout, html=html)
        dt = time.perf_counter() - t0
        timings.append((nb.stem, dt))
        print(f"[run_notebooks] {nb.name} done in {dt:.1f} s", flush=True)
    total = sum(t for _, t in timings)
    print(
        f"[run_notebooks] {len(timings)} notebooks in {total:.1f} s; executed notebooks "
        f"(trusted{', with HTML' if html else ''}) in {out_dir}; figures in figures/"
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
    args = parser.parse_args(argv)
    run_notebooks(
        args.names,
        scale=args.scale,
        output_dir=args.output_dir,
        timeout=args.timeout,
        html=not args.no_html,
    )
    return 0
