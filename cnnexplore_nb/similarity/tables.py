"""Thesis correlation tables, compatible with the original CNN Explorer.

:func:`correlation_tables` compares every layer of a model A with every layer of a model B
(or of A itself) and returns a :class:`CorrelationTables` with five tidy DataFrames.
Columns are neutral (``A_*`` for model A, ``B_*`` for model B); the CNN Explorer names,
with the model names as prefixes (``CNN6(1)_map_id``), are produced by
:meth:`CorrelationTables.explorer` and in saved files:

``pairs``
    one row per map pair per layer pair: ``A_map_id, B_map_id, correlation`` (= |r|),
    ``A_zero_flag, B_zero_flag`` (0/1), ``A_layer, B_layer, signed_correlation`` (r).
``maxima`` / ``minima`` (files ``max`` / ``min``)
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
:mod:`.tables_io`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._arrays import as_layer_maps
from .._checks import check_choice, check_fraction
from ._schema import SCHEMA, TABLES, explorer_columns, frame
from .measures import Resample, stream_moments

__all__ = ["TABLE_MEASURES", "CorrelationTables", "correlation_tables"]

TABLE_MEASURES = ("pearson", "cosine")


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
        Names of A and B, the prefixes of CNN Explorer's columns, e.g.
        ``("CNN6(1)", "CNN6(2)")``.
    threshold : float
        Threshold of ``stats`` (max |r| >= threshold counts as "well correlated").
    measure : str
        ``"pearson"`` or ``"cosine"``.
    matrices : dict of (layer_a, layer_b) -> ndarray of shape (K_a, K_b)
        Signed similarity of every map pair.
    zero_flags_a, zero_flags_b : dict of layer -> ndarray of bool, shape (K,)
    self_comparison : bool
        True when A was compared with itself (a map is then excluded against itself).
    pairs, maxima, minima, stats, partners : DataFrame
        Neutral columns; built from ``matrices`` on first access unless given.
    """

    pairs = _Table()
    maxima = _Table()
    minima = _Table()
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
        frames: Mapping[str, pd.DataFrame | None] | None = None,
    ) -> None:
        self.names, self.threshold, self.measure = names, threshold, measure
        self.matrices, self.self_comparison = matrices, self_comparison
        self.zero_flags_a, self.zero_flags_b = zero_flags_a, zero_flags_b
        self._frames: dict[str, pd.DataFrame | None] = dict.fromkeys(TABLES.values())
        for key, value in (frames or {}).items():
            if key not in self._frames:
                raise KeyError(f"unknown table {key!r}; expected one of {list(self._frames)}")
            self._frames[key] = value

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

    def explorer(self, table: str) -> pd.DataFrame:
        """A table with CNN Explorer's columns (``"pairs"``, ``"max"``, ``"min"``,
        ``"stats"`` or ``"partners"``): the model names as prefixes (``CNN6(1)_map_id``)."""
        check_choice("table", table, list(TABLES))
        df = getattr(self, TABLES[table])
        return df.rename(columns=explorer_columns(df.columns, self.names))

    def stats_at(self, threshold: float) -> pd.DataFrame:
        """The ``stats`` table at another threshold in [0, 1], from the cached maxima."""
        t = check_fraction("threshold", threshold)
        return _stats(self.maxima, t, self.layers_a, self.layers_b)

    def with_threshold(self, threshold: float) -> CorrelationTables:
        """A copy whose ``threshold`` and ``stats`` are recomputed (other tables shared)."""
        t = check_fraction("threshold", threshold)
        frames = {k: v for k, v in self._frames.items() if k != "stats"}
        frames["stats"] = self.stats_at(t)
        return CorrelationTables(
            self.names, t, self.measure, self.matrices, self.zero_flags_a, self.zero_flags_b,
            self.self_comparison, frames,
        )  # fmt: skip

    # ----------------------------------------------------------- lazy builders
    def _build_pairs(self) -> None:
        self.pairs = _pairs(
            self.matrices, self.zero_flags_a, self.zero_flags_b, self.layers_a, self.layers_b
        )

    def _build_maxima(self) -> None:  # builds maxima and minima together (either may be given)
        mx, mn = _extremes(self.matrices, self.layers_a, self.layers_b, self.self_comparison)
        for name, table in (("maxima", mx), ("minima", mn)):
            if self._frames[name] is None:
                self._frames[name] = table

    _build_minima = _build_maxima

    def _build_stats(self) -> None:
        self.stats = _stats(self.maxima, self.threshold, self.layers_a, self.layers_b)

    def _build_partners(self) -> None:
        self.partners = _partners(self.maxima, self.layers_a, self.layers_b)


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
    a = as_layer_maps(maps_a, "maps_a", same_n=False)
    self_cmp = maps_b is None or maps_b is maps_a
    b = a if self_cmp else as_layer_maps(maps_b, "maps_b", same_n=False)
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


def _pairs(mats, za, zb, la_list, lb_list) -> pd.DataFrame:
    cols: dict[str, list] = {k: [] for k, _ in SCHEMA["pairs"]}
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
    return frame({k: np.concatenate(v) for k, v in cols.items()}, "pairs", la_list, lb_list)


def _extremes(mats, la_list, lb_list, self_cmp) -> tuple[pd.DataFrame, pd.DataFrame]:
    tables = []
    for pick, fill in ((np.argmax, -np.inf), (np.argmin, np.inf)):
        cols: dict[str, list] = {k: [] for k, _ in SCHEMA["max"]}
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
        tables.append(frame(merged, "max", la_list, lb_list))
    return tables[0], tables[1]


def _groups(mx: pd.DataFrame, la_list, lb_list):
    """Yield (la, lb, rows of mx) for every layer pair, in layer order."""
    ca = np.asarray(mx["A_layer"].cat.codes)
    cb = np.asarray(mx["B_layer"].cat.codes)
    key = ca.astype(np.int64) * len(lb_list) + cb
    order = np.argsort(key, kind="stable")
    bounds = np.searchsorted(key[order], np.arange(len(la_list) * len(lb_list) + 1))
    for g in range(len(la_list) * len(lb_list)):
        yield (
            la_list[g // len(lb_list)],
            lb_list[g % len(lb_list)],
            order[bounds[g] : bounds[g + 1]],
        )


def _stats(mx: pd.DataFrame, threshold: float, la_list, lb_list) -> pd.DataFrame:
    corr = mx["correlation"].to_numpy()
    cols: dict[str, list] = {k: [] for k, _ in SCHEMA["stats"]}
    for la, lb, idx in _groups(mx, la_list, lb_list):
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
    return frame(cols, "stats", la_list, lb_list)


def _partners(mx: pd.DataFrame, la_list, lb_list) -> pd.DataFrame:
    ids = mx["B_map_id"].to_numpy()
    cols: dict[str, list] = {k: [] for k, _ in SCHEMA["partners"]}
    for la, lb, idx in _groups(mx, la_list, lb_list):
        j = ids[idx]
        freq = np.bincount(j[j >= 0]) if (j >= 0).any() else np.zeros(0, np.int64)
        hit = np.flatnonzero(freq)
        hit = hit[np.lexsort((hit, -freq[hit]))]  # frequency descending, then id
        cols["A_layer"].append(np.full(hit.size, la_list.index(la)))
        cols["B_layer"].append(np.full(hit.size, lb_list.index(lb)))
        cols["B_map_id"].append(hit)
        cols["frequency"].append(freq[hit])
    merged = {k: np.concatenate(v) for k, v in cols.items()}
    return frame(merged, "partners", la_list, lb_list)
