"""Figures hold exactly the data given (checked through the rendered Bokeh sources)."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import pytest

from cnnexplore_nb import plots


def bokeh_plot(obj):
    return hv.renderer("bokeh").get_plot(obj)


def image_data(img: hv.Image) -> np.ndarray:
    """The array Bokeh draws, back in array orientation (Bokeh rows run bottom-up)."""
    return bokeh_plot(img).handles["source"].data["image"][0][::-1]


@pytest.fixture(scope="module")
def maps():
    return np.random.default_rng(0).random((6, 5, 7))


def test_backends_loaded_and_current_kept():
    assert {"bokeh", "matplotlib"} <= set(hv.Store.renderers)
    before = hv.Store.current_backend
    plots.ensure_backends()
    assert hv.Store.current_backend == before


def test_map_grid_titles_ids_and_data(maps):
    grid = plots.map_grid(maps, ids=[4, 1, 2], ncols=2)
    panels = list(grid)
    assert len(panels) == 3
    for img, i in zip(panels, [4, 1, 2]):
        assert img.opts.get("plot", backend="bokeh").kwargs["title"] == f"map {i}"
        np.testing.assert_allclose(image_data(img), maps[i])
    # torch tensors are accepted too
    torch = pytest.importorskip("torch")
    tgrid = plots.map_grid(torch.from_numpy(maps), ids=[3])
    np.testing.assert_allclose(image_data(tgrid.Image.I), maps[3])


def test_map_grid_shared_and_per_map_scale(maps):
    shared = plots.map_grid(maps, ids=[0, 1], shared_scale=True)
    lo, hi = float(maps[[0, 1]].min()), float(maps[[0, 1]].max())
    for img in shared:
        assert img.opts.get("plot", backend="bokeh").kwargs["clim"] == (lo, hi)
    own = plots.map_grid(maps, ids=[0, 1])
    for img, i in zip(own, [0, 1]):
        assert "clim" not in img.opts.get("plot", backend="bokeh").kwargs
        mapper = bokeh_plot(img).handles["color_mapper"]
        assert mapper.low == pytest.approx(maps[i].min()) and mapper.high == pytest.approx(
            maps[i].max()
        )


def test_map_grid_highlight_draws_border(maps):
    grid = plots.map_grid(maps, ids=[0, 1, 2], highlight=[1])
    states = [bokeh_plot(img).state for img in grid]
    colors = [s.outline_line_color for s in states]
    assert colors[1] == plots.STYLE["highlight_color"]
    assert (
        colors[0] != plots.STYLE["highlight_color"] and colors[2] != plots.STYLE["highlight_color"]
    )


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"ids": [6]}, IndexError, r"map id 6 out of range: expected 0 <= id < 6"),
        ({"ids": []}, ValueError, "at least one map"),
        ({"highlight": [-1]}, IndexError, "highlight id -1"),
        ({"ncols": 0}, ValueError, "ncols must be an integer >= 1, got 0"),
    ],
)
def test_map_grid_bad_input(maps, kwargs, err, match):
    with pytest.raises(err, match=match):
        plots.map_grid(maps, **kwargs)


def test_map_grid_wrong_ndim():
    with pytest.raises(ValueError, match=r"maps must be 3-D, got shape \(4, 4\)"):
        plots.map_grid(np.zeros((4, 4)))


def test_kernel_grid_mean_channel_rgb():
    w = np.random.default_rng(1).normal(size=(4, 3, 3, 3))
    mean = plots.kernel_grid(w, in_channel="mean")
    np.testing.assert_allclose(image_data(list(mean)[2]), w[2].mean(axis=0))
    one = plots.kernel_grid(w, in_channel=1, ids=[3])
    np.testing.assert_allclose(image_data(list(one)[0]), w[3, 1])
    m = np.abs(w.mean(axis=1)).max()
    assert list(mean)[0].opts.get("plot", backend="bokeh").kwargs["clim"] == (-m, m)
    rgb = list(plots.kernel_grid(w, in_channel="rgb"))[0]
    expected = (w[0].transpose(1, 2, 0) - w.min()) / (w.max() - w.min())
    np.testing.assert_allclose(rgb.dimension_values(2, flat=False)[::-1], expected[..., 0])
    with pytest.raises(IndexError, match="in_channel 3 out of range"):
        plots.kernel_grid(w, in_channel=3)
    with pytest.raises(ValueError, match="needs 3 input channels, got 2"):
        plots.kernel_grid(w[:, :2], in_channel="rgb")


def test_correlation_image_orientation_and_decimation():
    mat = np.arange(12, dtype=float).reshape(3, 4) / 12
    img = plots.correlation_image(mat)
    # the element maps (x=j, y=i) to mat[i, j]
    for i in range(3):
        for j in range(4):
            assert img[j, i] == pytest.approx(mat[i, j])
    assert img.opts.get("plot", backend="bokeh").kwargs["invert_yaxis"] is True
    big = np.random.default_rng(2).uniform(-1, 1, (10, 9))
    big[0, 0] = np.nan
    small = plots.correlation_image(big, max_size=4)
    data = small.dimension_values(2, flat=False)  # rows in ascending y = map i of A
    assert data.shape == (4, 3)  # ceil(10/3)=4 blocks of 3 rows, 3 blocks of 3 columns
    block = big[0:3, 0:3]
    assert data[0, 0] == pytest.approx(np.nanmean(block))
    assert data[3, 2] == pytest.approx(big[9, 6:9].mean())
    assert "block means 3x3" in small.opts.get("plot", backend="bokeh").kwargs["title"]


def _stats(layers_a, layers_b, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for a in layers_a:
        for b in layers_b:
            rows.append(
                {
                    "A_layer": a,
                    "B_layer": b,
                    "count": int(rng.integers(0, 64)),
                    "mean": rng.uniform(0.8, 1),
                    "median": 0.9,
                    "std": 0.05,
                    "percent": rng.uniform(0, 100),
                    "n_maps": 64,
                }
            )
    return pd.DataFrame(rows)


def _cells(heat: hv.HeatMap) -> dict[tuple[str, str], float]:
    """(row layer, column layer) -> value of a layer heatmap."""
    xs, ys, vs = (heat.dimension_values(k) for k in range(3))
    return {(str(y), str(x)): float(v) for x, y, v in zip(xs, ys, vs)}


def test_layer_heatmap_cells_follow_layer_order():
    layers = ["conv_module1", "conv_module2", "conv_module10"]
    shown = {"conv_module1": "module 1", "conv_module2": "module 2", "conv_module10": "module 10"}
    stats = _stats(layers, layers[:2])
    overlay = plots.layer_heatmap(stats, "mean", threshold=0.8, names=("CNN6", "CNN6"))
    heat = overlay.HeatMap.I
    cells = _cells(heat)
    for _, row in stats.iterrows():
        assert cells[shown[row["A_layer"]], shown[row["B_layer"]]] == pytest.approx(row["mean"])
    # Bokeh: categorical axes in layer order, the first layer at the top; hover names layers
    fig = bokeh_plot(overlay).state
    assert list(fig.y_range.factors) == [shown[x] for x in layers][::-1]
    assert list(fig.x_range.factors) == [shown[x] for x in layers[:2]]
    assert heat.vdims[0].label == "mean max |r| of maps ≥ 0.8"
    assert [d.label for d in heat.kdims] == ["CNN6 (B) layer", "CNN6 (A) layer"]
    labels = overlay.Labels.I
    assert f"{stats['mean'].iloc[0]:.2f}" in list(labels.dimension_values("text"))
    with pytest.raises(ValueError, match="unknown stats column 'maen'; closest: 'mean'"):
        plots.layer_heatmap(stats, "maen")


def test_layer_heatmap_default_percent_fixed_range_and_tables():
    from cnnexplore_nb.similarity import correlation_tables

    stats = _stats(["l1", "l2"], ["l1", "l2"])
    heat = plots.layer_heatmap(stats).HeatMap.I
    assert heat.vdims[0].name == "percent"
    opts = heat.opts.get("plot", backend="bokeh").kwargs
    assert opts["clim"] == (0.0, 100.0)  # same range in every figure of this statistic
    assert "{:.0f}".format(stats["percent"].iloc[0]) in list(
        plots.layer_heatmap(stats).Labels.I.dimension_values("text")
    )
    rng = np.random.default_rng(0)
    maps = {"conv_module1": rng.normal(size=(1, 4, 6, 6)).astype(np.float32)}
    tables = correlation_tables(maps, names=("CNN6", "CNN6"), threshold=0.7, measure="cosine",
                                progress=False)  # fmt: skip
    heat = plots.layer_heatmap(tables).HeatMap.I  # names, threshold and measure of the tables
    assert heat.vdims[0].label == "% maps with max |cos| ≥ 0.7"
    assert heat.kdims[1].label == "CNN6 (A) layer"  # one network: its name and its side
    assert heat.kdims[0].label == "CNN6 (B) layer"
    assert list(heat.dimension_values(0)) == ["module 1"]


def test_percent_bars_diagonal_and_pairs():
    layers = ["l1", "l2", "l3"]
    stats = _stats(layers, layers)
    bars = plots.percent_bars(stats)
    diag = stats[stats["A_layer"] == stats["B_layer"]]
    np.testing.assert_allclose(bars.dimension_values("percent"), diag["percent"].to_numpy())
    assert list(bars.dimension_values(0)) == layers
    allbars = plots.percent_bars(stats, diagonal_only=False)
    assert len(allbars) == 9
    with pytest.raises(ValueError, match="diagonal_only=True needs rows"):
        plots.percent_bars(_stats(["a"], ["b"]))


def test_correlation_hist_counts_and_threshold():
    vals = np.array([0.05, 0.15, 0.15, 0.95, np.nan])
    ov = plots.correlation_hist(vals, bins=10, threshold=0.8)
    hist = ov.Histogram.I
    counts = hist.dimension_values("count")
    np.testing.assert_array_equal(counts, np.histogram(vals[:4], bins=10, range=(0, 1))[0])
    assert ov.VLine.I.data == 0.8


def test_map_pair_r_and_subsampling():
    rng = np.random.default_rng(3)
    a = rng.random((40, 50))
    b = 2 * a + rng.random((40, 50))
    lay = plots.map_pair(a, b, max_points=300, rng=0)
    left, right, scatter = list(lay)
    r = np.corrcoef(a.ravel(), b.ravel())[0, 1]
    assert scatter.opts.get("plot", backend="bokeh").kwargs["title"] == f"r = {r:.3f}"
    xs, ys = scatter.dimension_values(0), scatter.dimension_values(1)
    assert len(xs) == 300
    # every plotted point is a real (a, b) pixel pair
    lookup = dict(zip(a.ravel().tolist(), b.ravel().tolist()))
    assert all(lookup[x] == y for x, y in zip(xs.tolist(), ys.tolist()))
    np.testing.assert_allclose(image_data(left), a)
    given = plots.map_pair(a, b, r=0.5)
    assert list(given)[2].opts.get("plot", backend="bokeh").kwargs["title"] == "r = 0.500"
    with pytest.raises(ValueError, match=r"same shape, got \(40, 50\) and \(4, 5\)"):
        plots.map_pair(a, b[:4, :5])


def test_errorbar_curves_mean_and_std():
    df = pd.DataFrame(
        {
            "n": [5, 5, 5, 10, 10, 5, 5],
            "acc": [1.0, 2.0, 3.0, 4.0, 6.0, 7.0, 9.0],
            "method": ["l2t_ww"] * 5 + ["l2t_www"] * 2,
        }
    )
    ov = plots.errorbar_curves(df, "n", "acc", "method", categorical=False)
    errs = [e for e in ov if isinstance(e, hv.ErrorBars)]
    ww = errs[0]
    np.testing.assert_allclose(ww.dimension_values("acc"), [2.0, 5.0])
    np.testing.assert_allclose(ww.dimension_values("err"), [1.0, np.std([4.0, 6.0], ddof=1)])
    # two series dodged symmetrically by a quarter of the x spacing (5): -0.625 and +0.625
    np.testing.assert_allclose(ww.dimension_values("n"), [5 - 0.625, 10 - 0.625])
    np.testing.assert_allclose(errs[1].dimension_values("n"), [5 + 0.625])
    assert [e.label for e in errs] == ["L2T-ww", "L2T-www"]  # display names, input order
    sem = plots.errorbar_curves(df, "n", "acc", "method", err="sem")
    www = [e for e in sem if isinstance(e, hv.ErrorBars)][1]
    np.testing.assert_allclose(
        www.dimension_values("err"), [np.std([7.0, 9.0], ddof=1) / np.sqrt(2)]
    )
    with pytest.raises(KeyError, match=r"missing column\(s\) \['seed'\]"):
        plots.errorbar_curves(df, "seed", "acc", "method")


def test_errorbar_curves_categorical_x_and_distinct_series():
    """N = 5/10/15 samples per class: evenly spaced categories with ticks only there."""
    df = pd.DataFrame(
        {"n": [5, 10, 15] * 15, "acc": np.arange(45.0), "g": np.repeat(list("abcdefghijklmno"), 3)}
    )
    ov = plots.errorbar_curves(df, "n", "acc", "g", xlabel="samples per class (N)")
    opts = ov.opts.get("plot", backend="matplotlib").kwargs
    assert opts["xticks"] == [(0, "5"), (1, "10"), (2, "15")]
    curves = [e for e in ov if isinstance(e, hv.Curve)]
    xs = curves[0].dimension_values(0)
    assert np.allclose(np.diff(xs), 1.0) and -0.2 < xs[0] < 0.2  # dodged around category 0
    styles = set()
    for c, s in zip(curves, [e for e in ov if isinstance(e, hv.Scatter)]):
        line = c.opts.get("style", backend="matplotlib").kwargs
        dot = s.opts.get("style", backend="matplotlib").kwargs
        styles.add((line["color"], line["linestyle"], dot["marker"]))
    assert len(styles) == 15  # 15 series, 15 distinct colour/line/marker combinations
    assert curves[0].kdims[0].label == "samples per class (N)"


def test_training_history_segmentation_embedding():
    hist = pd.DataFrame({"epoch": [0, 1, 2], "loss": [3.0, 2.0, 1.0], "val_iou": [0.1, 0.5, 0.7]})
    ov = plots.training_history(hist)
    curves = [c for c in ov if isinstance(c, hv.Curve)]
    assert [c.label for c in curves] == ["loss", "validation IoU"]
    np.testing.assert_allclose(curves[1].dimension_values("value"), [0.1, 0.5, 0.7])
    img = np.random.default_rng(4).random((6, 8))
    mask = img > 0.5
    seg = plots.segmentation_figure(img, mask, {"CNN6": ~mask}, titles={"CNN6": "IoU 0.00"})
    panels = list(seg)
    assert len(panels) == 3
    assert panels[2].opts.get("plot", backend="bokeh").kwargs["title"] == "CNN6 IoU 0.00"
    np.testing.assert_array_equal(image_data(panels[2]), (~mask).astype(float))
    with pytest.raises(ValueError, match=r"shape \(3, 3\), expected the image's \(6, 8\)"):
        plots.segmentation_figure(img, np.zeros((3, 3)))
    emb = pd.DataFrame({"x": [0.0, 1.0], "y": [1.0, 0.0], "layer": ["a", "b"]})
    pts = plots.embedding_scatter(emb)
    assert list(pts.dimension_values("layer")) == ["a", "b"]
    assert [el.label for el in pts] == ["a", "b"]  # one labelled legend entry per layer
    assert [d.label for d in list(pts)[0].kdims] == ["component 1", "component 2"]


def test_map_grid_shared_scale_has_one_labelled_colour_bar():
    import matplotlib

    from cnnexplore_nb.plots.paper import draw

    maps = np.random.default_rng(5).random((6, 8, 8))
    with matplotlib.rc_context(plots.paper_rc()):
        fig = draw(plots.map_grid(maps, ncols=3, shared_scale=True, label="γ"))
    bars = [ax for ax in fig.axes if hasattr(ax, "_colorbar")]
    assert len(bars) == 1 and bars[0].get_ylabel() == "γ"
    with matplotlib.rc_context(plots.paper_rc()):
        own = draw(plots.map_grid(maps, ncols=3))
    assert not [ax for ax in own.axes if hasattr(ax, "_colorbar")]  # own ranges: no bar


def test_dense_series_keep_every_point_on_the_curve_but_thin_marks():
    import holoviews as hv

    from cnnexplore_nb.plots import errorbar_curves

    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        [{"epoch": e, "pair": p, "gamma": 1 + rng.normal(0, 0.01)}
         for e in range(61) for p in ("4-0", "9-2") for _ in range(4)]
    )  # fmt: skip
    fig = errorbar_curves(df, "epoch", "gamma", "pair")
    curves = [el for el in fig if isinstance(el, hv.Curve)]
    bars = [el for el in fig if isinstance(el, hv.ErrorBars)]
    assert len(curves) == 2 and all(len(c) == 61 for c in curves)
    assert len(bars) == 2 and all(2 <= len(b) <= 13 for b in bars)
    # the marks sit on the curve: same y at the same x as the mean of the runs
    means = df[df["pair"] == "4-0"].groupby("epoch")["gamma"].mean().to_numpy()
    b = bars[0].dframe()
    xs = b.iloc[:, 0].to_numpy()
    np.testing.assert_allclose(
        b.iloc[:, 1].to_numpy(), np.interp(xs, curves[0].dframe().iloc[:, 0], means)
    )


# -- heatmap numbers readable on every colour, never faded by a click --------------------------
def test_heatmap_numbers_black_on_bright_white_on_dark_and_not_faded():
    import holoviews as hv
    import pandas as pd
    from matplotlib import colormaps

    stats = pd.DataFrame({"A_layer": ["a", "a", "b", "b"], "B_layer": ["a", "b", "a", "b"],
                          "percent": [97.0, 50.0, 10.0, np.nan]})  # fmt: skip
    overlay = plots.layer_heatmap(stats, "percent")
    labels = overlay.Labels.I
    colors = dict(zip(labels.dimension_values("text"), labels.dimension_values("color")))
    viridis = colormaps["viridis"]  # the reference: luminance of the cell colour (0-100 %)
    for text, value in (("97", 97.0), ("50", 50.0), ("10", 10.0)):
        r, g, b, _ = viridis(value / 100)
        want = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
        assert colors[text] == want, (text, colors[text], want)
    assert colors["97"] == "black" and colors["10"] == "white"  # yellow, purple
    plot = hv.renderer("bokeh").get_plot(overlay)
    text = [r for r in plot.state.renderers if type(r.glyph).__name__ == "Text"]
    assert text and all(r.nonselection_glyph is None for r in text)  # drawn as themselves
    assert text[0].glyph.text_color.field == "text_color"  # one colour per cell


def test_for_print_names_the_statistic_once_and_map_grid_heading(tmp_path):
    import pandas as pd

    from cnnexplore_nb.plots.check import check_figure

    stats = pd.DataFrame({"A_layer": ["conv_module1", "conv_module2"] * 2,
                          "B_layer": ["conv_module1"] * 2 + ["conv_module2"] * 2,
                          "percent": [80.0, 20.0, 20.0, 60.0]})  # fmt: skip
    heat = plots.layer_heatmap(stats, "percent", names=("CNN6", "CNN6"), threshold=0.8)
    bars = plots.percent_bars(stats, title="within a layer", threshold=0.8)
    ph, pb = plots.for_print(heat, bars, title="within CNN6")
    fig = plots.draw(__import__("holoviews").Layout([ph, pb]).cols(2))
    title = fig.axes[0].get_title("left") + fig.axes[0].get_title()
    assert "% maps with max |r| ≥ 0.8" in title  # the heatmap's title names it
    assert len(fig.axes) == 2  # no colour bar
    bars_title = fig.axes[1].get_title("left") + fig.axes[1].get_title()
    assert fig.axes[1].get_ylabel() == "% maps" and "max |r| ≥ 0.8" in bars_title
    assert check_figure(fig).problems == []
    grid = plots.map_grid(np.random.default_rng(0).random((8, 6, 6)), ncols=4,
                          heading="module 2")  # fmt: skip
    fig = plots.draw(grid)
    assert fig._suptitle.get_text() == "module 2"
    assert [ax.get_title("left") + ax.get_title() for ax in fig.axes][:2] == ["map 0", "map 1"]
    assert check_figure(fig).problems == []


@pytest.mark.parametrize("width_in", [1.6, 2.2, 3.0, 4.0])
def test_titles_wrap_into_balanced_lines(width_in):
    """A wrapped title uses as many lines as a greedy wrap, balanced: no short orphan
    ("0.8" alone) and a relation never split from its operand."""
    import textwrap

    from cnnexplore_nb.plots._decor import _CHAR, wrap

    title = "(a) within ResNet-18 · on 3×3 % maps with max |r| ≥ 0.8"
    lines = wrap(title, width_in, 10).split("\n")
    chars = max(8, int(width_in / (10 * _CHAR)))
    greedy = textwrap.wrap(title, chars)
    assert " ".join(lines) == title and len(lines) <= len(greedy)
    assert max(map(len, lines)) <= chars
    assert not any(line.endswith(("≥", "|r|")) for line in lines[:-1]), lines
    if len(lines) > 1:  # balanced: the shortest line holds at least a third of the longest
        assert min(map(len, lines)) >= max(map(len, lines)) / 3, lines
