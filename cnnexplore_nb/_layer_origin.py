"""Which layer paths belong to a network the toolkit did not define.

Figures give the toolkit's own networks readable layer names (VGG-9's ``features.8`` is
"conv 3"). The same path in a user's network means something else (``features.8`` of a
VGG-16 is its fourth ReLU), so the functions that see a model (:func:`extract_activations`,
:func:`list_layers`, :func:`feature_layers`) note whose paths they are, and the display
names leave a user network's paths as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

_USER_PATHS: set[str] = set()


def is_builtin_model(model: nn.Module) -> bool:
    """True for a network defined in this package (its class lives in ``cnnexplore_nb``)."""
    return type(model).__module__.split(".")[0] == "cnnexplore_nb"


def note_model_paths(model: nn.Module, paths: Iterable[str] | None = None) -> None:
    """Record ``paths`` (default: every module path of ``model``) as the model's: a user
    network's paths keep their names in figures; a built-in network's get readable ones."""
    paths = {p for p, _ in model.named_modules() if p} if paths is None else set(paths)
    if is_builtin_model(model):
        _USER_PATHS.difference_update(paths)
    else:
        _USER_PATHS.update(paths)


def is_user_path(path: str) -> bool:
    """Whether ``path`` was last seen in a network the toolkit did not define."""
    return str(path).split("#")[0] in _USER_PATHS
