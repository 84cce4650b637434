"""Execute the notebooks top to bottom, headless, at a chosen scale.

``python -m cnnexplore_nb.notebook --scale embedded`` runs every
``notebooks/NN_*.ipynb`` in order with papermill, injecting ``SCALE``; executed copies go
to ``outputs/notebooks/`` (never back into ``notebooks/``, which stays output-free in git)
and each notebook exports its figures to ``figures/<notebook>/``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path

from .scales import SCALES, project_root

__all__ = ["list_notebooks", "run_notebook", "run_notebooks"]


def list_notebooks(root: str | os.PathLike | None = None) -> list[Path]:
    """The notebooks of ``<root>/notebooks`` in execution order (by file name)."""
    folder = Path(root or project_root()) / "notebooks"
    if not folder.is_dir():
        raise FileNotFoundError(f"expected a notebooks/ folder under {str(folder.parent)!r}")
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def run_notebook(
    path: str | os.PathLike,
    *,
    scale: str = "embedded",
    output_dir: str | os.PathLike | None = None,
    parameters: dict | None = None,
    timeout: int | None = None,
) -> Path:
    """Execute one notebook with papermill at ``scale``; return the executed copy's path."""
    import papermill as pm

    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    path = Path(path)
    out_dir = Path(output_dir or project_root() / "outputs" / "notebooks")
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
    return out


def run_notebooks(
    names: Sequence[str] | None = None,
    *,
    scale: str = "embedded",
    output_dir: str | os.PathLike | None = None,
    timeout: int | None = None,
) -> list[tuple[str, float]]:
    """Execute the notebooks (all, or those whose name starts with one of ``names``)."""
    notebooks = list_notebooks()
    if names:
        notebooks = [p for p in notebooks if any(p.stem.startswith(n) for n in names)]
        if not notebooks:
            raise ValueError(f"no notebook matches {list(names)}; have {list_notebooks()}")
    timings = []
    for nb in notebooks:
        t0 = time.perf_counter()
        print(f"[run_notebooks] {nb.name} (scale={scale}) ...", flush=True)
        run_notebook(nb, scale=scale, output_dir=output_dir, timeout=timeout)
        dt = time.perf_counter() - t0
        timings.append((nb.stem, dt))
        print(f"[run_notebooks] {nb.name} done in {dt:.1f} s", flush=True)
    total = sum(t for _, t in timings)
    print(f"[run_notebooks] {len(timings)} notebooks in {total:.1f} s; figures in figures/")
    return timings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook name prefixes (default: all)")
    parser.add_argument("--scale", default="embedded", choices=SCALES)
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("--timeout", type=int, default=None, help="seconds per cell")
    args = parser.parse_args(argv)
    run_notebooks(args.names, scale=args.scale, output_dir=args.output_dir, timeout=args.timeout)
    return 0
