"""Builders of the correlation tables from the similarity matrices (see :mod:`.tables`).

Each builder takes the per-layer-pair matrices (or the max table) and the layer lists and
returns one table with the schema of :mod:`._schema`; :class:`.tables.CorrelationTables`
calls them lazily.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from ._schema import SCHEMA, frame

__all__ = ["best", "explorer_convention", "extremes", "pairs", "partners", "stats"]


def explorer_convention(r: np.ndarray, const_a: np.ndarray, const_b: np.ndarray) -> np.ndarray:
    """CNN Explorer's values for constant maps: 1 when both maps are constant, 0 when one is.

    ``r`` is a (K_a, K_b) similarity matrix with NaN for pairs involving a constant map;
    a copy is returned with those pairs filled.
    """
    out = np.array(r, dtype=np.float64, copy=True)
    out[const_a, :] = 0.0
    out[:, const_b] = 0.0
    out[np.ix_(const_a, const_b)] = 1.0
    return out


def pairs(mats, za, zb, la_list, lb_list, da=None, db=None) -> pd.DataFrame:
    """The long table: one row per map pair per layer pair (``da``, ``db``: degenerate
    flags per layer; the zero flags when not given)."""
    da, db = da or za, db or zb
    cols: dict[str, list] = {k: [] for k, _ in SCHEMA["pairs"]}
    cols.update(A_degenerate=[], B_degenerate=[])
    for (la, lb), r in mats.items():
        k_a, k_b = r.shape
        cols["A_map_id"].append(np.repeat(np.arange(k_a), k_b))
        cols["B_map_id"].append(np.tile(np.arange(k_b), k_a))
        cols["correlation"].append(np.abs(r).ravel())
        cols["A_zero_flag"].append(np.repeat(za[la].astype(np.int64), k_b))
        cols["B_zero_flag"].append(np.tile(zb[lb].astype(np.int64), k_a))
        cols["A_degenerate"].append(np.repeat(da[la].astype(np.int64), k_b))
        cols["B_degenerate"].append(np.tile(db[lb].astype(np.int64), k_a))
        cols["A_layer"].append(np.full(k_a * k_b, la_list.index(la)))
        cols["B_layer"].append(np.full(k_a * k_b, lb_list.index(lb)))
        cols["signed_correlation"].append(r.ravel())
    return frame({k: np.concatenate(v) for k, v in cols.items()}, "pairs", la_list, lb_list)


def extremes(mats, la_list, lb_list, self_cmp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The max and min tables: each map of A with its most / least correlated map of B."""
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


def groups(mx: pd.DataFrame, la_list, lb_list) -> Iterator[tuple[str, str, np.ndarray]]:
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


def stats(
    mx: pd.DataFrame,
    threshold: float,
    la_list: Sequence[str],
    lb_list: Sequence[str],
    dead_a: Mapping[str, int],
    dead_b: Mapping[str, int],
) -> pd.DataFrame:
    """Per layer pair: count, mean, median, std and percent of max ``|r|`` >= threshold."""
    corr = mx["correlation"].to_numpy()
    cols: dict[str, list] = {k: [] for k, _ in SCHEMA["stats"]}
    for la, lb, idx in groups(mx, la_list, lb_list):
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
        cols["A_n_dead"].append(int(dead_a[la]))
        cols["B_n_dead"].append(int(dead_b[lb]))
    return frame(cols, "stats", la_list, lb_list)


def partners(
    mx: pd.DataFrame, la_list: Sequence[str], lb_list: Sequence[str], n_maps: Mapping[str, int]
) -> pd.DataFrame:
    """Per B map chosen as a partner in ``mx``: frequency, percent, mean, median, std.

    ``n_maps`` gives the number of maps of each A layer (the base of ``percent``), so a
    filtered max table keeps CNN Explorer's ``count_freq(%)`` over all maps of the layer.
    """
    ids = mx["B_map_id"].to_numpy()
    corr = mx["correlation"].to_numpy()
    cols: dict[str, list] = {k: [] for k, _ in SCHEMA["partners"]}
    for la, lb, idx in groups(mx, la_list, lb_list):
        j, v = ids[idx], corr[idx]
        ok = j >= 0
        j, v = j[ok], v[ok]
        freq = np.bincount(j) if j.size else np.zeros(0, np.int64)
        hit = np.flatnonzero(freq)
        hit = hit[np.lexsort((hit, -freq[hit]))]  # frequency descending, then id
        per = [v[j == h] for h in hit]
        cols["A_layer"].append(np.full(hit.size, la_list.index(la)))
        cols["B_layer"].append(np.full(hit.size, lb_list.index(lb)))
        cols["B_map_id"].append(hit)
        cols["frequency"].append(freq[hit])
        cols["percent"].append(100.0 * freq[hit] / max(int(n_maps[la]), 1))
        cols["mean"].append(np.array([x.mean() for x in per]))
        cols["median"].append(np.array([np.median(x) for x in per]))
        cols["std"].append(np.array([x.std(ddof=1) if x.size > 1 else np.nan for x in per]))
    merged = {k: np.concatenate(v) if v else np.zeros(0) for k, v in cols.items()}
    return frame(merged, "partners", la_list, lb_list)


def best(r: np.ndarray, skip: tuple | None, self_pairs: bool) -> tuple[int, int, float] | None:
    """(i, j, r[i, j]) of the largest ``|r|``, rows / columns in ``skip`` left out (and the
    diagonal when ``self_pairs``); None when nothing defined is left."""
    r = np.asarray(r, dtype=np.float64)
    mag = np.abs(r)
    if self_pairs:
        np.fill_diagonal(mag, np.nan)
    if skip is not None:
        mag[np.asarray(skip[0], bool), :] = np.nan
        mag[:, np.asarray(skip[1], bool)] = np.nan
    if not np.isfinite(mag).any():
        return None
    i, j = np.unravel_index(int(np.nanargmax(mag)), mag.shape)
    return int(i), int(j), float(r[i, j])
