"""Fetch the documents' real datasets and files on first use, into one cache, pinned by hash.

``fetch(name)`` returns the local path of a registered dataset (its extracted folder) or
file, downloading it with :mod:`pooch` only when it is missing. The registry is
:data:`DATASETS` (see :func:`list_datasets`): CIFAR-10, CIFAR-100, STL-10, Tiny ImageNet,
VessMAP and the L2T-ww reference source network.

Where
    ``root`` if given, else the environment variable ``CNNX_DATA``, else
    ``pooch.os_cache("cnnexplore_nb")`` (``~/.cache/cnnexplore_nb`` on Linux). A folder you
    already have (``DATA_DIR``) holding e.g. ``cifar-10-batches-py/`` is used as it is.
    A ``root`` that is a file, or a folder that cannot be written, is an error naming it
    before any download.
Offline
    ``CNNX_OFFLINE=1`` turns every download into :class:`FetchError`, as does an
    unreachable server; the message names the URL, the expected file and the folder to put
    it in by hand. Data already in place are used offline.
Integrity
    Archives and the source network are pinned by the publisher's md5 or a sha256; a
    download whose hash differs is deleted and raises :class:`IntegrityError`. A file found
    in place with a wrong hash raises too and is left for you to inspect. Downloads and
    extractions go into a hidden staging folder renamed into place when complete (see
    :mod:`._extract`), so an interrupted one leaves no half file or folder (a killed
    process's staging folder is removed by the next fetch); the archive is deleted once
    extracted. An archive holding a member that would land outside its folder (``..``, an
    absolute path or link, a device), or one that is truncated, is an :class:`ArchiveError`
    naming the dataset, the archive and the member; nothing of it is kept.
VessMAP (pinned per file)
    Its 304 files are fetched one by one from raw URLs that pin the git commit
    ``VESSMAP_COMMIT`` and each is checked against its sha256, shipped with the package
    (``data/VessMAP.sha256``, computed from that commit's git objects): a download that
    differs is deleted and raises :class:`IntegrityError`. The split lists are also checked
    by content (columns and the published ids of each split, in order). A ``VessMAP``
    folder found in place, fetched or put there by hand, is verified against the same pins
    (and the ``SHA256SUMS`` recorded at download) on every use: a changed or missing file
    raises :class:`IntegrityError` naming it. :func:`verify` does that check alone.
Command line: ``python -m cnnexplore_nb.data --list`` or ``python -m cnnexplore_nb.data cifar10
vessmap`` (see :mod:`cnnexplore_nb.data.__main__`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .._checks import unknown_name_message
from ..io import file_sha256
from ._download import (
    ENV_DATA,
    ENV_OFFLINE,
    FetchError,
    download,
    is_offline,
    norm_hash,
    unavailable,
)
from ._extract import ArchiveError, extract_archive, remove_stale, staging
from ._sources import DATASETS, VESSMAP_COMMIT, IntegrityError, Remote, read_sha256sums

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DATASETS",
    "ArchiveError",
    "ENV_DATA",
    "ENV_OFFLINE",
    "VESSMAP_COMMIT",
    "FetchError",
    "IntegrityError",
    "Remote",
    "data_home",
    "fetch",
    "fetch_all",
    "is_offline",
    "list_datasets",
    "locate",
    "verify",
]

MANIFEST = "SHA256SUMS"


def data_home(root: str | os.PathLike | None = None) -> Path:
    """The folder datasets are read from and fetched into (not created here).

    ``root`` if given, else ``$CNNX_DATA`` if set, else ``pooch.os_cache("cnnexplore_nb")``.
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_DATA, "").strip()
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("cnnexplore_nb"))


def _home_source(root: str | os.PathLike | None) -> str:
    if root is not None:
        return "the root given"
    return f"${ENV_DATA}" if os.environ.get(ENV_DATA, "").strip() else "the default cache"


def _check_not_a_file(entry: Remote, home: Path, source: str) -> None:
    """NotADirectoryError if ``home`` (or a folder above it) is a file."""
    for folder in (home, *home.parents):
        if folder.exists():
            if folder.is_dir():
                return
            where = "is a file" if folder == home else f"is under {str(folder)!r}, a file"
            raise NotADirectoryError(
                f"the data folder {str(home)!r} ({source}) {where}, not a folder: pass the "
                f"folder that holds {entry.target} (or should receive it) as root (--root on "
                f"the command line, or in ${ENV_DATA})"
            )


def _check_writable(entry: Remote, home: Path, source: str) -> None:
    """Create ``home`` if needed; PermissionError naming it if it cannot be written."""
    import tempfile

    try:
        home.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".cnnx-write-test-", dir=home)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:  # permission denied, a read-only file system
        raise PermissionError(
            f"cannot write into the data folder {str(home)!r} ({source}: {exc.strerror or exc}),"
            f" so {entry.name!r} cannot be downloaded or extracted there. Pass a writable "
            f"folder as root (--root on the command line, or in ${ENV_DATA}), or put "
            f"{entry.target} into {str(home)!r} by hand"
        ) from None


def _entry(name: str) -> Remote:
    if name not in DATASETS:
        raise KeyError(unknown_name_message("dataset", name, sorted(DATASETS)))
    return DATASETS[name]


def _file_hash(path: Path, known: str) -> str:
    alg, _, _ = known.rpartition(":")
    if (alg or "sha256") == "sha256":
        return f"sha256:{file_sha256(path)}"
    import pooch

    return f"{alg}:{pooch.file_hash(str(path), alg=alg)}"


def _check_in_place(path: Path, known: str) -> None:
    known = norm_hash(known)
    got = _file_hash(path, known)
    if got != known:
        raise IntegrityError(
            f"{str(path)!r} is in place but its hash differs: expected {known}, got {got}. "
            "It was not downloaded by this call, so it is left as is: delete or replace it."
        )


def _write_manifest(folder: Path, rels: Iterable[str]) -> None:
    lines = [f"{file_sha256(folder / rel)}  {rel}\n" for rel in sorted(rels)]
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text("".join(lines))
    os.replace(tmp, folder / MANIFEST)


def _verify_files(entry: Remote, folder: Path) -> None:
    """Check ``folder`` against its recorded manifest and the entry's pinned hashes."""
    expected = {}
    if (folder / MANIFEST).is_file():
        expected = {k: f"sha256:{v}" for k, v in read_sha256sums(folder / MANIFEST).items()}
    expected.update({k: norm_hash(v) for k, v in entry.files.items() if v})
    bad: dict[str, str] = {}
    for rel, known in sorted(expected.items()):
        path = folder / rel
        got = _file_hash(path, known) if path.is_file() else "missing"
        if got != known:
            bad[rel] = f"expected {known}, got {got}"
    if bad:
        names = list(bad)
        more = f" and {len(names) - 10} more" if len(names) > 10 else ""
        raise IntegrityError(
            f"{len(bad)} file(s) of {str(folder)!r} differ from the pinned hashes of "
            f"{entry.name!r} (or its {MANIFEST}): {', '.join(names[:10])}{more} "
            f"(first: {names[0]}: {bad[names[0]]}). Replace them with the files published "
            f"at {entry.url}, or delete the folder to fetch it again."
        )


def verify(name: str, folder: str | os.PathLike) -> Path:
    """Check a registered ``files`` dataset's folder against its pinned hashes.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS` of kind ``"files"`` (``"vessmap"``).
    folder : str or PathLike
        The dataset's folder (e.g. ``.../VessMAP``). Files the registry does not know
        (notes, a ``SHA256SUMS``) are ignored.

    Returns
    -------
    Path
        ``folder``, verified.

    Raises
    ------
    IntegrityError
        A pinned file is missing or its sha256 differs (the message names the files).
    """
    entry = _entry(name)
    if entry.kind != "files":
        raise ValueError(f"verify checks 'files' datasets; {name!r} is one {entry.kind}")
    folder = Path(folder)
    _verify_files(entry, folder)
    if entry.check is not None:
        entry.check(folder)
    return folder


def _in_place(entry: Remote, home: Path) -> Path | None:
    for path in (home / entry.target, home):
        if path.name != entry.target:
            continue
        if entry.kind == "file" and path.is_file():
            _check_in_place(path, entry.known_hash or "")
            return path
        if entry.kind != "file" and path.is_dir():
            if entry.kind == "files":
                _verify_files(entry, path)
            return path
    return None


def fetch(name: str, *, root: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Local path of a registered dataset or file, downloaded (and extracted) if missing.

    Parameters
    ----------
    name : {"cifar10", "cifar100", "stl10", "tiny_imagenet", "vessmap", "l2tww_source"}
        A key of :data:`DATASETS`.
    root : str or PathLike, optional
        Folder to look in and download into (see :func:`data_home`). Data already there
        (e.g. ``root/cifar-10-batches-py``, or ``root`` itself if it is that folder) are
        used without any download.
    progress : bool
        Show tqdm bars for the download and the extraction.

    Returns
    -------
    Path
        The extracted folder (``.../cifar-10-batches-py``, ``.../VessMAP``, ...) or, for
        ``"l2tww_source"``, the file ``.../l2tww_tinyimagenet_resnet32.pth.tar``.

    Raises
    ------
    KeyError
        Unknown name (the message lists the registered ones).
    NotADirectoryError
        The data folder is a file (or under one).
    PermissionError
        The data folder cannot be created or written.
    FetchError
        Missing and ``CNNX_OFFLINE=1``, or the server is unreachable or refuses.
    IntegrityError
        A download or a file in place differs from its pinned hash (or, for VessMAP, from
        the manifest recorded at first fetch, or the published split lists).
    ArchiveError
        The archive holds a member that would land outside its folder, or is truncated.

    Examples
    --------
    >>> folder = fetch("cifar10")  # doctest: +SKIP
    >>> folder.name  # doctest: +SKIP
    'cifar-10-batches-py'
    """
    entry = _entry(name)
    home = data_home(root)
    if home.is_dir():  # partial downloads and extractions of killed processes
        remove_stale(home)
    found = _in_place(entry, home)
    if found is not None:
        return found
    source = _home_source(root)
    _check_not_a_file(entry, home, source)
    archive = home / entry.filename
    # an archive placed by hand, or left by an interrupted extraction, is used as it is
    placed = entry.kind in ("tar.gz", "zip") and archive.is_file()
    if placed:
        _check_in_place(archive, entry.known_hash or "")
    elif is_offline():
        raise unavailable(entry, home, f"{ENV_OFFLINE}=1 is set")
    _check_writable(entry, home, source)
    if entry.kind == "files":
        return _fetch_files(entry, home, progress=progress)
    if not placed:
        with staging(home, entry.filename) as stage:  # pooch's temporary file goes there too
            download(entry, entry.url, stage / entry.filename, entry.known_hash, home,
                      progress=progress)  # fmt: skip
    if entry.kind == "file":
        return home / entry.target
    with staging(home, entry.target) as stage:
        extract_archive(archive, stage, progress=progress, label=entry.name)
    archive.unlink(missing_ok=True)  # the folder is what is kept
    return home / entry.target


def _fetch_files(entry: Remote, home: Path, *, progress: bool) -> Path:
    from tqdm.auto import tqdm

    with staging(home, entry.target) as stage:
        folder = stage / entry.target
        for rel, known in tqdm(entry.files.items(), desc=entry.name, disable=not progress):
            dest = folder / rel
            download(entry, entry.url + rel, dest, known, home, progress=False)
        if entry.check is not None:
            entry.check(folder)
        _write_manifest(folder, entry.files)
    return home / entry.target


def locate(name: str, *roots: str | os.PathLike | None) -> Path | None:
    """Where ``name`` already is, never downloading: the first of ``roots`` that holds it.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`.
    *roots : str, PathLike or None
        Folders to look in, in order; ``None`` stands for :func:`data_home` (the default
        when no root is given).

    Returns
    -------
    Path or None
        As :func:`fetch` would return it, or None if no root holds it. A file in place with
        a wrong hash raises :class:`IntegrityError` rather than being skipped.

    Examples
    --------
    >>> locate("l2tww_source", DATA_DIR, None, "../shared/data")  # doctest: +SKIP
    """
    entry = _entry(name)
    for root in roots or (None,):
        found = _in_place(entry, data_home(root))
        if found is not None:
            return found
    return None


def fetch_all(
    names: Sequence[str] | None = None,
    *,
    root: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """Fetch several registered names ahead of time (default: all); ``{name: path}``."""
    names = sorted(DATASETS) if names is None else list(names)
    for name in names:
        _entry(name)  # fail on a typo before downloading anything
    return {name: fetch(name, root=root, progress=progress) for name in names}


def list_datasets(*, root: str | os.PathLike | None = None) -> pd.DataFrame:
    """The registry as a table, one row per name.

    Returns
    -------
    DataFrame
        Columns ``name, description, kind, size_mb, target, present, path, url, hash,
        licence, citation``; ``present`` tells whether ``path`` (under :func:`data_home`)
        exists already.
    """
    import pandas as pd

    home = data_home(root)
    rows = []
    for e in DATASETS.values():
        path = home / e.target
        rows.append({
            "name": e.name, "description": e.description, "kind": e.kind,
            "size_mb": round(e.size / 1e6, 1), "target": e.target, "present": path.exists(),
            "path": str(path), "url": e.url,
            "hash": e.known_hash or f"per file ({len(e.files)} files)",
            "licence": e.licence, "citation": e.citation,
        })  # fmt: skip
    return pd.DataFrame(rows)
