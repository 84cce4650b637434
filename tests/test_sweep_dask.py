"""The Dask executor on a real LocalCluster with two worker processes."""

from __future__ import annotations

import os

import _sweep_helpers as helpers
import pandas as pd
import pytest

from cnnexplore_nb.experiments import load_results, run_sweep

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.dask

GRID = {"n": [5, 10], "seed": [0, 1, 2]}
COMPARED = ["n", "seed", "test_acc", "best_epoch", "history", "status", "key"]


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster


def test_dask_sweep_matches_inline_and_runs_on_the_workers(cluster, tmp_path):
    inline = run_sweep(GRID, helpers.record_pid, tmp_path / "a", executor="inline", progress=False)
    with distributed.Client(cluster) as client:
        worker_pids = set(client.run(os.getpid).values())
        df = run_sweep(
            GRID, helpers.record_pid, tmp_path / "b", executor="dask", client=client, progress=False
        )
    pd.testing.assert_frame_equal(df[COMPARED], inline[COMPARED])
    assert set(df["worker_pid"]) <= worker_pids and os.getpid() not in worker_pids
    assert len(load_results(tmp_path / "b")) == 6


def test_dask_failures_resume_and_address_client(cluster, tmp_path):
    # a scheduler address: run_sweep opens and closes its own client
    df = run_sweep(
        GRID, helpers.fail_on_odd_seed, tmp_path, executor="dask",
        client=cluster.scheduler_address, progress=False,
    )  # fmt: skip
    assert df.loc[df["status"] == "failed", "seed"].tolist() == [1, 1]
    assert all("boom for seed 1" in e for e in df.loc[df["status"] == "failed", "error"])
    with distributed.Client(cluster) as client:
        df = run_sweep(
            GRID, helpers.score, tmp_path, executor="dask", client=client,
            progress=False, retry_failed=True,
        )  # fmt: skip
        assert (df["status"] == "ok").all()
        ok = df.set_index(["n", "seed"])["test_acc"]
        for config in ({"n": 5, "seed": 1}, {"n": 10, "seed": 1}):
            assert ok[config["n"], config["seed"]] == float(helpers.score(config)["test_acc"])


def test_dask_executor_needs_a_client(tmp_path):
    with pytest.raises(ValueError, match="executor='dask' needs client="):
        run_sweep(GRID, helpers.score, tmp_path, executor="dask", progress=False)
    with pytest.raises(TypeError, match="client must be a dask.distributed.Client"):
        run_sweep(GRID, helpers.score, tmp_path, executor="dask", client=3, progress=False)
