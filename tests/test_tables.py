"""Thesis correlation tables: counts, exclusion rules, percentages, save/load, bad input."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import cnnexplore_nb.similarity.tables_io as tables_io
from cnnexplore_nb.similarity import (
    correlation_tables,
    load_tables,
    save_tables,
    similarity_matrix,
    zero_flags,
)


def _maps(seed: int = 0, k: int = 64, n: int = 2, hw: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    m1 = rng.normal(size=(n, k, hw, hw)).astype(np.float32)
    m2 = rng.normal(size=(n, k, hw, hw)).astype(np.float32)
    m1[:, 3] = 0.0  # a dead map
    m2[:, 5] = 2 * m2[:, 4] + 1  # an exact affine copy
    return {"conv_module1": m1, "conv_module2": m2}


def _slow_extreme(mat: np.ndarray, exclude_diag: bool, largest: bool):
    """Per-row reference for the max/min tables: (B id or -1, |r| or NaN)."""
    out = []
    for i, row in enumerate(np.abs(mat)):
        cands = [(v, j) for j, v in enumerate(row) if not np.isnan(v)]
        cands = [(v, j) for v, j in cands if not (exclude_diag and i == j)]
        if not cands:
            out.append((-1, np.nan))
            continue
        best = max(cands, key=lambda t: (t[0], -t[1])) if largest else min(cands)
        out.append((best[1], best[0]))
    return out


def test_self_comparison_counts_names_and_zero_flags():
    maps = _maps()
    t = correlation_tables(maps, names=("CNN6", "CNN6"), progress=False)
    assert len(t.pairs) == 16_384 and len(t.maxima) == len(t.minima) == 256
    assert list(t.pairs.columns) == [
        "A_map_id", "B_map_id", "correlation", "A_zero_flag",
        "B_zero_flag", "A_layer", "B_layer", "signed_correlation",
    ]  # fmt: skip
    assert list(t.explorer("pairs").columns) == [
        "CNN6(1)_map_id", "CNN6(2)_map_id", "correlation", "CNN6(1)_zero_flag",
        "CNN6(2)_zero_flag", "CNN6(1)_layer", "CNN6(2)_layer", "signed_correlation",
    ]  # fmt: skip
    assert list(t.pairs["A_layer"].cat.categories) == ["conv_module1", "conv_module2"]
    flags = t.pairs.groupby(["A_layer", "A_map_id"], observed=True)["A_zero_flag"].first()
    np.testing.assert_array_equal(flags["conv_module1"], zero_flags(maps["conv_module1"]))
    assert flags["conv_module1"][3] == 1 and flags.sum() == 1
    same = t.pairs[t.pairs["A_layer"] == t.pairs["B_layer"]]
    np.testing.assert_array_equal(same["correlation"], same["signed_correlation"].abs())
    ref = similarity_matrix(maps["conv_module2"], maps["conv_module1"])
    np.testing.assert_allclose(t.matrices[("conv_module2", "conv_module1")], ref, atol=1e-6)
    assert correlation_tables(maps, progress=False).names == ("A(1)", "A(2)")
    other = correlation_tables(maps, _maps(1), names=("X", "Y"), progress=False)
    assert other.names == ("X", "Y") and "X_map_id" in other.explorer("pairs")


@pytest.mark.parametrize("self_cmp", [True, False])
def test_max_min_match_slow_reference_with_self_exclusion(self_cmp):
    maps = _maps(k=6, hw=3)
    maps_b = None if self_cmp else {k: v.copy() for k, v in maps.items()}
    t = correlation_tables(maps, maps_b, names=("M", "M"), progress=False)
    a, b = "A", "B"
    for (la, lb), mat in t.matrices.items():
        excl = self_cmp and la == lb
        for table, largest in ((t.maxima, True), (t.minima, False)):
            rows = table[(table[f"{a}_layer"] == la) & (table[f"{b}_layer"] == lb)]
            ref = _slow_extreme(mat, excl, largest)
            np.testing.assert_array_equal(rows[f"{b}_map_id"], [j for j, _ in ref])
            np.testing.assert_allclose(rows["correlation"], [v for _, v in ref])
    same = t.maxima[(t.maxima["A_layer"] == t.maxima["B_layer"])]
    own = same[f"{a}_map_id"] == same[f"{b}_map_id"]
    # a map is excluded only against itself in a self-comparison; its copy in B is not
    if self_cmp:
        assert not own.any()
    else:
        np.testing.assert_allclose(same["correlation"].dropna(), 1.0, atol=1e-6)


def test_nan_never_chosen_and_no_partner_rows():
    t = correlation_tables(_maps(k=8), progress=False)
    dead = t.maxima["A_layer"].eq("conv_module1") & t.maxima["A_map_id"].eq(3)
    for table in (t.maxima, t.minima):
        nan = table["correlation"].isna()
        np.testing.assert_array_equal(nan, table["B_map_id"] == -1)
        np.testing.assert_array_equal(nan, dead)  # only the constant map lacks partners
        partner_is_dead = table["B_layer"].eq("conv_module1") & table["B_map_id"].eq(3)
        assert not partner_is_dead.any()  # its NaN correlations are never chosen


def test_percent_is_per_layer_pair_and_matches_hand_count():
    rng = np.random.default_rng(5)
    base = rng.normal(size=(2, 4, 5, 5))
    l1 = np.concatenate([base, 2 * base + 1], axis=1)
    # every map has a |r| = 1 partner in its own layer and in the other layer
    maps = {"l1": l1, "l2": -3 * l1[:, ::-1] + 2}
    t = correlation_tables(maps, threshold=0.8, progress=False)
    assert (t.stats["percent"] == 100.0).all()  # the original reported 200 % here
    assert t.stats.groupby("A_layer", observed=True)["percent"].sum().max() == 200.0
    t2 = correlation_tables(_maps(k=16), threshold=0.5, progress=False)
    for _, row in t2.stats.iterrows():
        sel = t2.maxima[
            (t2.maxima["A_layer"] == row["A_layer"]) & (t2.maxima["B_layer"] == row["B_layer"])
        ]
        hits = [v for v in sel["correlation"] if v >= 0.5]
        assert row["count"] == len(hits) and row["n_maps"] == 16
        assert row["percent"] == pytest.approx(100 * len(hits) / 16) and row["percent"] <= 100
        if len(hits) > 1:
            assert row["std"] == pytest.approx(pd.Series(hits).std())  # ddof=1
            assert row["median"] == pytest.approx(np.median(hits))


def test_with_threshold_and_partners():
    maps = _maps(k=16)
    t = correlation_tables(maps, threshold=0.8, progress=False)
    t3 = t.with_threshold(0.3)
    fresh = correlation_tables(maps, threshold=0.3, progress=False)
    pd.testing.assert_frame_equal(t3.stats, fresh.stats)
    assert t3.threshold == 0.3 and t.threshold == 0.8
    pd.testing.assert_frame_equal(t.stats_at(0.3), fresh.stats)
    valid = t.maxima[t.maxima["B_map_id"] >= 0]
    counts = valid.groupby(["A_layer", "B_layer", "B_map_id"], observed=True).size()
    got = t.partners.set_index(["A_layer", "B_layer", "B_map_id"])["frequency"]
    pd.testing.assert_series_equal(got.sort_index(), counts.sort_index(), check_names=False)
    assert (
        t.partners.groupby(["A_layer", "B_layer"], observed=True)["frequency"]
        .sum()
        .eq(
            t.maxima.groupby(["A_layer", "B_layer"], observed=True)["B_map_id"].apply(
                lambda s: int((s >= 0).sum())
            )
        )
        .all()
    )


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_save_load_round_trip_with_several_layer_pairs(tmp_path, fmt):
    rng = np.random.default_rng(6)
    maps_a = {f"layer{i}": rng.normal(size=(2, 5, 4, 4)) for i in range(2)}
    maps_b = {f"block.{i}": rng.normal(size=(2, 3, 4, 4)) for i in range(3)}
    maps_b["block.1"][:, 0] = 0.0
    t = correlation_tables(maps_a, maps_b, names=("CNN6", "CNN10"), progress=False)
    written = save_tables(t, tmp_path / "out", fmt=fmt)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in written)
    back = load_tables(tmp_path / "out")
    for name in ("pairs", "maxima", "minima", "stats", "partners"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(t, name), check_exact=True)
    assert back.names == t.names and back.threshold == t.threshold
    assert list(back.matrices) == list(t.matrices)
    for key, mat in t.matrices.items():
        np.testing.assert_array_equal(back.matrices[key], mat)
    for k, v in t.zero_flags_b.items():
        np.testing.assert_array_equal(back.zero_flags_b[k], v)


def test_save_is_atomic_when_a_write_fails(tmp_path, monkeypatch):
    t = correlation_tables(_maps(k=6), progress=False)
    real, calls = tables_io._write_table, []

    def failing(df, path, fmt):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        real(df, path, fmt)

    monkeypatch.setattr(tables_io, "_write_table", failing)
    with pytest.raises(OSError, match="disk full"):
        save_tables(t, tmp_path, fmt="csv")
    assert os.listdir(tmp_path) == []


def _net_maps(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1))
    x = torch.rand(2, 1, 9, 9)
    with torch.no_grad():
        h = net[1](net[0](x))
        return {"0": net[0](x), "1": h, "2": net[2](h)}


def test_same_seed_gives_bit_identical_tables(tmp_path):
    t1 = correlation_tables(_net_maps(7), progress=False)
    t2 = correlation_tables(_net_maps(7), progress=False)
    for name in ("pairs", "maxima", "minima", "stats", "partners"):
        pd.testing.assert_frame_equal(getattr(t1, name), getattr(t2, name), check_exact=True)
    save_tables(t1, tmp_path / "a")
    save_tables(t2, tmp_path / "b")
    assert (tmp_path / "a/pairs.csv").read_bytes() == (tmp_path / "b/pairs.csv").read_bytes()
    t3 = correlation_tables(_net_maps(8), progress=False)
    assert not t3.pairs["correlation"].equals(t1.pairs["correlation"])


def _nan_maps():
    m = np.ones((1, 2, 3, 3))
    m[0, 1, 0, 0] = np.nan
    return m


def _inf_maps():
    m = np.zeros((1, 2, 3, 3))
    m[0, 0, 1, 1] = np.inf
    return m


X = np.random.default_rng(0).normal(size=(2, 3, 4, 4))
T = correlation_tables({"l": X}, progress=False)
BAD = [
    ("unknown measure", lambda p: similarity_matrix(X, measure="spearman"), ValueError,
     r"unknown measure 'spearman'.*Expected one of: pearson, abs_pearson, cosine, euclidean"),
    ("NaN maps", lambda p: similarity_matrix(_nan_maps()), ValueError,
     r"a must be finite, got NaN/Inf in channel\(s\) \[1\]"),
    ("Inf maps", lambda p: correlation_tables({"l": _inf_maps()}, progress=False), ValueError,
     r"must be finite, got NaN/Inf in channel\(s\) \[0\]"),
    ("0 images", lambda p: similarity_matrix(np.zeros((0, 3, 4, 4))), ValueError,
     r"a is empty.*got shape \(0, 3, 4, 4\)"),
    ("0 channels", lambda p: similarity_matrix(X, np.zeros((2, 0, 4, 4))), ValueError,
     r"b is empty.*got shape \(2, 0, 4, 4\)"),
    ("0 pixels", lambda p: zero_flags(np.zeros((3, 0, 4))), ValueError,
     r"maps is empty.*got shape \(1, 3, 0, 4\)"),
    ("wrong ndim", lambda p: similarity_matrix(np.zeros((4, 4))), ValueError,
     r"a must have shape \(N, C, H, W\) or \(C, H, W\), got shape \(4, 4\)"),
    ("H x W mismatch", lambda p: similarity_matrix(X, np.zeros((2, 3, 5, 6))), ValueError,
     r"a \(4, 4\) vs b \(5, 6\); pass resample='bilinear-down'.*'bilinear-up'.*\(H, W\)"),
    ("layers H x W mismatch",
     lambda p: correlation_tables({"a": X, "b": X[..., :2]}, progress=False), ValueError,
     r"different sizes H x W: \[\(4, 2\), \(4, 4\)\]; pass resample="),
    ("unknown resample", lambda p: similarity_matrix(X, X[..., :2], resample="nearest"),
     ValueError, r"unknown resample policy 'nearest'.*Expected one of: bilinear-down"),
    ("b with other N", lambda p: similarity_matrix(X, X[:1]), ValueError,
     r"same number of images N, got N=2 for a and N=1 for b"),
    ("threshold -0.1", lambda p: correlation_tables({"l": X}, threshold=-0.1), ValueError,
     r"threshold must be in \[0.0, 1.0\], got -0.1"),
    ("threshold 1.5", lambda p: T.with_threshold(1.5), ValueError,
     r"threshold must be in \[0.0, 1.0\], got 1.5"),
    ("zero layers", lambda p: correlation_tables({}), ValueError,
     r"maps_a must hold at least one layer, got 0 layers"),
    ("not a dict", lambda p: correlation_tables([X]), TypeError,
     r"maps_a must be a dict of layer path -> maps.*got list"),
    ("table measure", lambda p: correlation_tables({"l": X}, measure="euclidean"), ValueError,
     r"unknown table measure 'euclidean'.*Expected one of: pearson, cosine"),
    ("unknown format", lambda p: save_tables(T, p / "out", fmt="xlsx"), ValueError,
     r"unknown format 'xlsx'.*Expected one of: csv, json, parquet"),
    ("unwritable dir", lambda p: save_tables(T, p / "file.txt" / "out"), PermissionError,
     r"cannot create output directory .*file.txt/out"),
    ("missing tables", lambda p: load_tables(p), FileNotFoundError, r"metadata.json is missing"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "exc", "match"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, call, exc, match):
    (tmp_path / "file.txt").write_text("keep")
    with pytest.raises(exc, match=match):
        call(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["file.txt"]
    assert (tmp_path / "file.txt").read_text() == "keep"


def test_progress_bar_streams_images_with_the_same_result(capsys):
    maps = _maps(k=7, n=3)
    quiet = correlation_tables(maps, progress=False)
    shown = correlation_tables(maps, progress=True)
    assert "similarity moments" in capsys.readouterr().err
    np.testing.assert_allclose(shown.pairs["correlation"], quiet.pairs["correlation"], atol=1e-6)
