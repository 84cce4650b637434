"""Column schema of the correlation tables, and CNN Explorer names at the edges.

Inside the package every table has neutral columns: ``A_layer``, ``A_map_id``,
``B_layer``... for the two sides. The original CNN Explorer wrote the model names into the
columns (``CNN6(1)_map_id``); :func:`explorer_columns` and :func:`neutral_columns` translate
between the two when tables are saved, loaded or shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "ADDED_IN_3",
    "EXTRA",
    "FORMATS",
    "SCHEMA",
    "TABLES",
    "explorer_columns",
    "frame",
    "layer_categorical",
    "neutral_columns",
]

FORMATS = ("csv", "json", "parquet")
#: Table names as files and CNN Explorer call them -> attribute of CorrelationTables.
TABLES = {"pairs": "pairs", "max": "maxima", "min": "minima", "stats": "stats",
          "partners": "partners"}  # fmt: skip
# column kinds per table: int, float, la / lb (layer of side A / B)
SCHEMA: dict[str, list[tuple[str, str]]] = {
    "pairs": [("A_map_id", "int"), ("B_map_id", "int"), ("correlation", "float"),
              ("A_zero_flag", "int"), ("B_zero_flag", "int"), ("A_layer", "la"),
              ("B_layer", "lb"), ("signed_correlation", "float")],
    "max": [("A_layer", "la"), ("A_map_id", "int"), ("B_layer", "lb"), ("B_map_id", "int"),
            ("correlation", "float"), ("signed_correlation", "float")],
    "stats": [("A_layer", "la"), ("B_layer", "lb"), ("count", "int"), ("mean", "float"),
              ("median", "float"), ("std", "float"), ("percent", "float"), ("n_maps", "int"),
              ("A_n_dead", "int"), ("B_n_dead", "int")],
    "partners": [("A_layer", "la"), ("B_layer", "lb"), ("B_map_id", "int"),
                 ("frequency", "int"), ("percent", "float"), ("mean", "float"),
                 ("median", "float"), ("std", "float")],
}  # fmt: skip
SCHEMA["min"] = SCHEMA["max"]
#: Columns a table carries beyond CNN Explorer's: (name, kind, column giving its value when
#: a saved set lacks it). Degenerate maps (constant, or non-zero at fewer than
#: ``min_support`` pixels) are at least the constant ones.
EXTRA: dict[str, list[tuple[str, str, str]]] = {
    "pairs": [("A_degenerate", "int", "A_zero_flag"), ("B_degenerate", "int", "B_zero_flag")],
}
#: Columns added by format version 3 (sets saved before lack them; they are rebuilt).
ADDED_IN_3: dict[str, tuple[str, ...]] = {
    "stats": ("A_n_dead", "B_n_dead"),
    "partners": ("percent", "mean", "median", "std"),
}


def explorer_columns(columns: Sequence[str], names: tuple[str, str]) -> dict[str, str]:
    """Rename map neutral -> CNN Explorer: ``A_layer`` -> ``f"{names[0]}_layer"``..."""
    out = {}
    for c in columns:
        for key, prefix in (("A_", names[0]), ("B_", names[1])):
            if c.startswith(key):
                out[c] = f"{prefix}_{c[2:]}"
    return out


def neutral_columns(columns: Sequence[str], names: tuple[str, str]) -> dict[str, str]:
    """Rename map CNN Explorer -> neutral (the inverse of :func:`explorer_columns`)."""
    known = [k for t in SCHEMA.values() for k, _ in t]
    known += [k for t in EXTRA.values() for k, _, _ in t]
    forward = explorer_columns(known, names)
    back = {v: k for k, v in forward.items()}
    return {c: back[c] for c in columns if c in back}


def layer_categorical(values: Any, layers: Sequence[str]) -> pd.Categorical:
    """Layer column as a Categorical keeping the given layer order (codes or names)."""
    dtype = pd.CategoricalDtype(pd.Index(list(layers), dtype=object))
    values = np.asarray(values)
    if values.dtype.kind in "iu":  # already codes into ``layers``
        return pd.Categorical.from_codes(values, dtype=dtype)
    codes = dtype.categories.get_indexer(values.astype(object))
    if (codes < 0).any():
        unknown = sorted({str(v) for v in values[codes < 0]})
        raise ValueError(f"layer names {unknown} are not among the known layers {list(layers)}")
    return pd.Categorical.from_codes(codes, dtype=dtype)


def frame(
    cols: Mapping[str, Any], table: str, la_list: Sequence[str], lb_list: Sequence[str]
) -> pd.DataFrame:
    """A table with the schema's neutral columns, dtypes and layer Categoricals (and the
    :data:`EXTRA` columns, from ``cols`` or, missing there, from their fallback column)."""
    out = {}
    extra = [(k, kind) for k, kind, _ in EXTRA.get(table, [])]
    fallback = {k: src for k, _, src in EXTRA.get(table, [])}
    cols = {**{k: cols[src] for k, src in fallback.items() if k not in cols}, **cols}
    for key, kind in SCHEMA[table] + extra:
        v = cols[key]
        if kind == "int":
            v = np.asarray(v, dtype=np.int64)
        elif kind == "float":
            v = np.asarray(v, dtype=np.float64)
        else:
            v = layer_categorical(v, la_list if kind == "la" else lb_list)
        out[key] = v
    return pd.DataFrame(out)
