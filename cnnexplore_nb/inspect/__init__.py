"""Looking into a model: its layers, their activations, their receptive fields.

``list_layers`` (catalogue from one dry forward), ``feature_layers`` (the feature taps of
any model: its ``feature_info``, or inferred from one forward), ``resolve_layers`` (path
checks with closest-match errors), ``select_layers`` (the thesis rule), ``ActivationRecorder`` and
``extract_activations`` (forward hooks, always removed), ``kernels`` (conv weights) and the
kernel views ``kernels_of`` / ``kernel_table`` (per output kernel or per input channel),
``receptive_fields`` (theoretical) and ``effective_receptive_field`` (gradient-based).
"""

from __future__ import annotations

from .extract import (
    ActivationRecorder,
    InPlaceOverwriteError,
    LayerNotExecutedError,
    extract_activations,
    kernels,
)
from .kernel_views import kernel_table, kernels_of
from .layers import layer_paths, list_layers, resolve_layers, select_layers
from .receptive import effective_receptive_field, erf_radius, receptive_fields
from .taps import feature_layers

__all__ = [
    "ActivationRecorder",
    "InPlaceOverwriteError",
    "LayerNotExecutedError",
    "effective_receptive_field",
    "erf_radius",
    "extract_activations",
    "feature_layers",
    "kernel_table",
    "kernels",
    "kernels_of",
    "layer_paths",
    "list_layers",
    "receptive_fields",
    "resolve_layers",
    "select_layers",
]
