"""Figures of activation maps and kernels: grids, single maps, and a map-pair view."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import holoviews as hv
import numpy as np

from .._checks import as_rng, check_positive_int
from ._style import STYLE, as_array, border_hooks, fonts, styled
from .names import measure_symbol

__all__ = ["kernel_grid", "map_grid", "map_image", "map_pair", "panel_px"]

#: Width (pixels) a grid of panels may take in a notebook (fits a 1600 px screen).
GRID_PX = 1400


def panel_px(ncols: int, base: int | None = None) -> int:
    """Bokeh panel side for a grid of ``ncols`` columns that fits :data:`GRID_PX`."""
    base = base or STYLE["panel_px"]
    return int(max(60, min(base, GRID_PX // max(1, ncols) - 40)))


def _clim(arrays: Iterable[np.ndarray]) -> tuple[float, float]:
    arrays = list(arrays)
    lo = min(float(np.nanmin(a)) for a in arrays)
    hi = max(float(np.nanmax(a)) for a in arrays)
    if not np.isfinite(lo) or not np.isfinite(hi):
        return (0.0, 1.0)
    if hi <= lo:  # a constant map still needs a non-empty colour range
        hi = lo + 1.0
    return (lo, hi)


def map_image(
    m: Any,
    *,
    title: str = "",
    clim: tuple[float, float] | None = None,
    cmap: str | None = None,
    highlight: bool = False,
    size: int | None = None,
    label: str = "activation",
) -> hv.Image:
    """One activation map as an ``hv.Image`` (row 0 at the top, axes hidden).

    Parameters
    ----------
    m : array or Tensor of shape (H, W)
        The map.
    title : str
        Panel title.
    clim : (low, high), optional
        Colour range; per-map automatic range if omitted.
    highlight : bool
        Draw a coloured frame around the panel.
    size : int, optional
        Panel width in pixels for Bokeh (height follows the aspect ratio).
    """
    arr = as_array(m, "map", (2,))
    h, w = arr.shape
    img = hv.Image(arr, bounds=(0, 0, w, h), kdims=["x", "y"], vdims=[label])
    px = size or STYLE["panel_px"]
    common: dict[str, Any] = {
        "cmap": cmap or STYLE["cmap"],
        "title": title,
        "xaxis": None,
        "yaxis": None,
        **fonts(),
    }
    if clim is not None:
        common["clim"] = tuple(clim)
    bokeh = {"frame_width": px, "frame_height": max(1, int(round(px * h / w))), "tools": ["hover"]}
    mpl = {"fig_inches": STYLE["panel_inches"], "aspect": w / h}
    if highlight:
        hooks = border_hooks(STYLE["highlight_color"], STYLE["highlight_width"])
        bokeh["hooks"], mpl["hooks"] = hooks["bokeh"], hooks["matplotlib"]
    return styled(img, common, bokeh=bokeh, mpl=mpl)


def _grid_layout(panels: list, ncols: int) -> hv.Layout:
    layout = hv.Layout(panels).cols(ncols)
    return styled(
        layout,
        bokeh={"shared_axes": False},
        mpl={"sublabel_format": "", "hspace": 0.3, "vspace": 0.3},
    )


def _check_ids(ids: Sequence[int] | None, n: int, what: str) -> list[int]:
    if ids is None:
        return list(range(n))
    out = []
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"{what} ids must be integers, got {i!r}")
        if not 0 <= i < n:
            raise IndexError(f"{what} id {int(i)} out of range: expected 0 <= id < {n}")
        out.append(int(i))
    return out


def map_grid(
    maps: Any,
    *,
    ids: Sequence[int] | None = None,
    ncols: int = 8,
    shared_scale: bool = False,
    highlight: Iterable[int] = (),
    cmap: str | None = None,
    title: str = "map {id}",
    label: str = "activation",
    colorbar: bool | None = None,
    heading: str = "",
) -> hv.Layout:
    """A grid of activation maps titled with their ids.

    Parameters
    ----------
    maps : array or Tensor of shape (C, H, W)
        Maps of one layer for one image.
    ids : sequence of int, optional
        Which maps to show, in this order (default all).
    ncols : int
        Panels per row.
    shared_scale : bool
        One colour range for all shown maps (else each map uses its own range).
    highlight : iterable of int
        Map ids drawn with a coloured frame (e.g. maps similar to a chosen one).
    title : str
        Format string for the panel titles; ``{id}`` is the map id.
    label : str
        What the values are (hover, colour bar), e.g. ``"γ"``.
    colorbar : bool, optional
        A colour bar (labelled ``label``) in the exported figure: one for the whole grid with
        ``shared_scale``; default with ``shared_scale`` (a shared range is meant to be read).
    heading : str
        One heading above the whole grid, e.g. the layer (``"module 2"``), so that the tiles
        keep short titles ("map 5") instead of repeating it.

    Returns
    -------
    hv.Layout
        One ``hv.Image`` per shown map.
    """
    arr = as_array(maps, "maps", (3,))
    ncols = check_positive_int("ncols", ncols)
    chosen = _check_ids(ids, arr.shape[0], "map")
    if not chosen:
        raise ValueError("ids must name at least one map, got an empty list")
    marked = set(_check_ids(list(highlight), arr.shape[0], "highlight"))
    clim = _clim(arr[i] for i in chosen) if shared_scale else None
    size = panel_px(min(ncols, len(chosen)))
    panels = [
        map_image(arr[i], title=title.format(id=i), clim=clim, cmap=cmap, highlight=i in marked,
                  size=size, label=label)
        for i in chosen
    ]  # fmt: skip
    if shared_scale if colorbar is None else colorbar:
        panels = [p.opts(colorbar=True, backend="matplotlib") for p in panels]
    layout = _grid_layout(panels, ncols)
    if heading:
        layout = styled(layout, {"title": str(heading)})
    return layout


def kernel_grid(
    weights: Any,
    *,
    ids: Sequence[int] | None = None,
    in_channel: int | Literal["mean", "rgb"] = "mean",
    ncols: int = 8,
    shared_scale: bool = True,
    cmap: str | None = None,
) -> hv.Layout:
    """A grid of convolution kernels, one panel per output channel.

    Parameters
    ----------
    weights : array or Tensor of shape (out, in, kh, kw)
        Kernel weights (e.g. from ``cnnexplore_nb.kernels``).
    in_channel : int, "mean" or "rgb"
        Show one input channel, the mean over input channels, or (for ``in == 3``) the
        kernel as a colour patch scaled to [0, 1] over all shown kernels.
    shared_scale : bool
        One symmetric colour range for all kernels (diverging colour map), so signs compare.
    """
    w = as_array(weights, "weights", (4,))
    n_out, n_in = w.shape[:2]
    chosen = _check_ids(ids, n_out, "kernel")
    ncols = check_positive_int("ncols", ncols)
    if in_channel == "rgb":
        if n_in != 3:
            raise ValueError(f"in_channel='rgb' needs 3 input channels, got {n_in}")
        sel = w[chosen].transpose(0, 2, 3, 1)
        lo, hi = float(sel.min()), float(sel.max())
        sel = (sel - lo) / (hi - lo if hi > lo else 1.0)
        panels = []
        for k, i in zip(range(len(chosen)), chosen):
            kh, kw = sel[k].shape[:2]
            rgb = hv.RGB(sel[k], bounds=(0, 0, kw, kh))
            panels.append(
                styled(
                    rgb,
                    {"title": f"kernel {i}", "xaxis": None, "yaxis": None, **fonts()},
                    bokeh={
                        "frame_width": STYLE["panel_px"] // 2,
                        "frame_height": STYLE["panel_px"] // 2,
                    },
                    mpl={"fig_inches": STYLE["panel_inches"] / 1.5},
                )
            )
        return _grid_layout(panels, ncols)
    if in_channel == "mean":
        planes = w.mean(axis=1)
    elif isinstance(in_channel, (int, np.integer)) and not isinstance(in_channel, bool):
        if not 0 <= in_channel < n_in:
            raise IndexError(
                f"in_channel {in_channel} out of range: expected 0 <= in_channel < {n_in}"
            )
        planes = w[:, int(in_channel)]
    else:
        raise ValueError(f"in_channel must be an int, 'mean' or 'rgb', got {in_channel!r}")
    clim = None
    if shared_scale:
        m = float(np.abs(planes[chosen]).max()) or 1.0
        clim = (-m, m)
    panels = [
        map_image(
            planes[i],
            title=f"kernel {i}",
            clim=clim,
            cmap=cmap or STYLE["diverging_cmap"],
            size=panel_px(ncols, STYLE["panel_px"] // 2),
            label="weight",
        )
        for i in chosen
    ]
    return _grid_layout(panels, ncols)


def map_pair(
    a: Any,
    b: Any,
    *,
    names: tuple[str, str] = ("A", "B"),
    r: float | None = None,
    max_points: int = 4000,
    rng: int | np.random.Generator | None = 0,
    measure: str = "pearson",
    same: bool = False,
    pixels: tuple[Any, Any] | None = None,
    size: int | None = None,
) -> hv.Layout:
    """Two maps side by side and the scatter of their pixel values, with the similarity in
    the title.

    Parameters
    ----------
    a, b : array or Tensor of shape (H, W)
        The two maps (same shape unless ``pixels`` is given).
    names : (str, str)
        Panel titles, e.g. ``("module 2 · map 5", "module 6 · map 17")``; a title may
        hold two lines (``"CNN6 (A) · map 5\\nmodule 2"``), the first names the scatter's
        axis.
    r : float, optional
        Similarity to print; the Pearson r of the pixels if omitted (NaN for a constant map:
        the title says "undefined").
    max_points : int
        The scatter shows a random subset of at most this many pixels (seeded by ``rng``).
    measure : str
        Names the similarity in the title: "r = 0.93", "cos = 0.93".
    same : bool
        The two maps are one map (a map is never compared with itself): the title says so.
    pixels : (array, array), optional
        The samples of the scatter when they are not the two maps' pixels: the values of
        both maps at the same pixels of every image, on a common grid (any shapes holding
        the same number of values). The scatter's title then says how many it shows.
    size : int, optional
        Side of each panel in the notebook, in pixels (default ``STYLE["panel_px"]``).

    Notes
    -----
    The scatter's axes follow its data (``framewise``), so a live view rescales.
    """
    xa, xb = as_array(a, "a", (2,)), as_array(b, "b", (2,))
    if pixels is None and xa.shape != xb.shape:
        raise ValueError(f"maps must have the same shape, got {xa.shape} and {xb.shape}")
    max_points = check_positive_int("max_points", max_points)
    fa, fb = xa.ravel(), xb.ravel()
    if pixels is not None:
        fa, fb = (np.asarray(v, dtype=np.float64).ravel() for v in pixels)
        if fa.size != fb.size or fa.size == 0:
            raise ValueError(
                f"pixels must hold as many values for a as for b (and some), got {fa.size} "
                f"and {fb.size}"
            )
    total = fa.size
    if r is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            ca, cb = fa - fa.mean(), fb - fb.mean()
            den = np.sqrt((ca * ca).sum() * (cb * cb).sum())
            r = float((ca * cb).sum() / den) if den > 0 else float("nan")
    sym = measure_symbol(measure)
    if same:
        head = "the same map"
    elif r is None or not np.isfinite(r):
        head = f"{sym} undefined (constant map)"
    else:
        head = f"{sym} = {r:.3f}"
    if fa.size > max_points:
        keep = np.sort(as_rng(rng).choice(fa.size, size=max_points, replace=False))
        fa, fb = fa[keep], fb[keep]
    if pixels is not None:
        shown = f"{fa.size:,} of {total:,}" if fa.size < total else f"{total:,}"
        head = f"{head} · {shown} px"
    px = size or STYLE["panel_px"]
    left = map_image(xa, title=names[0], size=px)
    right = map_image(xb, title=names[1], size=px)
    # the scatter's axes are named by the titles' first lines (a title may hold two)
    la, lb = str(names[0]).split("\n")[0], str(names[1]).split("\n")[0]
    if la == lb:
        la, lb = f"{la} (A)", f"{lb} (B)"
    scatter = hv.Scatter(
        (fa, fb), kdims=[hv.Dimension("a", label=la)], vdims=[hv.Dimension("b", label=lb)]
    )
    scatter = styled(
        scatter,
        {"title": head, "framewise": True, **fonts()},
        bokeh={
            "frame_width": px,
            "frame_height": px,
            "size": 3,
            "alpha": 0.4,
            "tools": ["hover"],
        },
        mpl={"fig_inches": STYLE["panel_inches"], "s": 4, "alpha": 0.4, "aspect": "square"},
    )
    return _grid_layout([left, right, scatter], 3)
