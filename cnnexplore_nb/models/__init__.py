"""Built-in models: the thesis CNN-N family, U-Net, CIFAR ResNet-32 and VGG-9 (BN).

The registry (:mod:`._registry`) is a leaf; importing this package imports every family,
whose ``@register_model`` decorators fill it (as timm does).
"""

from __future__ import annotations

from . import fcn, resnet_cifar, unet, vgg  # noqa: F401  (registers the families)
from ._registry import create_model, feature_layers, list_models, register_model

__all__ = ["create_model", "feature_layers", "list_models", "register_model"]
