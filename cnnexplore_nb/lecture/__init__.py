"""The lecture fundamentals (SPEC part C) as small functions on real tensors.

Convolution arithmetic, pooling, BatchNorm step by step, Sobel maps, matched filters
(:mod:`.fundamentals`), receptive-field growth (:mod:`.receptive`) and adversarial examples
(:mod:`.adversarial`). Used by notebook ``00_fundamentals``.
"""

from __future__ import annotations

from .adversarial import accuracy_vs_epsilon, digits_classifier, fgsm
from .fundamentals import (
    LECTURE_FILTER,
    LECTURE_PATCH,
    MATCHED_FILTER_S,
    MATCHED_FILTER_W,
    MIN_POOL_EXAMPLE,
    SOBEL_X,
    batchnorm_steps,
    conv_at,
    conv_param_table,
    conv_params,
    effective_kernel,
    normalized_correlation,
    output_size,
    pool2d,
    sliding_correlation,
    sobel_maps,
)
from .receptive import effective_side, receptive_growth

__all__ = [
    "LECTURE_FILTER",
    "LECTURE_PATCH",
    "MATCHED_FILTER_S",
    "MATCHED_FILTER_W",
    "MIN_POOL_EXAMPLE",
    "SOBEL_X",
    "accuracy_vs_epsilon",
    "batchnorm_steps",
    "conv_at",
    "conv_param_table",
    "conv_params",
    "digits_classifier",
    "effective_kernel",
    "effective_side",
    "fgsm",
    "normalized_correlation",
    "output_size",
    "pool2d",
    "receptive_growth",
    "sliding_correlation",
    "sobel_maps",
]
