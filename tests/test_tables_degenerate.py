"""Degenerate maps: constant, or non-zero at a handful of pixels (r decided by those pixels)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cnnexplore_nb.similarity import (
    correlation_tables,
    load_tables,
    map_support,
    save_tables,
    similarity_matrix,
)
from cnnexplore_nb.similarity._schema import frame
from cnnexplore_nb.similarity.tables import CorrelationTables


def _sparse_layer(rng: np.random.Generator) -> np.ndarray:
    """(3 images, 6 maps, 7 x 7): maps 0 and 1 lit at the same two pixels (r = 1 by
    coincidence of sparsity), map 2 constant, map 3 lit at 5 pixels, maps 4 and 5 dense and
    strongly correlated (r about 0.9)."""
    x = np.zeros((3, 6, 7, 7), np.float32)
    x[0, 0, 2, 3], x[1, 0, 4, 4] = 1.0, 2.0
    x[0, 1, 2, 3], x[1, 1, 4, 4] = 3.0, 6.0
    x[:, 2] = 0.5
    x[0, 3, :5, 0] = rng.random(5) + 0.1
    x[:, 4] = rng.random((3, 7, 7))
    x[:, 5] = x[:, 4] + 0.3 * rng.random((3, 7, 7))
    return x


def test_map_support_counts_non_zero_pixels_over_all_images():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5, 6, 6)).astype(np.float32)
    x[x < 0.5] = 0
    want = np.array([np.count_nonzero(x[:, c]) for c in range(5)])  # the obvious way
    np.testing.assert_array_equal(map_support(x), want)
    np.testing.assert_array_equal(map_support(torch.from_numpy(x)), want)
    np.testing.assert_array_equal(map_support(x[0]), [np.count_nonzero(v) for v in x[0]])


def test_map_support_in_blocks_matches_one_count():
    big = np.zeros((1, 6, 2048, 1536), np.float32)  # 2**24 values per block: 5 maps each
    big[0, 5, ::7, ::3] = 1.0  # the last map lies in the second block
    big[0, 0, 0, :10] = -2.0
    np.testing.assert_array_equal(map_support(big), [10, 0, 0, 0, 0, big[0, 5].astype(bool).sum()])


def test_degenerate_maps_are_flagged_in_the_pairs_table():
    x = _sparse_layer(np.random.default_rng(1))
    t = correlation_tables({"l": x}, progress=False)
    np.testing.assert_array_equal(t.support_a["l"], [2, 2, 3 * 49, 5, 3 * 49, 3 * 49])
    np.testing.assert_array_equal(t.degenerate_a["l"], [True, True, True, False, False, False])
    assert t.min_support == 5
    per_map = t.pairs.groupby("A_map_id")["A_degenerate"].first()
    np.testing.assert_array_equal(per_map, [1, 1, 1, 0, 0, 0])
    assert t.pairs["B_degenerate"].sum() == 3 * 6  # three maps of B, each in 6 pairs
    # the flags change no value: maps 0 and 1 keep their (coincidental) r = 1
    assert t.matrices["l", "l"][0, 1] == pytest.approx(1.0)
    assert t.maxima.loc[0, "B_map_id"] == 1
    loose = correlation_tables({"l": x}, progress=False, min_support=0)
    np.testing.assert_array_equal(loose.degenerate_a["l"], t.zero_flags_a["l"])
    strict = correlation_tables({"l": x}, progress=False, min_support=6)
    assert strict.degenerate_a["l"][3]  # 5 pixels < 6


def test_best_pair_skips_degenerate_maps_and_self_pairs():
    x = _sparse_layer(np.random.default_rng(2))
    t = correlation_tables({"l": x}, progress=False)
    r = similarity_matrix(x)
    i, j, value = t.best_pair("l", "l")
    assert {i, j} == {4, 5} and value == pytest.approx(r[4, 5], abs=1e-6)
    assert t.best_pair("l", "l", skip_degenerate=False)[:2] in [(0, 1), (1, 0)]
    # between two models: the best defined pair of non-degenerate maps
    y = np.concatenate([x[:, 4:5] * 2 + 1, x[:, :1]], axis=1)  # a copy of map 4, a sparse map
    between = correlation_tables({"l": x}, {"m": y}, progress=False)
    assert between.best_pair("l", "m")[:2] == (4, 0)
    only_sparse = correlation_tables({"l": x[:, :3]}, progress=False)
    assert only_sparse.best_pair("l", "l") is None
    with pytest.raises(KeyError, match=r"no layer pair \('l', 'nope'\) in the tables"):
        t.best_pair("l", "nope")


def test_flags_survive_threshold_changes_saving_and_loading(tmp_path):
    x = _sparse_layer(np.random.default_rng(3))
    t = correlation_tables({"l": x}, names=("Net", "Net"), progress=False)
    again = t.with_threshold(0.5)
    np.testing.assert_array_equal(again.degenerate_a["l"], t.degenerate_a["l"])
    assert again.best_pair("l", "l") == t.best_pair("l", "l")
    for fmt in ("csv", "json", "parquet"):
        save_tables(t, tmp_path / fmt, fmt=fmt)
        back = load_tables(tmp_path / fmt)
        assert "Net(1)_degenerate" in back.explorer("pairs").columns
        np.testing.assert_array_equal(back.degenerate_a["l"], t.degenerate_a["l"])
        np.testing.assert_array_equal(back.degenerate_b["l"], t.degenerate_b["l"])
        assert back.best_pair("l", "l") == pytest.approx(t.best_pair("l", "l"))


def test_a_set_without_the_column_falls_back_to_the_zero_flags():
    """Sets saved before the column existed: degenerate = constant (what they knew)."""
    x = _sparse_layer(np.random.default_rng(4))
    t = correlation_tables({"l": x}, progress=False)
    old = t.pairs.drop(columns=["A_degenerate", "B_degenerate"])
    rebuilt = frame({c: old[c].to_numpy() for c in old.columns}, "pairs", ["l"], ["l"])
    np.testing.assert_array_equal(rebuilt["A_degenerate"], old["A_zero_flag"])
    legacy = CorrelationTables(
        t.names, t.threshold, t.measure, t.matrices, t.zero_flags_a, t.zero_flags_b, True,
        frames={"pairs": old},
    )  # fmt: skip
    np.testing.assert_array_equal(legacy.degenerate_a["l"], t.zero_flags_a["l"])
    assert legacy.support_a is None and legacy.min_support is None


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [(-1, ValueError, r"min_support must be an integer >= 0, got -1"),
     (2.5, TypeError, r"min_support must be an integer >= 0, got 2.5"),
     (True, TypeError, r"min_support must be an integer >= 0, got True")],
)  # fmt: skip
def test_bad_min_support(value, error, match):
    with pytest.raises(error, match=match):
        correlation_tables({"l": np.ones((1, 2, 3, 3))}, min_support=value, progress=False)


def test_pairs_columns_are_typed():
    t = correlation_tables({"l": _sparse_layer(np.random.default_rng(5))}, progress=False)
    assert t.pairs["A_degenerate"].dtype == np.int64
    assert set(pd.unique(t.pairs["B_degenerate"])) == {0, 1}
