"""The README's library example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102
    tables = namespace["tables"]
    assert list(tables.stats.columns)[:2] == ["A_layer", "B_layer"]
    assert list(tables.explorer("stats").columns)[:2] == ["CNN6(1)_layer", "CNN6(2)_layer"]
    assert namespace["r"].shape == (64, 64)
    assert any((tmp_path / "artifacts" / "readme_example").iterdir())
    assert "conv_module6" in capsys.readouterr().out
