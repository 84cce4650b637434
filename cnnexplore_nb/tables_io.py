"""Save and load :class:`~cnnexplore_nb.tables.CorrelationTables` as CSV, JSON or Parquet.

Each of the five tables is one file ``<table>.<format>`` next to ``metadata.json`` (names,
threshold, measure, layer order). Writes are atomic: every file goes to a temporary file in
the target directory first and is renamed into place only when all of them are written.
Loading restores the column dtypes (layer Categoricals in the saved order) and rebuilds the
similarity matrices and zero flags from the ``pairs`` table.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ._checks import check_choice
from .io import check_writable_dir
from .tables import _SCHEMA, _TABLES, FORMATS, CorrelationTables, _col, _frame

__all__ = ["load_tables", "save_tables"]


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


def _read_table(path: Path, fmt: str, table: str, names, la_list, lb_list) -> pd.DataFrame:
    layer_cols = [_col(k, names) for k, kind in _SCHEMA[table] if kind in ("la", "lb")]
    if fmt == "csv":
        raw = pd.read_csv(path, dtype=dict.fromkeys(layer_cols, object))
        cols = {c: raw[c].to_numpy() for c in raw.columns}
    elif fmt == "parquet":
        raw = pd.read_parquet(path)
        cols = {
            c: raw[c].to_numpy(dtype=object) if c in layer_cols else raw[c].to_numpy()
            for c in raw.columns
        }
    else:
        doc = json.loads(path.read_text())
        cols = {c: [np.nan if v is None else v for v in doc["data"][c]] for c in doc["columns"]}
    by_key = {k: cols[_col(k, names)] for k, _ in _SCHEMA[table]}
    return _frame(by_key, table, names, la_list, lb_list)


def save_tables(
    tables: CorrelationTables,
    directory: str | os.PathLike,
    format: Literal["csv", "json", "parquet"] = "csv",
) -> list[Path]:
    """Write pairs/max/min/stats/partners and ``metadata.json`` into ``directory``.

    All files are first written to temporary files in ``directory`` and only then renamed
    into place, so an error leaves no partial set of files.

    Parameters
    ----------
    tables : CorrelationTables
    directory : path
        Created if missing; must be writable.
    format : {"csv", "json", "parquet"}

    Returns
    -------
    list of Path
        The files written (tables, then ``metadata.json``).
    """
    if not isinstance(tables, CorrelationTables):
        raise TypeError(f"tables must be a CorrelationTables, got {type(tables).__name__}")
    fmt = check_choice("format", format, FORMATS)
    out = check_writable_dir(directory)
    meta = {
        "names": list(tables.names), "threshold": tables.threshold, "measure": tables.measure,
        "format": fmt, "self_comparison": tables.self_comparison,
        "layers_a": tables.layers_a, "layers_b": tables.layers_b, "tables": list(_TABLES),
    }  # fmt: skip
    targets = [out / f"{t}.{fmt}" for t in _TABLES] + [out / "metadata.json"]
    temps: list[Path] = []
    done: list[Path] = []
    try:
        for name, target in zip(_TABLES, targets):
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=out)
            os.close(fd)
            temps.append(Path(tmp))
            _write_table(getattr(tables, name), Path(tmp), fmt)
        fd, tmp = tempfile.mkstemp(prefix=".metadata.json.", suffix=".tmp", dir=out)
        os.close(fd)
        temps.append(Path(tmp))
        Path(tmp).write_text(json.dumps(meta, indent=2))
        for tmp, target in zip(temps, targets):
            os.replace(tmp, target)
            done.append(target)
    except BaseException:
        for p in temps + done:
            p.unlink(missing_ok=True)
        raise
    return targets


def load_tables(directory: str | os.PathLike) -> CorrelationTables:
    """Read tables written by :func:`save_tables` (matrices and zero flags rebuilt from pairs)."""
    d = Path(directory)
    meta_path = d / "metadata.json"
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"no saved correlation tables in {str(d)!r}: metadata.json is missing"
        )
    meta = json.loads(meta_path.read_text())
    fmt = check_choice("format", meta.get("format"), FORMATS)
    names = tuple(meta["names"])
    la_list, lb_list = list(meta["layers_a"]), list(meta["layers_b"])
    frames = {t: _read_table(d / f"{t}.{fmt}", fmt, t, names, la_list, lb_list) for t in _TABLES}
    pairs = frames["pairs"]
    cols = {k: pairs[_col(k, names)] for k, _ in _SCHEMA["pairs"]}
    mats: dict[tuple[str, str], np.ndarray] = {}
    za: dict[str, np.ndarray] = {}
    zb: dict[str, np.ndarray] = {}
    ia, ib = cols["A_map_id"].to_numpy(), cols["B_map_id"].to_numpy()
    ca = np.asarray(cols["A_layer"].cat.codes)
    cb = np.asarray(cols["B_layer"].cat.codes)
    r = cols["signed_correlation"].to_numpy()
    fa, fb = cols["A_zero_flag"].to_numpy(), cols["B_zero_flag"].to_numpy()
    for i, la in enumerate(la_list):
        for j, lb in enumerate(lb_list):
            sel = (ca == i) & (cb == j)
            m = np.full((ia[sel].max() + 1, ib[sel].max() + 1), np.nan)
            m[ia[sel], ib[sel]] = r[sel]
            mats[(la, lb)] = m
            z = np.zeros(m.shape[0], bool)
            z[ia[sel]] = fa[sel] == 1
            za[la] = z
            z = np.zeros(m.shape[1], bool)
            z[ib[sel]] = fb[sel] == 1
            zb[lb] = z
    return CorrelationTables(
        names=names, threshold=float(meta["threshold"]), measure=meta["measure"],
        matrices=mats, zero_flags_a=za, zero_flags_b=zb,
        self_comparison=bool(meta["self_comparison"]), **frames,
    )  # fmt: skip
