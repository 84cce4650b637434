"""The common grid of a panel's maps: which policy, the control choosing it, what to say.

Maps of different sizes (a ResNet's stages, a U-Net's encoder and decoder) are compared on
one grid (:mod:`cnnexplore_nb.similarity.region`). A panel given no ``resample`` takes the
smallest grid (``"bilinear-down"``), says so, and offers the other policies as a control.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import ipywidgets as ipw
import numpy as np

from .._arrays import resample as resample_maps
from .._checks import unknown_name_message
from ..similarity.region import RESAMPLE_POLICIES, common_grid, make_region, resample_mode

__all__ = ["CommonGrid"]


def _key(resample: Any) -> Any:
    """A policy as a hashable widget value ((H, W) lists become tuples)."""
    return tuple(resample) if isinstance(resample, (list, tuple)) else resample


class CommonGrid:
    """How a panel compares maps of different sizes.

    Parameters
    ----------
    layers : iterable of arrays of shape (N, C, H, W)
        Every layer the panel shows.
    resample : None, policy or (H, W)
        None: ``"bilinear-down"`` when the sizes differ (``auto``), else no grid.
    region : dict
        ``mask``, ``crop``, ``mask_mode`` of the tables (the pixels that count).

    Attributes
    ----------
    sizes : list of (H, W)
        The distinct sizes, largest first.
    resample : the current policy.
    auto : bool
        The policy was chosen by the panel (no ``resample`` given, the sizes differ).
    widget : ipywidgets.Dropdown
        "common grid": the four policies with the grid each gives; hidden for one size.
    """

    def __init__(self, layers: Any, resample: Any, region: Mapping[str, Any]) -> None:
        self.sizes = sorted({tuple(int(v) for v in x.shape[-2:]) for x in layers}, reverse=True)
        self.auto = resample is None and len(self.sizes) > 1
        self.resample = "bilinear-down" if self.auto else resample
        self.region = dict(region)
        if self.sizes:
            common_grid(self.sizes, self.resample)  # a bad policy fails here, clearly
        many = len(self.sizes) > 1
        self.widget = ipw.Dropdown(
            options=self.options() if many else [("", None)],
            value=self.key if many else None, description="common grid",
            style={"description_width": "initial"}, layout=ipw.Layout(width="420px"),
        )  # fmt: skip
        self.widget.layout.display = "" if many else "none"

    @property
    def key(self) -> Any:
        return _key(self.resample)

    def grid(self) -> tuple[int, int] | None:
        """(H, W) the maps are compared on (None without maps)."""
        return common_grid(self.sizes, self.resample) if self.sizes else None

    @property
    def active(self) -> bool:
        """Maps are resampled (several sizes, or a grid asked for)."""
        return bool(self.sizes) and (len(self.sizes) > 1 or self.resample is not None)

    def options(self) -> list[tuple[str, Any]]:
        """(label, policy) of the control, e.g. ("bilinear, to the smallest grid (7×7)", ...)."""
        out = []
        for policy in RESAMPLE_POLICIES:
            h, w = common_grid(self.sizes, policy)
            mode, way = policy.split("-")
            out.append((f"{mode}, to the {'smallest' if way == 'down' else 'largest'} grid "
                        f"({h}×{w})", policy))  # fmt: skip
        if self.key not in [v for _, v in out]:
            h, w = self.grid()
            out.append((f"{resample_mode(self.resample)}, to {h}×{w}", self.key))
        return out

    def choose(self, value: Any) -> None:
        """Check ``value`` against the control's choices (the caller sets the widget)."""
        choices = [v for _, v in self.widget.options]
        if _key(value) not in choices:
            raise ValueError(unknown_name_message("common grid", value, choices))

    def title(self) -> str:
        """What an exported title appends: " · on 7×7" (empty when nothing is resampled)."""
        if not self.active:
            return ""
        h, w = self.grid()
        return f" · on {h}×{w}"

    def text(self) -> str:
        """What the status line says (empty when nothing is resampled), e.g. "maps of 4 sizes
        (56×56, 28×28, 14×14, 7×7) compared on the smallest grid, 7×7 (bilinear); ..."."""
        if not self.active:
            return ""
        h, w = self.grid()
        mode = resample_mode(self.resample)
        if self.auto:
            sizes = ", ".join(f"{a}×{b}" for a, b in self.sizes)
            return (f"maps of {len(self.sizes)} sizes ({sizes}) compared on the smallest grid, "
                    f"{h}×{w} ({mode}); choose another with 'common grid'")  # fmt: skip
        return f"maps compared on a {h}×{w} grid ({mode})"

    def note(self) -> str:
        """:meth:`text` as the status line's HTML."""
        text = self.text()
        return f'<span style="color:#555">{html.escape(text)}</span>' if text else ""

    def pixels(self, a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
        """Two maps (N, 1, H, W) at the pixels the tables compared: every image, on the
        common grid, inside the region."""
        grid, mode = self.grid(), resample_mode(self.resample)
        ga = np.asarray(resample_maps(a, grid, mode=mode))
        gb = np.asarray(resample_maps(b, grid, mode=mode))
        n = int(ga.shape[0])
        region = make_region(
            self.region.get("mask"), self.region.get("crop"), grid, n, self.resample,
            self.region.get("mask_mode", "select"),
        )  # fmt: skip
        if region is not None:
            ga, gb = region.apply(ga, 0, n), region.apply(gb, 0, n)
        return ga, gb
