"""LayerPicker: choose one or several layers by path (labelled with their display names)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as ipw
import pandas as pd

from .._checks import unknown_name_message
from ..plots.names import layer_names

__all__ = ["LayerPicker"]


class LayerPicker:
    """Choose one (or several) layers by path, e.g. from ``list_layers(model, example)``.

    Parameters
    ----------
    layers : DataFrame or sequence of str
        A ``list_layers`` table (rows with ``maps`` are offered, labelled with their map count
        and type) or the layer paths themselves.
    multiple : bool
        Allow choosing several layers (``value`` is then a tuple).
    """

    def __init__(
        self,
        layers: pd.DataFrame | Sequence[str],
        *,
        multiple: bool = False,
        value: Any = None,
        description: str = "layer",
    ) -> None:
        if isinstance(layers, pd.DataFrame):
            rows = layers
            if "maps" in rows.columns:
                rows = rows[rows["maps"].notna()]
            rows = rows.drop_duplicates("path")
            paths = [str(p) for p in rows["path"]]
            labels = [
                f"{p} ({int(r['maps'])} maps, {r['type']})" if "type" in rows.columns else p
                for p, (_, r) in zip(paths, rows.iterrows())
            ]
        else:
            paths = [str(p) for p in layers]
            shown = layer_names(paths)
            labels = [shown[p] if shown[p] == p else f"{shown[p]} ({p})" for p in paths]
        if not paths:
            raise ValueError("no layers to choose from (the table has no layer with maps)")
        self.paths = paths
        self.multiple = multiple
        options = list(zip(labels, paths))
        self._all_options = options
        if multiple:
            self.widget = ipw.SelectMultiple(
                options=options, description=description, rows=min(8, len(paths))
            )
        else:
            self.widget = ipw.Dropdown(options=options, description=description)
        if value is not None:
            self.value = value

    @classmethod
    def from_model(cls, model: Any, example: Any, **kwargs: Any) -> LayerPicker:
        """Picker over the layers of ``model`` (catalogued by ``list_layers``)."""
        from ..inspect.layers import list_layers

        return cls(list_layers(model, example), **kwargs)

    @property
    def value(self) -> Any:
        """The chosen path (or tuple of paths with ``multiple=True``)."""
        return self.widget.value

    @value.setter
    def value(self, value: Any) -> None:
        wanted = [value] if isinstance(value, str) or not self.multiple else list(value)
        for v in wanted:
            if v not in self.paths:
                raise KeyError(unknown_name_message("layer", v, self.paths))
        self.widget.value = tuple(wanted) if self.multiple else wanted[0]

    def observe(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(new_value)`` whenever the choice changes."""
        self.widget.observe(lambda change: callback(change["new"]), names="value")

    def offer(self, paths: Sequence[str]) -> None:
        """Offer only ``paths`` (a subset of :attr:`paths`, in this order); the choice is kept
        when still offered, else the first offered path is chosen."""
        labels = dict((v, k) for k, v in self._all_options)
        wanted = [str(p) for p in paths if str(p) in labels]
        if not wanted:
            raise ValueError(f"none of {list(paths)} is among the layers {self.paths}")
        current = self.widget.value
        self.widget.options = [(labels[p], p) for p in wanted]
        if self.multiple:
            self.widget.value = tuple(p for p in (current or ()) if p in wanted)
        elif current in wanted:
            self.widget.value = current

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):  # what a viewer without the live kernel shows instead
            bundle["text/plain"] = f"LayerPicker: {self.value!r}"
        return bundle
