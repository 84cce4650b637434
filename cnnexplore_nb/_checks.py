"""Small shared helpers for argument checking, seeding and error messages.

Every public function of the package validates user input through these helpers so
that errors read the same way everywhere: what was expected, what was given, and
for names the valid choices with the closest match.
"""

from __future__ import annotations

import difflib
import math
import random
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "NonFiniteLossError",
    "as_rng",
    "check_keys",
    "check_real",
    "check_choice",
    "check_device",
    "check_finite",
    "check_fraction",
    "check_positive_int",
    "closest",
    "non_finite_loss_message",
    "seed_everything",
]


def closest(given: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` entries of ``choices`` closest to ``given`` (difflib ratio)."""
    choices = [str(c) for c in choices]
    lower = {c.lower(): c for c in choices}
    hits = [lower[h] for h in difflib.get_close_matches(str(given).lower(), list(lower), n=n,
                                                         cutoff=0.4)]  # fmt: skip
    if not hits:
        # fall back on prefix / substring matches, which difflib misses for short names
        hits = [c for c in choices if str(given) in c or c in str(given)][:n]
    return hits


def unknown_name_message(kind: str, given: Any, choices: Sequence[str], *, limit: int = 30) -> str:
    """Message for an unknown name: the name given, the closest valid ones and the choices."""
    choices = [str(c) for c in choices]
    near = closest(str(given), choices)
    msg = f"unknown {kind} {given!r}"
    if near:
        msg += f"; closest: {', '.join(repr(c) for c in near)}"
    shown = choices if len(choices) <= limit else choices[:limit] + ["..."]
    msg += f". Expected one of: {', '.join(shown)}"
    return msg


def check_choice(kind: str, given: Any, choices: Sequence[str]) -> str:
    """Return ``given`` if it is one of ``choices``, else raise ``ValueError`` listing them."""
    if given not in choices:
        raise ValueError(unknown_name_message(kind, given, choices))
    return given


def check_fraction(name: str, value: Any, *, low: float = 0.0, high: float = 1.0) -> float:
    """Check ``low <= value <= high`` for a real number and return it as float."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number in [{low}, {high}], got {value!r}") from None
    if not (low <= v <= high) or math.isnan(v):
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")
    return v


def check_real(name: str, value: Any) -> float:
    """Check that ``value`` is a finite real number and return it as float."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


def check_keys(kind: str, keys: str | Sequence[str] | None, mapping: Any) -> list[str]:
    """Return ``keys`` (None: all keys of ``mapping``; a string: one key) after checking that
    each is in ``mapping``; an unknown key raises ``KeyError`` listing the closest ones."""
    if keys is None:
        return list(mapping)
    if isinstance(keys, str):
        keys = [keys]
    for key in keys:
        if key not in mapping:
            raise KeyError(unknown_name_message(kind, key, list(mapping)))
    return list(keys)


def check_positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Check that ``value`` is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_device(device: Any, name: str = "device") -> Any:
    """``device`` as a ``torch.device``; anything torch cannot parse is a ValueError."""
    import torch

    if isinstance(device, torch.device):
        return device
    if isinstance(device, bool) or not isinstance(device, (str, int)):
        raise TypeError(
            f"{name} must be a string such as 'cpu' or 'cuda:0', a CUDA index or a "
            f"torch.device, got {type(device).__name__} {device!r}"
        )
    try:
        return torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(
            f"{name} must name a torch device such as 'cpu', 'cuda', 'cuda:1' or 'mps', "
            f"got {device!r}"
        ) from None


def resolve_device(device: Any, name: str = "device") -> Any:
    """``device`` as an available ``torch.device``; ``None`` or ``"auto"``: CUDA if present.

    A CUDA device on a machine (or torch build) without CUDA is a ValueError up front,
    instead of torch's assertion deep inside the first transfer of a tensor.
    """
    import torch

    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = check_device(device, name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"{name} {str(dev)!r} asked for, but CUDA is not available here (torch "
            f"{torch.__version__}); use 'cpu', or 'auto' to take CUDA only where present"
        )
    return dev


def check_finite(name: str, array: Any) -> None:
    """Raise ``ValueError`` if a numpy array or torch tensor holds NaN or Inf."""
    import torch

    if isinstance(array, torch.Tensor):
        bad = int((~torch.isfinite(array)).sum()) if array.is_floating_point() else 0
    else:
        arr = np.asarray(array)
        bad = int((~np.isfinite(arr)).sum()) if np.issubdtype(arr.dtype, np.floating) else 0
    if bad:
        raise ValueError(f"{name} must be finite, got {bad} NaN/Inf value(s)")


def as_rng(rng: int | np.random.Generator | None) -> np.random.Generator:
    """Normalise ``rng`` (None, int seed or Generator) to a numpy Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be None, an int seed or a numpy Generator, got {type(rng).__name__}")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) from one integer."""
    import torch

    seed = check_positive_int("seed", seed, minimum=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeding the legacy global state on purpose
    torch.manual_seed(seed)


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN/Inf loss or weights (the message names epoch, batch, items)."""


def non_finite_loss_message(
    loss: Any,
    epoch: int,
    batch: int,
    x: Any,
    *,
    items: Sequence[int] | None = None,
    what: str = "training loss",
) -> str:
    """Message for a NaN/Inf loss: where it happened and whether the data are at fault.

    Parameters
    ----------
    loss : float or Tensor
        The offending value.
    epoch, batch : int
        1-based epoch, 0-based batch within the epoch.
    x : Tensor of shape (B, ...)
        The inputs of that batch.
    items : sequence of int, optional
        Dataset index of each input of the batch (named in the message when known).
    what : str
        Name of the quantity (``"training loss"``, ``"meta-loss"``, ...).
    """
    import torch

    x = torch.as_tensor(x).detach()
    value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
    msg = f"{what} is {value} at epoch {epoch}, batch {batch}"
    bad = (
        (~torch.isfinite(x)).flatten(1).any(dim=1)
        if x.is_floating_point() and x.ndim
        else torch.zeros(0, dtype=torch.bool)
    )
    if not bool(bad.any()):
        return (
            f"{msg}: the inputs of that batch are finite, so the optimisation diverged; "
            "lower the learning rate"
        )
    pos = torch.nonzero(bad).flatten().tolist()
    where = f"items {pos} of the batch"
    if items is not None:
        where += f" (dataset items {[int(items[i]) for i in pos]})"
    return (
        f"{msg}: the inputs hold NaN/Inf values in {where}; clean the data "
        "(e.g. numpy.nan_to_num) or drop those items"
    )
