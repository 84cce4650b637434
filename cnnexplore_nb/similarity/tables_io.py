"""Save and load :class:`~cnnexplore_nb.similarity.tables.CorrelationTables`.

A saved set is a folder with one file per table, ``pairs``, ``max``, ``min``, ``stats`` and
``partners`` (``.csv``, ``.json`` or ``.parquet``) with CNN Explorer's column names (the model
names as prefixes, ``CNN6(1)_map_id``), ``metadata.json`` (names, threshold, measure, constant
convention, layer order) and ``manifest.json`` (format version, and the row count and sha256
of every file). Format 3 added the dead-map counts to ``stats`` and the partner statistics
to ``partners``; both tables of older sets are rebuilt from their ``max`` table on load.

Writing is all or nothing (:mod:`._fileset`). Every new file is written to a temporary file
first; the files it replaces are kept (as hard links, or copies) until every new file is in
place and the manifest, written last, commits the set. A failure while files are being
replaced puts the old ones back, and a set whose save was killed half-way is detected by its
manifest and rolled back to the old files on the next load (or save); in a folder that
cannot be written that is a ``PermissionError`` naming the folder, and nothing is changed.

Loading checks every file against the manifest, so a truncated or edited file is an error
naming the file, not a silently shorter table. A ``format_version`` this version does not
read (a newer one) is an error naming the versions it reads. A set without
``manifest.json`` loads with a ``UserWarning`` saying its files cannot be verified: only the
row counts its layer lists imply are checked, so an edited value goes unnoticed. The
warning says what was found: the metadata of a format-3 set holds ``constant`` (and, from
cnnexplore_nb 0.1.0 on, ``format_version``), so such a set without a manifest lost it
(deleted, or not copied); a set whose metadata has neither was saved before manifests
existed (format 1), or lost its manifest too.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._checks import check_choice
from ..io import check_writable_dir
from ._fileset import commit, fsync, leftovers, new_temp, rollback, sha256, staging
from ._schema import ADDED_IN_3, FORMATS, SCHEMA, TABLES, explorer_columns, frame, neutral_columns
from .tables import CorrelationTables

__all__ = ["FORMAT_VERSION", "TablesFormatError", "load_tables", "save_tables"]

#: Version of the saved layout (2: manifest with sha256 and row counts; 3: ``A_n_dead``,
#: ``B_n_dead`` in stats, ``percent``, ``mean``, ``median``, ``std`` in partners).
FORMAT_VERSION = 3
_MANIFEST = "manifest.json"
_METADATA = "metadata.json"


class TablesFormatError(ValueError):
    """A saved set of tables is incomplete, truncated or does not match its manifest."""


# ----------------------------------------------------------------------------- writing
def _write_table(df: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "parquet":
        df.to_parquet(path, index=False)
    else:  # column lists through the json module: floats round-trip exactly, NaN -> null
        data = {}
        for c in df.columns:
            vals = (
                df[c].astype(object).tolist()
                if isinstance(df[c].dtype, pd.CategoricalDtype)
                else df[c].tolist()
            )
            data[c] = [None if isinstance(v, float) and v != v else v for v in vals]
        path.write_text(json.dumps({"columns": list(df.columns), "data": data}))


def save_tables(
    tables: CorrelationTables,
    directory: str | os.PathLike,
    fmt: Literal["csv", "json", "parquet"] = "csv",
) -> list[Path]:
    """Write the five tables, ``metadata.json`` and ``manifest.json`` into ``directory``.

    The set is replaced all or nothing (module docstring): on any error the files of an
    earlier save in ``directory`` are left as they were, and other files are never touched.

    Parameters
    ----------
    tables : CorrelationTables
    directory : path
        Created if missing; must be writable.
    fmt : {"csv", "json", "parquet"}
        File format of the tables.

    Returns
    -------
    list of Path
        The files written: the tables, ``metadata.json`` and ``manifest.json`` (last).
    """
    if not isinstance(tables, CorrelationTables):
        raise TypeError(f"tables must be a CorrelationTables, got {type(tables).__name__}")
    fmt = check_choice("format", fmt, FORMATS)
    out = check_writable_dir(directory)
    if (out / _MANIFEST).is_file():  # an earlier save killed half-way: restore it first
        with contextlib.suppress(TablesFormatError, KeyError, OSError):
            rollback(out, _hashes(_read_json(out / _MANIFEST, "manifest")))
    for p in leftovers(out):
        p.unlink(missing_ok=True)
    meta = {
        "format_version": FORMAT_VERSION, "names": list(tables.names), "threshold": tables.threshold, "measure": tables.measure,
        "constant": tables.constant, "format": fmt, "self_comparison": tables.self_comparison,
        "layers_a": tables.layers_a, "layers_b": tables.layers_b, "tables": list(TABLES),
    }  # fmt: skip
    tag = uuid.uuid4().hex[:12]
    files: dict[str, Any] = {}
    with staging(out) as temps:
        for table in TABLES:
            name = f"{table}.{fmt}"
            temps[name] = new_temp(out, name, tag)
            df = tables.explorer(table)
            _write_table(df, temps[name], fmt)
            files[name] = {"table": table, "rows": len(df)}
        temps[_METADATA] = new_temp(out, _METADATA, tag)
        temps[_METADATA].write_text(json.dumps(meta, indent=2))
        files[_METADATA] = {"rows": None}
        for name, tmp in temps.items():
            fsync(tmp)
            files[name]["sha256"] = sha256(tmp)
        manifest = {"format_version": FORMAT_VERSION, "format": fmt, "files": files}
        temps[_MANIFEST] = new_temp(out, _MANIFEST, tag)
        temps[_MANIFEST].write_text(json.dumps(manifest, indent=2))
        fsync(temps[_MANIFEST])
        commit(out, temps, tag)
        temps.clear()
    return [out / name for name in files] + [out / _MANIFEST]


# ----------------------------------------------------------------------------- reading
def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TablesFormatError(
            f"{what} {str(path)!r} is not valid JSON (truncated or corrupt: {exc}); "
            "save the tables again"
        ) from None


def _raw_columns(path: Path, fmt: str, layer_cols: list[str]) -> dict[str, Any]:
    if fmt == "csv":
        raw = pd.read_csv(path, dtype=dict.fromkeys(layer_cols, object))
        return {c: raw[c].to_numpy() for c in raw.columns}
    if fmt == "parquet":
        raw = pd.read_parquet(path)
        return {
            c: raw[c].to_numpy(dtype=object) if c in layer_cols else raw[c].to_numpy()
            for c in raw.columns
        }
    doc = json.loads(path.read_text())
    return {c: [np.nan if v is None else v for v in doc["data"][c]] for c in doc["columns"]}


def _count_rows(path: Path, fmt: str) -> int | None:
    """Rows of a table file as far as it can be parsed (None if it cannot)."""
    try:
        return len(next(iter(_raw_columns(path, fmt, []).values()), []))
    except Exception:  # noqa: BLE001 - any parse failure means "cannot count"
        return None


def _read_table(
    path: Path, fmt: str, table: str, names, la_list, lb_list, legacy: bool = False
) -> pd.DataFrame:
    """One table file; ``legacy`` (format < 3): columns added since may be missing (0)."""
    named = explorer_columns([k for k, _ in SCHEMA[table]], names)
    layer_cols = [named[k] for k, kind in SCHEMA[table] if kind in ("la", "lb")]
    try:
        cols = _raw_columns(path, fmt, layer_cols)
    except Exception as exc:  # noqa: BLE001 - report any parse failure with the file name
        raise TablesFormatError(f"cannot read {str(path)!r}: {exc}") from exc
    cols = {neutral_columns([c], names).get(c, c): v for c, v in cols.items()}
    n_rows = len(next(iter(cols.values()), []))
    for k in ADDED_IN_3.get(table, ()) if legacy else ():
        cols.setdefault(k, np.zeros(n_rows))  # rebuilt after the row-count checks
    missing = [k for k, _ in SCHEMA[table] if k not in cols]
    if missing:
        want = [named.get(k, k) for k in missing]
        raise TablesFormatError(f"{str(path)!r} lacks the column(s) {want}")
    for k, kind in SCHEMA[table]:  # a row cut short leaves empty cells
        empty = np.flatnonzero(pd.isna(np.asarray(cols[k], dtype=object)))
        if kind != "float" and len(empty):
            raise TablesFormatError(
                f"{str(path)!r}: column {named.get(k, k)!r} is empty in row(s) "
                f"{empty[:5].tolist()} (truncated or edited); save the tables again"
            )
    return frame(cols, table, la_list, lb_list)


def _verify(directory: Path, manifest: dict) -> None:
    fmt = manifest.get("format")
    for name, entry in manifest["files"].items():
        path = directory / name
        if not path.is_file():
            raise TablesFormatError(f"{str(path)!r} is missing (listed in {_MANIFEST})")
        if sha256(path) == entry["sha256"]:
            continue
        rows = entry.get("rows")
        found = _count_rows(path, fmt) if rows is not None else None
        detail = (
            f"expected {rows} rows, found {found}"
            if found is not None and found != rows
            else "its content differs from the saved one (sha256 mismatch: truncated or edited)"
        )
        raise TablesFormatError(f"{str(path)!r} does not match {_MANIFEST}: {detail}")


def load_tables(directory: str | os.PathLike) -> CorrelationTables:
    """Read tables written by :func:`save_tables`, checked against their manifest.

    Matrices and zero flags are rebuilt from the ``pairs`` table.

    Raises
    ------
    FileNotFoundError
        When ``directory`` holds no saved tables.
    TablesFormatError
        (a ``ValueError``) when a file is missing, truncated, edited or unreadable; the
        message names the file and, where it can be counted, the expected and found rows.
    """
    d = Path(directory)
    meta_path, manifest_path = d / _METADATA, d / _MANIFEST
    if not meta_path.is_file() and not manifest_path.is_file():
        raise FileNotFoundError(
            f"no saved correlation tables in {str(d)!r}: metadata.json is missing"
        )
    if manifest_path.is_file():
        manifest = _read_json(manifest_path, "manifest")
        version = _check_version(manifest.get("format_version", 2), manifest_path)
        if rollback(d, _hashes(manifest)):
            warnings.warn(
                f"an interrupted save in {str(d)!r} was rolled back to the previous tables",
                RuntimeWarning,
                stacklevel=2,
            )
        _verify(d, manifest)
    else:
        version = _unverified(d, meta_path)
    meta = _read_json(meta_path, "metadata")
    fmt = check_choice("format", meta.get("format"), FORMATS)
    names = tuple(meta["names"])
    la_list, lb_list = list(meta["layers_a"]), list(meta["layers_b"])
    legacy = version < 3
    frames = {
        attr: _read_table(d / f"{table}.{fmt}", fmt, table, names, la_list, lb_list, legacy)
        for table, attr in TABLES.items()
    }
    _check_counts(frames, la_list, lb_list, d, fmt)
    if legacy:  # stats and partners of older sets lack columns: rebuilt from max
        frames["stats"] = frames["partners"] = None
    mats, za, zb = _matrices(frames["pairs"], la_list, lb_list)
    return CorrelationTables(
        names=names, threshold=float(meta["threshold"]), measure=meta["measure"],
        matrices=mats, zero_flags_a=za, zero_flags_b=zb,
        self_comparison=bool(meta["self_comparison"]), frames=frames,
        constant=meta.get("constant", "nan"),
    )  # fmt: skip


def _hashes(manifest: dict) -> dict[str, str]:
    try:
        return {name: entry["sha256"] for name, entry in manifest["files"].items()}
    except (KeyError, TypeError, AttributeError):
        raise TablesFormatError(f"{_MANIFEST} lacks the files and their sha256") from None


def _check_version(value: Any, where: Path) -> int:
    """``value`` if it is a format version this module reads, else TablesFormatError."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= FORMAT_VERSION:
        return value
    from .. import __version__

    why = (
        "saved by a newer cnnexplore_nb? update it to load this set"
        if isinstance(value, int) and value > FORMAT_VERSION
        else "edited or corrupt"
    )
    raise TablesFormatError(
        f"{str(where)!r} has format_version {value!r}, but cnnexplore_nb {__version__} reads "
        f"format versions 1 to {FORMAT_VERSION} ({why})"
    )


def _unverified(d: Path, meta_path: Path) -> int:
    """Warn that a set without a manifest cannot be verified, saying what was found; the
    format version its metadata implies (see the module docstring)."""
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        meta = {}  # reported by the caller's read
    meta = meta if isinstance(meta, dict) else {}
    found = meta.get("format_version", 3 if "constant" in meta else None)
    version = 1 if found is None else _check_version(found, meta_path)
    what = (
        f"and its {_METADATA} records no format version: saved before manifests existed "
        "(format 1), or its manifest was deleted"
        if found is None
        else f"though its {_METADATA} says it was saved with one (format {version}): the "
        "manifest was deleted or not copied"
    )
    warnings.warn(
        f"{str(d)!r} has no {_MANIFEST}, {what}. Its files cannot be verified: only the row "
        "counts its layer lists imply are checked, so an edited value goes unnoticed. Save "
        "the tables again to write a manifest",
        UserWarning,
        stacklevel=3,
    )
    return version


def _check_counts(frames: dict, la_list: list[str], lb_list: list[str], d: Path, fmt: str) -> None:
    """Row counts implied by the layer lists (also catches truncation without a manifest)."""
    stats, want = frames["stats"], len(la_list) * len(lb_list)
    if len(stats) != want:
        raise TablesFormatError(
            f"{str(d / f'stats.{fmt}')!r} has {len(stats)} row(s), expected {want} (one per "
            f"layer pair of {len(la_list)} x {len(lb_list)} layers): truncated or edited"
        )
    pairs = frames["pairs"]
    blocks = pairs.groupby(["A_layer", "B_layer"], observed=False)
    size = blocks.size()
    k_a = blocks["A_map_id"].max().fillna(-1).astype(int) + 1
    k_b = blocks["B_map_id"].max().fillna(-1).astype(int) + 1
    for la in la_list:
        for lb in lb_list:
            found, ka, kb = int(size[(la, lb)]), int(k_a[(la, lb)]), int(k_b[(la, lb)])
            n_a, n_b = int(k_a[la].max()), int(k_b[:, lb].max())
            if found == 0 or found != n_a * n_b or (ka, kb) != (n_a, n_b):
                want = f"expected {n_a * n_b} ({n_a} x {n_b} maps)" if found else "expected some"
                raise TablesFormatError(
                    f"{str(d / f'pairs.{fmt}')!r} has {found} row(s) for layers {la!r} x "
                    f"{lb!r}, {want}: truncated or edited"
                )


def _matrices(pairs: pd.DataFrame, la_list: list[str], lb_list: list[str]):
    """Similarity matrices and zero flags rebuilt from the pairs table."""
    ia, ib = pairs["A_map_id"].to_numpy(), pairs["B_map_id"].to_numpy()
    ca = np.asarray(pairs["A_layer"].cat.codes)
    cb = np.asarray(pairs["B_layer"].cat.codes)
    r = pairs["signed_correlation"].to_numpy()
    fa, fb = pairs["A_zero_flag"].to_numpy(), pairs["B_zero_flag"].to_numpy()
    mats: dict[tuple[str, str], np.ndarray] = {}
    za: dict[str, np.ndarray] = {}
    zb: dict[str, np.ndarray] = {}
    for i, la in enumerate(la_list):
        for j, lb in enumerate(lb_list):
            sel = (ca == i) & (cb == j)
            if not sel.any():
                raise TablesFormatError(f"the pairs table has no rows for layers {la!r} x {lb!r}")
            m = np.full((ia[sel].max() + 1, ib[sel].max() + 1), np.nan)
            m[ia[sel], ib[sel]] = r[sel]
            mats[(la, lb)] = m
            z = np.zeros(m.shape[0], bool)
            z[ia[sel]] = fa[sel] == 1
            za[la] = z
            z = np.zeros(m.shape[1], bool)
            z[ib[sel]] = fb[sel] == 1
            zb[lb] = z
    return mats, za, zb
