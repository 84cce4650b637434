"""Sweeps: grid expansion, the atomic result store, resuming, failures, executors, SIGKILL."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import _sweep_helpers as helpers
import numpy as np
import pandas as pd
import pytest

from cnnexplore_nb.experiments import (
    CorruptRecordWarning,
    ResultStore,
    config_key,
    expand_grid,
    load_results,
    run_sweep,
    sweep_status,
)

GRID = {"n": [5, 10], "seed": [0, 1, 2]}
TESTS = Path(__file__).resolve().parent


class Counter:
    """Inline-only run function counting its calls (closures are fine in-process)."""

    def __init__(self, fn=helpers.score):
        self.calls: list[dict] = []
        self.fn = fn

    def __call__(self, config):
        self.calls.append(config)
        return self.fn(config)


def _files(store: Path) -> list[str]:
    return sorted(p.name for p in store.iterdir())


# ---------------------------------------------------------------- grid and keys


def test_expand_grid_is_the_cartesian_product_in_nested_loop_order():
    configs = expand_grid({"a": [1, 2], "b": ["x", "y", "z"]}, fixed={"epochs": 3})
    expected = [{"a": a, "b": b, "epochs": 3} for a in (1, 2) for b in ("x", "y", "z")]
    assert configs == expected
    assert expand_grid({"seed": range(3)}) == [{"seed": 0}, {"seed": 1}, {"seed": 2}]


@pytest.mark.parametrize(
    ("grid", "fixed", "error", "match"),
    [
        ({"seed": 3}, None, TypeError, r"grid\['seed'\] must be a list of values, got int"),
        ({"method": "ufm"}, None, TypeError, r"wrap a single value in a list"),
        ({"seed": []}, None, ValueError, r"grid\['seed'\] must hold at least one value"),
        ({"seed": [0]}, {"seed": 1}, ValueError, r"\['seed'\] are given both"),
        ({"seed": [0, 1, 0]}, None, ValueError, r"repeats the configuration \{'seed': 0\}"),
        ({"x": [object()]}, None, TypeError, r"config\['x'\] of type builtins.object"),
        ([("seed", [0])], None, TypeError, r"grid must be a dict"),
    ],
)
def test_expand_grid_rejects_bad_grids(grid, fixed, error, match):
    with pytest.raises(error, match=match):
        expand_grid(grid, fixed)


def test_config_key_is_sha256_of_canonical_json():
    by_hand = hashlib.sha256(b'{"method":"ufm","n":5,"seed":0}').hexdigest()[:16]
    assert config_key({"seed": 0, "n": 5, "method": "ufm"}) == by_hand
    assert config_key({"n": 5, "seed": 0, "method": "ufm"}) == by_hand
    assert config_key({"seed": np.int64(0), "n": np.int32(5), "method": "ufm"}) == by_hand
    assert config_key({"lr": 1}) != config_key({"lr": 1.0})
    assert config_key({"lr": 0.1}) != config_key({"lr": 0.01})


# ---------------------------------------------------------------- inline sweeps


def test_inline_sweep_records_every_run_with_converted_results(tmp_path):
    df = run_sweep(GRID, helpers.score, tmp_path, executor="inline", progress=False)
    configs = expand_grid(GRID)
    assert len(df) == 6 and (df["status"] == "ok").all()
    assert df[["n", "seed"]].to_dict("records") == configs
    for (_, row), config in zip(df.iterrows(), configs):
        direct = helpers.score(config)
        assert row["test_acc"] == float(direct["test_acc"])
        assert row["best_epoch"] == int(direct["best_epoch"])
        assert row["history"] == direct["history"].tolist()
        assert row["key"] == config_key(config)
    assert _files(tmp_path) == sorted(f"{config_key(c)}.json" for c in configs)
    record = json.loads((tmp_path / f"{config_key(configs[0])}.json").read_text())
    assert set(record) >= {"config", "status", "result", "error", "started", "finished"}
    assert record["config"] == configs[0] and record["pid"] == os.getpid()
    assert record["seconds"] >= 0 and isinstance(record["host"], str)
    pd.testing.assert_frame_equal(
        load_results(tmp_path).sort_values(["n", "seed"]).reset_index(drop=True), df
    )


def test_rerun_skips_finished_runs_and_runs_only_new_configurations(tmp_path):
    first = Counter()
    run_sweep(GRID, first, tmp_path, executor="inline", progress=False)
    assert len(first.calls) == 6
    again = Counter()
    df = run_sweep(GRID, again, tmp_path, executor="inline", progress=False)
    assert again.calls == [] and len(df) == 6
    wider = Counter()
    df = run_sweep(
        {"n": [5, 10], "seed": [0, 1, 2, 3]}, wider, tmp_path, executor="inline", progress=False
    )
    assert wider.calls == [{"n": 5, "seed": 3}, {"n": 10, "seed": 3}]
    assert len(df) == 8 and sweep_status({"n": [5, 10], "seed": range(4)}, tmp_path).done == 8


def test_failures_are_recorded_do_not_stop_the_sweep_and_retry_on_request(tmp_path):
    df = run_sweep(GRID, helpers.fail_on_odd_seed, tmp_path, executor="inline", progress=False)
    failed = df[df["status"] == "failed"]
    assert failed["seed"].tolist() == [1, 1]
    assert all("RuntimeError: boom for seed 1" in e for e in failed["error"])
    assert failed["test_acc"].isna().all()
    assert df.loc[df["status"] == "ok", "error"].isna().all()
    assert str(sweep_status(GRID, tmp_path)) == "sweep: 6 runs, 4 done, 2 failed, 0 remaining"

    counter = Counter(helpers.fail_on_odd_seed)
    run_sweep(GRID, counter, tmp_path, executor="inline", progress=False)
    assert counter.calls == []  # failed runs are kept unless asked
    counter = Counter(helpers.score)
    df = run_sweep(GRID, counter, tmp_path, executor="inline", progress=False, retry_failed=True)
    assert counter.calls == [{"n": 5, "seed": 1}, {"n": 10, "seed": 1}]
    assert (df["status"] == "ok").all()


def test_progress_prints_the_summary(tmp_path, capsys):
    run_sweep(GRID, helpers.fail_on_odd_seed, tmp_path, executor="inline")
    assert "sweep: 6 runs, 4 done, 2 failed, 0 remaining" in capsys.readouterr().out
    run_sweep(GRID, helpers.score, tmp_path, executor="inline", progress=False)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (
            helpers.not_serialisable,
            r"cannot be stored as JSON: result\['when'\] of type builtins.object",
        ),
        (helpers.not_a_dict, r"must return a dict of results, got list"),
    ],
)
def test_results_that_cannot_be_stored_are_failures(tmp_path, fn, match):
    df = run_sweep({"seed": [0]}, fn, tmp_path, executor="inline", progress=False)
    assert df["status"].tolist() == ["failed"]
    assert re.search(match, df["error"][0])


def test_result_names_clashing_with_settings_are_prefixed(tmp_path):
    df = run_sweep({"n": [1]}, helpers.clashing, tmp_path, executor="inline", progress=False)
    row = df.iloc[0]
    assert (row["n"], row["result_n"]) == (1, 99)
    assert (row["status"], row["result_status"]) == ("ok", "mine")
    assert row["seconds"] == 1.5 and row["run_seconds"] < 1.5


# ---------------------------------------------------------------- damaged stores


def test_corrupt_record_is_reported_and_redone(tmp_path):
    run_sweep(GRID, helpers.score, tmp_path, executor="inline", progress=False)
    configs = expand_grid(GRID)
    truncated = tmp_path / f"{config_key(configs[2])}.json"
    truncated.write_text(truncated.read_text()[:40])
    # a foreign file under the name of another run: its config does not hash to the name
    (tmp_path / f"{config_key(configs[4])}.json").write_text(
        (tmp_path / f"{config_key(configs[0])}.json").read_text()
    )
    with pytest.warns(CorruptRecordWarning, match="2 corrupt record") as caught:
        status = sweep_status(GRID, tmp_path)
    assert caught[0].filename == __file__  # stacklevel points at the caller
    assert (status.done, status.remaining, status.corrupt) == (4, 2, 2)
    with pytest.warns(CorruptRecordWarning, match="invalid JSON"):
        assert len(load_results(tmp_path)) == 4
    counter = Counter()
    with pytest.warns(CorruptRecordWarning, match="does not hash to its file name") as caught:
        df = run_sweep(GRID, counter, tmp_path, executor="inline", progress=False)
    assert caught[0].filename == __file__
    assert counter.calls == [configs[2], configs[4]]
    assert (df["status"] == "ok").all() and len(load_results(tmp_path)) == 6


def test_stale_temp_files_are_ignored_and_old_ones_cleaned(tmp_path):
    key = config_key({"seed": 0})
    stale = tmp_path / f".{key}.json.abc123.tmp"
    young = tmp_path / f".{key}.json.def456.tmp"
    stale.write_text('{"config": {"se')
    young.write_text('{"config": {"se')
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    assert load_results(tmp_path).empty
    df = run_sweep({"seed": [0]}, helpers.score, tmp_path, executor="inline", progress=False)
    assert len(df) == 1 and not stale.exists() and young.exists()
    assert len(load_results(tmp_path)) == 1


def test_store_rejects_a_file_as_directory(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match="got a file"):
        run_sweep(GRID, helpers.score, tmp_path / "f", executor="inline", progress=False)
    with pytest.raises(ValueError, match="unknown executor 'dusk'; closest: 'dask'"):
        run_sweep(GRID, helpers.score, tmp_path, executor="dusk")


# ---------------------------------------------------------------- local processes


def test_local_processes_give_the_inline_results(tmp_path):
    inline = run_sweep(GRID, helpers.record_pid, tmp_path / "a", executor="inline", progress=False)
    local = run_sweep(
        GRID, helpers.record_pid, tmp_path / "b", executor="local", workers=2, progress=False
    )
    cols = ["n", "seed", "test_acc", "best_epoch", "history", "status", "key"]
    pd.testing.assert_frame_equal(local[cols], inline[cols])
    assert os.getpid() not in set(local["worker_pid"]) and set(inline["worker_pid"]) == {
        os.getpid()
    }
    assert set(local["pid"]) == set(local["worker_pid"])


def test_local_executor_needs_a_picklable_run(tmp_path):
    with pytest.raises(TypeError, match="must be picklable.*executor='inline'"):
        run_sweep(GRID, lambda c: {}, tmp_path, executor="local", workers=1, progress=False)
    assert not list(tmp_path.iterdir())


def test_a_dying_worker_fails_its_runs_only_and_the_sweep_goes_on(tmp_path):
    grid = {"n": [5], "seed": [0, 1, 2, 3, 4]}
    df = run_sweep(
        grid, helpers.die_on_seed_one, tmp_path, executor="process", workers=2, progress=False
    )
    assert len(df) == 5 and len(_files(tmp_path)) == 5
    assert df.loc[df["seed"] == 1, "status"].item() == "failed"
    assert "pool broke" in df.loc[df["seed"] == 1, "error"].item()
    # at most the run sharing the pool at the time is collateral damage
    assert (df["status"] == "ok").sum() >= 3
    df = run_sweep(
        grid, helpers.score, tmp_path, executor="inline", progress=False, retry_failed=True
    )
    assert (df["status"] == "ok").all()


# ---------------------------------------------------------------- SIGKILL


KILLED_SWEEP = """
import sys
sys.path.insert(0, {tests!r})
import _sweep_helpers
from cnnexplore_nb.experiments import run_sweep
run_sweep({grid!r}, _sweep_helpers.slow_score, {store!r}, executor={executor!r}, workers=2,
          fixed={{"sleep": 0.2}}, progress=False)
"""


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_sweep_killed_with_sigkill_resumes_with_every_run_recorded_once(tmp_path, executor):
    grid = {"n": [5, 10, 20], "seed": [0, 1, 2, 3]}
    store = tmp_path / "store"
    code = KILLED_SWEEP.format(tests=str(TESTS), grid=grid, store=str(store), executor=executor)
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if store.is_dir() and len(list(store.glob("*.json"))) >= 3:
                break
            assert proc.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.02)
        else:
            pytest.fail("the sweep wrote no records within 30 s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the child and its worker processes
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = {p.name: p.read_bytes() for p in store.glob("*.json")}
    assert 3 <= len(before) < 12

    counter = Counter(helpers.slow_score)
    df = run_sweep(grid, counter, store, executor="inline", fixed={"sleep": 0.0}, progress=False)
    assert len(counter.calls) == 12  # sleep is part of the key: a different sweep
    counter = Counter(helpers.slow_score)
    df = run_sweep(grid, counter, store, executor="inline", fixed={"sleep": 0.2}, progress=False)

    configs = expand_grid(grid, {"sleep": 0.2})
    keys = [config_key(c) for c in configs]
    assert len(counter.calls) == 12 - len(before)
    assert df["key"].tolist() == keys and (df["status"] == "ok").all()
    for name, data in before.items():  # finished records were neither redone nor touched
        assert (store / name).read_bytes() == data
    records, corrupt = ResultStore(store).scan(keys)
    assert corrupt == {} and sorted(records) == sorted(keys)
    assert sum(1 for r in records.values() if r["pid"] == os.getpid()) == 12 - len(before)
    # the other records are the sleep=0 sweep; anything else is a hidden temporary file
    # of a write the kill interrupted, which the loader never reads
    zero = {f"{config_key(c)}.json" for c in expand_grid(grid, {"sleep": 0.0})}
    others = {p.name for p in store.iterdir()} - {f"{k}.json" for k in keys} - zero
    assert all(n.startswith(".") and n.endswith(".tmp") for n in others), others
    assert len(load_results(store)) == 24  # both sweeps, each run once
    ResultStore(store).clean_temp_files(older_than=0)
    assert {p.name for p in store.iterdir()} == zero | {f"{k}.json" for k in keys}


def test_dask_executor_without_dask_installed_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'cnnexplore_nb\[dask\]'"):
        run_sweep(GRID, helpers.score, tmp_path, executor="dask", client="tcp://127.0.0.1:1")


# ---------------------------------------------------------------- orphan workers

ORPHANED_SWEEP = """
import sys
sys.path.insert(0, {tests!r})
import _sweep_helpers
import cnnexplore_nb.experiments.executors as executors
from cnnexplore_nb.experiments import run_sweep
executors.PARENT_DEATH_SIGNAL = {death_signal!r}
run_sweep({grid!r}, _sweep_helpers.hold, {store!r}, executor="local", workers=2,
          fixed={fixed!r}, progress=False)
"""


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def _descendants(pid: int) -> set[int]:
    table = _process_table()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, (parent, _) in table.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    table = _process_table()
    return {p for p in pids if p in table and table[p][1] != "Z"}  # zombies have exited


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
@pytest.mark.parametrize(
    ("death_signal", "how"),
    [(True, "sleep"), (True, "spin"), (False, "sleep"), (False, "spin")],
    ids=["pdeathsig-sleeping", "pdeathsig-spinning", "watcher-sleeping", "watcher-spinning"],
)
def test_workers_exit_when_the_driver_is_killed_and_their_cells_rerun_on_resume(
    tmp_path, death_signal, how
):
    """SIGKILL of the driver alone (not its process group): workers, and the pool's
    resource tracker, must end by themselves; the cells they ran were never recorded."""
    marks, store, release = tmp_path / "marks", tmp_path / "store", tmp_path / "release"
    marks.mkdir()
    grid = {"seed": [0, 1, 2, 3]}
    fixed = {"marks": str(marks), "release": str(release), "how": how}
    code = ORPHANED_SWEEP.format(tests=str(TESTS), death_signal=death_signal, grid=grid,
                                 store=str(store), fixed=fixed)  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)])
    tree: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while len(list(marks.iterdir())) < 2:  # both workers are inside a cell
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "the workers did not start within 120 s"
            time.sleep(0.05)
        workers = {int(p.name.split("-")[0]) for p in marks.iterdir()}
        assert len(workers) == 2
        tree = _descendants(proc.pid)
        assert workers <= tree  # the cells run in the driver's child processes
        os.kill(proc.pid, signal.SIGKILL)  # the driver only
        proc.wait()
        deadline = time.monotonic() + 15
        while _alive(tree) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _alive(tree) == set(), f"still running after the driver died: {_alive(tree)}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _alive(tree):  # only if the test failed: leave nothing behind
            os.kill(pid, signal.SIGKILL)
    assert load_results(store).empty  # the cells in flight left no record
    release.touch()
    counter = Counter(helpers.hold)
    df = run_sweep(grid, counter, store, executor="inline", fixed=fixed, progress=False)
    assert [c["seed"] for c in counter.calls] == [0, 1, 2, 3]  # in flight or not: run again
    assert (df["status"] == "ok").all() and set(df["worker_pid"]) == {os.getpid()}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_an_interrupted_local_sweep_stops_its_cells_in_flight(tmp_path):
    from cnnexplore_nb.experiments.executors import iter_local

    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / "open").touch()
    quick = {"seed": 0, "marks": str(marks), "release": str(tmp_path / "open"), "how": "sleep"}
    held = {**quick, "seed": 1, "release": str(tmp_path / "never")}
    stream = iter_local(helpers.hold, [quick, held], workers=2)
    assert next(stream)["config"] == quick
    deadline = time.monotonic() + 60
    while not list(marks.glob("*-1")):
        assert time.monotonic() < deadline, "the second cell did not start within 60 s"
        time.sleep(0.05)
    pid = int(next(marks.glob("*-1")).name.split("-")[0])
    assert _alive({pid}) == {pid}
    stream.close()  # what KeyboardInterrupt in run_sweep does to the executor
    deadline = time.monotonic() + 15
    while _alive({pid}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive({pid}) == set()


def test_records_say_at_which_thread_count_they_reproduce(tmp_path):
    import torch

    one = {"n": [5], "seed": [0]}
    df = run_sweep(one, helpers.score, tmp_path / "a", executor="inline", progress=False)
    assert df["status"].tolist() == ["ok"]
    assert df["torch_threads"].tolist() == [torch.get_num_threads()]
    record = json.loads(next((tmp_path / "a").glob("*.json")).read_text())
    assert record["torch_threads"] == torch.get_num_threads()
    # a run reporting its own count (it set the threads and restored them): that one
    df = run_sweep(one, helpers.reports_threads, tmp_path / "b", executor="inline", progress=False)
    assert df["torch_threads"].tolist() == [3] and "result_torch_threads" not in df
    # in a worker: the worker's count, not the driver's; None where torch was never imported
    df = run_sweep(
        {**one, "threads": [1, 2]}, helpers.torch_threads_in_worker, tmp_path / "c",
        executor="local", workers=2, progress=False,
    )  # fmt: skip
    assert df["torch_threads"].tolist() == [1, 2]
    df = run_sweep(one, helpers.score, tmp_path / "d", executor="local", workers=1, progress=False)
    assert df["torch_threads"].isna().all()


def test_priority_starts_the_costliest_runs_first_and_keeps_grid_order(tmp_path):
    order: list[tuple[int, int]] = []

    def run(config: dict) -> dict:
        order.append((config["n"], config["seed"]))
        return helpers.score(config)

    grid = {"n": [5, 10, 20], "seed": [0, 1]}
    df = run_sweep(grid, run, tmp_path, executor="inline", progress=False,
                   priority=lambda c: c["n"])  # fmt: skip
    assert order == [(20, 0), (20, 1), (10, 0), (10, 1), (5, 0), (5, 1)]  # stable on ties
    assert list(zip(df["n"], df["seed"])) == [(n, s) for n in (5, 10, 20) for s in (0, 1)]
    with pytest.raises(TypeError, match="priority must be a callable config -> float, got int"):
        run_sweep(grid, run, tmp_path, executor="inline", progress=False, priority=3)
