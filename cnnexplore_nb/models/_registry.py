"""Model registry: ``@register_model``, ``create_model(name, **kw)``, ``list_models(pattern)``.

Every registered model is an ``nn.Module`` carrying ``feature_info``: a list of dicts
``{"module": path, "num_chs": C, "reduction": r}`` naming the modules whose outputs are
its feature taps (by ``named_modules()`` path), so extraction and transfer never parse
module names. The registry imports no model family: ``cnnexplore_nb.models`` imports them,
and their ``@register_model`` decorators fill it.
"""

from __future__ import annotations

import fnmatch
import inspect
import typing
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


def _accepted_keywords(factory: Callable[..., nn.Module]) -> list[str] | None:
    """Keyword arguments the model class behind ``factory`` accepts (None if unknown)."""
    try:
        cls = typing.get_type_hints(factory).get("return")
        params = inspect.signature(cls.__init__ if isinstance(cls, type) else factory).parameters
    except Exception:  # noqa: BLE001 - unresolvable annotations: no check
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return [n for n, p in params.items() if n != "self" and p.kind is not p.VAR_POSITIONAL]


def _check_keywords(name: str, factory: Callable[..., nn.Module], kwargs: dict) -> None:
    accepted = _accepted_keywords(factory)
    if accepted is None:
        return
    for key in kwargs:
        if key not in accepted:
            raise TypeError(
                unknown_name_message(f"keyword argument of model {name!r}:", key, accepted)
            )


def list_models(pattern: str | None = None) -> list[str]:
    """Names of the registered models, sorted, optionally filtered by a glob ``pattern``.

    Examples
    --------
    >>> list_models("cnn*")
    ['cnn1', 'cnn10', 'cnn6']
    """
    names = sorted(_MODELS)
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` with keyword options ``kwargs``.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the models and the closest ones).
    TypeError
        For a keyword the model does not take (the message lists those it takes).
    """
    if name not in _MODELS:
        raise ValueError(unknown_name_message("model", name, sorted(_MODELS)))
    _check_keywords(name, _MODELS[name], kwargs)
    model = _MODELS[name](**kwargs)
    model.model_name = name
    return model


def feature_layers(model: nn.Module) -> list[str]:
    """Module paths of a registered model's feature taps (``model.feature_info``).

    Any other model: :func:`cnnexplore_nb.feature_layers` ``(model, example)`` infers them.
    """
    info = getattr(model, "feature_info", None)
    if info is None:
        raise TypeError(
            f"{type(model).__name__} has no feature_info; pass layer paths explicitly "
            "(see list_layers(model, example)) or an example batch to infer its taps: "
            "cnnexplore_nb.feature_layers(model, example)"
        )
    return [d["module"] for d in info]
