"""Statistics against hand-computed values, counting and scipy; the published numbers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu

from cnnexplore_nb.experiments import (
    compare_methods,
    dissertation_comparisons,
    dissertation_results,
    dissertation_table,
    holm,
    min_attainable_p,
    side_by_side,
    summarize,
    vargha_delaney_a12,
)


def _runs(cells: dict[tuple, list[float]]) -> pd.DataFrame:
    """Tidy runs from {(dataset, n, method): [values]}."""
    rows = [
        {"dataset": d, "n": n, "method": m, "seed": s, "test_acc": v, "status": "ok"}
        for (d, n, m), vals in cells.items()
        for s, v in enumerate(vals)
    ]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- summarize


def test_summarize_matches_hand_computed_values_in_percent():
    df = _runs({("stl10", 5, "ufm"): [0.1, 0.2, 0.4], ("stl10", 10, "ufm"): [0.5]})
    # failed runs and missing values are left out
    df = pd.concat(
        [df, pd.DataFrame([{"dataset": "stl10", "n": 5, "method": "ufm", "test_acc": 0.9, "status": "failed"},
                           {"dataset": "stl10", "n": 5, "method": "ufm", "test_acc": np.nan, "status": "ok"}])],
        ignore_index=True,
    )  # fmt: skip
    out = summarize(df, ["dataset", "n", "method"])
    first = out.iloc[0]
    assert (first["n"], first["n_runs"]) == (5, 3)
    assert first["mean"] == pytest.approx(70 / 3)
    # sample std by hand: deviations -40/3, -10/3, 50/3 -> sum of squares 4200/9, / (3 - 1)
    assert first["std"] == pytest.approx(math.sqrt(4200 / 9 / 2))
    assert first["median"] == pytest.approx(20.0)
    # linear quartiles of [10, 20, 40]: positions 0.5 and 1.5
    assert (first["q25"], first["q75"], first["iqr"]) == pytest.approx((15.0, 30.0, 15.0))
    assert first["mean_std"] == "23.33 ± 15.28"
    single = out.iloc[1]
    assert single["n_runs"] == 1 and np.isnan(single["std"]) and single["mean_std"] == "50.00 ± –"


def test_summarize_units_and_errors():
    df = _runs({("c", 5, "ufm"): [20.0, 30.0]})
    assert summarize(df, "method")["mean"].item() == 25.0  # already percent: left alone
    frac = _runs({("c", 5, "ufm"): [0.2, 0.3]})
    assert summarize(frac, "method", to_percent=False)["mean"].item() == pytest.approx(0.25)
    assert summarize(frac, [])["mean"].item() == pytest.approx(25.0)
    with pytest.raises(KeyError, match="unknown column 'test_ac'; closest: 'test_acc'"):
        summarize(df, "method", value="test_ac")
    with pytest.raises(TypeError, match="must be numeric"):
        summarize(df, "n", value="method")


# ---------------------------------------------------------------- A12, U, Holm


def _a12_by_counting(x, y):
    wins = sum((xi > yj) + 0.5 * (xi == yj) for xi in x for yj in y)
    return wins / (len(x) * len(y))


def test_a12_hand_example_and_counting():
    # pairs: 3>1, 3=3 (half), 4>1, 4>3 -> 3.5 / 4
    assert vargha_delaney_a12([3, 4], [1, 3]) == 0.875
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(0, 6, size=rng.integers(1, 9))  # many ties
        y = rng.integers(0, 6, size=rng.integers(1, 9))
        assert vargha_delaney_a12(x, y) == pytest.approx(_a12_by_counting(x, y))
    assert vargha_delaney_a12([5, 6], [1, 2]) == 1.0 and vargha_delaney_a12([1], [1]) == 0.5
    with pytest.raises(ValueError, match="sizes 0 and 2"):
        vargha_delaney_a12([], [1, 2])


def _exact_two_sided_p(x, y):
    """Exact Mann-Whitney p by enumerating every split of the pooled sample (no ties)."""
    pooled, m = list(x) + list(y), len(x)

    def u(xs, ys):
        return sum(a > b for a in xs for b in ys)

    observed = u(x, y)
    us = []
    for idx in itertools.combinations(range(len(pooled)), m):
        xs = [pooled[i] for i in idx]
        ys = [pooled[i] for i in range(len(pooled)) if i not in idx]
        us.append(u(xs, ys))
    us = np.array(us)
    return min(1.0, 2 * min((us >= observed).mean(), (us <= observed).mean())), observed


def test_mann_whitney_u_and_p_by_hand_for_tiny_samples():
    # x = [1, 4, 6], y = [2, 3, 5]: 4 beats 2 and 3, 6 beats all three -> U_x = 5
    df = _runs({("d", 5, "a"): [1, 4, 6], ("d", 5, "b"): [2, 3, 5],
                ("d", 10, "a"): [7, 8, 9, 10], ("d", 10, "b"): [1, 2, 3, 11]})  # fmt: skip
    out = compare_methods(df, "a", "b", by="n")
    assert out["U"].tolist() == [5.0, 12.0]
    for row, (x, y) in zip(
        out.itertuples(), [([1, 4, 6], [2, 3, 5]), ([7, 8, 9, 10], [1, 2, 3, 11])]
    ):
        p, u = _exact_two_sided_p(x, y)
        assert row.U == u and row.p_value == pytest.approx(p)
        assert row.a12 == pytest.approx(u / (len(x) * len(y)))
    assert out["diff"].tolist() == pytest.approx([11 / 3 - 10 / 3, 34 / 4 - 17 / 4])


def test_holm_hand_example():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> running max
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    out = holm([0.02, np.nan, 0.01])
    assert np.isnan(out[1]) and out[[0, 2]] == pytest.approx([0.02, 0.02])
    assert holm([]).size == 0
    with pytest.raises(ValueError, match=r"in \[0, 1\], got \[1.5\]"):
        holm([1.5])


def test_min_attainable_p():
    assert min_attainable_p(3, 3) == pytest.approx(0.1)  # 2 / C(6, 3)
    assert min_attainable_p(3, 3, "greater") == pytest.approx(0.05)
    assert min_attainable_p(5, 5) == pytest.approx(2 / 252)
    assert mannwhitneyu([4, 5, 6], [1, 2, 3]).pvalue == pytest.approx(min_attainable_p(3, 3))
    with pytest.raises(ValueError, match="unknown alternative 'two_sided'"):
        min_attainable_p(3, 3, "two_sided")


def test_compare_methods_matches_scipy_and_applies_holm_across_cells():
    rng = np.random.default_rng(1)
    cells = {}
    for n, shift in [(5, 0.0), (10, 0.03), (30, 0.06)]:
        cells["s", n, "l2t_www"] = list(0.5 + shift + 0.02 * rng.standard_normal(12))
        cells["s", n, "l2t_ww"] = list(0.5 + 0.02 * rng.standard_normal(12))
    df = _runs(cells)
    out = compare_methods(df)  # defaults: l2t_www vs l2t_ww per (dataset, n)
    assert out["n"].tolist() == [5, 10, 30] and (out["n_a"] == 12).all()
    for row in out.itertuples():
        x = np.array(cells["s", row.n, "l2t_www"]) * 100
        y = np.array(cells["s", row.n, "l2t_ww"]) * 100
        ref = mannwhitneyu(x, y, alternative="two-sided")
        assert (row.U, row.p_value) == pytest.approx((ref.statistic, ref.pvalue))
        assert row.diff == pytest.approx(x.mean() - y.mean())
        assert row.a12 == pytest.approx(_a12_by_counting(x, y))
        assert row.note == ""
    assert out["p_holm"].to_numpy() == pytest.approx(holm(out["p_value"]))
    # the dissertation's rule (default): each cell's own p; Holm shown beside it
    assert out.attrs["rule"] == "raw"
    assert out["significant"].tolist() == (out["p_value"] < 0.05).tolist()
    assert out["significant_raw"].tolist() == (out["p_value"] < 0.05).tolist()
    assert out["significant_holm"].tolist() == (out["p_holm"] < 0.05).tolist()
    assert out["significant"].iloc[-1]  # a 3-std shift with 12 runs each
    holm_rule = compare_methods(df, rule="holm")
    assert holm_rule["significant"].tolist() == (holm_rule["p_holm"] < 0.05).tolist()
    assert (out["p_holm"] >= out["p_value"]).all()
    with pytest.raises(ValueError, match="unknown rule 'bonferroni'"):
        compare_methods(df, rule="bonferroni")
    greater = compare_methods(df, alternative="greater")
    assert (greater["p_value"] < out["p_value"]).iloc[-1]


def test_compare_methods_notes_and_errors():
    df = _runs({("s", 5, "l2t_www"): [0.3, 0.31, 0.32], ("s", 5, "l2t_ww"): [0.2, 0.21, 0.22],
                ("s", 10, "l2t_www"): [0.4, 0.41]})  # fmt: skip
    out = compare_methods(df)
    assert out.loc[0, "p_value"] == pytest.approx(0.1) and not out.loc[0, "significant"]
    assert out.loc[0, "note"] == "cannot reach p<0.05 with n=3 per method"
    assert out.loc[1, "note"] == "no runs of 'l2t_ww' in this cell" and np.isnan(
        out.loc[1, "p_value"]
    )
    with pytest.raises(ValueError, match="unknown method 'l2t_wwww'; closest"):
        compare_methods(df, a="l2t_wwww")


# ---------------------------------------------------------------- thesis table


def test_dissertation_table_layout_and_values():
    cells = {}
    for n in (5, 10):
        cells["stl10", n, "scratch"] = [0.20, 0.21, 0.22]
        cells["stl10", n, "l2t_ww"] = [0.30, 0.31, 0.32]
        cells["stl10", n, "l2t_www"] = [0.33, 0.34, 0.35]
    cells["other", 5, "ufm"] = [0.9]
    table = dissertation_table(_runs(cells), "stl10")
    assert table.columns.tolist() == [5, 10]
    assert table.index.tolist() == [
        "From scratch", "UFM (15 pairs)", "L2T-ww", "L2T-www", "L2T-www − L2T-ww",
        "p-value", "p-value (Holm)", "note",
    ]  # fmt: skip
    assert table.loc["L2T-www", 5] == "34.00 ± 1.00"
    assert table.loc["UFM (15 pairs)", 5] == "–"  # only in the other dataset
    assert table.loc["L2T-www − L2T-ww", 10] == "+3.00"
    assert table.loc["p-value", 5] == "0.100" and table.loc["p-value (Holm)", 5] == "0.200"
    assert table.loc["note", 10] == "cannot reach p<0.05 with n=3 per method"
    assert table.attrs["note"] == "cannot reach p<0.05 with n=3 per method"
    with pytest.raises(ValueError, match="unknown dataset 'stl-10'; closest: 'stl10'"):
        dissertation_table(_runs(cells), "stl-10")


def test_dissertation_table_without_notes_when_runs_suffice():
    rng = np.random.default_rng(2)
    cells = {
        ("c", 10, m): list(mu + 0.01 * rng.standard_normal(6))
        for m, mu in [("l2t_ww", 0.4), ("l2t_www", 0.5)]
    }
    table = dissertation_table(_runs(cells), "c", methods=("l2t_ww", "l2t_www"))
    assert table.loc["note", 10] == "" and table.attrs["note"] == ""
    assert table.loc["p-value", 10] == f"{2 / math.comb(12, 6):.3f}"  # complete separation


# ---------------------------------------------------------------- published numbers


def test_dissertation_results_hold_the_spec_numbers():
    ref = dissertation_results()
    lim = ref[ref["experiment"] == "limited_data"].set_index(["dataset", "n", "method"])
    assert lim.loc[("stl10", 100, "l2t_www"), "mean"] == 61.36
    assert lim.loc[("cifar10", 30, "l2t_ww"), "mean"] == 43.16
    assert lim.loc[("cifar100", 5, "scratch"), "mean"] == 9.77
    assert ("cifar10", 10, "scratch") not in lim.index
    assert len(lim) == 5 * (4 + 3 + 4)
    imb = ref[ref["experiment"] == "imbalanced"].set_index("method")
    assert imb.loc["l2t_www", ["mean", "std"]].tolist() == [73.56, 1.03]
    assert imb.loc["l2t_ww", ["mean", "std"]].tolist() == [65.12, 4.90]
    assert imb.loc["scratch", "mean"] == 16.12
    assert set(ref.loc[ref["source"] == "derived", "method"]) == {"l2t_ww"}


def test_published_differences_agree_with_the_published_means():
    ref = dissertation_results().set_index(["experiment", "dataset", "n", "method"])["mean"]
    comp = dissertation_comparisons()
    for row in comp.itertuples():
        www = ref["limited_data", row.dataset, row.n, "l2t_www"]
        ww = ref["limited_data", row.dataset, row.n, "l2t_ww"]
        assert www - ww == pytest.approx(row.diff, abs=0.006)
    stl = comp[comp["dataset"] == "stl10"]
    assert stl["p_reported"].tolist() == ["p>0.05", "p=0.000", "p=0.044", "p=0.004", "p>0.05"]
    assert stl["significant"].tolist() == [False, True, True, True, False]
    assert np.isnan(stl["p_value"].iloc[0]) and stl["p_value"].iloc[2] == 0.044


def test_side_by_side_aligns_measured_and_published():
    ref = dissertation_results()
    lim = ref[(ref["experiment"] == "limited_data") & (ref["dataset"] == "cifar100")]
    # measured runs whose mean is the published mean + 1 point
    cells = {
        ("cifar100", r.n, r.method): [(r.mean + 0.5) / 100, (r.mean + 1.5) / 100]
        for r in lim.itertuples()
    }
    out = side_by_side(_runs(cells), how="inner")
    assert len(out) == 20 and out["diff"].to_numpy() == pytest.approx(np.ones(20))
    assert (out["n_runs"] == 2).all()
    row = out.set_index(["n", "method"]).loc[(10, "l2t_www")]
    assert (row["mean_published"], row["std_published"]) == (25.53, 0.46)
    assert row["std_measured"] == pytest.approx(math.sqrt(0.5))
    outer = side_by_side(summarize(_runs(cells)))
    assert len(outer) == len(ref[ref["experiment"] == "limited_data"])
    assert outer.loc[outer["dataset"] != "cifar100", "mean_measured"].isna().all()


def test_mann_whitney_power_against_the_normal_approximation():
    from scipy.stats import norm

    from cnnexplore_nb.experiments import mann_whitney_power

    # large-sample power of Mann-Whitney: the t-test's with the efficiency 3/pi
    for n, d in ((30, 0.8), (20, 1.0), (40, 0.5)):
        approx = norm.cdf(d * np.sqrt(n / 2) * np.sqrt(3 / np.pi) - norm.ppf(0.975))
        assert abs(mann_whitney_power(d, 1.0, n, sims=4000) - approx) < 0.05
    assert mann_whitney_power(10.0, 1.0, 3) == 0.0  # 3 seeds: p >= 0.1 always
    assert mann_whitney_power(1.0, 1.0, 10) == mann_whitney_power(1.0, 1.0, 10)  # seeded
    with pytest.raises(ValueError, match="std > 0"):
        mann_whitney_power(1.0, 0.0, 10)


def test_seeds_needed_is_the_first_n_reaching_the_power():
    from cnnexplore_nb.experiments import mann_whitney_power, seeds_needed

    n = seeds_needed(4.0, 5.0)
    assert n is not None and 15 < n < 40
    assert mann_whitney_power(4.0, 5.0, n) >= 0.8 > mann_whitney_power(4.0, 5.0, n - 1)
    assert seeds_needed(0.1, 5.0, max_n=50) is None
