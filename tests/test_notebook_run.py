"""The notebook runner's parameters: ``-p NAME=VALUE``, ``$DATA_DIR`` and what is injected.

A two-notebook project made in code is executed for real (papermill, a python3 kernel).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from cnnexplore_nb.notebook import run as runner


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["SEED=1"], {"SEED": 1}),
        (["LR=0.5", "FLAG=True", "X=None"], {"LR": 0.5, "FLAG": True, "X": None}),
        (["DATA_DIR=../shared/data"], {"DATA_DIR": "../shared/data"}),  # not a literal: str
        (["NAME='a b'", "L=[1, 2]"], {"NAME": "a b", "L": [1, 2]}),
        (["SEED=1", "SEED=2"], {"SEED": 2}),  # the last one wins
        (["EQ=a=b"], {"EQ": "a=b"}),
        ([], {}),
    ],
)
def test_parse_parameters(items, expected):
    assert runner.parse_parameters(items) == expected


@pytest.mark.parametrize("bad", ["SEED", "=1", "1X=2", "A B=1"])
def test_parse_parameters_rejects_malformed_items(bad):
    with pytest.raises(ValueError, match=rf"expected NAME=VALUE .*got '{bad}'"):
        runner.parse_parameters([bad])


def test_command_line_rejects_malformed_and_scale_parameters(capsys):
    with pytest.raises(SystemExit):
        runner.main(["-p", "SEED"])
    assert "expected NAME=VALUE" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        runner.main(["-p", "SCALE=cpu"])
    assert "--scale" in capsys.readouterr().err


def _notebook(path: Path, params: str, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# x"), cell, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


# a bare hv.Curve's axes are labelled "x" and "y": the review must name the figure
_EXPORT = (
    "import holoviews as hv\n"
    "from cnnexplore_nb.notebook import figures_dir\n"
    "from cnnexplore_nb.plots import export\n"
    "export(hv.Curve([1, 2, 3]), figures_dir('01_b') / 'bare_curve', 'png')"
)


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    body = "print(f'SCALE={SCALE} SEED={SEED!r} DATA_DIR={DATA_DIR!r}')"
    _notebook(tmp_path / "notebooks/00_a.ipynb",
              'SCALE = "embedded"\nSEED: int = 0\nDATA_DIR = None', body)  # fmt: skip
    _notebook(tmp_path / "notebooks/01_b.ipynb", 'SCALE = "embedded"',
              "print(f'SCALE={SCALE}', 'SEED' in globals())\n" + _EXPORT)  # fmt: skip
    monkeypatch.setenv("CNNX_ROOT", str(tmp_path))
    monkeypatch.delenv("DATA_DIR", raising=False)
    monkeypatch.setenv("CNNX_FIGURE_CHECK", "")  # restored after the test, whatever it was
    monkeypatch.delenv("CNNX_FIGURE_CHECK")  # the runner turns the review on itself
    return tmp_path


def test_notebook_parameters_names_the_parameters_cell(project):
    assert runner.notebook_parameters(project / "notebooks/00_a.ipynb") == [
        "SCALE", "SEED", "DATA_DIR"
    ]  # fmt: skip


def test_unknown_parameter_is_refused_before_running(project):
    with pytest.raises(
        ValueError, match=r"parameter\(s\) \['SEDE'\].*\['DATA_DIR', 'SCALE', 'SEED'\]"
    ):
        runner.run_notebooks(parameters={"SEDE": 1}, output_dir=project / "out", html=False)
    assert not (project / "out").exists()


@pytest.mark.slow
def test_parameters_and_data_dir_reach_the_notebooks_that_have_them(project, monkeypatch, capsys):
    (project / "data").mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setenv("DATA_DIR", "data")  # relative to the current folder
    runner.main(["--scale", "smoke", "-p", "SEED=1", "--no-html",
                 "--output-dir", str(project / "out")])  # fmt: skip
    printed = capsys.readouterr().out
    outputs = {}
    for name in ("00_a", "01_b"):
        nb = nbformat.read(project / f"out/{name}.ipynb", as_version=4)
        outputs[name] = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert outputs["00_a"].strip() == f"SCALE=smoke SEED=1 DATA_DIR={str(project / 'data')!r}"
    assert outputs["01_b"].strip() == "SCALE=smoke False"  # nothing it does not declare
    assert "00_a.ipynb (scale=smoke, SEED=1, DATA_DIR=" in printed
    for name in ("00_a", "01_b"):
        line = next(x for x in printed.splitlines() if f"{name}.ipynb done:" in x)
        wall, cpu = (float(line.split(k)[1].split(" s")[0]) for k in ("wall ", "CPU "))
        kernel = float(line.split("kernel ")[1].split(")")[0])
        assert wall > 0 and cpu >= kernel > 0 and "load " in line  # the kernel is counted
    assert "2 notebooks: wall" in printed
    assert "00_a.ipynb: 0 exported figure(s) checked, all clean" in printed
    _, review = printed.split("01_b.ipynb: 1 exported figure(s) checked, ")
    problems = [x.strip() for x in review.splitlines()[1:] if x.startswith("    ")]
    assert review.startswith(f"{len(problems)} problem(s):") and problems, review
    assert all(x.startswith("bare_curve: [") for x in problems)
    assert any(x.startswith("bare_curve: [raw-name]") for x in problems)


def test_figure_review_reads_the_reports_of_this_run_only(tmp_path):
    import os

    from cnnexplore_nb.plots.check import FigureReport, Problem, write_report

    write_report(FigureReport("old", 3.5, 2.0, 3, [Problem("overlap", "a overlaps b")]),
                 tmp_path / "old.layout.json")  # fmt: skip
    os.utime(tmp_path / "old.layout.json", (1_000, 1_000))
    write_report(FigureReport("good", 3.5, 2.0, 3), tmp_path / "good.layout.json")
    (tmp_path / "sub").mkdir()
    write_report(FigureReport("bad", 9.0, 2.0, 3, [Problem("width", "figure is 9.00 in wide")]),
                 tmp_path / "sub" / "bad.layout.json")  # fmt: skip
    n, problems = runner.figure_review(tmp_path, since=2_000)
    assert n == 2 and problems == ["bad: [width] figure is 9.00 in wide"]
    assert runner.figure_review(tmp_path)[0] == 3
