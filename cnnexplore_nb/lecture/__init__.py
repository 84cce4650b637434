"""The lecture fundamentals (SPEC part C) as small functions on real tensors.

Convolution arithmetic, pooling, BatchNorm step by step, Sobel maps, matched filters
(:mod:`.fundamentals`), convolution over several input channels worked by hand
(:mod:`.channels`), the classic architectures with their parameters and receptive fields
(:mod:`.architectures`), receptive-field growth (:mod:`.receptive`) and adversarial examples
(:mod:`.adversarial`). Used by notebook ``00_fundamentals``.
"""

from __future__ import annotations

from .adversarial import accuracy_vs_epsilon, digits_classifier, fgsm
from .architectures import SPECS, architecture_table, classic_architectures
from .channels import RGB_BIAS, RGB_KERNEL, RGB_PATCH, channel_sums, conv_multichannel
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
    "RGB_BIAS",
    "RGB_KERNEL",
    "RGB_PATCH",
    "SOBEL_X",
    "SPECS",
    "accuracy_vs_epsilon",
    "architecture_table",
    "batchnorm_steps",
    "channel_sums",
    "classic_architectures",
    "conv_at",
    "conv_param_table",
    "conv_multichannel",
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
