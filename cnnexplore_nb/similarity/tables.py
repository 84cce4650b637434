"""Thesis correlation tables, compatible with the original CNN Explorer.

:func:`correlation_tables` compares every layer of a model A with every layer of a model B
(or of A itself) and returns a :class:`CorrelationTables` with five tidy DataFrames.
Columns are neutral (``A_*`` for model A, ``B_*`` for model B); the CNN Explorer names,
with the model names as prefixes (``CNN6(1)_map_id``), are produced by
:meth:`CorrelationTables.explorer` and in saved files:

``pairs``
    one row per map pair per layer pair: ``A_map_id, B_map_id, correlation`` (= ``|r|``),
    ``A_zero_flag, B_zero_flag`` (0/1), ``A_layer, B_layer, signed_correlation`` (r), and
    ``A_degenerate, B_degenerate`` (0/1: the map is constant or non-zero at fewer than
    ``min_support`` pixels over the images, so its r is decided by a few pixels).
``maxima`` / ``minima`` (files ``max`` / ``min``)
    for each map of A and each layer of B, the map of B with the highest (lowest) ``|r|``:
    ``A_layer, A_map_id, B_layer, B_map_id, correlation, signed_correlation``. A map is
    excluded only against itself (self-comparison, same layer, same id). NaN values
    (constant maps) are never chosen; a map without any valid partner gets a row with
    ``B_map_id = -1`` and NaN correlations.
``stats``
    per layer pair, over the maps of A whose max ``|r|`` >= threshold: ``A_layer, B_layer,
    count, mean, median, std`` (std with ddof=1, the pandas default used by the original),
    ``percent`` (= count / n_maps * 100, per layer pair, so never above 100), ``n_maps``
    (maps in the A layer) and ``A_n_dead``, ``B_n_dead`` (constant maps in the A and the B
    layer). Every layer pair has a row (count 0 and NaN statistics if none).
``partners``
    for each B map that is the max partner of some map of A (all max rows, no threshold):
    ``A_layer, B_layer, B_map_id, frequency`` (how often), ``percent`` (frequency / maps in
    the A layer * 100, CNN Explorer's ``count_freq(%)``) and the ``mean``, ``median`` and
    ``std`` (ddof=1) of those max ``|r|``. Sorted by frequency, then id.

Degenerate maps keep their values in every table (CNN Explorer counted them); the panels
never pick them as a pair to show (:meth:`CorrelationTables.best_pair`).

Constant ("dead") maps have an undefined correlation. ``constant="nan"`` (default) keeps
it NaN (zero flag 1; never a max or min partner). ``constant="explorer"`` reproduces the
original tool: ``|r| = 1`` when both maps are constant and 0 when one is, so dead ReLU maps
pair up as "well correlated" and raise ``count`` and ``percent``; ``A_n_dead`` shows by
how much. The CNN Explorer filters of the max and min tables (``min_corr_threshold``,
``max_corr_threshold``) are :meth:`CorrelationTables.maxima_between`,
:meth:`~CorrelationTables.minima_between` and :meth:`~CorrelationTables.partners_between`.

Layer columns are pandas Categoricals whose categories keep the order of the input dicts.
Each table is built on first access and cached, so asking only for ``pairs`` (as the
original tool did) costs no max/min/stats work. The builders live in :mod:`._build`,
saving and loading in :mod:`.tables_io`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._arrays import as_layer_maps
from .._checks import check_choice, check_fraction, check_positive_int
from . import _build
from ._schema import TABLES, explorer_columns
from .measures import map_support
from .moments import NonFiniteMapsError
from .region import Crop, MaskMode, Resample
from .stream import stream_moments

__all__ = ["CONSTANT_CONVENTIONS", "TABLE_MEASURES", "CorrelationTables", "correlation_tables"]

TABLE_MEASURES = ("pearson", "cosine")
#: How a correlation with a constant map is reported (module docstring).
CONSTANT_CONVENTIONS = ("nan", "explorer")


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
        Threshold of ``stats`` (max ``|r|`` >= threshold counts as "well correlated").
    measure : str
        ``"pearson"`` or ``"cosine"``.
    matrices : dict of (layer_a, layer_b) -> ndarray of shape (K_a, K_b)
        Signed similarity of every map pair.
    zero_flags_a, zero_flags_b : dict of layer -> ndarray of bool, shape (K,)
    self_comparison : bool
        True when A was compared with itself (a map is then excluded against itself).
    constant : {"nan", "explorer"}
        How correlations with constant maps were reported (module docstring).
    degenerate_a, degenerate_b : dict of layer -> ndarray of bool, shape (K,)
        Constant maps and maps non-zero at fewer than ``min_support`` pixels over the
        images (read from the ``pairs`` table of a loaded set; the zero flags if it has none).
    support_a, support_b : dict of layer -> ndarray of int, shape (K,), or None
        Non-zero pixels of each map over all images, at its own resolution (None when
        loaded from files).
    min_support : int or None
        The support below which a map is degenerate (None when unknown).
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
        constant: str = "nan",
        *,
        degenerate_a: dict[str, np.ndarray] | None = None,
        degenerate_b: dict[str, np.ndarray] | None = None,
        support_a: dict[str, np.ndarray] | None = None,
        support_b: dict[str, np.ndarray] | None = None,
        min_support: int | None = None,
    ) -> None:
        self.names, self.threshold, self.measure = names, threshold, measure
        self._degenerate = {"a": degenerate_a, "b": degenerate_b}
        self.support_a, self.support_b, self.min_support = support_a, support_b, min_support
        self.constant = check_choice("constant convention", constant, CONSTANT_CONVENTIONS)
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
            f"layers_b={self.layers_b!r}, self_comparison={self.self_comparison!r}, "
            f"constant={self.constant!r})"
        )

    @property
    def layers_a(self) -> list[str]:
        return list(self.zero_flags_a)

    @property
    def degenerate_a(self) -> dict[str, np.ndarray]:
        return self._flags("a")

    @property
    def degenerate_b(self) -> dict[str, np.ndarray]:
        return self._flags("b")

    def _flags(self, side: str) -> dict[str, np.ndarray]:
        if self._degenerate[side] is None:
            zero = self.zero_flags_a if side == "a" else self.zero_flags_b
            flags = {k: v.copy() for k, v in zero.items()}
            pairs = self._frames.get("pairs")
            col, ids, layer = (f"{side.upper()}_{c}" for c in ("degenerate", "map_id", "layer"))
            if pairs is not None and col in pairs.columns:  # a loaded set says which
                hit = pairs[pairs[col].to_numpy() == 1]
                for name, group in hit.groupby(layer, observed=True):
                    flags[str(name)][group[ids].to_numpy()] = True
            self._degenerate[side] = flags
        return self._degenerate[side]

    def best_pair(
        self, layer_a: str, layer_b: str, *, skip_degenerate: bool = True
    ) -> tuple[int, int, float] | None:
        """The most similar pair of maps (largest ``|r|``) between two layers.

        Parameters
        ----------
        layer_a, layer_b : str
            A layer of A and a layer of B.
        skip_degenerate : bool
            Leave out degenerate maps (constant, or non-zero at fewer than ``min_support``
            pixels): their r is decided by a few pixels.

        Returns
        -------
        (map of A, map of B, signed r) or None
            None when no pair has a defined similarity. A map is never paired with itself.
        """
        key = (str(layer_a), str(layer_b))
        if key not in self.matrices:
            pairs = list(self.matrices)
            raise KeyError(f"no layer pair {key} in the tables; layer pairs: {pairs[:6]}")
        skip = (self.degenerate_a[key[0]], self.degenerate_b[key[1]]) if skip_degenerate else None
        return _build.best(self.matrices[key], skip, self.self_comparison and key[0] == key[1])

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
        dead_a = {k: int(v.sum()) for k, v in self.zero_flags_a.items()}
        dead_b = {k: int(v.sum()) for k, v in self.zero_flags_b.items()}
        return _build.stats(self.maxima, t, self.layers_a, self.layers_b, dead_a, dead_b)

    def maxima_between(self, low: float = 0.0, high: float = 1.0) -> pd.DataFrame:
        """Rows of ``maxima`` whose max ``|r|`` is in [low, high] (NaN rows dropped).

        ``maxima_between(t)`` is CNN Explorer's ``get_max_correlations(min_corr_threshold=t)``
        (pairs below t dropped before the max: the maps whose max is below t drop out).
        """
        return _between(self.maxima, low, high)

    def minima_between(self, low: float = 0.0, high: float = 1.0) -> pd.DataFrame:
        """Rows of ``minima`` whose min ``|r|`` is in [low, high] (NaN rows dropped).

        ``minima_between(high=t)`` is CNN Explorer's
        ``get_min_correlations(max_corr_threshold=t)``.
        """
        return _between(self.minima, low, high)

    def partners_between(
        self, low: float = 0.0, high: float = 1.0, *, table: Literal["max", "min"] = "max"
    ) -> pd.DataFrame:
        """The ``partners`` table of the max (or min) rows whose ``|r|`` is in [low, high].

        CNN Explorer's ``get_correlation_stats`` on its filtered max (min) table: per
        partner, ``frequency``, ``percent`` (of the maps in the A layer), ``mean``,
        ``median`` and ``std``. ``partners_between()`` equals :attr:`partners`.
        """
        check_choice("table", table, ["max", "min"])
        rows = _between(self.maxima if table == "max" else self.minima, low, high)
        n_maps = {k: len(v) for k, v in self.zero_flags_a.items()}
        return _build.partners(rows, self.layers_a, self.layers_b, n_maps)

    def with_threshold(self, threshold: float) -> CorrelationTables:
        """A copy whose ``threshold`` and ``stats`` are recomputed (other tables shared)."""
        t = check_fraction("threshold", threshold)
        frames = {k: v for k, v in self._frames.items() if k != "stats"}
        frames["stats"] = self.stats_at(t)
        return CorrelationTables(
            self.names, t, self.measure, self.matrices, self.zero_flags_a, self.zero_flags_b,
            self.self_comparison, frames, constant=self.constant,
            degenerate_a=self.degenerate_a, degenerate_b=self.degenerate_b,
            support_a=self.support_a, support_b=self.support_b, min_support=self.min_support,
        )  # fmt: skip

    # ----------------------------------------------------------- lazy builders
    def _build_pairs(self) -> None:
        self.pairs = _build.pairs(
            self.matrices, self.zero_flags_a, self.zero_flags_b, self.layers_a, self.layers_b,
            self.degenerate_a, self.degenerate_b,
        )  # fmt: skip

    def _build_maxima(self) -> None:  # builds maxima and minima together (either may be given)
        mx, mn = _build.extremes(self.matrices, self.layers_a, self.layers_b, self.self_comparison)
        for name, table in (("maxima", mx), ("minima", mn)):
            if self._frames[name] is None:
                self._frames[name] = table

    _build_minima = _build_maxima

    def _build_stats(self) -> None:
        self.stats = self.stats_at(self.threshold)

    def _build_partners(self) -> None:
        self.partners = self.partners_between()


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


def _between(df: pd.DataFrame, low: float, high: float) -> pd.DataFrame:
    lo, hi = check_fraction("low", low), check_fraction("high", high)
    if lo > hi:
        raise ValueError(f"low must be <= high, got low={low!r} > high={high!r}")
    v = df["correlation"].to_numpy()
    return df[(v >= lo) & (v <= hi)].reset_index(drop=True)


def correlation_tables(
    maps_a: Mapping[str, Any],
    maps_b: Mapping[str, Any] | None = None,
    *,
    names: tuple[str, str] = ("A", "B"),
    threshold: float = 0.8,
    measure: Literal["pearson", "cosine"] = "pearson",
    resample: Resample = None,
    progress: bool = True,
    constant: Literal["nan", "explorer"] = "nan",
    mask: Any = None,
    crop: Crop = None,
    mask_mode: MaskMode = "select",
    min_support: int = 5,
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
    resample : None, "bilinear-down", "bilinear-up", "bicubic-down", "bicubic-up" or (H, W)
        Common-grid policy for layers of different H x W (:mod:`.region`).
    progress : bool
        Show tqdm progress bars.
    constant : {"nan", "explorer"}
        Correlations with constant maps: NaN (default), or CNN Explorer's convention
        (``|r|`` = 1 when both maps are constant, 0 when one is; Pearson only).
    mask : array of bool, shape (H, W), (N, H, W) or (N, 1, H, W), optional
        Only these pixels of the common grid count, e.g.
        ``dilated_mask(ground_truth, k)``; a mask on another grid is resampled by nearest
        neighbour when ``resample`` is given.
    crop : (top, left, height, width) or (rows, cols) slices, optional
        Only this window of the common grid counts.
    mask_mode : {"select", "zero"}
        ``"zero"``: CNN Explorer's masking (maps multiplied by the mask, all pixels count).
    min_support : int
        A map non-zero at fewer pixels than this, over all N images at its own resolution
        (:func:`~.measures.map_support`), is flagged degenerate (``A_degenerate`` /
        ``B_degenerate`` in ``pairs``), as is a constant map; 0 flags constant maps only.

    Returns
    -------
    CorrelationTables
    """
    min_support = check_positive_int("min_support", min_support, minimum=0)
    t = check_fraction("threshold", threshold)
    check_choice("table measure", measure, TABLE_MEASURES)
    check_choice("constant convention", constant, CONSTANT_CONVENTIONS)
    if constant == "explorer" and measure != "pearson":
        raise ValueError(
            "constant='explorer' reproduces CNN Explorer's Pearson convention, got "
            f"measure={measure!r}; use measure='pearson' or constant='nan'"
        )
    a = as_layer_maps(maps_a, "maps_a", same_n=False)
    self_cmp = maps_b is None or maps_b is maps_a
    b = a if self_cmp else as_layer_maps(maps_b, "maps_b", same_n=False)
    prefixes = _prefixes(names, self_cmp)
    try:
        mom = stream_moments(
            list(a.values()), None if self_cmp else list(b.values()), resample=resample,
            progress=progress, mask=mask, crop=crop, mask_mode=mask_mode,
        )  # fmt: skip
    except NonFiniteMapsError as err:  # name the layer: the engine sees joined channels
        for side, layers in (("maps_a", a), ("maps_b", {} if self_cmp else b)):
            for layer, x in layers.items():
                ok = np.isfinite(x) if isinstance(x, np.ndarray) else x.isfinite().cpu().numpy()
                chans, imgs = (np.flatnonzero(~ok.all(axis=ax)) for ax in ((0, 2, 3), (1, 2, 3)))
                if len(chans):
                    raise NonFiniteMapsError(
                        f"{side}[{layer!r}] must be finite, got NaN/Inf in channel(s) "
                        f"{chans[:10].tolist()} of image(s) {imgs[:10].tolist()}"
                    ) from None
        raise err
    full = mom.pearson() if measure == "pearson" else mom.cosine()
    const_a, const_b = mom.constant_a, mom.constant_b
    if constant == "explorer":
        full = _build.explorer_convention(full, const_a, const_b)
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
    sa = {la: map_support(x) for la, x in a.items()}
    sb = sa if self_cmp else {lb: map_support(x) for lb, x in b.items()}
    da = {la: za[la] | (sa[la] < min_support) for la in a}
    db = {lb: zb[lb] | (sb[lb] < min_support) for lb in b}
    return CorrelationTables(
        prefixes, t, measure, mats, za, zb, self_cmp, constant=constant, degenerate_a=da,
        degenerate_b=db, support_a=sa, support_b=sb, min_support=min_support,
    )  # fmt: skip
