"""Panels headless: setting a control changes what is drawn; caching; clear errors."""

from __future__ import annotations

import html

import numpy as np
import pytest
import torch

from cnnexplore_nb import plots
from cnnexplore_nb.similarity import correlation_tables
from cnnexplore_nb.widgets import CorrelationPanel, LayerPicker, MapBrowser


def drawn(plot) -> np.ndarray:
    """The image array Bokeh holds, back in array orientation (rows come back flipped)."""
    return np.asarray(plot.handles["source"].data["image"][0])[::-1]


@pytest.fixture(scope="module")
def maps():
    rng = np.random.default_rng(0)
    return {
        "conv_module1": torch.from_numpy(rng.random((2, 10, 12, 9)).astype(np.float32)),
        "conv_module2": torch.from_numpy(rng.random((2, 6, 8, 7)).astype(np.float32)),
    }


def test_map_slider_shows_that_maps_data(maps):
    b = MapBrowser(maps, grid=0)
    np.testing.assert_allclose(drawn(b.plot), maps["conv_module1"][0, 0].numpy())
    source = b.plot.handles["source"]
    b._index.value = 5  # what the slider does
    np.testing.assert_allclose(drawn(b.plot), maps["conv_module1"][0, 5].numpy())
    assert b.plot.handles["source"] is source  # patched in place, not rebuilt
    b.map_index = 7  # from Python
    assert b._index.value == 7
    np.testing.assert_allclose(drawn(b.plot), maps["conv_module1"][0, 7].numpy())
    b.image = 1
    np.testing.assert_allclose(drawn(b.plot), maps["conv_module1"][1, 7].numpy())


def test_layer_change_clamps_index_and_redraws(maps):
    b = MapBrowser(maps, map_index=8, grid=0)
    b.layer = "conv_module2"
    assert b.map_index == 5 and b._index.max == 5  # 6 maps in conv_module2
    np.testing.assert_allclose(drawn(b.plot), maps["conv_module2"][0, 5].numpy())


def test_page_grid_follows_slider(maps):
    b = MapBrowser(maps, grid=4, shared_scale=True)
    b.map_index = 6  # page 4..7
    slots = [p for p in b.page_plot.traverse(lambda p: p) if "source" in getattr(p, "handles", {})]
    data = [drawn(p) for p in slots]
    for k, d in enumerate(data):
        np.testing.assert_allclose(d, maps["conv_module1"][0, 4 + k].numpy())
    page = maps["conv_module1"][0, 4:8].numpy()
    mapper = slots[0].handles["color_mapper"]
    assert mapper.low == pytest.approx(page.min()) and mapper.high == pytest.approx(page.max())
    b.map_index = 5  # same page: nothing to redraw
    np.testing.assert_allclose(drawn(slots[0]), maps["conv_module1"][0, 4].numpy())
    b.map_index = 9  # next page: maps 8, 9 and two empty slots
    np.testing.assert_allclose(drawn(slots[1]), maps["conv_module1"][0, 9].numpy())
    assert (drawn(slots[2]) == 0).all()  # empty slot
    b.map_index = 6
    fig = b.figure()
    assert [img.opts.get("plot", backend="bokeh").kwargs["title"] for img in fig] == [
        f"map {i}" for i in range(4, 8)
    ]  # short tile titles: a narrow tile wrapped "module 1 · map 4"
    # the live page frames the selected map (6 = third slot of the page 4..7), only it
    colors = [p.state.outline_line_color for p in slots]
    assert colors[2] == plots.STYLE["highlight_color"]
    assert [c for k, c in enumerate(colors) if k != 2] == [None, None, None]
    b.map_index = 7  # same page: the frame moves without a redraw
    assert [p.state.outline_line_color for p in slots][3] == plots.STYLE["highlight_color"]
    assert slots[2].state.outline_line_color is None


def test_sliders_sized_to_their_range_and_grid_fits_the_screen():
    rng = np.random.default_rng(0)
    maps = {"wide": rng.random((1, 64, 8, 8)), "narrow": rng.random((3, 4, 8, 8))}
    b = MapBrowser(maps, grid=32, ncols=8)
    width = int(b._index.layout.width.removesuffix("px"))
    assert width >= 6 * 64  # about 6 px per map: every map reachable with the mouse
    b.layer = "narrow"
    assert int(b._index.layout.width.removesuffix("px")) < width
    assert b._image.layout.display == ""  # 3 images: the image slider shows
    b.layer = "wide"
    widths = [p.state.frame_width for p in b._slot_plots()]
    assert len(widths) == 32 and 8 * (max(widths) + 40) <= 1440  # 8 columns fit 1600 px


def test_browser_bad_inputs_raise_and_show_status(maps):
    b = MapBrowser(maps, grid=0)
    with pytest.raises(IndexError, match=r"map_index 10 out of range .*0 <= index < 10"):
        b.map_index = 10
    assert "map_index 10 out of range" in b.status.value
    with pytest.raises(KeyError, match="unknown layer 'conv_module3'; closest: 'conv_module2'"):
        b.layer = "conv_module3"
    assert "conv_module3" in b.status.value
    with pytest.raises(KeyError, match="unknown layer 'fc'"):
        MapBrowser(maps, layer="fc")
    assert b.map_index == 0 and b.layer == "conv_module1"  # state unchanged


def test_layer_picker_from_table_and_errors():
    pd = pytest.importorskip("pandas")
    table = pd.DataFrame(
        {
            "path": ["", "conv", "relu", "fc"],
            "type": ["Net", "Conv2d", "ReLU", "Linear"],
            "maps": [np.nan, 4, 4, np.nan],
        }
    )
    picker = LayerPicker(table)
    assert picker.paths == ["conv", "relu"]
    assert picker.widget.options[0] == ("conv (4 maps, Conv2d)", "conv")
    seen = []
    picker.observe(seen.append)
    picker.value = "relu"
    assert seen == ["relu"]
    with pytest.raises(KeyError, match="unknown layer 'fc'"):
        picker.value = "fc"
    multi = LayerPicker(["a", "b", "c"], multiple=True, value=["a", "c"])
    assert multi.value == ("a", "c")


def test_outside_picker_drives_its_browser(maps):
    single = LayerPicker(["conv_module1", "conv_module2"])
    b = MapBrowser(maps, grid=0, picker=single)
    single.value = "conv_module2"
    assert b.layer == "conv_module2"
    np.testing.assert_allclose(drawn(b.plot), maps["conv_module2"][0, 0].numpy())
    multi = LayerPicker(
        ["conv_module1", "conv_module2", "fc"], multiple=True, value=["conv_module2"]
    )
    b2 = MapBrowser(maps, grid=0, picker=multi)
    assert [v for _, v in b2.picker.widget.options] == [
        "conv_module2"
    ] and b2.layer == "conv_module2"
    multi.value = ["conv_module1", "fc"]  # fc has no maps: said so, the rest is offered
    assert [v for _, v in b2.picker.widget.options] == ["conv_module1"]
    assert "no maps extracted for fc" in b2.status.value
    b2.layer = "conv_module2"  # Python may still choose any layer with maps
    assert b2.layer == "conv_module2"


def test_layer_picker_from_model():
    from cnnexplore_nb.models import create_model

    model = create_model("cnn1", width=4)
    picker = LayerPicker.from_model(model, torch.zeros(1, 1, 8, 8))
    assert "conv_module1" in picker.paths and "classifier" in picker.paths


@pytest.fixture(scope="module")
def corr_maps():
    """Layer l1: maps 0-3 noisy copies of a base (|r| between ~0.8 and 1), 4-5 independent."""
    rng = np.random.default_rng(1)
    base = rng.normal(size=(1, 1, 16, 16))
    noise = [0.05, 0.3, 0.5, 0.6]
    l1 = [base + s * rng.normal(size=base.shape) for s in noise] + [
        rng.normal(size=base.shape) for _ in range(2)
    ]
    return {
        "l1": np.concatenate(l1, axis=1).astype(np.float32),
        "l2": rng.normal(size=(1, 3, 16, 16)).astype(np.float32),
    }


def counted():
    calls = []

    def compute(*args, **kwargs):
        calls.append(kwargs["measure"])
        return correlation_tables(*args, progress=False, **kwargs)

    return compute, calls


def heat_cells(panel) -> dict[tuple[str, str], float]:
    """(row layer, column layer) -> colour value, as the Bokeh heatmap holds them."""
    data = panel._heat_source().data
    return {
        (str(a), str(b)): float(v)
        for a, b, v in zip(data["A_layer"], data["B_layer"], data["zvalues"])
    }


def pair_title(panel) -> str:
    scatter = [p for p in panel._pair.plot.traverse(lambda p: p) if type(p).__name__ == "PointPlot"]
    return scatter[0].state.title.text


def colorbar_title(panel) -> str:
    for p in panel._heat.plot.traverse(lambda p: p):
        bar = getattr(p, "handles", {}).get("colorbar")
        if bar is not None:
            return bar.title
    raise AssertionError("no colour bar")


def test_threshold_updates_stats_heatmap_bars_without_recomputing(corr_maps):
    compute, calls = counted()
    panel = CorrelationPanel(corr_maps, names=("M", "M"), compute=compute, threshold=0.8)
    reference = correlation_tables(corr_maps, names=("M", "M"), progress=False)
    col_a, col_b = "A_layer", "B_layer"
    diag = (panel.stats[col_a].astype(str) == "l1") & (panel.stats[col_b].astype(str) == "l1")
    count_08 = int(panel.stats.loc[diag, "count"].iloc[0])
    mx = reference.maxima
    sel = (mx[col_a].astype(str) == "l1") & (mx[col_b].astype(str) == "l1")
    expected = lambda t: int((mx.loc[sel, "correlation"] >= t).sum())  # noqa: E731
    assert count_08 == expected(0.8) and expected(0.9) < expected(0.8)
    assert panel.heat_value == "percent"  # default: the share of well-correlated maps
    assert heat_cells(panel)["l1", "l1"] == pytest.approx(100 * count_08 / 6)
    assert colorbar_title(panel) == "% maps with max |r| ≥ 0.8"
    bars_before = panel._bars.plot.handles["source"].data["percent"].copy()
    html_before = panel.stats_html.value

    panel.threshold = 0.9
    count_09 = int(panel.stats.loc[diag, "count"].iloc[0])
    assert count_09 == expected(0.9) < count_08
    bars_after = panel._bars.plot.handles["source"].data["percent"]
    assert bars_after[0] == pytest.approx(100 * count_09 / 6)
    assert bars_after[0] < bars_before[0]
    assert colorbar_title(panel) == "% maps with max |r| ≥ 0.9"
    panel.heat_value = "count"
    cells = heat_cells(panel)
    assert cells["l1", "l1"] == count_09
    assert cells["l2", "l2"] == int(panel.stats["count"].iloc[3])
    assert colorbar_title(panel) == "maps with max |r| ≥ 0.9"
    assert (
        panel.stats_html.value != html_before and f"<td>{count_09}</td>" in panel.stats_html.value
    )
    assert "maps with max |r| ≥ 0.9</th>" in panel.stats_html.value  # display-name headers
    for t in np.linspace(0, 1, 11):
        panel._threshold.value = float(t)  # slider moves
    assert calls == ["pearson"]  # computed once
    panel.measure = "cosine"
    assert panel.heat_value == "count"  # the chosen statistic survives a measure change
    assert (
        colorbar_title(panel) == "maps with max |cos| ≥ 1"
        and "|cos|" in panel._threshold.description
    )
    panel.measure = "pearson"
    panel.threshold = 0.5
    assert calls == ["pearson", "cosine"]  # one computation per measure, then cached


def test_heatmap_click_shows_best_pair_and_clears_selection(corr_maps):
    panel = CorrelationPanel(corr_maps, names=("M", "M"), compute=counted()[0])
    # never "r = 0.000" of a map with itself: the panel opens on a real pair
    la, ma, lb, mb = panel.pair
    assert not (la == lb and ma == mb) and pair_title(panel).startswith("r = ")
    source = panel._heat_source()
    data = source.data
    k = [
        i
        for i, (a, b) in enumerate(zip(data["A_layer"], data["B_layer"]))
        if (a, b) == ("l1", "l1")
    ]
    source.selected.indices = k  # what a click on the cell (l1, l1) does in the browser
    assert source.selected.indices == []  # read and cleared, so the same cell can be clicked again
    la, ma, lb, mb = panel.pair
    assert (la, lb) == ("l1", "l1") and {ma, mb} <= {0, 1, 2, 3} and ma != mb
    mat = panel.tables.matrices[("l1", "l1")]
    off = np.where(np.eye(6, dtype=bool), -np.inf, np.abs(mat))
    assert abs(mat[ma, mb]) == pytest.approx(off.max())  # the most correlated pair
    assert pair_title(panel) == f"r = {mat[ma, mb]:.3f} · 256 px"  # 16 x 16 pixels, 1 image
    assert panel.click_cell("l2", "l1")[::2] == ("l2", "l1")
    panel.pair = ("l1", 4, "l2", 2)  # choosing a pair from the dropdowns
    a_plot = [p for p in panel._pair.plot.traverse(lambda p: p) if type(p).__name__ == "RasterPlot"]
    np.testing.assert_allclose(drawn(a_plot[0]), corr_maps["l1"][0, 4])
    np.testing.assert_allclose(drawn(a_plot[1]), corr_maps["l2"][0, 2])
    r = np.corrcoef(corr_maps["l1"][0, 4].ravel(), corr_maps["l2"][0, 2].ravel())[0, 1]
    assert pair_title(panel) == f"r = {r:.3f} · 256 px"
    panel.pair = ("l1", 3, "l1", 3)
    assert pair_title(panel) == "the same map · 256 px"
    panel.measure = "cosine"
    panel.pair = ("l1", 4, "l2", 2)
    assert pair_title(panel).startswith("cos = ")


def test_pair_scatter_rescales_and_tooltips_name_layers(corr_maps):
    maps = {**corr_maps, "l2": corr_maps["l2"] * 35.0}
    panel = CorrelationPanel(maps, names=("M", "M"), compute=counted()[0])
    panel.pair = ("l1", 0, "l1", 1)
    scatter = [
        p for p in panel._pair.plot.traverse(lambda p: p) if type(p).__name__ == "PointPlot"
    ][0]
    small = scatter.handles["y_range"].end
    panel.pair = ("l1", 0, "l2", 1)
    big = scatter.handles["y_range"].end
    assert big > 10 * small and big >= maps["l2"][0, 1].max()  # the axes follow the data
    hover = [t for t in panel._heat.plot.state.tools if type(t).__name__ == "HoverTool"][0]
    assert ("M (A) layer", "@{A_layer}") in hover.tooltips  # the layer's name, not a number
    assert set(panel._heat_source().data["A_layer"]) == {"l1", "l2"}


@pytest.mark.parametrize(
    "attr, value, err, match",
    [
        ("threshold", 1.5, ValueError, r"threshold must be in \[0.0, 1.0\], got 1.5"),
        ("threshold", -0.1, ValueError, r"got -0.1"),
        ("measure", "spearman", ValueError, "unknown measure 'spearman'"),
        ("pair", ("l9", 0, "l1", 0), KeyError, "unknown layer of A 'l9'"),
        ("pair", ("l1", 6, "l1", 0), IndexError, r"map of A must be an integer in \[0, 6\), got 6"),
    ],
)
def test_panel_bad_inputs(corr_maps, attr, value, err, match):
    panel = CorrelationPanel(corr_maps, compute=counted()[0])
    with pytest.raises(err, match=match) as info:
        setattr(panel, attr, value)
    shown = html.unescape(panel.status.value)
    assert "#b00020" in shown and str(info.value.args[0]) in shown  # same message, in red
    assert panel.threshold == 0.8


def test_panel_from_tables_and_export_button(tmp_path, corr_maps):
    tables = correlation_tables(corr_maps, names=("M", "M"), progress=False)
    panel = CorrelationPanel(tables=tables)
    assert panel._pair is None and [v for _, v in panel._measure.options] == ["pearson"]
    box = panel.export_box
    box.folder.value = str(tmp_path / "figs")
    box.stem.value = "panel"
    box.formats.value = ("png",)
    box.button.click()
    assert (tmp_path / "figs" / "panel.png").read_bytes()[:4] == b"\x89PNG"
    # the written path is shown next to the button
    assert "wrote" in box.status.value and str(tmp_path / "figs" / "panel.png") in box.status.value
    box.stem.value = "again"
    box.button.click()
    assert "again.png" in box.status.value and "panel.png" not in box.status.value  # replaced
    blocker = tmp_path / "file"
    blocker.write_text("x")
    box.folder.value = str(blocker)
    box.button.click()
    assert "export failed" in box.status.value and "got a file" in box.status.value
    assert "again.png" not in box.status.value
    with pytest.raises(ValueError, match="unknown export format 'gif'"):
        panel.export(tmp_path / "x", ["gif"])
    assert "unknown export format" in panel.status.value


def test_export_box_defaults_to_the_notebook_figure_folder(tmp_path, monkeypatch, corr_maps):
    from cnnexplore_nb.widgets import set_figure_folder

    monkeypatch.setenv("CNNX_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("JPY_SESSION_NAME", "/somewhere/notebooks/01_tour.ipynb")
    b = MapBrowser(corr_maps, grid=0)
    assert b.export_box.folder.value == str(tmp_path / "figures" / "01_tour")
    written = b.export_box.run()
    assert [p.parent for p in written] == [tmp_path / "figures" / "01_tour"] * 3
    set_figure_folder(tmp_path / "chosen")
    try:
        assert MapBrowser(corr_maps, grid=0).export_box.folder.value == str(tmp_path / "chosen")
    finally:
        set_figure_folder(None)
    assert MapBrowser(corr_maps, grid=0, figures=tmp_path / "own").export_box.folder.value == str(
        tmp_path / "own"
    )


def test_figure_controls_redraw_in_place_with_each_value(tmp_path):
    import ipywidgets as ipw

    from cnnexplore_nb.widgets import FigureControls

    rng = np.random.default_rng(1)
    stack = rng.random((3, 5, 4))
    calls = []

    def show(channel: int, scale: float):
        calls.append((channel, scale))
        return plots.map_image(stack[channel] * scale, title=f"channel {channel}", label="γ")

    panel = FigureControls(
        show,
        figures=tmp_path,
        channel=ipw.IntSlider(0, 0, 2),
        scale=ipw.FloatSlider(value=1.0, min=0.5, max=2.0),
    )
    assert calls == [(0, 1.0)] and panel.values == {"channel": 0, "scale": 1.0}
    np.testing.assert_allclose(drawn(panel.view.plot), stack[0])
    widget_before = panel.view.widget
    panel.controls["channel"].value = 2
    panel.controls["scale"].value = 2.0
    assert calls[-2:] == [(2, 1.0), (2, 2.0)]
    np.testing.assert_allclose(drawn(panel.view.plot), stack[2] * 2.0)
    assert panel.view.widget is widget_before  # redrawn in place, no new output
    written = panel.export(tmp_path / "gamma", formats=["png"])
    assert [p.suffix for p in written] == [".png"] and written[0].stat().st_size > 0


def test_figure_controls_bad_inputs_and_failing_function():
    import ipywidgets as ipw

    from cnnexplore_nb.widgets import FigureControls

    with pytest.raises(TypeError, match="fn must be callable"):
        FigureControls(3, channel=ipw.IntSlider())
    with pytest.raises(ValueError, match="at least one control"):
        FigureControls(lambda: None)
    with pytest.raises(TypeError, match="control 'channel' must be an ipywidgets value widget"):
        FigureControls(lambda channel: None, channel=5)

    def show(channel: int):
        if channel > 1:
            raise ValueError(f"no channel {channel}")
        return plots.map_image(np.eye(3), title="eye", label="value")

    panel = FigureControls(show, channel=ipw.IntSlider(0, 0, 3))
    with pytest.raises(ValueError, match="no channel 2"):
        panel.controls["channel"].value = 2
    assert "no channel 2" in html.unescape(panel.status.value)


# -- what a saved notebook or a reloaded page starts from --------------------------------------
def _bundle_titles(widget) -> list[str]:
    """Figure titles in a Bokeh widget's render bundle (its saved state)."""
    from bokeh.core.json_encoder import serialize_json

    return _titles(serialize_json(widget.render_bundle))


def _titles(bundle: str) -> list[str]:
    """Figure titles in a render bundle as JSON text (as sent to the browser)."""
    import json

    found = []

    def walk(obj):
        if isinstance(obj, dict):
            if obj.get("name") == "Title":
                found.append(obj.get("attributes", {}).get("text", ""))
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    walk(json.loads(bundle))
    return found


def test_browser_changes_reach_the_saved_widget_state(maps):
    """A change outside a notebook cell (a browser event, run by the kernel's event loop)
    is stored whole in the widget's state (what a reloaded page asks the kernel for) once
    the events stop, ``delay`` seconds after the last, and sent to the browser, whose copy
    of the state JupyterLab saves into the notebook file."""
    import asyncio

    from cnnexplore_nb.widgets._base import _SYNC

    b = MapBrowser(maps, grid=0)
    assert _bundle_titles(b._main.widget) == ["module 1 · map 0 · image 0"]
    sent: list[dict] = []  # what the kernel sends to the browser's copy of the widget
    b._main.widget.comm.send = lambda data=None, **_: sent.append(data or {})
    b._index.value = 3  # no event loop here (no front end): the bundle follows on demand
    assert not [m for m in sent if "render_bundle" in m.get("state", {})]  # patches only
    _SYNC.flush()
    assert _bundle_titles(b._main.widget) == ["module 1 · map 3 · image 0"]
    bundles = [m["state"]["render_bundle"] for m in sent if "render_bundle" in m.get("state", {})]
    assert len(bundles) == 1 and _titles(bundles[0]) == ["module 1 · map 3 · image 0"]

    async def burst():
        b._index.value = 4
        b._index.value = 5  # a slider drag: one re-send after the last step
        assert _bundle_titles(b._main.widget) == ["module 1 · map 3 · image 0"]
        await asyncio.sleep(_SYNC.delay + 0.3)
        return _bundle_titles(b._main.widget)

    assert asyncio.run(burst()) == ["module 1 · map 5 · image 0"]


def test_panel_exports_pass_the_figure_check_at_default_sizes(corr_maps, maps):
    """``plots.check_figure`` finds nothing in the panels' exports (no wrapped or colliding
    labels, no raw names), for a network with itself and for two networks."""
    import holoviews as hv
    from ipywidgets import IntSlider

    from cnnexplore_nb.plots.check import check_figure
    from cnnexplore_nb.widgets import FigureControls

    corr_maps = {f"conv_module{k[1]}": v for k, v in corr_maps.items()}  # l1 -> module 1
    other = {k: v[:, ::-1].copy() for k, v in corr_maps.items()}
    panels = {
        "within": CorrelationPanel(corr_maps, names=("CNN6", "CNN6"), compute=counted()[0]),
        "between": CorrelationPanel(corr_maps, other, names=("CNN6", "CNN10")),
        "page": MapBrowser(maps, grid=8, map_index=5),
        "single": MapBrowser(maps, grid=0, map_index=5),
        "controls": FigureControls(
            lambda k: hv.Curve(np.arange(5.0) ** k, "step", "step to the power k").opts(
                title=f"power {k}"
            ),
            k=IntSlider(2, 0, 3),
        ),
    }
    panels["within"].click_cell("conv_module1", "conv_module1")
    for name, panel in panels.items():
        fig = plots.draw(plots.static_view(panel.figure()))
        report = check_figure(fig, name=name)
        assert report.problems == [], (name, [p.message for p in report.problems])
    fig = plots.draw(plots.static_view(panels["within"].figure()))
    titles = [ax.get_title("left") + ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("(a) within CNN6") and titles[0].count("\n") <= 1, titles
    assert not any("partner" in t for t in titles), titles
    assert "(c) CNN6 (A) · map" in titles[2] and "(d) CNN6 (B) · map" in titles[3], titles
    # the pair view beside the heatmap: one row holds both
    within = panels["within"]
    row = next(
        c for c in within.widget.children if within._heat.widget in getattr(c, "children", ())
    )
    assert within._pair.widget in row.children[1].children
    # percentages to one decimal in the statistics table
    shown = panels["within"].stats_html.value
    for v in panels["within"].stats["percent"]:
        assert f"<td>{v:.1f}</td>" in shown, (v, shown)
    fig = plots.draw(plots.static_view(panels["page"].figure()))
    assert fig._suptitle.get_text() == "module 1 · image 0"
    assert [ax.get_title("left") + ax.get_title() for ax in fig.axes[:2]] == ["map 0", "map 1"]


def test_panels_draw_with_the_canvas_not_webgl(maps):
    """HoloViews asks Bokeh for WebGL; a browser without a GPU loses that context after a
    reload and leaves every WebGL glyph blank, so the panels draw with the 2-D canvas."""
    import holoviews as hv
    from bokeh.models import Plot

    from cnnexplore_nb.widgets._base import BokehView

    hv.renderer("bokeh").webgl = True  # HoloViews' default
    view = BokehView(hv.HeatMap([(0, 0, 1.0), (1, 0, 0.5)]))
    b = MapBrowser(maps, grid=4)
    for state in (view.plot.state, b._main.plot.state):
        backends = {p.output_backend for p in state.select({"type": Plot})}
        assert backends == {"canvas"}, backends
