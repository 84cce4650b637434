"""Display names: the one place that turns identifiers into the words figures show.

Tables keep neutral, code-friendly names (``A_layer``, ``mean_max_mean``, ``l2t_www``,
``conv_module3``, ``val_iou``, pair ``"4-0"``); every plot function and panel passes them
through this module for titles, axis labels, legends, colour-bar labels and tooltips.

Override any name through the shared mapping :data:`NAMES`, for good or for one figure::

    from cnnexplore_nb.plots import NAMES, display_names
    NAMES.update(layer={"encoder.0": "encoder 1 (64 maps)"}, method={"ufm": "UFM [12]"})
    with display_names(metric={"iou": "Jaccard"}):   # only inside the block
        fig = plots.training_history(history)

Kinds: ``layer``, ``statistic``, ``measure``, ``method``, ``metric`` and ``column`` (any
other column name). Built-in layer paths (CNN-N ``conv_module3``, ResNet ``blocks2.0``,
VGG-9 ``features.6``, U-Net ``encoder.1``) get readable names; other paths stay as they are
unless mapped (set ``NAMES.builtin_layers = False`` to keep built-in paths too). The same
path in a network you wrote (``features.8`` of your VGG-16) keeps its name once
:func:`~cnnexplore_nb.extract_activations` or :func:`~cnnexplore_nb.list_layers` has seen
that network.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from .._checks import check_choice
from .._layer_origin import is_user_path

__all__ = [
    "KINDS",
    "NAMES",
    "DisplayNames",
    "comparison_name",
    "display_name",
    "display_names",
    "layer_name",
    "measure_name",
    "measure_symbol",
    "method_name",
    "metric_name",
    "model_names",
    "pair_name",
    "pair_title",
    "readable_table",
    "series_label",
    "statistic_name",
    "weight_name",
]

Kind = Literal["layer", "statistic", "measure", "method", "metric", "column"]
KINDS: tuple[str, ...] = ("layer", "statistic", "measure", "method", "metric", "column")

_MEASURES = {
    "pearson": "Pearson r",
    "cosine": "cosine similarity",
    "euclidean": "Euclidean distance",
    "cka": "linear CKA",
    "linear_cka": "linear CKA",
}
_SYMBOLS = {"pearson": "r", "cosine": "cos", "euclidean": "d", "cka": "CKA", "linear_cka": "CKA"}
_METHODS = {
    "scratch": "scratch",
    "ufm": "UFM (15 pairs)",
    "ufm_hint": "UFM (one hint)",
    "l2t_ww": "L2T-ww",
    "l2t_ww_frozen": "L2T-ww (frozen meta)",
    "l2t_www": "L2T-www",
    "attention": "attention transfer",
    "l1": "L1 norm",
    "correlation": "correlation",
    "mean-fold": "mean-fold",
    "merge": "merge",
}
_METRICS = {
    "iou": "IoU",
    "cldice": "clDice",
    "dice": "Dice",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
    "accuracy": "accuracy",
    "acc": "accuracy",
    "loss": "loss",
    "ce": "cross-entropy",
    "matching": "matching loss",
    "small_class_acc": "small-class accuracy",
    "gamma": "γ",
    "lambda": "λ",
}
_PREFIXES = {"val": "validation", "train": "training", "test": "test"}
_COLUMNS = {
    "epoch": "epoch",
    "n": "samples per class",
    "samples_per_class": "samples per class",
    "threshold": "threshold",
    "removed": "maps removed",
    "params": "parameters",
    "module": "module",
    "module_a": "module",
    "module_b": "module",
    "map_id": "map",
    "image": "image",
    "layer": "layer",
    "channel": "channel",
    "pair": "layer pair",
    "method": "method",
    "model": "model",
    "seed": "seed",
    "A_layer": "layer of A",
    "B_layer": "layer of B",
    "A_map_id": "map of A",
    "B_map_id": "map of B",
    "n_dead": "constant maps",
    "A_n_dead": "constant maps of A",
    "B_n_dead": "constant maps of B",
    "signed_correlation": "signed r",
    "training_s": "training time (s)",
    "batch": "batch size",
    "kernel_size": "module kernel size",
    "classifier_kernel_size": "last-layer kernel size",
    "vessel_fraction": "vessel fraction",
}
# statistic -> template; {sym}: the measure's symbol (r, cos), {t}: the threshold
_STATISTICS = {
    "mean": "mean max |{sym}| of maps ≥ {t}",
    "median": "median max |{sym}| of maps ≥ {t}",
    "std": "std of max |{sym}| of maps ≥ {t}",
    "count": "maps with max |{sym}| ≥ {t}",
    "percent": "% maps with max |{sym}| ≥ {t}",
    "n_maps": "maps in the layer",
    "mean_max": "mean max |{sym}|",
    "median_max": "median max |{sym}|",
    "max": "max |{sym}|",
    "min": "min |{sym}|",
}
_AGGREGATES = {"mean": "mean over images", "std": "std over images"}


class DisplayNames:
    """User overrides per kind, consulted before the built-in names.

    Attributes
    ----------
    builtin_layers : bool
        Give built-in model paths readable names (default True).
    """

    def __init__(self) -> None:
        self._maps: dict[str, dict[str, str]] = {k: {} for k in KINDS}
        self.builtin_layers = True

    def update(self, **kinds: Mapping[str, str]) -> None:
        """Add or replace names, e.g. ``update(layer={"enc.0": "encoder 1"})``."""
        for kind, mapping in kinds.items():
            check_choice("display-name kind", kind, KINDS)
            self._maps[kind].update({str(k): str(v) for k, v in mapping.items()})

    def get(self, kind: str, key: str) -> str | None:
        """The user's name for ``key`` of ``kind`` (None when not overridden)."""
        return self._maps[kind].get(str(key))

    def reset(self) -> None:
        """Forget every override."""
        for mapping in self._maps.values():
            mapping.clear()

    def snapshot(self) -> dict[str, dict[str, str]]:
        return {k: dict(v) for k, v in self._maps.items()}

    def restore(self, state: Mapping[str, Mapping[str, str]]) -> None:
        self._maps = {k: dict(state.get(k, {})) for k in KINDS}

    def __repr__(self) -> str:
        shown = {k: v for k, v in self._maps.items() if v}
        return f"DisplayNames({shown}, builtin_layers={self.builtin_layers})"


#: The shared overrides every figure and panel reads.
NAMES = DisplayNames()


@contextlib.contextmanager
def display_names(**kinds: Mapping[str, str]) -> Iterator[DisplayNames]:
    """Override names inside a ``with`` block only (figures made inside use them)."""
    state = NAMES.snapshot()
    try:
        NAMES.update(**kinds)
        yield NAMES
    finally:
        NAMES.restore(state)


# -- layers ---------------------------------------------------------------------------------
_VGG9_CONVS = {0: 1, 4: 2, 8: 3, 11: 4, 15: 5, 18: 6, 22: 7, 25: 8}  # conv index in features
_SUBMODULES = {"conv": "conv", "bn": "BN", "relu": "ReLU"}


def _vgg_conv(index: int) -> int | None:
    """Which conv of VGG-9-BN a ``features.i`` module belongs to (conv, BN, ReLU)."""
    for start, k in _VGG9_CONVS.items():
        if start <= index <= start + 2:
            return k
    return None


def _builtin_layer(path: str) -> str | None:
    if m := re.fullmatch(r"conv_module(\d+)(?:\.(conv|bn|relu))?", path):
        sub = f" {_SUBMODULES[m.group(2)]}" if m.group(2) else ""
        return f"module {m.group(1)}{sub}"
    if m := re.fullmatch(r"block(\d+)", path):  # ResNet-CIFAR: first block of a stage
        return f"stage {(int(m.group(1)) + 1) // 2} block 1"
    if m := re.fullmatch(r"blocks(\d+)\.(\d+)", path):
        return f"stage {int(m.group(1)) // 2} block {int(m.group(2)) + 2}"
    if m := re.fullmatch(r"features\.(\d+)", path):
        k = _vgg_conv(int(m.group(1)))
        return None if k is None else f"conv {k}"
    if m := re.fullmatch(r"(encoder|decoder)\.(\d+)", path):
        return f"{m.group(1)} {int(m.group(2)) + 1}"
    if path in ("bottleneck", "classifier"):
        return path
    return None


def model_names(names: Sequence[str] | None) -> tuple[str, str]:
    """Display names of the two sides of a comparison.

    A network compared with itself is stored as ``("CNN6(1)", "CNN6(2)")`` (CNN Explorer's
    column prefixes), or given as two equal names; shown, the sides are ``("CNN6 (A)",
    "CNN6 (B)")``.
    """
    na, nb = (str(n) for n in (names or ("A", "B")))
    m_a, m_b = re.fullmatch(r"(.*)\(1\)", na), re.fullmatch(r"(.*)\(2\)", nb)
    if m_a and m_b and m_a.group(1) == m_b.group(1):
        na = nb = m_a.group(1)
    if na == nb:
        return f"{na} (A)", f"{nb} (B)"
    return na, nb


def comparison_name(names: Sequence[str] | None) -> str:
    """A comparison in a title: "within CNN6" for a network with itself, else "A vs B"."""
    na, nb = model_names(names)
    if na.endswith(" (A)") and nb.endswith(" (B)") and na[:-4] == nb[:-4]:
        return f"within {na[:-4]}"
    return f"{na} vs {nb}"


def layer_name(path: str) -> str:
    """Readable name of a layer path: ``conv_module3`` -> "module 3"; user paths unchanged.

    Examples
    --------
    >>> layer_name("conv_module3"), layer_name("blocks2.3"), layer_name("my.layer")
    ('module 3', 'stage 1 block 5', 'my.layer')
    """
    path = str(path)
    user = NAMES.get("layer", path)
    if user is not None:
        return user
    if NAMES.builtin_layers and not is_user_path(path):
        return _builtin_layer(path) or path
    return path


def layer_names(paths: Sequence[str]) -> dict[str, str]:
    """Path -> display name, unique (a clash keeps the paths of the clashing layers)."""
    out = {str(p): layer_name(str(p)) for p in paths}
    seen: dict[str, int] = {}
    for name in out.values():
        seen[name] = seen.get(name, 0) + 1
    return {p: (n if seen[n] == 1 else p) for p, n in out.items()}


def weight_name(key: str) -> str:
    """``features.0.weight[4, 2, 2, 0]`` -> "conv 1 weight [4, 2, 2, 0]"."""
    m = re.fullmatch(r"(.+)\.(weight|bias)(\[.*\])?", str(key).strip())
    if not m:
        return display_name(key)
    return f"{layer_name(m.group(1))} {m.group(2)} {m.group(3) or ''}".strip()


# -- measures, statistics, methods, metrics --------------------------------------------------
def measure_name(measure: str) -> str:
    """ "pearson" -> "Pearson r", "cosine" -> "cosine similarity", "cka" -> "linear CKA"."""
    key = str(measure)
    return NAMES.get("measure", key) or _MEASURES.get(key.lower(), key)


def measure_symbol(measure: str | None) -> str:
    """Short symbol of a measure for formulas and titles: "r", "cos", "d", "CKA"."""
    return _SYMBOLS.get(str(measure or "pearson").lower(), str(measure))


def _threshold_text(threshold: float | None) -> str:
    return "threshold" if threshold is None else f"{float(threshold):g}"


def statistic_name(
    statistic: str,
    *,
    threshold: float | None = None,
    measure: str | None = "pearson",
) -> str:
    """A statistic of the correlation tables in words, aware of threshold and measure.

    ``"percent"`` -> "% maps with max |r| ≥ 0.8"; ``"mean_max_mean"`` -> "mean max |r|, mean
    over images"; under ``measure="cosine"`` the symbol is |cos|.
    """
    key = str(statistic)
    user = NAMES.get("statistic", key)
    if user is not None:
        return user
    sym, t = measure_symbol(measure), _threshold_text(threshold)
    if key in _STATISTICS:
        return _STATISTICS[key].format(sym=sym, t=t)
    base, _, agg = key.rpartition("_")
    if base in _STATISTICS and agg in _AGGREGATES:
        return f"{_STATISTICS[base].format(sym=sym, t=t)}, {_AGGREGATES[agg]}"
    return display_name(key)


def method_name(method: str) -> str:
    """ "l2t_www" -> "L2T-www", "ufm" -> "UFM", "attention" -> "attention transfer"."""
    key = str(method)
    return NAMES.get("method", key) or _METHODS.get(key, display_name(key, "column"))


def metric_name(metric: str) -> str:
    """ "val_iou" -> "validation IoU", "cldice" -> "clDice", "val_loss" -> "validation loss"."""
    key = str(metric)
    user = NAMES.get("metric", key)
    if user is not None:
        return user
    if key in _METRICS:
        return _METRICS[key]
    prefix, _, rest = key.partition("_")
    if prefix in _PREFIXES and rest:
        inner = _METRICS.get(rest, rest.replace("_", " "))
        if rest == "acc":
            inner = "accuracy"
        return f"{_PREFIXES[prefix]} {inner}"
    return display_name(key, "column")


def _tap_name(spec: Any, index: int, default: str) -> str:
    """Name of tap ``index`` from a model / feature_info list, else ``default index``."""
    info = getattr(spec, "feature_info", spec)
    if isinstance(info, Sequence) and not isinstance(info, str):
        if not 0 <= index < len(info):
            raise IndexError(f"tap {index} out of range: the model has {len(info)} feature taps")
        entry = info[index]
        return layer_name(entry["module"] if isinstance(entry, Mapping) else str(entry))
    return f"{spec if isinstance(spec, str) else default} {index}"


def pair_title(*, source: Any = None, target: Any = None) -> str:
    """Legend title explaining short pair labels: "source block → target conv"."""
    words = [s if isinstance(s, str) else d for s, d in ((source, "block"), (target, "conv"))]
    return f"source {words[0]} → target {words[1]}"


def pair_name(pair: str, *, source: Any = None, target: Any = None, short: bool = False) -> str:
    """A transfer pair id "4-0" (source tap 4 -> target tap 0) in words.

    Parameters
    ----------
    pair : str
        ``"<source tap>-<target tap>"``.
    source, target : model, feature_info list or str, optional
        A model (or its ``feature_info``) names the taps by their layers ("source stage 1
        block 5 → target conv 1"); a word names the kind of tap; default "block" (ResNet
        source) and "conv" (VGG target), as in L2T-ww: "source block 4 → target conv 0".
    short : bool
        Only the tap numbers, "4 → 0" (legends titled with :func:`pair_title`).
    """
    key = str(pair)
    user = NAMES.get("column", key)
    if user is not None:
        return user
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", key)
    if not m:
        return display_name(key)
    s, t = int(m.group(1)), int(m.group(2))
    if short:  # "4 → 0", explained by pair_title() (e.g. as the legend title)
        return f"{s} → {t}"
    return f"source {_tap_name(source, s, 'block')} → target {_tap_name(target, t, 'conv')}"


# -- anything --------------------------------------------------------------------------------
def display_name(key: Any, kind: Kind | None = None, **context: Any) -> str:
    """The display name of ``key`` (a column, statistic, metric, method, measure or layer).

    With ``kind`` only that kind is consulted; without, user overrides of every kind first,
    then the built-in tables in the order column, metric, method, statistic, measure, layer.
    A name found nowhere loses its underscores (``some_thing`` -> "some thing").
    ``context`` (``threshold``, ``measure``) goes to :func:`statistic_name`.
    """
    text = str(key)
    if kind is not None:
        check_choice("display-name kind", kind, KINDS)
        user = NAMES.get(kind, text)
        if user is not None:
            return user
        if kind == "layer":
            return layer_name(text)
        if kind == "statistic":
            return statistic_name(text, **context)
        if kind == "measure":
            return measure_name(text)
        if kind == "method":
            return _METHODS.get(text, text.replace("_", " "))
        if kind == "metric":
            return metric_name(text)
        return _COLUMNS.get(text, text.replace("_", " "))
    for k in KINDS:
        user = NAMES.get(k, text)
        if user is not None:
            return user
    if text in _COLUMNS:
        return _COLUMNS[text]
    if text in _METRICS or text.partition("_")[0] in _PREFIXES:
        return metric_name(text)
    if text in _METHODS:
        return _METHODS[text]
    if text in _STATISTICS or text.rpartition("_")[0] in _STATISTICS:
        return statistic_name(text, **context)
    if text.lower() in _MEASURES:
        return measure_name(text)
    if (
        NAMES.builtin_layers
        and not is_user_path(text)
        and (layer := _builtin_layer(text)) is not None
    ):
        return layer
    return text.replace("_", " ")


def raw_tokens() -> frozenset[str]:
    """Lower-case identifiers that must not appear as words in a figure (for the checker)."""
    return frozenset(
        {"ufm", "iou", "cldice", "dice", "f1", "l1", "l2", "val", "acc", "ce", "pearson", "cka"}
    )


def series_label(column: str | None, value: Any) -> str:
    """Legend label of a value of ``column`` (the grouping column of a plot).

    ``method`` values become method names ("L2T-www"), ``pair`` values pair names, ``layer``
    values layer names, ``metric`` values metric names; other values keep their text unless
    they look like identifiers (pair ids, snake_case, known method or metric ids).
    """
    text, col = str(value), str(column or "")
    if col in ("method", "criterion", "action"):
        return method_name(text)
    if col == "pair" or re.fullmatch(r"\d+-\d+", text):
        return pair_name(text)
    if col in ("layer", "A_layer", "B_layer", "module"):
        return layer_name(text)
    if col in ("metric", "measure"):
        return metric_name(text) if col == "metric" else measure_name(text)
    return display_name(text)


def rounded_column(values: Any, decimals: int, *, count: bool = False) -> Any:
    """A float column for display: rounded to ``decimals``, or, for a ``count`` column of
    whole numbers (counts that a pivot or a missing value made floats), integers."""
    whole = values.dropna()
    if count and len(whole) and (whole == whole.round()).all():
        return values.astype("Int64")
    return values.round(decimals)


def readable_table(
    df: Any,
    *,
    threshold: float | None = None,
    measure: str | None = "pearson",
    names: Sequence[str] | None = None,
) -> Any:
    """A statistics table for display: headings (and index names) in words, percentages and
    seconds to 1 decimal, parameter counts as integers, other fractional numbers to 3
    (``mean_max_mean`` -> "mean max |r|, mean over images").

    Parameters
    ----------
    df : DataFrame
        Columns named as the tables name them (``percent``, ``mean_max_mean``, ``module_a``,
        ``CNN6(1)_layer``...); a two-level column index is renamed level by level.
    threshold, measure
        Name the statistics (:func:`statistic_name`).
    names : (str, str), optional
        The two networks, naming ``module_a`` / ``module_b`` (default "A" and "B").

    Returns
    -------
    DataFrame
        A renamed, rounded copy (integers and text unchanged).
    """
    out = df.copy()
    for col in out.columns:
        last = str(col[-1] if isinstance(col, tuple) else col)
        if out[col].dtype.kind == "f":
            seconds = last.endswith("_s") or last == "seconds"
            out[col] = rounded_column(
                out[col], 1 if last.startswith("percent") or seconds else 3,
                count=last in ("parameters", "params"),
            )  # fmt: skip
    na, nb = model_names(names) if names is not None else ("", "")

    for col in out.columns:
        if str(col).endswith("_layer"):  # layer paths as layer names
            out[col] = [layer_name(v) if isinstance(v, str) else v for v in out[col]]

    def heading(col: Any) -> Any:
        col = str(col)
        if col in ("module_a", "module_b", "A_layer", "B_layer"):
            a = col[-1] == "a" or col[0] == "A"
            what = "module" if col.startswith("module") else "layer"
            side = na if a else nb
            return f"{side} {what}" if side else f"{what} ({'A' if a else 'B'})"
        if col in ("A_map_id", "B_map_id") and names is not None:
            return f"{na if col[0] == 'A' else nb} map"
        if m := re.fullmatch(r"(.+)\(([12])\)_(layer|n_dead|map_id)", col):  # CNN Explorer's
            side = f"{m.group(1)} ({'A' if m.group(2) == '1' else 'B'})"
            what = {"layer": f"{side} layer", "map_id": f"{side} map"}
            return what.get(m.group(3), f"constant maps of {side}")
        return statistic_name(col, threshold=threshold, measure=measure)

    out = out.rename(columns=heading)
    for level, name in enumerate(out.index.names):  # layer paths in the index as layer names
        if isinstance(name, str) and (name.endswith("_layer") or name == "layer"):
            out = out.rename(index=lambda v: layer_name(v) if isinstance(v, str) else v,
                             level=level if out.index.nlevels > 1 else None)  # fmt: skip
    if any(isinstance(n, str) for n in out.index.names):  # index levels named in words too
        out.index = out.index.set_names([heading(n) if isinstance(n, str) else n
                                         for n in out.index.names])  # fmt: skip
    return out
