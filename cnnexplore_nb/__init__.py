"""cnnexplore_nb: look inside convolutional networks from a notebook.

The core verbs are importable from the package root; ``cnnexplore_nb.plots`` and
``cnnexplore_nb.widgets`` (which pull in HoloViews, Bokeh and ipywidgets) are imported
explicitly, so ``import cnnexplore_nb`` stays light.
"""

from __future__ import annotations

from ._lazy import lazy_exports

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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
