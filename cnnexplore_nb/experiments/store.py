"""Result store of a sweep: one JSON record per run, keyed by a hash of its configuration.

A store is a directory holding ``<key>.json`` files, ``key`` being :func:`config_key` of the
run's configuration. Every record is written atomically (temporary file, fsync,
:func:`os.replace`), so a crash or a ``SIGKILL`` leaves either the whole record or none.
A record file that cannot be parsed, or whose configuration does not hash to its name, is
reported with a :class:`CorruptRecordWarning` and treated as missing (the run is redone).

Record layout (JSON object)::

    {"config": {...}, "status": "ok" | "failed", "result": {...} | null,
     "error": str | null, "started": ISO-8601 UTC, "finished": ISO-8601 UTC,
     "seconds": float, "host": str, "pid": int, "torch_threads": int | null, "key": str}

``torch_threads`` is the torch thread count the run used (results reproduce bit for bit at
that count only; null if torch was not imported); records of older versions lack it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..io import atomic_path, check_writable_dir

__all__ = [
    "CorruptRecordWarning",
    "ResultStore",
    "config_key",
    "to_jsonable",
]

KEY_LENGTH = 16
_RECORD_RE = re.compile(rf"^[0-9a-f]{{{KEY_LENGTH}}}\.json$")
_TEMP_RE = re.compile(rf"^\.[0-9a-f]{{{KEY_LENGTH}}}\.json\..*\.tmp$")
_REQUIRED = ("config", "status", "result", "error")
STATUSES = ("ok", "failed")


class CorruptRecordWarning(UserWarning):
    """A record file of a result store could not be read; its run will be redone."""


def to_jsonable(obj: Any, where: str = "value") -> Any:
    """Return ``obj`` with numpy / torch scalars and arrays turned into plain Python.

    Accepted: ``None``, bools, ints, floats (NaN and inf kept), strings, lists, tuples,
    mappings with string keys, and objects with ``tolist`` (numpy arrays and scalars,
    torch tensors).

    Raises
    ------
    TypeError
        Naming the offending entry (``where``) and its type.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(
                    f"{where} has a key {k!r} of type {type(k).__name__}; JSON needs string keys"
                )
            out[k] = to_jsonable(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy scalar/array, torch tensor
        return to_jsonable(obj.tolist(), where)
    raise TypeError(
        f"{where} of type {type(obj).__module__}.{type(obj).__name__} is not "
        "JSON-serialisable; expected numbers, strings, bools, None, lists or dicts"
    )


def _canonical(config: Mapping[str, Any]) -> str:
    return json.dumps(
        to_jsonable(dict(config), "config"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=True,
    )


def config_key(config: Mapping[str, Any]) -> str:
    """Stable key of a configuration: sha256 of its canonical JSON, first 16 hex digits.

    Canonical JSON has sorted keys and no whitespace, so the key does not depend on the
    order of the settings; numpy scalars hash like the equal Python numbers (``1`` and
    ``1.0`` differ, as they do in JSON).

    Examples
    --------
    >>> config_key({"seed": 0, "n": 5}) == config_key({"n": 5, "seed": 0})
    True
    >>> len(config_key({"seed": 0}))
    16
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict of settings, got {type(config).__name__}")
    return hashlib.sha256(_canonical(config).encode("ascii")).hexdigest()[:KEY_LENGTH]


def _check_record(key: str, record: Any) -> str | None:
    """Return why ``record`` is not a valid record for ``key``, or None if it is."""
    if not isinstance(record, dict):
        return f"expected a JSON object, found {type(record).__name__}"
    missing = [f for f in _REQUIRED if f not in record]
    if missing:
        return f"missing field(s) {missing}"
    if record["status"] not in STATUSES:
        return f"status must be one of {STATUSES}, found {record['status']!r}"
    if not isinstance(record["config"], dict):
        return "config is not a JSON object"
    if config_key(record["config"]) != key:
        return "its configuration does not hash to its file name"
    if record["status"] == "ok" and not isinstance(record["result"], dict):
        return "status is 'ok' but result is not a JSON object"
    return None


class ResultStore:
    """A directory of run records (see the module docstring for the layout).

    Parameters
    ----------
    directory : path
        Created if missing; must be writable.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = check_writable_dir(directory)

    def __repr__(self) -> str:
        return f"ResultStore({str(self.directory)!r})"

    def path(self, key: str) -> Path:
        """File of the record with ``key``."""
        return self.directory / f"{key}.json"

    def write(self, record: Mapping[str, Any]) -> Path:
        """Write one record atomically under the key of its configuration."""
        config = record.get("config") if isinstance(record, Mapping) else None
        if not isinstance(config, Mapping):
            got = f"config={config!r}" if isinstance(record, Mapping) else type(record).__name__
            raise TypeError(
                f"a record must be a dict holding 'config', the dict of the run's settings; "
                f"got {got}"
            )
        record = dict(record)
        key = config_key(record["config"])
        record["key"] = key
        text = json.dumps(to_jsonable(record, "record"), allow_nan=True)
        path = self.path(key)
        with atomic_path(path) as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
        return path

    def read(self, key: str) -> tuple[dict[str, Any] | None, str | None]:
        """Return ``(record, None)``, ``(None, None)`` if absent, ``(None, reason)`` if corrupt."""
        path = self.path(key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None, None
        try:
            record = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return None, f"invalid JSON ({exc})"
        reason = _check_record(key, record)
        if reason is not None:
            return None, reason
        record["key"] = key
        return record, None

    def keys(self) -> list[str]:
        """Keys of all record files present (corrupt ones included), sorted."""
        return sorted(p.name[: -len(".json")] for p in self._entries() if _RECORD_RE.match(p.name))

    def _entries(self) -> Iterable[Path]:
        try:
            return list(self.directory.iterdir())
        except FileNotFoundError:
            return []

    def scan(
        self, keys: Iterable[str] | None = None, *, warn: bool = True, stacklevel: int = 2
    ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """Read records.

        Parameters
        ----------
        keys : iterable of str, optional
            Only these keys (default: every record file of the store).
        warn : bool
            Emit one :class:`CorruptRecordWarning` listing the corrupt files.
        stacklevel : int
            Passed on to :func:`warnings.warn` (counted from the caller of ``scan``).

        Returns
        -------
        records : dict key -> record
        corrupt : dict key -> reason
        """
        records: dict[str, dict[str, Any]] = {}
        corrupt: dict[str, str] = {}
        for key in self.keys() if keys is None else keys:
            record, reason = self.read(key)
            if reason is not None:
                corrupt[key] = reason
            elif record is not None:
                records[key] = record
        if corrupt and warn:
            listed = "; ".join(f"{self.path(k).name}: {r}" for k, r in sorted(corrupt.items()))
            warnings.warn(
                f"{len(corrupt)} corrupt record file(s) in {str(self.directory)!r} are ignored "
                f"and their runs will be redone: {listed}",
                CorruptRecordWarning,
                stacklevel=stacklevel + 1,
            )
        return records, corrupt

    def clean_temp_files(self, older_than: float = 60.0) -> list[Path]:
        """Remove temporary files left by interrupted writes, older than ``older_than`` s.

        Younger ones may belong to a writer still running, so they are left alone (the
        loader never reads temporary files either way).
        """
        now = time.time()
        removed = []
        for p in self._entries():
            if _TEMP_RE.match(p.name):
                try:
                    if now - p.stat().st_mtime >= older_than:
                        p.unlink()
                        removed.append(p)
                except FileNotFoundError:  # finished or removed meanwhile
                    continue
        return removed
