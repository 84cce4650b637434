"""Lazy re-exports for package ``__init__`` modules (PEP 562).

A package maps each public name to the submodule defining it; the submodule is imported on
first access only, so importing the package stays cheap.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for ``package`` exporting ``name -> submodule``."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            module = importlib.import_module(f".{exports[name]}", package)
            value = getattr(module, name)
            setattr(sys.modules[package], name, value)  # cache: later lookups skip this hook
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
