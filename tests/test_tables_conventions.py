"""CNN Explorer conventions of the tables: dead maps, max/min filters, partner statistics,
and the format-3 files (with older sets still readable)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import cnnexplore_nb.similarity.tables_io as tables_io
from cnnexplore_nb.similarity import correlation_tables, load_tables, save_tables
from cnnexplore_nb.similarity._fileset import sha256


def _hand_maps() -> dict[str, np.ndarray]:
    """l1: x, 2x + 1, dead, dead; l2: -x + 3, noise, dead."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 5))
    noise = rng.normal(size=(2, 5, 5))
    zero = np.zeros_like(x)
    l1 = np.stack([x, 2 * x + 1, zero, zero], axis=1)
    l2 = np.stack([-x + 3, noise, zero + 0.5], axis=1)
    return {"l1": l1, "l2": l2}


def _explorer_pairs(maps_a, maps_b, la, lb) -> np.ndarray:
    """The original per-pair loop: std < 1e-10 flags, 1 for two dead maps, 0 for one."""
    xa, xb = maps_a[la], maps_b[lb]
    out = np.empty((xa.shape[1], xb.shape[1]))
    for i in range(xa.shape[1]):
        for j in range(xb.shape[1]):
            u, v = xa[:, i].ravel(), xb[:, j].ravel()
            du, dv = u.std(ddof=1) < 1e-10, v.std(ddof=1) < 1e-10
            if du and dv:
                out[i, j] = 1.0
            elif du or dv:
                out[i, j] = 0.0
            else:
                out[i, j] = abs(np.corrcoef(u, v)[0, 1])
    return out


def test_constant_conventions_on_hand_made_maps():
    maps = _hand_maps()
    nan = correlation_tables(maps, progress=False)
    exp = correlation_tables(maps, progress=False, constant="explorer")
    assert (nan.constant, exp.constant) == ("nan", "explorer")
    for key in nan.matrices:
        np.testing.assert_allclose(
            np.abs(exp.matrices[key]), _explorer_pairs(maps, maps, *key), atol=1e-6
        )
    m = exp.matrices[("l1", "l1")]
    assert m[2, 3] == 1.0 and m[2, 0] == 0.0 and np.isnan(nan.matrices[("l1", "l1")][2, 3])
    # the max table: dead maps pair up with each other at |r| = 1 only under "explorer"
    mx = exp.maxima.set_index(["A_layer", "B_layer", "A_map_id"])
    assert mx.loc[("l1", "l1", 2), "B_map_id"] == 3 and mx.loc[("l1", "l1", 2), "correlation"] == 1
    assert mx.loc[("l1", "l2", 2), "B_map_id"] == 2  # dead l1 map -> dead l2 map
    nmx = nan.maxima.set_index(["A_layer", "B_layer", "A_map_id"])
    assert nmx.loc[("l1", "l1", 2), "B_map_id"] == -1
    # the stats show it: 2 of 4 maps well correlated vs 4 of 4, with 2 dead maps in l1
    for t, count in ((nan, 2), (exp, 4)):
        row = t.stats.set_index(["A_layer", "B_layer"]).loc[("l1", "l1")]
        assert row["count"] == count and row["percent"] == 25.0 * count
        assert (row["A_n_dead"], row["B_n_dead"]) == (2, 2)
    row = exp.stats.set_index(["A_layer", "B_layer"]).loc[("l1", "l2")]
    assert (row["count"], row["A_n_dead"], row["B_n_dead"]) == (4, 2, 1)
    assert list(exp.explorer("stats").columns[-2:]) == ["A(1)_n_dead", "A(2)_n_dead"]
    # min table: a live map's min is 0 against a dead map under "explorer"
    mn = exp.minima.set_index(["A_layer", "B_layer", "A_map_id"])
    assert mn.loc[("l1", "l1", 0), "correlation"] == 0.0
    with pytest.raises(ValueError, match="constant='explorer' reproduces CNN Explorer's Pearson"):
        correlation_tables(maps, measure="cosine", constant="explorer", progress=False)
    with pytest.raises(ValueError, match=r"unknown constant convention 'one'"):
        correlation_tables(maps, constant="one", progress=False)


def _original_max(pairs: pd.DataFrame, low: float, self_cmp: bool) -> pd.DataFrame:
    """get_max_correlations(min_corr_threshold=low): filter pairs, then idxmax per A map."""
    rows = []
    for (la, lb), g in pairs.groupby(["A_layer", "B_layer"], observed=True):
        if self_cmp and la == lb:
            g = g[g["A_map_id"] != g["B_map_id"]]
        g = g[g["correlation"] >= low].dropna(subset=["correlation"])
        for a_id, h in g.groupby("A_map_id"):
            best = h.loc[h["correlation"].idxmax()]
            rows.append((la, a_id, lb, int(best["B_map_id"]), best["correlation"]))
    return pd.DataFrame(rows, columns=["A_layer", "A_map_id", "B_layer", "B_map_id", "corr"])


def _original_stats(mx: pd.DataFrame, n_maps: int) -> pd.DataFrame:
    """get_correlation_stats: pivot of the max table by partner (count, mean, median, std)."""
    g = mx.groupby(["A_layer", "B_layer", "B_map_id"])["corr"]
    out = g.agg(["count", "mean", "median", "std"]).reset_index()
    out["freq"] = 100 * out["count"] / n_maps
    return out


@pytest.mark.parametrize("low", [0.0, 0.3, 0.6])
def test_max_filter_and_partner_statistics_match_the_original_pipeline(low):
    rng = np.random.default_rng(1)
    base = rng.normal(size=(2, 6, 6, 6))
    maps = {"c1": base + 0.8 * rng.normal(size=base.shape),
            "c2": base[:, ::-1] + rng.normal(size=base.shape)}  # fmt: skip
    t = correlation_tables(maps, progress=False)
    ref = _original_max(t.pairs.astype({"A_layer": str, "B_layer": str}), low, True)
    got = t.maxima_between(low)
    assert len(got) == len(ref)
    key = ["A_layer", "B_layer", "A_map_id"]
    merged = got.astype({"A_layer": str, "B_layer": str}).merge(ref, on=key)
    np.testing.assert_array_equal(merged["B_map_id_x"], merged["B_map_id_y"])
    np.testing.assert_allclose(merged["correlation"], merged["corr"])
    part = t.partners_between(low).astype({"A_layer": str, "B_layer": str})
    want = _original_stats(ref, n_maps=6)
    both = part.merge(want, on=["A_layer", "B_layer", "B_map_id"])
    assert len(both) == len(part) == len(want)
    np.testing.assert_array_equal(both["frequency"], both["count"])
    for ours, theirs in (("percent", "freq"), ("mean", "mean_y"), ("median", "median_y"),
                         ("std", "std_y")):  # fmt: skip
        col = ours if ours == "percent" else f"{ours}_x"
        np.testing.assert_allclose(both[col], both[theirs], equal_nan=True)
    if low == 0.0:
        pd.testing.assert_frame_equal(t.partners_between(), t.partners)


def test_min_filter_and_bounds():
    t = correlation_tables(_hand_maps(), progress=False)
    got = t.minima_between(high=0.2)
    assert (got["correlation"] <= 0.2).all()
    assert len(got) == int((t.minima["correlation"] <= 0.2).sum())
    mid = t.maxima_between(0.5, 0.99)
    assert mid["correlation"].between(0.5, 0.99).all()
    assert len(t.partners_between(table="min")) > 0
    with pytest.raises(ValueError, match=r"low must be <= high, got low=0.9 > high=0.2"):
        t.maxima_between(0.9, 0.2)
    with pytest.raises(ValueError, match=r"high must be in \[0.0, 1.0\], got 2"):
        t.minima_between(high=2)
    with pytest.raises(ValueError, match=r"unknown table 'mean'"):
        t.partners_between(table="mean")


def test_partners_statistics_by_hand():
    # 3 maps of A whose max partners in B are map 0 (|r| 1.0 and ~0.6) and map 1
    rng = np.random.default_rng(2)
    x, y, z = rng.normal(size=(3, 1, 40, 40))
    a = np.stack([x, x + 1.33 * z, y], axis=1)
    b = np.stack([x, y], axis=1)
    t = correlation_tables({"a": a}, {"b": b}, progress=False)
    p = t.partners.set_index("B_map_id")
    r = np.abs(np.corrcoef(np.stack([x.ravel(), (x + 1.33 * z).ravel()])))[0, 1]
    assert p.loc[0, "frequency"] == 2 and p.loc[1, "frequency"] == 1
    assert p.loc[0, "mean"] == pytest.approx((1 + r) / 2, abs=1e-6)
    assert p.loc[0, "median"] == pytest.approx((1 + r) / 2, abs=1e-6)
    assert p.loc[0, "std"] == pytest.approx(np.std([1, r], ddof=1), abs=1e-6)
    assert np.isnan(p.loc[1, "std"]) and p.loc[0, "percent"] == pytest.approx(200 / 3)


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_format_3_round_trip_keeps_the_convention(tmp_path, fmt):
    t = correlation_tables(_hand_maps(), names=("CNN6", "CNN6"), constant="explorer",
                           progress=False)  # fmt: skip
    save_tables(t, tmp_path, fmt=fmt)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["format_version"] == tables_io.FORMAT_VERSION == 3
    back = load_tables(tmp_path)
    assert back.constant == "explorer"
    for name in ("pairs", "maxima", "minima", "stats", "partners"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(t, name), check_exact=True)


def _as_version_2(directory, with_manifest: bool) -> None:
    """Rewrite a saved csv set as format 2 wrote it: no dead counts, no partner stats."""
    meta = json.loads((directory / "metadata.json").read_text())
    del meta["constant"], meta["format_version"]
    (directory / "metadata.json").write_text(json.dumps(meta))
    for name, drop in (("stats", "_n_dead"), ("partners", None)):
        df = pd.read_csv(directory / f"{name}.csv")
        keep = [c for c in df.columns if not (c.endswith("_n_dead") if drop else
                c in ("percent", "mean", "median", "std"))]  # fmt: skip
        df[keep].to_csv(directory / f"{name}.csv", index=False)
    manifest = json.loads((directory / "manifest.json").read_text())
    if not with_manifest:
        (directory / "manifest.json").unlink()
        return
    manifest["format_version"] = 2
    for name, entry in manifest["files"].items():
        entry["sha256"] = sha256(directory / name)
    (directory / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("with_manifest", [True, False])
def test_sets_saved_by_format_2_load_with_rebuilt_stats_and_partners(tmp_path, with_manifest):
    t = correlation_tables(_hand_maps(), progress=False)
    save_tables(t, tmp_path)
    _as_version_2(tmp_path, with_manifest)
    if with_manifest:
        back = load_tables(tmp_path)
    else:
        with pytest.warns(UserWarning, match="has no manifest.json"):
            back = load_tables(tmp_path)
    assert back.constant == "nan"
    for name in ("stats", "partners", "maxima"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(t, name), check_exact=True)
