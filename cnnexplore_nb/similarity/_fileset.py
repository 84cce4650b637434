"""A set of files in one folder replaced all or nothing (used by the saved tables).

New files are written to temporaries beside their targets (:func:`new_temp`, removed by
:func:`staging` unless moved); :func:`commit` keeps the files they replace as hard-linked
(or copied) ``.bak`` backups until every new file is in place, and puts the old ones back
if a move fails. A process killed in between leaves new and old files mixed, with the
backups beside them: :func:`rollback` restores the files a manifest (name -> sha256)
vouches for, and names the folder when it cannot write there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..io import file_sha256, new_temp_file

__all__ = ["commit", "fsync", "leftovers", "new_temp", "rollback", "sha256", "staging"]


def sha256(path: Path) -> str:
    return file_sha256(path)


def fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def leftovers(directory: Path) -> list[Path]:
    """Temporary and backup files of earlier, interrupted saves."""
    return [p for p in directory.glob(".*.cnnx-*") if p.is_file()]


@contextlib.contextmanager
def staging(directory: Path) -> Iterator[dict[str, Path]]:
    """Temporary files of one save (name -> path); removed on exit unless moved."""
    temps: dict[str, Path] = {}
    try:
        yield temps
    finally:
        for p in temps.values():
            p.unlink(missing_ok=True)


def new_temp(directory: Path, name: str, tag: str) -> Path:
    """A new temporary file for ``name`` (``.<name>.cnnx-<tag>-<random>.tmp``)."""
    return new_temp_file(directory, f".{name}.cnnx-{tag}-")


def commit(directory: Path, temps: dict[str, Path], tag: str) -> None:
    """Move every temp onto its name; on any failure put the old files back."""
    backups: dict[str, Path] = {}
    replaced: list[str] = []
    try:
        for name in temps:  # keep the old files (hard links: no copy) until the end
            target = directory / name
            if target.is_file():
                backup = directory / f".{name}.cnnx-{tag}.bak"
                try:
                    os.link(target, backup)
                except OSError:  # a file system without hard links: copy
                    shutil.copy2(target, backup)
                backups[name] = backup
        for name, tmp in temps.items():
            os.replace(tmp, directory / name)
            replaced.append(name)
    except BaseException:
        for name in replaced:  # roll back what was already replaced
            if name in backups:
                os.replace(backups.pop(name), directory / name)
            else:
                (directory / name).unlink(missing_ok=True)
        for p in backups.values():
            p.unlink(missing_ok=True)
        raise
    for p in backups.values():
        p.unlink(missing_ok=True)


def rollback(directory: Path, hashes: Mapping[str, str]) -> bool:
    """Put back the files of an interrupted save from their backups; True if any was.

    Parameters
    ----------
    directory : Path
    hashes : mapping of str to str
        File name -> sha256 of the committed set (its manifest).

    Raises
    ------
    PermissionError
        If backups must be put back but the folder cannot be written (read-only); the
        message names the folder and what to do. Nothing is changed then.
    """
    pending = []  # (backup, file) pairs
    for name, digest in hashes.items():
        path = directory / name
        if path.is_file() and sha256(path) == digest:
            continue
        for backup in directory.glob(f".{name}.cnnx-*.bak"):
            if sha256(backup) == digest:
                pending.append((backup, path))
                break
    if pending and not os.access(directory, os.W_OK | os.X_OK):
        _cannot_restore(directory, pending, os.strerror(errno.EACCES))
    for backup, path in pending:
        try:
            os.replace(backup, path)
        except OSError as exc:  # e.g. a read-only file system, which os.access may miss
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            _cannot_restore(directory, pending, exc.strerror or str(exc))
    return bool(pending)


def _cannot_restore(directory: Path, pending: list[tuple[Path, Path]], reason: str) -> None:
    names = ", ".join(path.name for _, path in pending[:3])
    raise PermissionError(
        f"{str(directory)!r} holds a save that was interrupted: {len(pending)} file(s) of the "
        f"saved set ({names}) were replaced and their previous versions are kept beside them "
        f"as backups, but they cannot be put back because the folder cannot be written "
        f"({reason}). Make the folder writable and load again (the previous tables are then "
        "restored), or copy the folder, hidden files included, somewhere writable and load "
        "the copy"
    ) from None
