"""Executors of a sweep: in-process, local worker processes, Dask distributed.

Each executor is a generator taking the run function and the configurations still to do
and yielding one record per configuration as runs finish (in completion order). Runs
execute :func:`execute_run`, which never raises for an error of the run itself: the
traceback goes into a ``"failed"`` record. The driver (``run_sweep``) writes the records,
so workers need no access to the store directory.

Local workers never outlive their driver. They are started with ``spawn`` (fresh
interpreters, each a direct child of the driver). On Linux each worker asks the kernel for
the parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so it is killed the moment
the driver dies, even by ``SIGKILL``; everywhere, a daemon thread in each worker also
checks every 0.25 s that its parent is still the driver and ends the worker if not. With
the workers gone, multiprocessing's resource tracker sees its pipe close and exits too. A
cell in flight when the driver dies (or when the sweep is interrupted) is stopped and not
recorded: it runs again when the sweep is resumed.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import signal
import socket
import sys
import threading
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

#: Arm the Linux parent-death signal in local workers (tests turn it off to check that the
#: watcher thread alone also ends orphaned workers).
PARENT_DEATH_SIGNAL = True
_WATCH_SECONDS = 0.25
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _torch_threads() -> int | None:
    """torch's intra-op thread count in this process (None if torch was never imported)."""
    torch = sys.modules.get("torch")
    return None if torch is None else int(torch.get_num_threads())


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
        "torch_threads": None,
    }


def execute_run(run: RunFunction, config: Mapping[str, Any]) -> dict[str, Any]:
    """Run ``run(config)`` and return its record; exceptions become ``"failed"`` records.

    The result must be a dict of JSON-serialisable values; numpy / torch scalars and
    arrays are converted to Python numbers and lists. Anything else makes the run fail
    with a message naming the offending entry.

    The record's ``torch_threads`` says at which torch thread count the result is
    reproducible bit for bit: the result's own ``torch_threads`` entry if the run reports
    one (it is moved out of the result; e.g. a run that sets its threads and restores them),
    else the count in this process when the run ends (None if torch was never imported).
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
    threads = _torch_threads()
    if result is not None and "torch_threads" in result:
        threads = result.pop("torch_threads")
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
        "torch_threads": threads,
    }


def iter_inline(run: RunFunction, configs: Iterable[Mapping[str, Any]]) -> Iterator[dict]:
    """Run every configuration in this process, one after another."""
    for config in configs:
        yield execute_run(run, config)


def _mp_context() -> multiprocessing.context.BaseContext:
    # spawn: fork after torch has started threads can deadlock, and a forkserver would be
    # the workers' parent (the parent-death signal must come from the driver itself)
    return multiprocessing.get_context("spawn")


def _set_parent_death_signal() -> bool:
    """Linux: ask the kernel to SIGKILL this process when its parent dies (False if not)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        args = (ctypes.c_ulong(int(signal.SIGKILL)),) + (ctypes.c_ulong(0),) * 3
        return libc.prctl(ctypes.c_int(_PR_SET_PDEATHSIG), *args) == 0
    except (OSError, AttributeError):  # no libc / no prctl symbol
        return False


def _watch_driver(driver: int) -> None:
    """Thread body: end this worker as soon as its parent is no longer the driver."""
    while os.getppid() == driver:
        time.sleep(_WATCH_SECONDS)
    os._exit(1)  # the driver is gone: its cell's result could never be recorded


def _worker_init(driver: int, death_signal: bool) -> None:
    """Initializer of a local worker: die with the driver (see the module docstring)."""
    if death_signal:
        _set_parent_death_signal()
    if os.getppid() != driver:  # the driver died before the signal was armed
        os._exit(1)
    threading.Thread(
        target=_watch_driver, args=(driver,), name="cnnexplore-driver-watch", daemon=True
    ).start()


def _new_pool(workers: int, ctx: multiprocessing.context.BaseContext) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_worker_init,
        initargs=(os.getpid(), PARENT_DEATH_SIGNAL),
    )  # fmt: skip


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Shut the pool down without waiting and kill the workers (their cells are abandoned)."""
    kill = getattr(pool, "kill_workers", None)  # Python >= 3.14
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    if kill is not None:
        kill()
        return
    for proc in processes:
        if proc.is_alive():
            proc.kill()


_BROKEN = (
    "the worker process pool broke while this run was queued or running (a worker died "
    "abruptly: killed, out of memory or a crash in native code); rerun the sweep with "
    "retry_failed=True to try again.\n"
)


def iter_local(
    run: RunFunction, configs: Iterable[Mapping[str, Any]], workers: int
) -> Iterator[dict]:
    """Run configurations in ``workers`` local processes (spawn start).

    At most ``workers`` runs are in flight, so a worker that dies takes down only the
    runs actually running (recorded as failed); a fresh pool continues with the rest.
    Workers end with the driver, even when it is killed with ``SIGKILL``; if the generator
    is closed early (an interruption), the workers are killed. Either way the cells in
    flight are not recorded and run again on resume.
    """
    pending = list(configs)[::-1]  # pop() from the end keeps the grid order
    ctx = _mp_context()
    pool = _new_pool(workers, ctx)
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
                pool = _new_pool(workers, ctx)
        clean_exit = True
    finally:
        if clean_exit:
            pool.shutdown(wait=True)
        else:  # interrupted: stop the cells in flight now (they run again on resume)
            _stop_workers(pool)


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
