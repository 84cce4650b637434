"""cnnexplore_nb: look inside convolutional networks from a notebook.

The core verbs are importable from the package root; ``cnnexplore_nb.plots`` and
``cnnexplore_nb.widgets`` (which pull in HoloViews, Bokeh and ipywidgets) are imported
explicitly, so ``import cnnexplore_nb`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> defining module; resolved lazily on first access
_EXPORTS = {
    "list_layers": "layers",
    "resolve_layers": "layers",
    "select_layers": "layers",
    "ActivationRecorder": "extract",
    "extract_activations": "extract",
    "kernels": "extract",
    "create_model": "models",
    "list_models": "models",
    "register_model": "models",
    "feature_layers": "models",
    "Moments": "moments",
    "similarity_matrix": "similarity",
    "correlation_tables": "tables",
    "CorrelationTables": "tables",
    "save_tables": "tables",
    "load_tables": "tables",
    "receptive_fields": "receptive",
    "effective_receptive_field": "receptive",
    "seed_everything": "_checks",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
