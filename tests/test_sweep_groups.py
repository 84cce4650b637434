"""Sweeps that run the seeds of a cell together (GroupedRun): grouping, resume per seed,
failures per seed, every executor."""

from __future__ import annotations

import pickle

import _group_helpers as helpers
import pandas as pd
import pytest

from cnnexplore_nb.experiments import GroupedRun, group_configs, load_results, run_sweep

GRID = {"n": [5, 10], "seed": [0, 1, 2, 3, 4]}


def _fixed(tmp_path, **extra):
    return {"log": str(tmp_path / "calls.jsonl"), **extra}


def _check_results(df: pd.DataFrame) -> None:
    assert (df["status"] == "ok").all()
    for row in df.itertuples():
        assert row.test_acc == helpers.score({"n": row.n, "seed": row.seed})["test_acc"]
        assert row.seed_seen == row.seed


def test_group_configs_cuts_each_cell_in_order():
    configs = [{"n": n, "seed": s, "e": 1} for n in (5, 10) for s in (0, 1, 2)]
    groups = group_configs(configs, size=2)
    assert [[(c["n"], c["seed"]) for c in g] for g in groups] == [
        [(5, 0), (5, 1)], [(5, 2)], [(10, 0), (10, 1)], [(10, 2)]
    ]  # fmt: skip
    assert group_configs([{"n": 1}, {"n": 2}]) == [[{"n": 1}], [{"n": 2}]]  # no seed: alone
    with pytest.raises(ValueError, match="size must be"):
        group_configs(configs, size=0)


def test_the_seeds_of_each_cell_run_together_inline(tmp_path):
    fixed = _fixed(tmp_path)
    df = run_sweep(GRID, helpers.GROUPED, tmp_path / "s", executor="inline", fixed=fixed,
                   group_size=3, progress=False)  # fmt: skip
    assert [(c["n"], c["seeds"]) for c in helpers.calls(fixed["log"])] == [
        (5, [0, 1, 2]), (5, [3, 4]), (10, [0, 1, 2]), (10, [3, 4])
    ]  # fmt: skip
    assert df[["n", "seed"]].values.tolist() == [[n, s] for n in (5, 10) for s in range(5)]
    _check_results(df)
    assert len(load_results(tmp_path / "s")) == 10  # one record per seed


def test_group_size_one_and_plain_functions_run_alone(tmp_path):
    fixed = _fixed(tmp_path)
    run_sweep({"n": [5], "seed": [0, 1]}, helpers.GROUPED, tmp_path / "a", executor="inline",
              fixed=fixed, group_size=1, progress=False)  # fmt: skip
    assert [c["seeds"] for c in helpers.calls(fixed["log"])] == [[0], [1]]
    df = run_sweep({"n": [5], "seed": [0, 1]}, helpers.one, tmp_path / "b", executor="inline",
                   fixed=fixed, group_size=8, progress=False)  # fmt: skip
    assert [c["seeds"] for c in helpers.calls(fixed["log"])][2:] == [[0], [1]]
    _check_results(df)


def test_resume_runs_only_the_missing_seeds_of_a_group(tmp_path):
    store, fixed = tmp_path / "s", _fixed(tmp_path)
    first = run_sweep({"n": [5, 10], "seed": [0, 2]}, helpers.GROUPED, store, executor="inline",
                      fixed=fixed, progress=False)  # fmt: skip
    df = run_sweep(GRID, helpers.GROUPED, store, executor="inline", fixed=fixed, progress=False)
    calls = helpers.calls(fixed["log"])
    assert [(c["n"], c["seeds"]) for c in calls] == [
        (5, [0, 2]), (10, [0, 2]), (5, [1, 3, 4]), (10, [1, 3, 4])
    ]  # fmt: skip
    _check_results(df)
    kept = df.set_index(["n", "seed"]).loc[[(5, 0), (5, 2), (10, 0), (10, 2)], "started"]
    assert kept.tolist() == first.set_index(["n", "seed"])["started"].tolist()  # not redone


def test_a_seed_failing_alone_is_recorded_alone_and_retried_alone(tmp_path):
    store = tmp_path / "s"
    fixed = _fixed(tmp_path, fail_seed=3)
    df = run_sweep(GRID, helpers.GROUPED, store, executor="inline", fixed=fixed, progress=False)
    failed = df[df["status"] == "failed"]
    assert failed["seed"].tolist() == [3, 3]
    assert all("FloatingPointError: seed 3 diverged" in e for e in failed["error"])
    _check_results(df[df["status"] == "ok"])
    run_sweep(GRID, helpers.GROUPED, store, executor="inline", fixed=fixed, progress=False)
    assert len(helpers.calls(fixed["log"])) == 2  # failed seeds are not rerun by default
    df = run_sweep(GRID, helpers.GROUPED, store, executor="inline", fixed=fixed,
                   retry_failed=True, progress=False)  # fmt: skip
    assert [c["seeds"] for c in helpers.calls(fixed["log"])][2:] == [[3], [3]]


def test_a_group_that_raises_fails_every_seed_with_the_traceback(tmp_path):
    fixed = _fixed(tmp_path)
    df = run_sweep({"n": [5], "seed": [0, 1, 2]}, helpers.BROKEN, tmp_path / "s",
                   executor="inline", fixed=fixed, progress=False)  # fmt: skip
    assert (df["status"] == "failed").all()
    assert all("RuntimeError: the whole group broke" in e for e in df["error"])


def test_local_processes_run_groups_in_workers(tmp_path):
    fixed = _fixed(tmp_path)
    inline = run_sweep(GRID, helpers.GROUPED, tmp_path / "a", executor="inline", fixed=fixed,
                       group_size=2, progress=False)  # fmt: skip
    local = run_sweep(GRID, helpers.GROUPED, tmp_path / "b", executor="local", workers=2,
                      fixed=fixed, group_size=2, progress=False)  # fmt: skip
    calls = helpers.calls(fixed["log"])[6:]
    assert sorted((c["n"], c["seeds"]) for c in calls) == [
        (5, [0, 1]), (5, [2, 3]), (5, [4]), (10, [0, 1]), (10, [2, 3]), (10, [4])
    ]  # fmt: skip
    assert len({c["pid"] for c in calls} & {c["pid"] for c in helpers.calls(fixed["log"])[:6]}) == 0
    cols = ["n", "seed", "test_acc", "status", "key"]
    pd.testing.assert_frame_equal(local[cols], inline[cols])


def test_dask_runs_groups(tmp_path):
    distributed = pytest.importorskip("distributed")
    fixed = _fixed(tmp_path, fail_seed=1)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:  # fmt: skip
        with distributed.Client(cluster) as client:
            df = run_sweep(GRID, helpers.GROUPED, tmp_path / "s", executor="dask",
                           client=client, fixed=fixed, group_size=5, progress=False)  # fmt: skip
    assert sorted(c["seeds"] for c in helpers.calls(fixed["log"])) == [[0, 1, 2, 3, 4]] * 2
    assert df.loc[df["status"] == "failed", "seed"].tolist() == [1, 1]
    _check_results(df[df["status"] == "ok"])


def test_grouped_run_pickles_and_checks_its_parts():
    back = pickle.loads(pickle.dumps(helpers.GROUPED))
    assert back({"n": 5, "seed": 1, "log": "/dev/null"}) == helpers.score({"n": 5, "seed": 1})
    with pytest.raises(TypeError, match="two callables"):
        GroupedRun(helpers.one, 3)
