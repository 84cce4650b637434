"""All-or-nothing folders for the fetcher: staging beside the cache, safe archive extraction.

A dataset folder (or a downloaded file) appears under its final name only when it is
complete: it is written into a hidden staging folder beside it
(``.cnnx-partial-<name>-<host>-<pid>-<random>``), which is renamed into place at the end
(one ``os.rename`` on the same file system) or removed on any error, ``KeyboardInterrupt``
included. Downloads go there too, so pooch's temporary file of a download lives inside it.
A process killed outright leaves its staging folder behind; it is never read, and the next
fetch on the same host removes it once its process is gone.

An archive that cannot be extracted, because a member would land outside the folder (an
absolute path, ``..``, a link out of it, a device) or because it is truncated or corrupt,
is an :class:`ArchiveError` naming the dataset, the archive and the member.
"""

from __future__ import annotations

import contextlib
import gzip
import lzma
import os
import shutil
import socket
import tarfile
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ArchiveError", "extract_archive", "remove_stale", "staging"]

PREFIX = ".cnnx-partial-"
# what a truncated or corrupt compressed stream raises while it is read
_CORRUPT = (EOFError, tarfile.ReadError, zipfile.BadZipFile, zlib.error, gzip.BadGzipFile,
            lzma.LZMAError)  # fmt: skip


# tarfile's "data" filter refusals (Python >= 3.10.12 / 3.11.4; none before)
_FILTER_ERRORS = getattr(tarfile, "FilterError", ())


class ArchiveError(ValueError):
    """An archive is unsafe (a member outside its folder) or truncated; nothing is kept."""


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
        Name of the folder or file to publish. The caller fills ``<staging>/<target>``.

    Raises
    ------
    FileNotFoundError
        If the caller did not create ``<staging>/<target>`` (the message lists what it made).

    Notes
    -----
    If another process published a folder ``home/target`` first, ours is discarded and
    theirs kept; a file replaces theirs (both were checked against the same hash).
    """
    home.mkdir(parents=True, exist_ok=True)
    remove_stale(home)
    stage = home / f"{PREFIX}{target}-{_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    try:
        yield stage
        built = stage / target
        if not built.exists():
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


def _check_tar_member(member: tarfile.TarInfo, what: str) -> None:
    """Refuse absolute names, ``..``, and links, devices (Python without tarfile filters)."""
    name = Path(member.name)
    if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
        raise ArchiveError(_refused(what, member.name, "is not a plain file or folder inside it"))


def _refused(what: str, name: str, why: str) -> str:
    return (
        f"refusing to extract {what}: its member {name!r} {why}. Only plain files and "
        "folders inside the archive are allowed; nothing was written outside the dataset "
        "folder and nothing extracted was kept. The archive is left in place for inspection: "
        "do not extract it by hand; delete it."
    )


def _why(exc: tarfile.FilterError) -> str:
    """What is wrong with the member a tarfile filter refused, in a few words."""
    info = exc.tarinfo
    link = getattr(info, "linkname", "") if info is not None else ""
    return {
        tarfile.AbsolutePathError: "has an absolute path",
        tarfile.OutsideDestinationError: "would be written outside the dataset folder",
        tarfile.SpecialFileError: "is a device or another special file",
        tarfile.AbsoluteLinkError: f"is a link to the absolute path {link!r}",
        tarfile.LinkOutsideDestinationError: f"is a link pointing outside the folder ({link!r})",
    }.get(type(exc), f"is not allowed ({exc})")


def extract_archive(
    archive: Path, dest: Path, *, progress: bool = False, label: str | None = None
) -> None:
    """Extract a ``.tar.gz``/``.tar``/``.zip`` into ``dest`` member by member, safely.

    Tar members go through the ``"data"`` filter where Python has it (no absolute paths,
    no ``..``, no links out of ``dest``, no devices); zip member names are sanitised by
    :mod:`zipfile`. The format is read from the file's content, not its name.

    Parameters
    ----------
    archive : Path
    dest : Path
        Folder to extract into (a staging folder: the caller discards it on an error).
    progress : bool
        Show a tqdm bar over the members.
    label : str, optional
        Name of the dataset, for the messages.

    Raises
    ------
    ArchiveError
        (a ``ValueError``) If the file is neither a tar nor a zip archive, holds an unsafe
        member (refused before anything of it is written), or is truncated or corrupt; the
        message names the dataset, the archive and the member.
    """
    from tqdm.auto import tqdm

    what = f"{label!r} from {str(archive)!r}" if label else repr(str(archive))
    bar = tqdm(desc=f"extract {archive.name}", unit=" files", disable=not progress)
    current = last = None  # the member being extracted, the last one extracted
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    current = info.filename
                    zf.extract(info, dest)
                    current, last = None, info.filename
                    bar.update()
            return
        if not tarfile.is_tarfile(archive):
            with open(archive, "rb") as fh:
                head = fh.read(8)
            raise ArchiveError(
                f"cannot extract {what}: it is neither a tar nor a zip archive (first bytes "
                f"{head!r}{'; a zip cut short' if head.startswith(b'PK') else ''}); delete it "
                "and fetch again"
            )
        filtered = hasattr(tarfile, "data_filter")
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                current = member.name
                if filtered:
                    tar.extract(member, dest, filter="data")
                else:  # pragma: no cover - Python < 3.10.12 / 3.11.4
                    _check_tar_member(member, what)
                    tar.extract(member, dest)
                current, last = None, member.name
                bar.update()
    except _FILTER_ERRORS as exc:
        name = exc.tarinfo.name if exc.tarinfo is not None else current
        raise ArchiveError(_refused(what, str(name), _why(exc))) from None
    except _CORRUPT as exc:
        where = (
            f"while extracting member {current!r}" if current
            else f"after member {last!r}" if last else "at its start"
        )  # fmt: skip
        raise ArchiveError(
            f"cannot extract {what}: the archive is truncated or corrupt ({where}: "
            f"{type(exc).__name__}: {exc}); nothing extracted was kept. Delete the archive "
            "and fetch again"
        ) from None
    finally:
        bar.close()
