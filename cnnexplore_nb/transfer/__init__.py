"""L2T-ww / L2T-www transfer (what, where and which to transfer) and its baselines.

``run(method, source=..., target=..., data=..., epochs=..., seed=...)`` trains a target
network with one of ``scratch``, ``ufm``, ``l2t_ww``, ``l2t_www``, ``attention``.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "run": "train",
    "build_step": "train",
    "evaluate": "train",
    "DEFAULTS": "train",
    "TransferStep": "l2t",
    "METHODS": "l2t",
    "unrolled_sgd": "l2t",
    "sgd_momentum_step": "l2t",
    "MetaNetworks": "meta",
    "parse_pairs": "matching",
    "default_pairs": "matching",
    "weighted_matching_loss": "matching",
    "pair_loss": "matching",
    "attention_loss": "matching",
    "tap_features": "matching",
    "load_l2tww_source": "checkpoint",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
