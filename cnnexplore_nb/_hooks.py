"""The one place where hooks go on a model and come off again.

Every part of the package that looks inside a forward pass (activation recording, layer
tracing, receptive fields, FLOP counting, mean ablation, feature taps for transfer) uses
:class:`Hooks`: hooks are registered inside a ``with`` block, and leaving the block (normally
or by an exception) removes every one of them and restores the model's train/eval mode, so a
failed forward never leaves a hook or a changed mode behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import nn

__all__ = ["Hooks", "check_module", "first_tensor", "model_device", "model_dtype"]

Mode = Literal["eval", "train"] | None


def check_module(model: Any, name: str = "model") -> nn.Module:
    """Return ``model`` if it is an ``nn.Module``, else raise ``TypeError`` naming the type."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    return model


def first_tensor(obj: Any) -> torch.Tensor | None:
    """The first tensor found depth-first in a tensor / tuple / list / dict (None if none)."""
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (tuple, list)):
        for item in obj:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (CPU for a model without parameters)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype:
    """Floating dtype of the model's first parameter (float32 without one)."""
    param = next(model.parameters(), None)
    if param is None or not param.is_floating_point():
        return torch.float32
    return param.dtype


class Hooks:
    """Hooks on the modules of one model, removed (and the mode restored) on exit.

    Parameters
    ----------
    model : nn.Module
    mode : {"eval", "train", None}
        Mode the model is put in while the block runs (None: left as it is); the model's
        own mode is restored on exit in every case.
    grad : bool
        ``False`` runs the block under ``torch.no_grad()``.

    Notes
    -----
    Hooks can only be registered while the block is active (:meth:`forward`, :meth:`pre`
    raise otherwise), so none can outlive it. Without any hook, ``Hooks`` is simply a
    mode guard: ``with Hooks(model, mode="eval", grad=False): model(x)``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    >>> seen = []
    >>> with Hooks(model, mode="eval", grad=False) as hooks:
    ...     _ = hooks.forward("0", lambda m, args, out: seen.append(tuple(out.shape)))
    ...     _ = model(torch.zeros(1, 1, 5, 5))
    >>> seen, model.training, len(model[0]._forward_hooks)
    ([(1, 2, 3, 3)], True, 0)
    """

    def __init__(self, model: nn.Module, *, mode: Mode = None, grad: bool = True) -> None:
        self.model = check_module(model)
        if mode not in ("eval", "train", None):
            raise ValueError(f"mode must be 'eval', 'train' or None, got {mode!r}")
        self.mode, self.grad = mode, bool(grad)
        self._handles: list[Any] = []
        self._stack: contextlib.ExitStack | None = None
        self._modules: dict[str, nn.Module] | None = None

    @property
    def active(self) -> bool:
        """True inside the ``with`` block."""
        return self._stack is not None

    def module(self, path: str) -> nn.Module:
        """The submodule at ``named_modules()`` path ``path`` ("" is the model itself)."""
        if self._modules is None:
            self._modules = dict(self.model.named_modules())
        if path not in self._modules:
            from ._checks import unknown_name_message

            raise KeyError(unknown_name_message("layer", path, [p for p in self._modules if p]))
        return self._modules[path]

    def _target(self, module: nn.Module | str) -> nn.Module:
        if not self.active:
            raise RuntimeError("register hooks inside the `with Hooks(...)` block, not before")
        return self.module(module) if isinstance(module, str) else module

    def forward(self, module: nn.Module | str, fn: Callable[..., Any]) -> Hooks:
        """Register ``fn(module, args, output)`` as a forward hook of ``module`` (or its path)."""
        self._handles.append(self._target(module).register_forward_hook(fn))
        return self

    def pre(self, module: nn.Module | str, fn: Callable[..., Any]) -> Hooks:
        """Register ``fn(module, args)`` as a forward pre-hook of ``module`` (or its path)."""
        self._handles.append(self._target(module).register_forward_pre_hook(fn))
        return self

    def remove(self) -> None:
        """Remove every hook registered so far (idempotent)."""
        while self._handles:
            self._handles.pop().remove()

    def __enter__(self) -> Hooks:
        if self.active:
            raise RuntimeError("these Hooks are already active")
        stack = contextlib.ExitStack()
        stack.callback(self.model.train, self.model.training)  # runs last
        stack.callback(self.remove)
        if not self.grad:
            stack.enter_context(torch.no_grad())
        if self.mode is not None:
            self.model.train(self.mode == "train")
        self._stack = stack
        return self

    def __exit__(self, *exc: Any) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()
