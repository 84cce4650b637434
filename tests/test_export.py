"""export(): valid, non-trivial, deterministic files; atomic; clear errors."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import matplotlib.image as mpimg
import numpy as np
import pytest

from cnnexplore_nb import plots


@pytest.fixture(scope="module")
def fig():
    maps = np.random.default_rng(0).random((4, 16, 16))
    return plots.map_grid(maps, ncols=2, highlight=[1])


def test_png_svg_pdf_valid_and_nontrivial(tmp_path, fig):
    written = plots.export(fig, tmp_path / "grid", dpi=100)
    assert [p.name for p in written] == ["grid.png", "grid.svg", "grid.pdf"]
    png, svg, pdf = written
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 5_000
    pixels = mpimg.imread(png)
    assert pixels.ndim == 3 and float(pixels[..., :3].std()) > 0.05  # not a blank image
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert svg.stat().st_size > 10_000
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.stat().st_size > 5_000
    # the usual permissions, not mkstemp's 0600
    mask = os.umask(0o022)
    os.umask(mask)
    assert png.stat().st_mode & 0o777 == 0o666 & ~mask
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_dpi_changes_png_size(tmp_path, fig):
    (small,) = plots.export(fig, tmp_path / "a", "png", dpi=50)
    (large,) = plots.export(fig, tmp_path / "b", "png", dpi=150)
    h1, w1 = mpimg.imread(small).shape[:2]
    h2, w2 = mpimg.imread(large).shape[:2]
    assert w2 == pytest.approx(3 * w1, rel=0.05) and h2 == pytest.approx(3 * h1, rel=0.05)


def test_svg_pdf_byte_identical_across_runs(tmp_path, fig):
    before = os.environ.get("SOURCE_DATE_EPOCH")
    first = plots.export(fig, tmp_path / "one", ("svg", "pdf"))
    second = plots.export(fig, tmp_path / "two", ("svg", "pdf"))
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes()
    assert os.environ.get("SOURCE_DATE_EPOCH") == before  # environment restored


def test_extension_selects_format_and_html_is_offline(tmp_path, fig):
    (pdf,) = plots.export(fig, tmp_path / "only.pdf")
    assert pdf.name == "only.pdf" and sorted(p.name for p in tmp_path.iterdir()) == ["only.pdf"]
    (page,) = plots.export(fig, tmp_path / "page", ["html"])
    text = page.read_text()
    assert "<html" in text.lower() and "cdn.bokeh.org" not in text
    assert "Bokeh" in text and page.stat().st_size > 500_000  # BokehJS inlined


def test_dynamicmap_exported_at_current_state(tmp_path):
    import holoviews as hv
    from holoviews.streams import Stream

    sel = Stream.define("Sel", i=0)()
    maps = np.random.default_rng(1).random((3, 8, 8))
    dmap = hv.DynamicMap(lambda i: plots.map_image(maps[i], title=f"map {i}"), streams=[sel])
    sel.event(i=2)
    static = plots.static_view(dmap)
    np.testing.assert_allclose(static.dimension_values(2, flat=False)[::-1], maps[2])
    (png,) = plots.export(dmap, tmp_path / "dyn", "png", dpi=50)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_unknown_format_lists_choices_and_writes_nothing(tmp_path, fig):
    with pytest.raises(
        ValueError, match=r"unknown export format 'jpg'.*Expected one of: png, svg, pdf, html"
    ):
        plots.export(fig, tmp_path / "x", ["png", "jpg"])
    assert list(tmp_path.iterdir()) == []


def test_unwritable_destination(tmp_path, fig):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    with pytest.raises(NotADirectoryError, match="got a file"):
        plots.export(fig, blocker / "fig", "png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_failure_midway_leaves_no_partial_set(tmp_path, fig, monkeypatch):
    from matplotlib.figure import Figure

    real_save = Figure.savefig

    def flaky(self, fname, *args, **kw):
        if str(fname).endswith(".pdf"):
            raise RuntimeError("renderer crashed")
        return real_save(self, fname, *args, **kw)

    monkeypatch.setattr(Figure, "savefig", flaky)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        plots.export(fig, tmp_path / "set", ("png", "svg", "pdf"), dpi=50)
    assert list(tmp_path.iterdir()) == []  # png and svg were not moved into place either


# -- the paper style -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "width, inches", [("column", 3.5), ("page", 7.16), (5.0, 5.0), (None, 3.5)]
)
def test_width_sets_the_print_size(tmp_path, fig, width, inches):
    (png,) = plots.export(fig, tmp_path / "w", "png", width=width, dpi=300)
    w = mpimg.imread(png).shape[1]
    assert w == pytest.approx(inches * 300, abs=2)  # exact width: no tight bounding box


def test_positional_call_of_older_notebooks_still_works(tmp_path, fig):
    written = plots.export(fig, tmp_path / "old", ["png"], dpi=100, fig_size=150)
    assert [p.name for p in written] == ["old.png"]
    with pytest.raises(ValueError, match="width must be 'column', 'page' or a number"):
        plots.export(fig, tmp_path / "bad", "png", width="poster")


def test_svg_and_pdf_keep_text_as_text(tmp_path):
    import holoviews as hv

    curve = hv.Curve([1, 3, 2], kdims=[hv.Dimension("epoch")], vdims=[hv.Dimension("IoU")])
    svg, pdf = plots.export(curve.opts(title="CNN6 training"), tmp_path / "t", ("svg", "pdf"))
    root = ET.parse(svg).getroot()
    texts = ["".join(e.itertext()) for e in root.iter() if e.tag.endswith("text")]
    assert "CNN6 training" in texts and "epoch" in texts  # editable text, not glyph paths
    data = pdf.read_bytes()
    assert b"/FontFile2" in data  # TrueType (Type 42) fonts embedded: text stays text


def test_fonts_at_print_size(tmp_path):
    import matplotlib

    from cnnexplore_nb.plots.paper import draw

    stats = np.random.default_rng(0).random((3, 3))
    fig = plots.correlation_image(stats, title="r between maps")
    with matplotlib.rc_context(plots.paper_rc()):
        figure = draw(fig)
        sizes = {t.get_fontsize() for t in figure.findobj(matplotlib.text.Text) if t.get_text()}
    assert sizes and min(sizes) >= 6 and max(sizes) <= 9


# -- notebooks are committed without outputs -------------------------------------------------
def test_git_filter_strips_notebook_outputs(tmp_path):
    """``scripts/run.sh strip-filter`` plus ``.gitattributes``: a notebook saved with outputs
    (and JupyterLab's widget state) is staged without them; the file on disk keeps them."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import nbformat

    pytest.importorskip("nbstripout")
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    root = Path(__file__).resolve().parents[1]
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(root / "scripts" / "run.sh", repo / "scripts" / "run.sh")
    shutil.copy(root / ".gitattributes", repo / ".gitattributes")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")  # fmt: skip

    def run(*cmd):
        return subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True, text=True)

    run(git, "init", "-q")
    run("bash", "scripts/run.sh", "strip-filter")
    assert "nbstripout" in run(git, "config", "filter.nbstripout.clean").stdout
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('hello')")
    cell.outputs = [nbformat.v4.new_output("stream", text="hello\n")]
    cell.execution_count = 3
    nb.cells = [cell, nbformat.v4.new_markdown_cell("text")]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"x": 1}}}
    nbformat.write(nb, repo / "n.ipynb")
    run(git, "add", "n.ipynb")
    staged = nbformat.reads(run(git, "show", ":n.ipynb").stdout, as_version=4)
    assert staged.cells[0].source == "print('hello')"  # the code stays
    assert staged.cells[0].outputs == [] and staged.cells[0].execution_count is None
    assert "widgets" not in staged.metadata
    on_disk = nbformat.read(repo / "n.ipynb", as_version=4)
    assert on_disk.cells[0].outputs  # the working copy is not touched
    # outside a git checkout the task does nothing (and does not fail)
    plain = tmp_path / "plain"
    shutil.copytree(repo / "scripts", plain / "scripts")
    subprocess.run(["bash", "scripts/run.sh", "strip-filter"], cwd=plain, env=env, check=True,
                   capture_output=True)  # fmt: skip


def test_committed_notebooks_pass_the_filter_unchanged():
    """The stored notebooks are already stripped (cell ids kept): installing the filter does
    not show them as modified."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("nbstripout")
    for nb in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb")):
        text = nb.read_text()
        out = subprocess.run([sys.executable, "-m", "nbstripout", "--keep-id"], input=text,
                             capture_output=True, text=True, check=True)  # fmt: skip
        assert out.stdout == text, f"{nb.name} holds outputs or metadata the filter strips"
