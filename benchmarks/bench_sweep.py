"""Overhead per run of each sweep executor (a run that does nothing).

Run: ``python benchmarks/bench_sweep.py [n_runs]``. Prints milliseconds per run for the
inline, local-process (2 workers) and Dask (LocalCluster, 2 worker processes) executors,
including writing one atomic JSON record per run; the first local / Dask figures include
starting the workers.
"""

from __future__ import annotations

import sys
import tempfile
import time

from cnnexplore_nb.experiments import run_sweep


def noop(config: dict) -> dict:
    return {"test_acc": 0.5, "seed": config["seed"]}


def timed(n: int, **kw) -> float:
    with tempfile.TemporaryDirectory() as store:
        t0 = time.perf_counter()
        df = run_sweep({"seed": list(range(n))}, noop, store, progress=False, **kw)
        seconds = time.perf_counter() - t0
    assert (df["status"] == "ok").all() and len(df) == n
    return 1000 * seconds / n


def main(n: int = 200) -> None:
    print(f"{n} runs of a no-op run function, ms per run (store writes included)")
    print(f"  inline              {timed(n, executor='inline'):8.2f}")
    print(f"  local, 2 processes  {timed(n, executor='local', workers=2):8.2f}")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        print("  dask                (not installed)")
        return
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            print(f"  dask, 2 workers     {timed(n, executor='dask', client=client):8.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
