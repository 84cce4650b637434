"""Figures of the vessel study that the generic plot functions do not cover."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import holoviews as hv

from .._checks import check_positive_int
from ._style import as_array
from .maps import _check_ids, _clim, _grid_layout, map_image, panel_px
from .names import layer_name

__all__ = ["layer_map_rows"]


def layer_map_rows(
    rows: Mapping[str, tuple[Any, Sequence[int], Sequence[int]]],
    *,
    shared_scale: bool = False,
    ncols: int | None = None,
    title: str = "{layer} #{id}",
    cmap: str | None = None,
) -> hv.Layout:
    """One row of maps per layer, e.g. 8 random maps of layers 1, 2, 4 and 6 of CNN6.

    Parameters
    ----------
    rows : mapping layer name -> (maps, ids, highlight)
        ``maps`` of shape (C, H, W) (one image), the map ``ids`` to show in this order and
        the ids drawn with a coloured frame (e.g. maps with a highly correlated partner).
    shared_scale : bool
        One colour range per row (else each map uses its own range).
    ncols : int, optional
        Panels per row of the layout (default: the longest id list).
    title : str
        Format string of the panel titles with ``{layer}`` (the layer's display name) and
        ``{id}``.
    cmap : str, optional
        Colour map (default the shared sequential one; ``"gray"`` for images and masks).

    Returns
    -------
    hv.Layout
        Panels in row order: all maps of the first layer, then of the second...
    """
    if not rows:
        raise ValueError("rows must name at least one layer, got none")
    panels = []
    widest = max(len(list(ids)) for _, ids, _ in rows.values())
    size = panel_px(ncols or widest)
    for layer, (maps, ids, highlight) in rows.items():
        arr = as_array(maps, f"maps of {layer!r}", (3,))
        chosen = _check_ids(list(ids), arr.shape[0], "map")
        if not chosen:
            raise ValueError(f"no map ids given for layer {layer!r}")
        marked = set(_check_ids(list(highlight), arr.shape[0], "highlight"))
        clim = _clim(arr[i] for i in chosen) if shared_scale else None
        panels += [
            map_image(arr[i], title=title.format(layer=layer_name(layer), id=i), clim=clim,
                      cmap=cmap, highlight=i in marked, size=size)
            for i in chosen
        ]  # fmt: skip
    return _grid_layout(panels, check_positive_int("ncols", ncols or widest))
