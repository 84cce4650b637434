"""Fundamentals figures hold exactly the data given."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import pytest

from cnnexplore_nb.plots.fundamentals import (
    grid_of,
    line_curves,
    matrix_heatmap,
    sequence_bars,
    value_grid,
)


def test_value_grid_cells_and_labels():
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    fig = value_grid(a, title="t", fmt="{:.0f}")
    img, labels = fig.Image.I, fig.Labels.I
    # row 0 on top: the cell at (x, y) = (0.5, 1.5) is a[0, 0], (2.5, 0.5) is a[1, 2]
    assert img[0.5, 1.5] == 1.0 and img[2.5, 0.5] == 6.0 and img[1.5, 1.5] == 2.0
    # every value printed at its cell centre (row 0 near the top, y = h - 0.5)
    got = {(float(x), float(y)): t for x, y, t, *_ in labels.data.itertuples(index=False)}
    assert got[(0.5, 1.5)] == "1" and got[(2.5, 0.5)] == "6" and len(got) == 6
    assert img.opts.get("plot", backend="bokeh").kwargs["title"] == "t"
    assert len(grid_of([fig, fig], 2)) == 2


def test_line_curves_one_curve_per_group_sorted():
    df = pd.DataFrame({"x": [2, 0, 1, 0, 1], "y": [3, 1, 2, 5, 6], "g": list("aaabb")})
    fig = line_curves(df, "x", "y", "g", title="T")
    curves = [el for el in fig if isinstance(el, hv.Curve)]
    assert [c.label for c in curves] == ["a", "b"]
    np.testing.assert_array_equal(curves[0].dimension_values("y"), [1, 2, 3])
    np.testing.assert_array_equal(curves[1].dimension_values("x"), [0, 1])
    single = line_curves(df, "x", "y")
    assert len([el for el in single if isinstance(el, hv.Curve)]) == 1
    with pytest.raises(KeyError, match="missing column"):
        line_curves(df, "x", "z")


def test_sequence_bars_offsets_and_nan():
    fig = sequence_bars({"s": [1.0, 2.0, 3.0], "r": (1, np.array([0.5, np.nan]))})
    s, r = list(fig)
    assert list(s.dimension_values("position")) == ["0", "1", "2"]
    assert list(r.dimension_values("position")) == ["1"]  # NaN dropped, offset 1
    np.testing.assert_array_equal(r.dimension_values("r"), [0.5])
    with pytest.raises(ValueError, match="at least one"):
        sequence_bars({})


def test_matrix_heatmap_orientation():
    df = pd.DataFrame(
        [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]],
        index=pd.Index(["a", "b", "c"], name="A"),
        columns=pd.Index(["x", "y"], name="B"),
    )
    fig = matrix_heatmap(df, value="cka")
    img = fig.Image.I
    for i in range(3):  # y = i (row i, drawn from the top) and x = j hold df.iloc[i, j]
        for j in range(2):
            assert img[j, i] == pytest.approx(df.iloc[i, j])
    opts = img.opts.get("plot", backend="bokeh").kwargs
    assert opts["yticks"] == [(0, "a"), (1, "b"), (2, "c")]
    assert opts["xticks"] == [(0, "x"), (1, "y")]
    assert img.kdims[0].label == "B" and img.vdims[0].name == "cka"


def test_grid_of_keeps_the_rows_of_nested_grids():
    from cnnexplore_nb.plots import kernel_grid

    rng = np.random.default_rng(0)
    a, b = (kernel_grid(rng.normal(size=(5, 1, 3, 3)), ncols=4) for _ in range(2))
    grid = grid_of([a, b], 1)
    assert grid._max_cols == 4
    kinds = [type(p).__name__ for p in grid]
    # a: 4 + 1 (+ 3 gaps), b: 4 + 1 (+ 3 gaps): each grid starts a new row
    assert kinds == ["Image"] * 5 + ["Empty"] * 3 + ["Image"] * 5 + ["Empty"] * 3
