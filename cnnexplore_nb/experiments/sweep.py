"""Resumable experiment sweeps: a grid of settings, a run function, a result store.

A sweep expands ``grid`` (setting name -> list of values, seeds included) into the
cartesian product of its values, adds the ``fixed`` settings to every configuration, and
runs ``run(config) -> dict`` for each configuration that has no record in the store yet.
Records are written atomically as runs finish (see :mod:`.store`), so an interrupted sweep
(even a ``SIGKILL``) is resumed by calling :func:`run_sweep` again. A run in flight at the
interruption leaves no record and runs again on resume; local worker processes end with
their driver (see :mod:`.executors`).
"""

from __future__ import annotations

import itertools
import os
import pickle
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from .._checks import check_choice, check_positive_int
from .executors import GroupedRun, RunFunction, iter_dask, iter_inline, iter_local
from .store import ResultStore, config_key

__all__ = [
    "DEFAULT_GROUP_SIZE",
    "SweepStatus",
    "group_configs",
    "expand_grid",
    "load_results",
    "records_to_frame",
    "run_sweep",
    "sweep_status",
]

META_COLUMNS = (
    "status", "error", "started", "finished", "run_seconds", "host", "pid", "torch_threads",
    "key",
)  # fmt: skip
_META_FIELDS = {"run_seconds": "seconds"}  # DataFrame column -> record field, where they differ
_EXECUTOR_NAMES = ("local", "process", "inline", "dask")
#: Seeds per group when the run function can run a group (:class:`GroupedRun`).
DEFAULT_GROUP_SIZE = 8


def expand_grid(
    grid: Mapping[str, Iterable[Any]], fixed: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Configurations of a sweep: the cartesian product of ``grid`` plus ``fixed``.

    The order is deterministic: the first setting of ``grid`` varies slowest, the last
    fastest (as in nested for-loops written in the grid's order).

    Parameters
    ----------
    grid : dict of str -> list
        Setting name -> values to try (a list, tuple, range or array; not a string).
    fixed : dict of str -> value, optional
        Settings added unchanged to every configuration; must not repeat a grid name.

    Returns
    -------
    list of dict, length prod(len(values))

    Examples
    --------
    >>> expand_grid({"n": [5, 10], "seed": [0, 1]}, fixed={"epochs": 2})[1]
    {'n': 5, 'seed': 1, 'epochs': 2}
    """
    if not isinstance(grid, Mapping):
        raise TypeError(
            f"grid must be a dict of setting -> list of values, got {type(grid).__name__}"
        )
    fixed = {} if fixed is None else fixed
    if not isinstance(fixed, Mapping):
        raise TypeError(f"fixed must be a dict of setting -> value, got {type(fixed).__name__}")
    names, values = [], []
    for name, vals in grid.items():
        if not isinstance(name, str):
            raise TypeError(f"grid setting names must be strings, got {name!r}")
        if isinstance(vals, (str, bytes, Mapping)) or not isinstance(vals, Iterable):
            raise TypeError(
                f"grid[{name!r}] must be a list of values, got {type(vals).__name__} {vals!r}; "
                f"wrap a single value in a list or pass it in fixed="
            )
        vals = list(vals)
        if not vals:
            raise ValueError(f"grid[{name!r}] must hold at least one value, got an empty list")
        names.append(name)
        values.append(vals)
    both = sorted(set(names) & set(fixed))
    if both:
        raise ValueError(f"settings {both} are given both in grid and in fixed; give each once")
    configs = [{**dict(zip(names, combo)), **fixed} for combo in itertools.product(*values)]
    seen: dict[str, dict[str, Any]] = {}
    for config in configs:
        key = config_key(config)  # also checks that every value is JSON-serialisable
        if key in seen:
            raise ValueError(
                f"the grid repeats the configuration {config}; remove duplicate values"
            )
        seen[key] = config
    return configs


@dataclass(frozen=True)
class SweepStatus:
    """Counts of a sweep's runs: ``total = done + failed + remaining``."""

    total: int
    done: int
    failed: int
    remaining: int
    corrupt: int = 0

    def __str__(self) -> str:
        text = (
            f"sweep: {self.total} runs, {self.done} done, {self.failed} failed, "
            f"{self.remaining} remaining"
        )
        if self.corrupt:
            text += f" ({self.corrupt} corrupt record(s) to redo)"
        return text


def _status(
    keys: list[str], records: Mapping[str, dict], corrupt: Iterable[str] = ()
) -> SweepStatus:
    statuses = [records[k]["status"] for k in keys if k in records]
    done, failed = statuses.count("ok"), statuses.count("failed")
    bad = len(set(corrupt) & set(keys))
    return SweepStatus(len(keys), done, failed, len(keys) - done - failed, bad)


def sweep_status(
    grid: Mapping[str, Iterable[Any]],
    store: str | os.PathLike,
    *,
    fixed: Mapping[str, Any] | None = None,
) -> SweepStatus:
    """How far a sweep has got: runs done (ok), failed and remaining (missing or corrupt)."""
    keys = [config_key(c) for c in expand_grid(grid, fixed)]
    records, corrupt = ResultStore(store).scan(keys, stacklevel=2)
    return _status(keys, records, corrupt)


def records_to_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per record: config columns, result columns, then :data:`META_COLUMNS`.

    A result entry whose name is also a config setting or a meta column is renamed
    ``result_<name>``. Failed runs have missing values in the result columns.
    """
    records = list(records)
    config_cols: dict[str, None] = {}
    result_cols: dict[str, None] = {}
    for rec in records:
        config_cols.update(dict.fromkeys(rec["config"]))
        result_cols.update(dict.fromkeys(rec["result"] or {}))
    taken = set(config_cols) | set(META_COLUMNS)
    rename = {c: f"result_{c}" if c in taken else c for c in result_cols}
    rows = []
    for rec in records:
        row = dict(rec["config"])
        row.update({rename[k]: v for k, v in (rec["result"] or {}).items()})
        for col in META_COLUMNS:
            row[col] = rec.get(_META_FIELDS.get(col, col))
        rows.append(row)
    columns = list(config_cols) + [rename[c] for c in result_cols] + list(META_COLUMNS)
    return pd.DataFrame(rows, columns=columns)


def load_results(store: str | os.PathLike) -> pd.DataFrame:
    """Every record of a store as a DataFrame (see :func:`records_to_frame`).

    Rows are sorted by start time. Corrupt record files are skipped with a
    :class:`~cnnexplore_nb.experiments.store.CorruptRecordWarning`.
    """
    records, _ = ResultStore(store).scan(stacklevel=2)
    ordered = sorted(records.values(), key=lambda r: (str(r.get("started")), r["key"]))
    return records_to_frame(ordered)


def group_configs(
    configs: Iterable[Mapping[str, Any]], *, over: str = "seed", size: int = DEFAULT_GROUP_SIZE
) -> list[list[dict[str, Any]]]:
    """Groups of configurations that differ only in the setting ``over`` (the cells' seeds).

    Cells appear in the order of their first configuration; each cell's configurations are
    cut into groups of at most ``size``, in their order. Configurations without ``over``
    form groups of one.

    Examples
    --------
    >>> cs = [{"n": n, "seed": s} for n in (5, 10) for s in (0, 1, 2)]
    >>> [[c["seed"] for c in g] for g in group_configs(cs, size=2)]
    [[0, 1], [2], [0, 1], [2]]
    """
    size = check_positive_int("size", size)
    cells: dict[str, list[dict[str, Any]]] = {}
    for config in configs:
        if over not in config:
            cells[config_key(config)] = [dict(config)]
            continue
        cell = config_key({k: v for k, v in config.items() if k != over})
        cells.setdefault(cell, []).append(dict(config))
    return [cs[i : i + size] for cs in cells.values() for i in range(0, len(cs), size)]


def _check_picklable(run: Any, executor: str) -> None:
    try:
        pickle.dumps(run)
    except Exception as exc:
        raise TypeError(
            f"executor={executor!r} sends the run function to worker processes, so it must be "
            f"picklable (a function defined at module level of an importable module, or a "
            f"functools.partial of one); {run!r} is not ({type(exc).__name__}: {exc}). "
            f"Lambdas and functions defined in a notebook cell work with executor='inline'."
        ) from exc


def _dask_client(client: Any) -> tuple[Any, bool]:
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            "executor='dask' needs the optional dependency dask[distributed]: "
            "pip install 'cnnexplore_nb[dask]'"
        ) from exc
    if client is None:
        raise ValueError(
            "executor='dask' needs client=: a dask.distributed.Client, or the address of a "
            "running scheduler such as 'tcp://127.0.0.1:8786'"
        )
    if isinstance(client, str):
        return distributed.Client(client), True
    if not hasattr(client, "submit"):
        raise TypeError(
            f"client must be a dask.distributed.Client or a scheduler address, got "
            f"{type(client).__name__}"
        )
    return client, False


def run_sweep(
    grid: Mapping[str, Iterable[Any]],
    run: RunFunction,
    store: str | os.PathLike,
    *,
    executor: Literal["local", "process", "inline", "dask"] = "local",
    workers: int | None = None,
    client: Any = None,
    fixed: Mapping[str, Any] | None = None,
    progress: bool = True,
    retry_failed: bool = False,
    group_size: int | None = None,
    group_over: str = "seed",
    priority: Callable[[Mapping[str, Any]], float] | None = None,
) -> pd.DataFrame:
    """Run every configuration of a grid that has no record in ``store`` yet.

    Parameters
    ----------
    grid : dict of str -> list
        Setting name -> values (seeds included); expanded by :func:`expand_grid`.
    run : callable
        ``run(config: dict) -> dict`` of JSON-serialisable results (numpy / torch scalars
        are converted), e.g. ``{"test_acc": 0.61, "best_epoch": 12, "seconds": 30.2}``.
        An exception, or a result that cannot be stored, records the run as failed;
        the sweep goes on.
    store : path
        Result directory, one ``<key>.json`` per run (created if missing). The key hashes
        only the configuration: use one store per run function.
    executor : {"local", "process", "inline", "dask"}
        ``"inline"`` runs in this process; ``"local"`` (alias ``"process"``) in ``workers``
        local processes started with spawn (never fork, unsafe with torch), which end with
        this process even if it is killed; ``"dask"`` on a ``dask.distributed`` cluster.
        Worker executors need a picklable ``run`` (defined at module level in an importable
        module; a script calling ``run_sweep`` needs the ``if __name__ == "__main__":``
        guard).
    workers : int, optional
        Number of processes of the ``"local"`` executor (default ``os.cpu_count()``);
        ignored by the others.
    client : dask.distributed.Client or str, optional
        For ``executor="dask"``: a client, or a scheduler address (a client is then opened
        and closed here).
    fixed : dict, optional
        Settings added to every configuration (part of its key).
    progress : bool
        Show a tqdm progress bar over the runs and print a done / failed / remaining summary.
    retry_failed : bool
        Also rerun configurations whose record says ``"failed"``.
    group_size : int, optional
        For a run function that can run several seeds together (a :class:`GroupedRun`,
        e.g. one calling :func:`~cnnexplore_nb.transfer.run_many`): the configurations still
        to do that differ only in ``group_over`` are run in groups of at most this many,
        one group per task (in this process, a worker process or on a Dask worker).
        Default :data:`DEFAULT_GROUP_SIZE`; 1 runs every configuration alone. Ignored for
        other run functions. Records stay per configuration: a group whose seeds are
        partly done runs only the missing ones, and a seed that fails alone is recorded
        as failed while the others of its group are kept.
    group_over : str
        The setting that varies within a group (``"seed"``).
    priority : callable, optional
        ``priority(config) -> float``: configurations still to do start in decreasing
        priority (stable: ties keep grid order). Give the expected cost and the longest
        runs start first, so that parallel workers finish together (longest processing
        time first). The returned frame keeps grid order either way.

    Returns
    -------
    pandas.DataFrame
        One row per configuration of the grid, in grid order (see
        :func:`records_to_frame` for the columns); ``status`` is ``"ok"`` or ``"failed"``;
        ``torch_threads`` is the torch thread count of the run (results are bit-identical
        for the same seed at the same count only).

    Notes
    -----
    Interrupting a sweep (an exception, ``KeyboardInterrupt``, or killing this process,
    even with ``SIGKILL``) loses only the runs in flight: their worker processes are
    stopped, nothing is recorded for them, and they run again when the sweep is resumed
    by calling ``run_sweep`` again. Finished runs are never redone.

    Warns
    -----
    CorruptRecordWarning
        When record files of this grid cannot be read; those runs are redone.
    """
    executor = check_choice("executor", executor, _EXECUTOR_NAMES)
    if executor == "process":
        executor = "local"
    if not callable(run):
        raise TypeError(f"run must be a callable taking a config dict, got {type(run).__name__}")
    configs = expand_grid(grid, fixed)
    if executor == "local":
        workers = (
            (os.cpu_count() or 1) if workers is None else check_positive_int("workers", workers)
        )
    if executor in ("local", "dask"):
        _check_picklable(run, executor)
    store = ResultStore(store)  # checked before a Dask client is opened
    own_client = False
    if executor == "dask":
        client, own_client = _dask_client(client)
    group = (
        DEFAULT_GROUP_SIZE if group_size is None else check_positive_int("group_size", group_size)
    )
    if not isinstance(run, GroupedRun):
        group = 1
    if priority is not None and not callable(priority):
        raise TypeError(
            f"priority must be a callable config -> float, got {type(priority).__name__}"
        )
    try:
        return _run(
            configs, run, store, executor, workers, client, progress, retry_failed,
            (group, group_over), priority,
        )  # fmt: skip
    finally:
        if own_client:
            client.close()


def _run(
    configs, run, store, executor, workers, client, progress, retry_failed, grouping, priority
) -> pd.DataFrame:
    from tqdm.auto import tqdm

    store.clean_temp_files()
    keys = [config_key(c) for c in configs]
    # stacklevel: scan -> _run -> run_sweep -> the user's call
    records, corrupt = store.scan(keys, stacklevel=3)
    todo = [
        c
        for c, k in zip(configs, keys)
        if k not in records or (retry_failed and records[k]["status"] == "failed")
    ]
    if priority is not None:  # longest first; sorted() is stable
        todo = sorted(todo, key=lambda c: -float(priority(c)))
    size, over = grouping
    tasks: list = todo
    if size > 1:  # a group of one runs alone: the plain run is the cheaper, exact path
        tasks = [g[0] if len(g) == 1 else g for g in group_configs(todo, over=over, size=size)]
    if executor == "inline":
        stream = iter_inline(run, tasks)
    elif executor == "local":
        stream = iter_local(run, tasks, min(workers, max(len(tasks), 1)))
    else:
        stream = iter_dask(run, tasks, client)
    failed = 0
    with tqdm(
        total=len(configs),
        initial=len(configs) - len(todo),
        disable=not progress,
        desc="sweep",
        unit="run",
    ) as bar:
        try:
            for record in stream:
                key = config_key(record["config"])
                record = {**record, "key": key}
                store.write(record)
                records[key] = record
                failed += record["status"] == "failed"
                bar.update(1)
                if failed:
                    bar.set_postfix(failed=failed)
        finally:
            stream.close()
    if progress:
        print(_status(keys, records))
    return records_to_frame(records[k] for k in keys)
