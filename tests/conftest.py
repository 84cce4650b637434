"""Shared fixtures: one smoke-scale run of the notebooks per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


class SmokeRun:
    """Runs each notebook at most once per session at smoke scale, with the figure check on.

    Artifacts are shared across notebooks (02 trains, 03/04/05 reuse), as in a real run;
    figures land in ``figures/<notebook>/`` with a ``<name>.layout.json`` report each.
    """

    def __init__(self, base: Path) -> None:
        self.artifacts, self.figures, self.outputs = (base / d for d in ("art", "fig", "out"))
        self._done: dict[str, Path | BaseException] = {}

    def run(self, notebook: Path) -> Path:
        """Execute ``notebook`` (once); return the executed copy or raise its error again."""
        from cnnexplore_nb.notebook import run_notebook

        if notebook.stem not in self._done:
            env = {
                "CNNX_ARTIFACTS": str(self.artifacts),
                "CNNX_FIGURES": str(self.figures),
                "CNNX_ROOT": str(ROOT),
                "CNNX_FIGURE_CHECK": "1",
            }
            old = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                out = run_notebook(
                    notebook, scale="smoke", output_dir=self.outputs, timeout=600, html=False
                )
                self._done[notebook.stem] = out
            except Exception as exc:  # noqa: BLE001 - remembered, raised for every asker
                self._done[notebook.stem] = exc
            finally:
                for k, v in old.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
        result = self._done[notebook.stem]
        if isinstance(result, BaseException):
            raise result
        return result


@pytest.fixture(scope="session")
def smoke_notebooks(tmp_path_factory) -> SmokeRun:
    """The session's smoke-scale notebook run (see :class:`SmokeRun`)."""
    return SmokeRun(tmp_path_factory.mktemp("smoke_notebooks"))
