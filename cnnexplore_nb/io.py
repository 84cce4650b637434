"""Atomic file writes and safe checkpoints.

A write goes to a temporary file in the destination directory and is moved into place
with :func:`os.replace`, so a reader (or a crash) never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "CheckpointError",
    "atomic_path",
    "check_writable_dir",
    "load_checkpoint",
    "save_checkpoint",
]


class CheckpointError(ValueError):
    """A checkpoint file is truncated, corrupt or unsafe to load (the message names it)."""


def check_writable_dir(directory: str | os.PathLike, *, create: bool = True) -> Path:
    """Return ``directory`` as a Path after checking that files can be written there.

    Raises
    ------
    NotADirectoryError
        If the path exists and is not a directory.
    PermissionError
        If the directory cannot be created or written.
    """
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"expected a directory to write into, got a file: {str(path)!r}")
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"directory {str(path)!r} does not exist")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PermissionError(f"cannot create output directory {str(path)!r}: {exc}") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"output directory {str(path)!r} is not writable")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left untouched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "x.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (d / "x.txt").read_text()
    'hello'
    """
    target = Path(path)
    check_writable_dir(target.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # make the bytes durable before the rename
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Save a checkpoint (tensors, numbers, strings, lists, dicts) atomically with torch.save."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, *, map_location: str = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CheckpointError
        If the file is truncated or corrupt, or holds objects that are unsafe to unpickle;
        the message names the file and why.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"refusing to load {str(path)!r}: it holds Python objects other than tensors, "
            f"numbers, strings, lists and dicts, and unpickling them could run code "
            f"(weights_only=True; {str(exc).splitlines()[0]}). Load it with torch.load(..., "
            "weights_only=False) only if you trust where it came from."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"cannot read checkpoint {str(path)!r}: it is truncated or not a torch checkpoint "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
