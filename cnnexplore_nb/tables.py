"""Thesis correlation tables, compatible with the original CNN Explorer.

:func:`correlation_tables` compares every layer of a model A with every layer of a model B
(or of A itself) and returns a :class:`CorrelationTables` with five tidy DataFrames.
With column prefixes ``A`` and ``B`` (e.g. ``"CNN6(1)"`` and ``"CNN6(2)"``):

``pairs``
    one row per map pair per layer pair: ``A_map_id, B_map_id, correlation`` (= |r|),
    ``A_zero_flag, B_zero_flag`` (0/1), ``A_layer, B_layer, signed_correlation`` (r).
``max`` / ``min``
    for each map of A and each layer of B, the map of B with the highest (lowest) |r|:
    ``A_layer, A_map_id, B_layer, B_map_id, correlation, signed_correlation``. A map is
    excluded only against itself (self-comparison, same layer, same id). NaN values
    (constant maps) are never chosen; a map without any valid partner gets a row with
    ``B_map_id = -1`` and NaN correlations.
``stats``
    per layer pair, over the maps of A whose max |r| >= threshold: ``A_layer, B_layer,
    count, mean, median, std`` (std with ddof=1, the pandas default used by the original),
    ``percent`` (= count / n_maps * 100, per layer pair, so never above 100) and ``n_maps``
    (maps in the A layer). Every layer pair has a row (count 0 and NaN statistics if none).
``partners``
    how often each B map is the max partner of a map of A (all max rows, no threshold):
    ``A_layer, B_layer, B_map_id, frequency`` (maps with frequency 0 are omitted).

Layer columns are pandas Categoricals whose categories keep the order of the input dicts.
The zero flag marks constant maps (std 0 over all pooled pixels), whose correlation is NaN.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ._checks import check_choice, check_fraction
from .io import check_writable_dir
from .similarity import Resample, stream_moments

__all__ = ["FORMATS", "CorrelationTables", "correlation_tables", "load_tables", "save_tables"]

FORMATS = ("csv", "json", "parquet")
TABLE_MEASURES = ("pearson", "cosine")
_TABLES = ("pairs", "max", "min", "stats", "partners")
# column kinds per table; "A"/"B" stand for the two prefixes
_SCHEMA: dict[str, list[tuple[str, str]]] = {
    "pairs": [("A_map_id", "int"), ("B_map_id", "int"), ("correlation", "float"),
              ("A_zero_flag", "int"), ("B_zero_flag", "int"), ("A_layer", "la"),
              ("B_layer", "lb"), ("signed_correlation", "float")],
    "max": [("A_layer", "la"), ("A_map_id", "int"), ("B_layer", "lb"), ("B_map_id", "int"),
            ("correlation", "float"), ("signed_correlation", "float")],
    "stats": [("A_layer", "la"), ("B_layer", "lb"), ("count", "int"), ("mean", "float"),
              ("median", "float"), ("std", "float"), ("percent", "float"), ("n_maps", "int")],
    "partners": [("A_layer", "la"), ("B_layer", "lb"), ("B_map_id", "int"),
                 ("frequency", "int")],
}  # fmt: skip
_SCHEMA["min"] = _SCHEMA["max"]


def _col(name: str, names: tuple[str, str]) -> str:
    for key, prefix in (("A_", names[0]), ("B_", names[1])):
        if name.startswith(key):
            return f"{prefix}_{name[2:]}"
    return name


def _cat(values: Any, layers: list[str]) -> pd.Categorical:
    """Layer column as a Categorical keeping the given layer order."""
    dtype = pd.CategoricalDtype(pd.Index(list(layers), dtype=object))
    values = np.asarray(values)
    if values.dtype.kind in "iu":  # already codes into ``layers``
        return pd.Categorical.from_codes(values, dtype=dtype)
    codes = dtype.categories.get_indexer(values.astype(object))
    if (codes < 0).any():
        unknown = sorted({str(v) for v in values[codes < 0]})
        raise ValueError(f"layer names {unknown} are not among the known layers {list(layers)}")
    return pd.Categorical.from_codes(codes, dtype=dtype)


@dataclass
class CorrelationTables:
    """Correlation tables of two models (see the module docstring for the columns).

    Attributes
    ----------
    names : tuple of str
        Column prefixes of A and B, e.g. ``("CNN6(1)", "CNN6(2)")``.
    threshold : float
        Threshold of ``stats`` (max |r| >= threshold counts as "well correlated").
    measure : str
        ``"pearson"`` or ``"cosine"``.
    matrices : dict of (layer_a, layer_b) -> ndarray of shape (K_a, K_b)
        Signed similarity of every map pair.
    zero_flags_a, zero_flags_b : dict of layer -> ndarray of bool, shape (K,)
    self_comparison : bool
        True when A was compared with itself (a map is then excluded against itself).
    """

    names: tuple[str, str]
    threshold: float
    measure: str
    matrices: dict[tuple[str, str], np.ndarray]
    zero_flags_a: dict[str, np.ndarray]
    zero_flags_b: dict[str, np.ndarray]
    self_comparison: bool
    pairs: pd.DataFrame = field(repr=False)
    max: pd.DataFrame = field(repr=False)
    min: pd.DataFrame = field(repr=False)
    stats: pd.DataFrame = field(repr=False)
    partners: pd.DataFrame = field(repr=False)

    @property
    def layers_a(self) -> list[str]:
        return list(self.zero_flags_a)

    @property
    def layers_b(self) -> list[str]:
        return list(self.zero_flags_b)

    def stats_at(self, threshold: float) -> pd.DataFrame:
        """The ``stats`` table at another threshold in [0, 1], from the cached max table."""
        t = check_fraction("threshold", threshold)
        return _stats(self.max, t, self.names, self.layers_a, self.layers_b)

    def with_threshold(self, threshold: float) -> CorrelationTables:
        """A copy whose ``threshold`` and ``stats`` are recomputed (other tables shared)."""
        t = check_fraction("threshold", threshold)
        return replace(self, threshold=t, stats=self.stats_at(t))


def _check_maps(maps: Any, name: str) -> dict[str, Any]:
    if not isinstance(maps, Mapping):
        raise TypeError(
            f"{name} must be a dict of layer path -> maps of shape (N, C, H, W), "
            f"got {type(maps).__name__}"
        )
    if len(maps) == 0:
        raise ValueError(f"{name} must hold at least one layer, got 0 layers selected")
    return {str(k): (v if hasattr(v, "detach") else np.asarray(v)) for k, v in maps.items()}


def _prefixes(names: Any, same_model: bool) -> tuple[str, str]:
    if (
        not isinstance(names, (tuple, list))
        or len(names) != 2
        or not all(isinstance(n, str) and n for n in names)
    ):
        raise ValueError(f"names must be two non-empty strings, got {names!r}")
    if same_model or names[0] == names[1]:
        return f"{names[0]}(1)", f"{names[0]}(2)"
    return str(names[0]), str(names[1])


def correlation_tables(
    maps_a: Mapping[str, Any],
    maps_b: Mapping[str, Any] | None = None,
    *,
    names: tuple[str, str] = ("A", "B"),
    threshold: float = 0.8,
    measure: Literal["pearson", "cosine"] = "pearson",
    resample: Resample = None,
    progress: bool = True,
) -> CorrelationTables:
    """All-pairs correlation tables between every layer of A and every layer of B.

    Parameters
    ----------
    maps_a : dict of layer path -> Tensor or ndarray of shape (N, C, H, W) or (C, H, W)
        Maps of model A, all with the same N (pixels of the N images are pooled).
    maps_b : same as ``maps_a``, optional
        Maps of model B; ``None`` compares A with itself (prefixes ``A(1)``, ``A(2)``).
    names : tuple of two str
        Model names used as column prefixes; equal names become ``name(1)``/``name(2)``.
    threshold : float in [0, 1]
        Threshold of the ``stats`` table.
    measure : {"pearson", "cosine"}
        Signed similarity in [-1, 1]; ``correlation`` is its absolute value.
    resample : None, "bilinear-down", "bilinear-up" or (H, W)
        Common-grid policy for layers of different H x W (see :mod:`.similarity`).
    progress : bool
        Show tqdm progress bars.

    Returns
    -------
    CorrelationTables
    """
    t = check_fraction("threshold", threshold)
    check_choice("table measure", measure, TABLE_MEASURES)
    a = _check_maps(maps_a, "maps_a")
    self_cmp = maps_b is None or maps_b is maps_a
    b = a if self_cmp else _check_maps(maps_b, "maps_b")
    prefixes = _prefixes(names, self_cmp)
    mom = stream_moments(
        list(a.values()), None if self_cmp else list(b.values()), resample=resample,
        progress=progress,
    )  # fmt: skip
    full = mom.pearson() if measure == "pearson" else mom.cosine()
    const_a, const_b = mom.constant_a, mom.constant_b
    ka = [int(v.shape[-3]) for v in a.values()]
    kb = [int(v.shape[-3]) for v in b.values()]
    oa, ob = np.cumsum([0, *ka]), np.cumsum([0, *kb])
    za = {la: const_a[oa[i] : oa[i + 1]].copy() for i, la in enumerate(a)}
    zb = {lb: const_b[ob[j] : ob[j + 1]].copy() for j, lb in enumerate(b)}
    mats = {
        (la, lb): np.ascontiguousarray(full[oa[i] : oa[i + 1], ob[j] : ob[j + 1]])
        for i, la in enumerate(a)
        for j, lb in enumerate(b)
    }
    return _assemble(prefixes, t, measure, mats, za, zb, self_cmp)


def _assemble(names, threshold, measure, mats, za, zb, self_cmp) -> CorrelationTables:
    la_list, lb_list = list(za), list(zb)
    pairs = _pairs(mats, za, zb, names, la_list, lb_list)
    mx, mn = _extremes(mats, names, la_list, lb_list, self_cmp)
    return CorrelationTables(
        names=names, threshold=threshold, measure=measure, matrices=mats,
        zero_flags_a=za, zero_flags_b=zb, self_comparison=self_cmp, pairs=pairs, max=mx,
        min=mn, stats=_stats(mx, threshold, names, la_list, lb_list),
        partners=_partners(mx, names, la_list, lb_list),
    )  # fmt: skip


def _frame(cols: dict[str, Any], table: str, names, la_list, lb_list) -> pd.DataFrame:
    out = {}
    for key, kind in _SCHEMA[table]:
        v = cols[key]
        if kind == "int":
            v = np.asarray(v, dtype=np.int64)
        elif kind == "float":
            v = np.asarray(v, dtype=np.float64)
        else:
            v = _cat(v, la_list if kind == "la" else lb_list)
        out[_col(key, names)] = v
    return pd.DataFrame(out)


def _pairs(mats, za, zb, names, la_list, lb_list) -> pd.DataFrame:
    cols: dict[str, list] = {k: [] for k, _ in _SCHEMA["pairs"]}
    for (la, lb), r in mats.items():
        k_a, k_b = r.shape
        cols["A_map_id"].append(np.repeat(np.arange(k_a), k_b))
        cols["B_map_id"].append(np.tile(np.arange(k_b), k_a))
        cols["correlation"].append(np.abs(r).ravel())
        cols["A_zero_flag"].append(np.repeat(za[la].astype(np.int64), k_b))
        cols["B_zero_flag"].append(np.tile(zb[lb].astype(np.int64), k_a))
        cols["A_layer"].append(np.full(k_a * k_b, la_list.index(la)))
        cols["B_layer"].append(np.full(k_a * k_b, lb_list.index(lb)))
        cols["signed_correlation"].append(r.ravel())
    return _frame({k: np.concatenate(v) for k, v in cols.items()}, "pairs", names, la_list, lb_list)


def _extremes(mats, names, la_list, lb_list, self_cmp) -> tuple[pd.DataFrame, pd.DataFrame]:
    tables = []
    for pick, fill in ((np.argmax, -np.inf), (np.argmin, np.inf)):
        cols: dict[str, list] = {k: [] for k, _ in _SCHEMA["max"]}
        for (la, lb), r in mats.items():
            mag = np.abs(r)
            if self_cmp and la == lb:
                np.fill_diagonal(mag, np.nan)
            valid = ~np.isnan(mag)
            has = valid.any(axis=1)
            rows = np.arange(r.shape[0])
            j = pick(np.where(valid, mag, fill), axis=1)
            cols["A_layer"].append(np.full(r.shape[0], la_list.index(la)))
            cols["A_map_id"].append(rows)
            cols["B_layer"].append(np.full(r.shape[0], lb_list.index(lb)))
            cols["B_map_id"].append(np.where(has, j, -1))
            cols["correlation"].append(np.where(has, mag[rows, j], np.nan))
            cols["signed_correlation"].append(np.where(has, r[rows, j], np.nan))
        merged = {k: np.concatenate(v) for k, v in cols.items()}
        tables.append(_frame(merged, "max", names, la_list, lb_list))
    return tables[0], tables[1]


def _groups(mx: pd.DataFrame, names, la_list, lb_list):
    """Yield (la, lb, rows of mx) for every layer pair, in layer order."""
    ca = np.asarray(mx[_col("A_layer", names)].cat.codes)
    cb = np.asarray(mx[_col("B_layer", names)].cat.codes)
    key = ca.astype(np.int64) * len(lb_list) + cb
    order = np.argsort(key, kind="stable")
    bounds = np.searchsorted(key[order], np.arange(len(la_list) * len(lb_list) + 1))
    for g in range(len(la_list) * len(lb_list)):
        yield (
            la_list[g // len(lb_list)],
            lb_list[g % len(lb_list)],
            order[bounds[g] : bounds[g + 1]],
        )


def _stats(mx: pd.DataFrame, threshold: float, names, la_list, lb_list) -> pd.DataFrame:
    corr = mx["correlation"].to_numpy()
    cols: dict[str, list] = {k: [] for k, _ in _SCHEMA["stats"]}
    for la, lb, idx in _groups(mx, names, la_list, lb_list):
        v = corr[idx]
        v = v[~np.isnan(v) & (v >= threshold)]
        cols["A_layer"].append(la)
        cols["B_layer"].append(lb)
        cols["count"].append(v.size)
        cols["mean"].append(v.mean() if v.size else np.nan)
        cols["median"].append(np.median(v) if v.size else np.nan)
        cols["std"].append(v.std(ddof=1) if v.size > 1 else np.nan)
        cols["percent"].append(100.0 * v.size / idx.size if idx.size else np.nan)
        cols["n_maps"].append(idx.size)
    return _frame(cols, "stats", names, la_list, lb_list)


def _partners(mx: pd.DataFrame, names, la_list, lb_list) -> pd.DataFrame:
    ids = mx[_col("B_map_id", names)].to_numpy()
    cols: dict[str, list] = {k: [] for k, _ in _SCHEMA["partners"]}
    for la, lb, idx in _groups(mx, names, la_list, lb_list):
        j = ids[idx]
        freq = np.bincount(j[j >= 0]) if (j >= 0).any() else np.zeros(0, np.int64)
        hit = np.flatnonzero(freq)
        hit = hit[np.lexsort((hit, -freq[hit]))]  # frequency descending, then id
        cols["A_layer"].append(np.full(hit.size, la_list.index(la)))
        cols["B_layer"].append(np.full(hit.size, lb_list.index(lb)))
        cols["B_map_id"].append(hit)
        cols["frequency"].append(freq[hit])
    merged = {k: np.concatenate(v) for k, v in cols.items()}
    return _frame(merged, "partners", names, la_list, lb_list)


# ---------------------------------------------------------------------- save / load
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
