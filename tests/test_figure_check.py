"""The figure checker finds what a reviewer would (and nothing else); the library's figures
and the notebooks' exported figures pass it."""

from __future__ import annotations

import json
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cnnexplore_nb import plots
from cnnexplore_nb.notebook import list_notebooks
from cnnexplore_nb.plots.check import check_figure, read_reports

ROOT = Path(__file__).resolve().parents[1]


def figure(width: float = 3.5, height: float = 2.4) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [0.2, 0.5, 0.9], label="L2T-www")
    ax.set(xlabel="epoch", ylabel="validation IoU", title="CNN6")
    for t in (*ax.get_xticklabels(), *ax.get_yticklabels()):
        t.set_fontsize(7)
    ax.xaxis.label.set_fontsize(8)
    ax.yaxis.label.set_fontsize(8)
    ax.title.set_fontsize(8)
    return fig, ax


def kinds(report) -> set[str]:
    return {p.kind for p in report.problems}


# -- hand-made figures that must fail, and ones that must pass --------------------------------
def test_clean_figure_passes():
    fig, ax = figure()
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=7)
    report = check_figure(fig, name="clean")
    assert report.ok, report.summary()
    assert report.width == 3.5 and report.texts > 5


def test_overlapping_labels_fail():
    fig, ax = figure()
    ax.text(1.0, 0.5, "module 3", fontsize=7)
    ax.text(1.05, 0.5, "module 4", fontsize=7)
    report = check_figure(fig)
    overlaps = [p for p in report.problems if p.kind == "overlap"]
    assert len(overlaps) == 1 and set(overlaps[0].texts) == {"module 3", "module 4"}


@pytest.mark.parametrize("step, crowded", [(0.01, True), (0.05, False)])
def test_turned_tick_labels_measured_on_the_turned_text(step, crowded):
    """45° labels whose bounding boxes overlap but whose glyphs do not must pass."""
    fig, ax = figure(7.16, 3.0)
    pos = np.arange(6) * step
    ax.set_xticks(pos, [f"module {i}" for i in range(6)], rotation=45, ha="right", fontsize=7)
    ax.set_xlim(-0.5, pos[-1] + 0.5)
    report = check_figure(fig)
    assert ("overlap" in kinds(report)) is crowded, report.summary()
    renderer = fig.canvas.get_renderer()
    a, b = (t.get_window_extent(renderer) for t in ax.get_xticklabels()[:2])
    assert a.overlaps(b)  # the bounding boxes overlap in both cases


@pytest.mark.parametrize(
    "text",
    [
        "mean_max_mean",
        "CNN6(1)_layer",
        "l2t_www",
        "conv_module3",
        "val_iou",
        "ufm",
        "mean-fold · l1",
        "features.0.weight[4, 2, 2, 0]",
        "pair 14-1 ch 0",
        "4-0",
    ],
)
def test_raw_identifiers_fail(text):
    fig, ax = figure()
    ax.set_title(text, fontsize=8)
    report = check_figure(fig)
    assert [p.kind for p in report.problems] == ["raw-name"], report.summary()
    assert report.problems[0].texts == [text]


@pytest.mark.parametrize(
    "text",
    [
        "L2T-www",
        "UFM",
        "validation IoU",
        "module 3",
        "mean max |r|",
        "% maps with max |r| ≥ 0.8",
        "source block 4 → target conv 0",
        "conv 1 weight [4, 2, 2, 0]",
        "digits 5-9, N = 10",
        "$x_1$",
    ],
)
def test_display_names_pass(text):
    fig, ax = figure()
    ax.set_title(text, fontsize=8)
    report = check_figure(fig)
    assert report.ok, report.summary()


@pytest.mark.parametrize("label", ["x", "y", "value"])
def test_placeholder_axis_label_fails(label):
    fig, ax = figure()
    ax.set_ylabel(label, fontsize=8)
    assert kinds(check_figure(fig)) == {"raw-name"}


def test_width_other_than_paper_widths_fails_unless_full_page():
    fig, _ = figure(29.0, 4.0)
    report = check_figure(fig, name="fig")
    assert kinds(report) == {"width"} and "29.00 in wide" in report.problems[0].message
    assert check_figure(fig, full_page=True).ok
    page, _ = figure(7.16, 3.0)
    assert check_figure(page).ok


def test_tall_figure_fails():
    fig, _ = figure(3.5, 11.0)
    assert kinds(check_figure(fig)) == {"height"}


def test_small_font_fails():
    fig, ax = figure()
    ax.set_xlabel("epoch", fontsize=5)
    report = check_figure(fig)
    assert kinds(report) == {"font"} and "5 pt" in report.problems[0].message


def test_unlabelled_axis_and_colour_bar_fail():
    fig, ax = figure()
    ax.set_xlabel("")
    report = check_figure(fig)
    assert kinds(report) == {"unlabelled"} and "x axis" in report.problems[0].message
    fig2 = Figure(figsize=(3.5, 3.0), layout="constrained")
    FigureCanvasAgg(fig2)
    ax2 = fig2.add_subplot()
    image = ax2.imshow(np.random.default_rng(0).random((4, 4)))
    ax2.set_axis_off()
    cb = fig2.colorbar(image, ax=ax2, shrink=0.8)
    cb.ax.tick_params(labelsize=7)
    report = check_figure(fig2)
    assert kinds(report) == {"unlabelled"} and "colour bar" in report.problems[0].message
    cb.set_label("mean max |r|", fontsize=8)
    assert check_figure(fig2).ok


def test_legend_over_data_fails():
    fig, ax = figure()
    ax.plot(np.linspace(0, 2, 50), np.full(50, 0.85), label="scratch")
    ax.legend(loc="upper left", fontsize=7)
    assert "legend" in kinds(check_figure(fig))


def test_text_into_another_panel_and_off_the_figure_fail():
    fig = Figure(figsize=(7.16, 3.0), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    for ax in (left, right):
        ax.plot([0, 1], [0, 1])
        ax.set(xlabel="epoch", ylabel="loss")
        for t in (*ax.get_xticklabels(), *ax.get_yticklabels()):
            t.set_fontsize(7)
        ax.xaxis.label.set_fontsize(8)
        ax.yaxis.label.set_fontsize(8)
    fig.canvas.draw()
    fig.set_layout_engine("none")
    left.text(1.02, 0.5, "a colour-bar label far too long", transform=left.transAxes, fontsize=8)
    report = check_figure(fig)
    assert "intrusion" in kinds(report), report.summary()
    right.text(1.5, 0.5, "off the page", transform=right.transAxes, fontsize=8)
    assert "clipped" in kinds(check_figure(fig))


# -- export writes the report --------------------------------------------------------------
def test_export_writes_the_report(tmp_path, monkeypatch):
    fig = plots.map_grid(np.random.default_rng(0).random((4, 8, 8)), ncols=4)
    plots.export(fig, tmp_path / "quiet", "png")
    assert not (tmp_path / "quiet.layout.json").exists()
    plots.export(fig, tmp_path / "asked", "png", check=True)
    data = json.loads((tmp_path / "asked.layout.json").read_text())
    assert data["name"] == "asked" and data["ok"] and data["width"] == 3.5
    monkeypatch.setenv("CNNX_FIGURE_CHECK", "1")
    plots.export(hv.Curve([1, 2, 3]), tmp_path / "env", ("png", "svg"))
    (report,) = [r for r in read_reports(tmp_path) if r.name == "env"]
    assert kinds(report) >= {"raw-name"}  # a bare hv.Curve: axes labelled "x" and "y"


# -- every figure of the library passes ------------------------------------------------------
def _stats(la, lb, rng):
    return pd.DataFrame(
        [
            {"A_layer": a, "B_layer": b, "mean": rng.uniform(0.8, 1), "percent": rng.uniform(0, 100),
             "count": 30, "n_maps": 64, "mean_max": rng.uniform(0.5, 1)}
            for a in la
            for b in lb
        ]
    )  # fmt: skip


def _library_figures() -> dict[str, object]:
    rng = np.random.default_rng(0)
    deep = [f"conv_module{i}" for i in (1, 2, 4, 6, 8, 10)]
    runs = pd.DataFrame(
        {
            "n": np.tile([5, 10, 15], 15),
            "accuracy": rng.random(45) * 100,
            "method": np.repeat(["scratch", "ufm", "l2t_ww", "l2t_www", "attention"], 9),
        }
    )
    history = pd.DataFrame({"epoch": np.arange(6), **{k: rng.random(6) for k in
                            ("train_loss", "val_loss")}})  # fmt: skip
    lam = pd.DataFrame(
        {"epoch": np.arange(4), **{f"{s}-{t}": rng.random(4) for s in (4, 9, 14) for t in range(5)}}
    )
    mat = np.corrcoef(rng.random((16, 50)))
    emb = pd.DataFrame(
        {
            "x": rng.normal(size=60),
            "y": rng.normal(size=60),
            "layer": np.repeat([f"conv_module{i}" for i in range(1, 7)], 10),
        }
    )
    cka = pd.DataFrame(rng.random((4, 6)), index=pd.Index(deep[:4], name="CNN6 layer"),
                       columns=pd.Index(deep, name="CNN10 layer"))  # fmt: skip
    img = rng.random((32, 32))
    return {
        "heatmap": plots.layer_heatmap(
            _stats(deep, deep, rng), names=("CNN10", "CNN10"), threshold=0.8
        ),  # fmt: skip
        "heatmaps_four": hv.Layout(
            [
                plots.layer_heatmap(
                    _stats(deep[:4], deep, rng),
                    "mean_max",
                    names=("CNN6", "CNN10"),
                    title=f"image {i}",
                )
                for i in range(4)
            ]
        ).cols(4),  # fmt: skip
        "heatmaps_mixed_shapes": hv.Layout(
            [
                plots.layer_heatmap(_stats(la, lb, rng), value, title=f"{len(la)} x {len(lb)}")
                for value in ("mean_max", "percent")
                for la, lb in (
                    (deep[:4], deep[:1]),
                    (deep[:4], deep),
                    (deep, deep[:1]),
                    (deep, deep[:4]),
                    (deep[:4], deep),
                )
            ]
        ).cols(5),  # fmt: skip
        "bars": plots.percent_bars(_stats(deep, deep, rng), threshold=0.8, names=("CNN", "CNN")),
        "methods": plots.errorbar_curves(
            runs, "n", "accuracy", "method", ylabel="test accuracy (%)"
        ),  # fmt: skip
        "history": plots.training_history(history),
        "lambda_15_pairs": plots.training_history(lam, ylabel="λ"),
        "maps_64": plots.map_grid(rng.random((64, 16, 16)), ncols=8, highlight=[3]),
        "pair": plots.map_pair(img, 3 * img + rng.random((32, 32))),
        "matrix_and_hist": (
            plots.correlation_image(mat, names=("CNN6", "CNN6"))
            + plots.correlation_hist(np.abs(mat[~np.eye(16, dtype=bool)]), threshold=0.8)
        ).cols(2),
        "embedding": plots.embedding_scatter(emb),
        "cka": plots.matrix_heatmap(cka, value="linear CKA"),
        "segmentation": plots.segmentation_figure(img, img > 0.5, {"CNN6": img > 0.4}),
        "kernels": plots.kernel_grid(rng.normal(size=(8, 3, 3, 3)), ncols=8),
        "sequences": plots.sequence_bars({"signal": rng.random(12), "kernel": rng.random(3)}),
        "value_grids": plots.grid_of(
            [
                plots.value_grid(rng.random((5, 5)), title="input"),
                plots.value_grid(rng.random((3, 3)), title="kernel"),
            ],
            2,
        ),  # fmt: skip
    }


@pytest.fixture(scope="module")
def library_figures():
    return _library_figures()


@pytest.mark.parametrize("name", list(_library_figures()))
def test_library_figures_pass(name, library_figures, tmp_path):
    plots.export(library_figures[name], tmp_path / name, "png", check=True)
    (report,) = read_reports(tmp_path)
    assert report.ok, report.summary()


# -- the figures the notebooks export at smoke scale ----------------------------------------
NOTEBOOKS = list_notebooks(ROOT)


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_figures_pass_the_check(notebook, smoke_notebooks):
    smoke_notebooks.run(notebook)
    folder = smoke_notebooks.figures / notebook.stem
    exported = sorted(p.stem for p in folder.glob("*.png"))
    reports = read_reports(folder)
    assert len(reports) == len(exported), "every exported figure has a layout report"
    problems = "\n".join(r.summary() for r in reports if not r.ok)
    assert not problems, problems
