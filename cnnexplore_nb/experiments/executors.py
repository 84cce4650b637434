"""Executors of a sweep: in-process, local worker processes, Dask distributed.

Each executor is a generator taking the run function and the tasks still to do and
yielding one record per configuration as runs finish (in completion order). A task is one
configuration (a dict), run by :func:`execute_run`, or a group of configurations (a list:
the seeds of one cell) run together by :func:`execute_group` through the run function's
grouped variant (:class:`GroupedRun`). Neither raises for an error of the run itself: the
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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timezone
from typing import Any

from .store import to_jsonable

__all__ = [
    "EXECUTORS",
    "GroupedRun",
    "execute_group",
    "execute_run",
    "iter_dask",
    "iter_inline",
    "iter_local",
]

EXECUTORS = ("inline", "local", "dask")

RunFunction = Callable[[dict[str, Any]], Mapping[str, Any]]
Task = Mapping[str, Any] | Sequence[Mapping[str, Any]]


class GroupedRun:
    """A run function that can also run several configurations together.

    ``run(config) -> dict`` runs one configuration; ``run.many(configs) -> list`` runs a
    group (configurations that differ only in their seed) in one call and returns one
    result per configuration, in order: a dict, or an exception instance for a run that
    failed alone (e.g. :func:`~cnnexplore_nb.transfer.run_many` with ``errors="return"``).
    :func:`~cnnexplore_nb.experiments.run_sweep` groups the seeds of each cell for such a
    function. Picklable when both functions are (module-level functions or partials).

    Parameters
    ----------
    one : callable
        ``one(config: dict) -> dict``.
    many : callable
        ``many(configs: list of dict) -> list of (dict or Exception)``.
    """

    def __init__(
        self,
        one: RunFunction,
        many: Callable[[list[dict[str, Any]]], Sequence[Mapping[str, Any] | BaseException]],
    ) -> None:
        if not callable(one) or not callable(many):
            raise TypeError(
                f"GroupedRun needs two callables, got {type(one).__name__} and "
                f"{type(many).__name__}"
            )
        self.one, self.many = one, many

    def __call__(self, config: dict[str, Any]) -> Mapping[str, Any]:
        return self.one(config)

    def __repr__(self) -> str:
        return f"GroupedRun(one={self.one!r}, many={self.many!r})"


def task_configs(task: Task) -> list[Mapping[str, Any]]:
    """The configurations of a task (one for a single run, several for a group)."""
    return [task] if isinstance(task, Mapping) else list(task)


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
    out, error = None, None
    try:
        out = run(dict(config))
    except Exception:
        error = traceback.format_exc()
    return _record(config, out, error, started, time.perf_counter() - t0)


def _record(
    config: Mapping[str, Any], out: Any, error: str | None, started: str, seconds: float
) -> dict[str, Any]:
    """The record of one run from its output (a result or an exception) or its error."""
    result: dict[str, Any] | None = None
    if error is None and isinstance(out, BaseException):
        error = "".join(traceback.format_exception(type(out), out, out.__traceback__))
    elif error is None:
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
        "seconds": seconds,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "torch_threads": threads,
    }


def execute_group(run: GroupedRun, configs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Run a group with ``run.many(configs)``; one record per configuration, in order.

    A seed that failed alone (an exception in its place) gets a ``"failed"`` record, the
    others their results; if ``run.many`` itself raises, every configuration of the group
    is recorded as failed with its traceback. ``seconds`` is the group's time divided by
    its size.
    """
    started, t0 = _now(), time.perf_counter()
    outs: list[Any] = [None] * len(configs)
    error = None
    try:
        outs = list(run.many([dict(c) for c in configs]))
        if len(outs) != len(configs):
            raise ValueError(
                f"run.many returned {len(outs)} results for a group of {len(configs)} "
                "configurations; it must return one per configuration, in order"
            )
    except Exception:
        outs, error = [None] * len(configs), traceback.format_exc()
    seconds = (time.perf_counter() - t0) / max(len(configs), 1)
    return [_record(c, out, error, started, seconds) for c, out in zip(configs, outs)]


def execute_task(run: RunFunction, task: Task) -> list[dict[str, Any]]:
    """Records of a task: one configuration (:func:`execute_run`) or a group."""
    if isinstance(task, Mapping):
        return [execute_run(run, task)]
    return execute_group(run, task)


def iter_inline(run: RunFunction, configs: Iterable[Task]) -> Iterator[dict]:
    """Run every task (configuration or group) in this process, one after another."""
    for task in configs:
        yield from execute_task(run, task)


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


def iter_local(run: RunFunction, configs: Iterable[Task], workers: int) -> Iterator[dict]:
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
    inflight: dict[Future, Task] = {}
    clean_exit = False
    try:
        while pending or inflight:
            broken = False
            while pending and len(inflight) < workers and not broken:
                config = pending.pop()
                try:
                    inflight[pool.submit(execute_task, run, config)] = config
                except BrokenProcessPool:  # a worker died since the last completion
                    pending.append(config)
                    broken = True
            # once the pool is broken every in-flight future fails promptly: collect them all
            done, _ = wait(inflight, return_when=ALL_COMPLETED if broken else FIRST_COMPLETED)
            if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                broken = True
                done = wait(inflight).done
            for fut in done:
                task = inflight.pop(fut)
                try:
                    records = fut.result()
                except BrokenProcessPool:
                    error = _BROKEN + traceback.format_exc()
                    records = [failure_record(c, error) for c in task_configs(task)]
                except Exception:
                    error = traceback.format_exc()
                    records = [failure_record(c, error) for c in task_configs(task)]
                yield from records
            if broken:
                pool.shutdown(wait=True, cancel_futures=True)
                pool = _new_pool(workers, ctx)
        clean_exit = True
    finally:
        if clean_exit:
            pool.shutdown(wait=True)
        else:  # interrupted: stop the cells in flight now (they run again on resume)
            _stop_workers(pool)


def iter_dask(run: RunFunction, configs: Iterable[Task], client: Any) -> Iterator[dict]:
    """Submit every task to a ``dask.distributed.Client``; yield records as they finish."""
    from distributed import as_completed

    from .store import config_key

    futures = {}
    for task in configs:
        task = dict(task) if isinstance(task, Mapping) else [dict(c) for c in task]
        fut = client.submit(
            execute_task,
            run,
            task,
            pure=False,
            key=f"sweep-run-{config_key(task_configs(task)[0])}-{uuid.uuid4().hex[:8]}",
        )
        futures[fut.key] = (fut, task)
    try:
        for fut in as_completed([f for f, _ in futures.values()]):
            task = futures.pop(fut.key)[1]
            try:
                records = fut.result()
            except Exception:
                error = traceback.format_exc()
                records = [failure_record(c, error) for c in task_configs(task)]
            yield from records
            fut.release()
    finally:
        leftover = [f for f, _ in futures.values()]
        if leftover:
            client.cancel(leftover)
