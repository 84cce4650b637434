"""Atomic file writes and safe checkpoints.

A write goes to a temporary file in the destination directory and is moved into place
with :func:`os.replace`, so a reader (or a crash) never sees a half-written file. The file
gets the permissions a plain ``open`` would give (``0o666`` less the umask), not
:func:`tempfile.mkstemp`'s owner-only ``0o600``.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "CheckpointError",
    "atomic_path",
    "check_writable_dir",
    "file_sha256",
    "load_checkpoint",
    "new_temp_file",
    "save_checkpoint",
]


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def new_temp_file(directory: str | os.PathLike, prefix: str, suffix: str = ".tmp") -> Path:
    """Create a new empty file ``<prefix><random><suffix>`` in ``directory``; its path.

    Like :func:`tempfile.mkstemp` (created exclusively, never an existing file), but with
    the permissions ``open`` gives (``0o666`` less the umask), so that a file moved into
    place from it is readable as any other file the user writes.
    """
    for _ in range(100):
        path = Path(directory) / f"{prefix}{uuid.uuid4().hex[:10]}{suffix}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise FileExistsError(f"no free temporary name {prefix}*{suffix} in {str(directory)!r}")


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
    tmp = new_temp_file(target.parent, f".{target.name}.")
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


# torch.save's legacy format pickles this magic number first; its zip format holds data.pkl
_TORCH_MAGIC = b"l\xfc\x9cF\xf9 j\xa8P\x19"
_SIGNATURES = [  # (leading bytes, what the file is)
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x93NUMPY", "a numpy array (.npy; read it with numpy.load)"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (e.g. a Keras .h5 model)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"%PDF", "a PDF document"),
]


def _not_a_checkpoint(path: Path) -> str | None:
    """What ``path`` is if its first bytes show it is not a torch checkpoint, else None."""
    import zipfile

    with open(path, "rb") as fh:
        head = fh.read(64)
    if not head:
        return "an empty file (0 bytes)"
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            return what
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError):
            return None  # a cut zip: torch.load says it is truncated
        if any(n.endswith("data.pkl") for n in names):
            return None
        if names and all(n.endswith(".npy") for n in names):
            return "a numpy archive (.npz; read it with numpy.load)"
        return f"a zip archive without torch's data.pkl (it holds {names[:3]})"
    if head.startswith(b"\x80"):  # a pickle: torch's legacy format has the magic number first
        return None if _TORCH_MAGIC in head else "a Python pickle not written by torch.save"
    n = int.from_bytes(head[:8], "little")
    if head[8:10] == b'{"' and 0 < n < 100_000_000:
        return "a safetensors file (read it with safetensors.torch.load_file)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"unrecognised binary data (first bytes {head[:8]!r})"
    if text.isprintable() or all(c.isprintable() or c.isspace() for c in text):
        return f"a text file (it starts {text[:30]!r})"
    return f"unrecognised binary data (first bytes {head[:8]!r})"


def load_checkpoint(path: str | os.PathLike, *, map_location: str = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    IsADirectoryError
        If ``path`` is a folder (the message lists the checkpoints in it).
    CheckpointError
        If the file is not a torch checkpoint (the message says what it is instead: an
        image, a numpy array, text...), is truncated or corrupt, or holds objects that are
        unsafe to unpickle; the message names the file and why.
    """
    import pickle

    import torch

    path = Path(path)
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.suffix in (".pt", ".pth", ".tar"))
        raise IsADirectoryError(
            f"checkpoint {str(path)!r} is a directory, not a file written by torch.save"
            + (f"; it holds {', '.join(inside[:5])}" if inside else "")
        )
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    what = _not_a_checkpoint(path)
    if what is not None:
        raise CheckpointError(
            f"cannot read {str(path)!r}: it is not a torch checkpoint but {what}; expected a "
            "file written by torch.save (e.g. by save_checkpoint or a training run)"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if found is None:  # not an object torch refused: a corrupt pickle stream
            raise CheckpointError(
                f"cannot read checkpoint {str(path)!r}: it is corrupt or not a torch checkpoint"
                f" ({_first_line(exc)})"
            ) from None
        raise CheckpointError(
            f"refusing to load {str(path)!r}: it holds Python objects other than tensors, "
            f"numbers, strings, lists and dicts ({found.group(1)}), and unpickling them could "
            "run code (weights_only=True). Load it with torch.load(..., weights_only=False) "
            "only if you trust where it came from."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError) as exc:
        raise CheckpointError(
            f"cannot read checkpoint {str(path)!r}: it is truncated or not a torch checkpoint "
            f"({type(exc).__name__}: {_first_line(exc)})"
        ) from None


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return next((ln for ln in lines if "error:" in ln.lower()), lines[0] if lines else "")
