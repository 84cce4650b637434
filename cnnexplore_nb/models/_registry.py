"""Model registry: ``@register_model``, ``create_model(name, **kw)``, ``list_models(pattern)``.

Every registered model is an ``nn.Module`` carrying ``feature_info``: a list of dicts
``{"module": path, "num_chs": C, "reduction": r}`` naming the modules whose outputs are
its feature taps (by ``named_modules()`` path), so extraction and transfer never parse
module names.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from .._checks import unknown_name_message

__all__ = ["create_model", "feature_layers", "list_models", "register_model"]

_MODELS: dict[str, Callable[..., nn.Module]] = {}
F = TypeVar("F", bound=Callable[..., nn.Module])


def register_model(fn: F | None = None, *, name: str | None = None) -> Any:
    """Register a model factory under ``name`` (default: the function's name)."""

    def deco(f: F) -> F:
        key = name or f.__name__
        if key in _MODELS and _MODELS[key] is not f:
            raise ValueError(f"model name {key!r} is already registered")
        _MODELS[key] = f
        return f

    return deco(fn) if fn is not None else deco


def _load_builtin() -> None:
    # importing the modules runs their @register_model decorators
    from . import fcn  # noqa: F401

    for mod in ("unet", "resnet_cifar", "vgg"):
        try:
            __import__(f"{__package__}.{mod}")
        except ModuleNotFoundError as exc:  # a family not written yet must not hide the others
            if exc.name != f"{__package__}.{mod}":
                raise


def list_models(pattern: str | None = None) -> list[str]:
    """Names of the registered models, sorted, optionally filtered by a glob ``pattern``.

    Examples
    --------
    >>> list_models("cnn*")
    ['cnn1', 'cnn10', 'cnn6']
    """
    _load_builtin()
    names = sorted(_MODELS)
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` with keyword options ``kwargs``."""
    _load_builtin()
    if name not in _MODELS:
        raise ValueError(unknown_name_message("model", name, sorted(_MODELS)))
    model = _MODELS[name](**kwargs)
    model.model_name = name
    return model


def feature_layers(model: nn.Module) -> list[str]:
    """Module paths of a registered model's feature taps (``model.feature_info``)."""
    info = getattr(model, "feature_info", None)
    if info is None:
        raise TypeError(
            f"{type(model).__name__} has no feature_info; pass layer paths explicitly "
            "(see list_layers(model, example))"
        )
    return [d["module"] for d in info]
