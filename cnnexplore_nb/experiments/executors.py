"""Executors of a sweep: in-process, local worker processes, Dask distributed.

Each executor is a generator taking the run function and the configurations still to do
and yielding one record per configuration as runs finish (in completion order). Runs
execute :func:`execute_run`, which never raises for an error of the run itself: the
traceback goes into a ``"failed"`` record. The driver (``run_sweep``) writes the records,
so workers need no access to the store directory.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timezone
from typing import Any

from .store import to_jsonable

__all__ = ["EXECUTORS", "execute_run", "iter_dask", "iter_inline", "iter_local"]

EXECUTORS = ("inline", "local", "dask")

RunFunction = Callable[[dict[str, Any]], Mapping[str, Any]]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def failure_record(config: Mapping[str, Any], error: str) -> dict[str, Any]:
    """Record of a run that failed outside ``run`` (e.g. its worker died)."""
    now = _now()
    return {
        "config": dict(config),
        "status": "failed",
        "result": None,
        "error": error,
        "started": now,
        "finished": now,
        "seconds": None,
        "host": None,
        "pid": None,
    }


def execute_run(run: RunFunction, config: Mapping[str, Any]) -> dict[str, Any]:
    """Run ``run(config)`` and return its record; exceptions become ``"failed"`` records.

    The result must be a dict of JSON-serialisable values; numpy / torch scalars and
    arrays are converted to Python numbers and lists. Anything else makes the run fail
    with a message naming the offending entry.
    """
    started, t0 = _now(), time.perf_counter()
    result: dict[str, Any] | None = None
    error: str | None = None
    try:
        out = run(dict(config))
    except Exception:
        error = traceback.format_exc()
    else:
        try:
            if not isinstance(out, Mapping):
                raise TypeError(
                    f"the run function must return a dict of results, got {type(out).__name__}"
                )
            result = to_jsonable(out, "result")
            json.dumps(result, allow_nan=True)
        except (TypeError, ValueError) as exc:
            result = None
            error = f"run returned a result that cannot be stored as JSON: {exc}"
    return {
        "config": dict(config),
        "status": "ok" if error is None else "failed",
        "result": result,
        "error": error,
        "started": started,
        "finished": _now(),
        "seconds": time.perf_counter() - t0,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


def iter_inline(run: RunFunction, configs: Iterable[Mapping[str, Any]]) -> Iterator[dict]:
    """Run every configuration in this process, one after another."""
    for config in configs:
        yield execute_run(run, config)


def _mp_context() -> multiprocessing.context.BaseContext:
    # fork after torch has started threads can deadlock; forkserver/spawn start clean
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


_BROKEN = (
    "the worker process pool broke while this run was queued or running (a worker died "
    "abruptly: killed, out of memory or a crash in native code); rerun the sweep with "
    "retry_failed=True to try again.\n"
)


def iter_local(
    run: RunFunction, configs: Iterable[Mapping[str, Any]], workers: int
) -> Iterator[dict]:
    """Run configurations in ``workers`` local processes (forkserver or spawn start).

    At most ``workers`` runs are in flight, so a worker that dies takes down only the
    runs actually running (recorded as failed); a fresh pool continues with the rest.
    """
    pending = list(configs)[::-1]  # pop() from the end keeps the grid order
    ctx = _mp_context()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    inflight: dict[Future, Mapping[str, Any]] = {}
    clean_exit = False
    try:
        while pending or inflight:
            broken = False
            while pending and len(inflight) < workers and not broken:
                config = pending.pop()
                try:
                    inflight[pool.submit(execute_run, run, config)] = config
                except BrokenProcessPool:  # a worker died since the last completion
                    pending.append(config)
                    broken = True
            # once the pool is broken every in-flight future fails promptly: collect them all
            done, _ = wait(inflight, return_when=ALL_COMPLETED if broken else FIRST_COMPLETED)
            if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                broken = True
                done = wait(inflight).done
            for fut in done:
                config = inflight.pop(fut)
                try:
                    record = fut.result()
                except BrokenProcessPool:
                    record = failure_record(config, _BROKEN + traceback.format_exc())
                except Exception:
                    record = failure_record(config, traceback.format_exc())
                yield record
            if broken:
                pool.shutdown(wait=True, cancel_futures=True)
                pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
        clean_exit = True
    finally:
        # on an interruption do not wait for running work; pending work is cancelled
        pool.shutdown(wait=clean_exit, cancel_futures=True)


def iter_dask(
    run: RunFunction, configs: Iterable[Mapping[str, Any]], client: Any
) -> Iterator[dict]:
    """Submit every configuration to a ``dask.distributed.Client``; yield as they finish."""
    from distributed import as_completed

    from .store import config_key

    futures = {}
    for config in configs:
        fut = client.submit(
            execute_run,
            run,
            dict(config),
            pure=False,
            key=f"sweep-run-{config_key(config)}-{uuid.uuid4().hex[:8]}",
        )
        futures[fut.key] = (fut, config)
    try:
        for fut in as_completed([f for f, _ in futures.values()]):
            config = futures.pop(fut.key)[1]
            try:
                record = fut.result()
            except Exception:
                record = failure_record(config, traceback.format_exc())
            yield record
            fut.release()
    finally:
        leftover = [f for f, _ in futures.values()]
        if leftover:
            client.cancel(leftover)
