"""L2T-ww / L2T-www transfer (what, where and which to transfer) and its baselines.

``run(method, source=..., target=..., data=..., epochs=..., seed=...)`` trains a target
network with one of ``scratch``, ``ufm``, ``l2t_ww``, ``l2t_www``, ``attention``;
``run_many(method, ..., seeds=[...])`` trains several seeds together as one stacked
computation and returns the same records.
"""

from __future__ import annotations

from .checkpoint import load_l2tww_source
from .cost import estimate_cost, measure_step_seconds
from .l2t import METHODS, TransferStep, sgd_momentum_step, unrolled_sgd
from .many import run_many
from .matching import (
    attention_loss,
    default_pairs,
    pair_loss,
    parse_pairs,
    tap_features,
    weighted_matching_loss,
)
from .meta import MetaNetworks
from .train import DEFAULTS, build_step, evaluate, run

__all__ = [
    "DEFAULTS",
    "METHODS",
    "MetaNetworks",
    "TransferStep",
    "attention_loss",
    "build_step",
    "default_pairs",
    "estimate_cost",
    "evaluate",
    "load_l2tww_source",
    "measure_step_seconds",
    "pair_loss",
    "parse_pairs",
    "run",
    "run_many",
    "sgd_momentum_step",
    "tap_features",
    "unrolled_sgd",
    "weighted_matching_loss",
]
