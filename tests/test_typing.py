"""A type checker (basedpyright, basic mode) resolves every name the README uses."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKER = Path(sys.executable).with_name("basedpyright")


def _check(tmp_path: Path, code: str) -> subprocess.CompletedProcess:
    (tmp_path / "pyrightconfig.json").write_text(
        json.dumps({"extraPaths": [str(ROOT)], "typeCheckingMode": "basic",
                    "pythonVersion": f"{sys.version_info[0]}.{sys.version_info[1]}"})
    )  # fmt: skip
    (tmp_path / "example.py").write_text(code)
    return subprocess.run(
        [str(CHECKER), "--pythonpath", sys.executable, "example.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.skipif(not CHECKER.exists() and shutil.which("basedpyright") is None,
                    reason="basedpyright is installed by the test extra")  # fmt: skip
def test_readme_names_resolve_for_a_type_checker(tmp_path):
    block = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)[0]
    ok = _check(tmp_path, block)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 errors" in ok.stdout
    used = set(re.findall(r"\bcx\.(\w+)", block))
    assert {"create_model", "extract_activations", "correlation_tables"} <= used
    # the check can fail: a name the package does not export is reported
    bad = _check(tmp_path, "import cnnexplore_nb as cx\nprint(cx.no_such_name)\n")
    assert bad.returncode != 0 and "no_such_name" in bad.stdout
