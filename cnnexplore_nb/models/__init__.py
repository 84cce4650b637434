"""Built-in models: the thesis CNN-N family, U-Net, CIFAR ResNet-32 and VGG-9 (BN)."""

from __future__ import annotations

from ._registry import create_model, feature_layers, list_models, register_model

__all__ = ["create_model", "feature_layers", "list_models", "register_model"]
