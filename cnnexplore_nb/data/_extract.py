"""All-or-nothing folders for the fetcher: staging beside the cache, safe archive extraction.

A dataset folder appears under its final name only when it is complete: files are written
into a hidden staging folder beside it (``.cnnx-partial-<name>-<host>-<pid>-<random>``),
which is renamed into place at the end (one ``os.rename`` on the same file system) or
removed on any error, ``KeyboardInterrupt`` included. A process killed outright leaves its
staging folder behind; it is never read, and the next fetch on the same host removes it
once its process is gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tarfile
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["extract_archive", "remove_stale", "staging"]

PREFIX = ".cnnx-partial-"


def _host() -> str:
    return socket.gethostname().replace("-", "_") or "host"


def _alive(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale(home: Path) -> list[Path]:
    """Remove staging folders under ``home`` left by dead processes of this host."""
    removed: list[Path] = []
    if not home.is_dir():
        return removed
    for path in home.glob(PREFIX + "*"):
        parts = path.name[len(PREFIX) :].rsplit("-", 3)
        if len(parts) != 4 or parts[1] != _host() or not parts[2].isdigit():
            continue
        if not _alive(int(parts[2])):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def staging(home: Path, target: str) -> Iterator[Path]:
    """Yield an empty staging folder; on success move ``<staging>/<target>`` to ``home/target``.

    Parameters
    ----------
    home : Path
        The cache folder (created if missing).
    target : str
        Name of the folder to publish. The caller fills ``<staging>/<target>``.

    Raises
    ------
    FileNotFoundError
        If the caller did not create ``<staging>/<target>`` (the message lists what it made).

    Notes
    -----
    If another process published ``home/target`` first, ours is discarded and theirs kept.
    """
    home.mkdir(parents=True, exist_ok=True)
    remove_stale(home)
    stage = home / f"{PREFIX}{target}-{_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    try:
        yield stage
        built = stage / target
        if not built.is_dir():
            made = sorted(p.name for p in stage.iterdir())[:10]
            raise FileNotFoundError(
                f"expected the folder {target!r} at the top of the data, found {made or 'nothing'}"
            )
        try:
            os.rename(built, home / target)
        except OSError:
            if not (home / target).is_dir():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _check_tar_member(member: tarfile.TarInfo, archive: Path) -> None:
    """Refuse absolute names, ``..``, and links, devices (Python without tarfile filters)."""
    name = Path(member.name)
    if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
        raise ValueError(
            f"refusing to extract {member.name!r} from {str(archive)!r}: only plain files and "
            "folders inside the archive are allowed"
        )


def extract_archive(archive: Path, dest: Path, *, progress: bool = False) -> None:
    """Extract a ``.tar.gz``/``.tar``/``.zip`` into ``dest`` member by member, safely.

    Tar members go through the ``"data"`` filter where Python has it (no absolute paths,
    no ``..``, no links out of ``dest``, no devices); zip member names are sanitised by
    :mod:`zipfile`. The format is read from the file's content, not its name.

    Raises
    ------
    ValueError
        If the file is neither a tar nor a zip archive, or holds an unsafe member.
    """
    from tqdm.auto import tqdm

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for member in tqdm(members, desc=f"extract {archive.name}", disable=not progress):
                zf.extract(member, dest)
        return
    if not tarfile.is_tarfile(archive):
        raise ValueError(
            f"{str(archive)!r} is neither a tar nor a zip archive (first bytes "
            f"{archive.read_bytes()[:8]!r})"
        )
    filtered = hasattr(tarfile, "data_filter")
    with tarfile.open(archive, "r:*") as tar:
        bar = tqdm(desc=f"extract {archive.name}", unit=" files", disable=not progress)
        try:
            for member in tar:
                if filtered:
                    tar.extract(member, dest, filter="data")
                else:  # pragma: no cover - Python < 3.10.12 / 3.11.4
                    _check_tar_member(member, archive)
                    tar.extract(member, dest)
                bar.update()
        finally:
            bar.close()
