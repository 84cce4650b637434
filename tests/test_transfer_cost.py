"""Protocol cost estimate: arithmetic against a hand count; the measurement helper runs."""

from __future__ import annotations

import pytest

from cnnexplore_nb.transfer import estimate_cost, measure_step_seconds

PROTOCOL = {"datasets": ["cifar10", "cifar100"], "n_values": {"cifar10": [10, 150],
            "cifar100": [5]}, "methods": ["scratch", "l2t_www"], "seeds": 30, "epochs": 200,
            "batch_size": 128, "val_per_class": 10}  # fmt: skip


def test_estimate_matches_a_hand_count():
    df = estimate_cost(PROTOCOL, {"scratch": 0.5, "l2t_www": 5.0},
                       grouped_step_seconds={"scratch": 0.1, "l2t_www": 2.0},
                       eval_image_seconds=0.001)  # fmt: skip
    assert len(df) == 6
    row = df.set_index(["dataset", "n", "method"]).loc[("cifar10", 150, "l2t_www")]
    # 1500 images: 11 full steps of 128 + 92 images (92/128 of a step), 200 epochs;
    # evaluation: 200 x 100 validation images + 10000 test images
    train = 200 * (11 + 92 / 128) * 5.0
    evaluate = (200 * 100 + 10_000) * 0.001
    assert row["run_seconds"] == pytest.approx(train + evaluate)
    assert row["steps_per_run"] == 200 * 12
    assert row["sequential_hours"] == pytest.approx(30 * (train + evaluate) / 3600)
    grouped = 200 * (11 + 92 / 128) * 2.0 + evaluate
    assert row["grouped_hours"] == pytest.approx(30 * grouped / 3600)
    assert row["speedup"] == pytest.approx((train + evaluate) / grouped)
    small = df.set_index(["dataset", "n", "method"]).loc[("cifar100", 5, "scratch")]
    assert small["run_seconds"] == pytest.approx(
        200 * 500 / 128 * 0.5 + (200 * 1000 + 10_000) * 0.001
    )
    halved = estimate_cost(PROTOCOL, {"scratch": 0.5, "l2t_www": 5.0}, group_size=1,
                           eval_image_seconds=0.001, workers=2)  # fmt: skip
    assert "grouped_hours" not in halved
    assert halved.attrs["total"]["sequential_hours"] == pytest.approx(
        df.attrs["total"]["sequential_hours"] / 2
    )


def test_estimate_names_a_missing_method_and_dataset():
    with pytest.raises(KeyError, match="no step time for method 'l2t_www'"):
        estimate_cost(PROTOCOL, {"scratch": 0.5}, group_size=1)
    with pytest.raises(ValueError, match="unknown dataset 'cifar11'"):
        estimate_cost({**PROTOCOL, "datasets": ["cifar11"]}, {"scratch": 1.0}, group_size=1)


def test_measure_step_seconds_on_tiny_networks():
    df = measure_step_seconds(["scratch", "ufm"], batch_size=4, group_size=2, width=0.0625,
                              source_width=0.125, repeats=1)  # fmt: skip
    assert df["method"].tolist() == ["scratch", "ufm"]
    assert (df["step_seconds"] > 0).all() and (df["eval_image_seconds"] > 0).all()
    assert (df["group_size"] == 2).all() and (df["threads"] == 1).all()


def test_measure_step_seconds_times_named_arms():
    from cnnexplore_nb.studies.transfer import ARMS

    df = measure_step_seconds(["ufm_hint", "l2t_ww_frozen", "l2t_www"], batch_size=4,
                              width=0.0625, source_width=0.125, repeats=1, arms=ARMS)  # fmt: skip
    assert df["method"].tolist() == ["ufm_hint", "l2t_ww_frozen", "l2t_www"]
    assert (df["step_seconds"] > 0).all()
    with pytest.raises(ValueError, match="unknown method 'l2t_ww_frozen'"):
        measure_step_seconds(["l2t_ww_frozen"], batch_size=4, width=0.0625, repeats=1)
