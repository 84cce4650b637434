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
Each table is built on first access and cached, so asking only for ``pairs`` (as the
original tool did) costs no max/min/stats work. Saving and loading live in
:mod:`.tables_io` (also importable from here).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ._checks import check_choice, check_fraction
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


class _Table:
    """A table of CorrelationTables: built by ``_build_<name>`` on first access, cached."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        if obj._frames.get(self.name) is None:
            getattr(obj, f"_build_{self.name}")()
        return obj._frames[self.name]

    def __set__(self, obj: Any, value: pd.DataFrame) -> None:
        obj._frames[self.name] = value


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
    pairs, max, min, stats, partners : DataFrame
        Built from ``matrices`` on first access unless given.
    """

    pairs = _Table()
    max = _Table()
    min = _Table()
    stats = _Table()
    partners = _Table()

    def __init__(
        self,
        names: tuple[str, str],
        threshold: float,
        measure: str,
        matrices: dict[tuple[str, str], np.ndarray],
        zero_flags_a: dict[str, np.ndarray],
        zero_flags_b: dict[str, np.ndarray],
        self_comparison: bool,
        pairs: pd.DataFrame | None = None,
        max: pd.DataFrame | None = None,
        min: pd.DataFrame | None = None,
        stats: pd.DataFrame | None = None,
        partners: pd.DataFrame | None = None,
    ) -> None:
        self.names, self.threshold, self.measure = names, threshold, measure
        self.matrices, self.self_comparison = matrices, self_comparison
        self.zero_flags_a, self.zero_flags_b = zero_flags_a, zero_flags_b
        self._frames: dict[str, pd.DataFrame | None] = {
            "pairs": pairs, "max": max, "min": min, "stats": stats, "partners": partners,
        }  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"CorrelationTables(names={self.names!r}, threshold={self.threshold!r}, "
            f"measure={self.measure!r}, layers_a={self.layers_a!r}, "
            f"layers_b={self.layers_b!r}, self_comparison={self.self_comparison!r})"
        )

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
        frames = {k: self._frames[k] for k in ("pairs", "max", "min", "partners")}
        return CorrelationTables(
            self.names, t, self.measure, self.matrices, self.zero_flags_a, self.zero_flags_b,
            self.self_comparison, stats=self.stats_at(t), **frames,
        )  # fmt: skip

    # ----------------------------------------------------------- lazy builders
    def _build_pairs(self) -> None:
        self.pairs = _pairs(
            self.matrices, self.zero_flags_a, self.zero_flags_b, self.names, self.layers_a,
            self.layers_b,
        )  # fmt: skip

    def _build_max(self) -> None:  # builds max and min together (either may be given)
        mx, mn = _extremes(
            self.matrices, self.names, self.layers_a, self.layers_b, self.self_comparison
        )
        for name, frame in (("max", mx), ("min", mn)):
            if self._frames[name] is None:
                self._frames[name] = frame

    _build_min = _build_max

    def _build_stats(self) -> None:
        self.stats = _stats(self.max, self.threshold, self.names, self.layers_a, self.layers_b)

    def _build_partners(self) -> None:
        self.partners = _partners(self.max, self.names, self.layers_a, self.layers_b)


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
    return CorrelationTables(prefixes, t, measure, mats, za, zb, self_cmp)


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
def save_tables(
    tables: CorrelationTables,
    directory: str | os.PathLike,
    format: Literal["csv", "json", "parquet"] = "csv",
) -> list[Path]:
    """Write the tables and ``metadata.json`` atomically; see :func:`.tables_io.save_tables`."""
    from .tables_io import save_tables as save

    return save(tables, directory, format)


def load_tables(directory: str | os.PathLike) -> CorrelationTables:
    """Read tables written by :func:`save_tables`; see :func:`.tables_io.load_tables`."""
    from .tables_io import load_tables as load

    return load(directory)
