# The public face of cnnexplore_nb, read by lazy_loader at import time and by type checkers.
from . import (
    data,
    experiments,
    inspect,
    lecture,
    models,
    notebook,
    plots,
    prune,
    similarity,
    studies,
    training,
    transfer,
    widgets,
)
from ._checks import seed_everything
from .inspect.extract import ActivationRecorder, extract_activations, kernels
from .inspect.layers import list_layers, resolve_layers, select_layers
from .inspect.receptive import effective_receptive_field, receptive_fields
from .inspect.taps import feature_layers
from .models._registry import create_model, list_models, register_model
from .similarity.measures import layer_cka, similarity_matrix
from .similarity.moments import Moments
from .similarity.tables import CorrelationTables, correlation_tables
from .similarity.tables_io import load_tables, save_tables
from .training import metrics

__version__: str

__all__ = [
    "ActivationRecorder",
    "CorrelationTables",
    "Moments",
    "correlation_tables",
    "create_model",
    "data",
    "effective_receptive_field",
    "experiments",
    "extract_activations",
    "feature_layers",
    "inspect",
    "kernels",
    "layer_cka",
    "lecture",
    "list_layers",
    "list_models",
    "load_tables",
    "metrics",
    "models",
    "notebook",
    "plots",
    "prune",
    "receptive_fields",
    "register_model",
    "resolve_layers",
    "save_tables",
    "seed_everything",
    "select_layers",
    "similarity",
    "similarity_matrix",
    "studies",
    "training",
    "transfer",
    "widgets",
]
