"""Thesis correlation tables: counts, exclusion rules, percentages, save/load, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from _fetch_helpers import can_drop_privileges, run_unprivileged, shared_tmp
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
        "B_zero_flag", "A_layer", "B_layer", "signed_correlation", "A_degenerate",
        "B_degenerate",
    ]  # fmt: skip
    assert list(t.explorer("pairs").columns) == [
        "CNN6(1)_map_id", "CNN6(2)_map_id", "correlation", "CNN6(1)_zero_flag",
        "CNN6(2)_zero_flag", "CNN6(1)_layer", "CNN6(2)_layer", "signed_correlation",
        "CNN6(1)_degenerate", "CNN6(2)_degenerate",
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
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # same seed, same bits: at a fixed number of threads
    try:
        t1 = correlation_tables(_net_maps(7), progress=False)
        t2 = correlation_tables(_net_maps(7), progress=False)
    finally:
        torch.set_num_threads(before)
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


# ---------------------------------------------------------------- all-or-nothing saves


def _old_and_new(tmp_path, fmt="csv"):
    """A saved set (its files' bytes) and other tables to save over it."""
    old = correlation_tables(_maps(seed=1, k=6), progress=False)
    save_tables(old, tmp_path / "set", fmt=fmt)
    new = correlation_tables(_maps(seed=2, k=6), progress=False)
    return old, new, _bytes(tmp_path / "set")


def _bytes(directory) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def _same_tables(a, b) -> None:
    for name in ("pairs", "maxima", "minima", "stats", "partners"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    for key, mat in a.matrices.items():
        np.testing.assert_array_equal(b.matrices[key], mat)


@pytest.mark.parametrize("fail_at", range(1, 8))  # 5 tables, metadata.json, manifest.json
def test_a_rename_failing_mid_commit_leaves_the_old_set_identical(tmp_path, monkeypatch, fail_at):
    old, new, before = _old_and_new(tmp_path)
    real, calls = os.replace, []

    def flaky(src, dst, *args, **kwargs):
        if Path(dst).parent == tmp_path / "set":
            calls.append(Path(dst).name)
            if len(calls) == fail_at:
                raise OSError(f"injected failure renaming onto {dst}")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(tables_io.os, "replace", flaky)
    with pytest.raises(OSError, match="injected failure"):
        save_tables(new, tmp_path / "set")
    monkeypatch.undo()
    assert calls[fail_at - 1] in before  # it failed on one of the set's files
    assert _bytes(tmp_path / "set") == before  # same files, same bytes, nothing left over
    _same_tables(old, load_tables(tmp_path / "set"))
    save_tables(new, tmp_path / "set")  # and the next save goes through
    _same_tables(new, load_tables(tmp_path / "set"))


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_get_the_permissions_open_gives(tmp_path, umask):
    """Not mkstemp's owner-only 0o600: colleagues can read a shared results folder."""
    from cnnexplore_nb.io import save_checkpoint

    old = os.umask(umask)
    try:
        with open(tmp_path / "reference", "w"):  # what any other file written here gets
            pass
        written = save_tables(T, tmp_path / "set") + [save_checkpoint({}, tmp_path / "c.pt")]
    finally:
        os.umask(old)
    want = (tmp_path / "reference").stat().st_mode & 0o777
    assert want == 0o666 & ~umask
    assert {p.name: p.stat().st_mode & 0o777 for p in written} == dict.fromkeys(
        [p.name for p in written], want
    )


def test_a_target_that_is_a_directory_fails_the_save_and_keeps_the_old_set(tmp_path):
    old, new, before = _old_and_new(tmp_path, fmt="csv")
    (tmp_path / "set" / "max.json").mkdir()  # in the way of the json set's second file
    with pytest.raises(IsADirectoryError, match=r"max\.json"):
        save_tables(new, tmp_path / "set", fmt="json")
    assert _bytes(tmp_path / "set") == before
    assert sorted(p.name for p in (tmp_path / "set").iterdir()) == sorted([*before, "max.json"])
    _same_tables(old, load_tables(tmp_path / "set"))


KILLED_SAVE = """
import os, signal
import numpy as np
import cnnexplore_nb.similarity.tables_io as tables_io
from cnnexplore_nb.similarity import correlation_tables, save_tables

maps = dict(np.load({maps!r}))
new = correlation_tables(maps, progress=False)
real, calls = os.replace, []

def killing(src, dst, *args, **kwargs):
    calls.append(dst)
    if len(calls) == {kill_at}:
        os.kill(os.getpid(), signal.SIGKILL)  # no handler, no finally: a real kill
    return real(src, dst, *args, **kwargs)

tables_io.os.replace = killing
save_tables(new, {directory!r})
"""


@pytest.mark.parametrize("kill_at", [2, 4, 7])  # after 1 / 3 / 6 files of 7 were replaced
def test_a_save_killed_between_replacements_is_rolled_back_on_load(tmp_path, kill_at):
    old, new, before = _old_and_new(tmp_path)
    np.savez(tmp_path / "maps.npz", **_maps(seed=2, k=6))
    code = KILLED_SAVE.format(
        maps=str(tmp_path / "maps.npz"), kill_at=kill_at, directory=str(tmp_path / "set")
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    # the kill left new and old files mixed: the first kill_at - 1 moved in, the others
    # still temporary, and a backup of every old file
    after = _bytes(tmp_path / "set")
    assert after["pairs.csv"] != before["pairs.csv"]  # the first file replaced
    assert sum(n.endswith(".tmp") for n in after) == 8 - kill_at
    assert sum(n.endswith(".bak") for n in after) == 7
    assert after["manifest.json"] == before["manifest.json"]  # not committed
    with pytest.warns(RuntimeWarning, match="interrupted save .* was rolled back"):
        back = load_tables(tmp_path / "set")
    _same_tables(old, back)
    assert {n: b for n, b in _bytes(tmp_path / "set").items() if n in before} == before
    save_tables(new, tmp_path / "set")  # a later save clears the leftovers
    assert sorted(_bytes(tmp_path / "set")) == sorted(before)
    _same_tables(new, load_tables(tmp_path / "set"))


@pytest.mark.skipif(not can_drop_privileges(), reason="needs a user without root's rights")
def test_a_killed_save_in_a_read_only_folder_is_named_and_left_as_it_is():
    with shared_tmp() as tmp:
        old, _, before = _old_and_new(tmp)
        np.savez(tmp / "maps.npz", **_maps(seed=2, k=6))
        code = KILLED_SAVE.format(maps=str(tmp / "maps.npz"), kill_at=4, directory=str(tmp / "set"))
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
        killed = _bytes(tmp / "set")
        assert killed != before
        (tmp / "set").chmod(0o555)
        out = run_unprivileged(
            f"from cnnexplore_nb import load_tables\nresult = load_tables({str(tmp / 'set')!r})"
        )
        assert out.get("error") == "PermissionError", out
        assert out["message"].startswith(
            f"{str(tmp / 'set')!r} holds a save that was interrupted: 3 file(s) of the saved "
            "set (pairs.csv, max.csv, min.csv) were replaced"
        ), out["message"]
        assert _bytes(tmp / "set") == killed  # nothing changed
        (tmp / "set").chmod(0o755)
        with pytest.warns(RuntimeWarning, match="was rolled back"):
            _same_tables(old, load_tables(tmp / "set"))


# ---------------------------------------------------------------- truncated files


def _keep_lines(n):
    def cut(path):
        path.write_text("".join(path.read_text().splitlines(keepends=True)[:n]))

    return cut


def _keep_fraction(f):
    def cut(path):
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * f)])

    return cut


TRUNCATED = [
    ("pairs.csv missing its last rows", "pairs.csv", _keep_lines(30),
     r"pairs\.csv' does not match manifest\.json: expected 36 rows, found 29"),
    ("stats.csv cut to 1 of 4 rows", "stats.csv", _keep_lines(2),
     r"stats\.csv' does not match manifest\.json: expected 4 rows, found 1"),
    ("pairs.csv cut mid-line", "pairs.csv", _keep_fraction(0.55),
     r"pairs\.csv' does not match manifest\.json: expected 36 rows, found \d+"),
    ("max.csv cut mid-line", "max.csv", _keep_fraction(0.5),
     r"max\.csv' does not match manifest\.json: expected 12 rows, found \d+"),
    ("truncated metadata.json", "metadata.json", _keep_fraction(0.5),
     r"metadata\.json' does not match manifest\.json: .*sha256 mismatch: truncated"),
    ("truncated manifest.json", "manifest.json", _keep_fraction(0.5),
     r"manifest '.*manifest\.json' is not valid JSON \(truncated or corrupt"),
]  # fmt: skip


@pytest.fixture
def small_set(tmp_path):
    rng = np.random.default_rng(0)
    maps = {f"conv_module{i}": rng.normal(size=(2, 3, 4, 4)) for i in (1, 2)}
    tables = correlation_tables(maps, progress=False)
    assert (len(tables.pairs), len(tables.stats), len(tables.maxima)) == (36, 4, 12)
    save_tables(tables, tmp_path / "set")
    return tmp_path / "set"


@pytest.mark.parametrize(("name", "cut", "match"), [t[1:] for t in TRUNCATED],
                         ids=[t[0] for t in TRUNCATED])  # fmt: skip
def test_a_truncated_file_is_an_error_naming_it(small_set, name, cut, match):
    cut(small_set / name)
    with pytest.raises(tables_io.TablesFormatError, match=match) as err:
        load_tables(small_set)
    assert str(small_set / name) in str(err.value)


WITHOUT_MANIFEST = [
    ("pairs.csv", _keep_lines(30),
     r"pairs\.csv' has 2 row\(s\) for layers 'conv_module2' x 'conv_module2', expected 9 "
     r"\(3 x 3 maps\)"),
    ("pairs.csv", _keep_lines(36),  # the last row only: the matrix would come back 3 x 2
     r"pairs\.csv' has 8 row\(s\) for layers 'conv_module2' x 'conv_module2', expected 9"),
    ("stats.csv", _keep_lines(2),
     r"stats\.csv' has 1 row\(s\), expected 4 \(one per layer pair of 2 x 2 layers\)"),
    ("metadata.json", _keep_fraction(0.5), r"metadata '.*metadata\.json' is not valid JSON"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "cut", "match"), WITHOUT_MANIFEST)
def test_sets_without_a_manifest_are_still_checked_for_truncation(small_set, name, cut, match):
    (small_set / "manifest.json").unlink()  # as saved by an older version
    cut(small_set / name)
    with pytest.warns(UserWarning, match="has no manifest.json"):
        with pytest.raises(tables_io.TablesFormatError, match=match):
            load_tables(small_set)
