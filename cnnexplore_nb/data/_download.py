"""Downloads through pooch for the fetcher: the offline switch, one retrieve, its errors.

A leaf beside :mod:`._sources`: :mod:`cnnexplore_nb.data.fetch` decides what to download
and where; this module downloads one URL and turns what can go wrong into
:class:`FetchError` (offline, unreachable, refused: the message says what to place where
by hand) or :class:`~._sources.IntegrityError` (a hash mismatch; pooch has already deleted
the download).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from ._sources import VESSMAP_COMMIT, IntegrityError, Remote

__all__ = ["ENV_DATA", "ENV_OFFLINE", "FetchError", "download", "is_offline", "norm_hash",
           "unavailable"]  # fmt: skip

ENV_DATA = "CNNX_DATA"
ENV_OFFLINE = "CNNX_OFFLINE"


class FetchError(OSError):
    """Data missing and not downloadable (offline, unreachable, refused); says what to place where."""


def is_offline() -> bool:
    """True when ``CNNX_OFFLINE`` is set to anything but ``""``, ``0``, ``false``, ``no``, ``off``."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() not in ("", "0", "false", "no", "off")


def norm_hash(known: str) -> str:
    """``"alg:hex"`` in lower case; a bare hex digest is a sha256."""
    return known.lower() if ":" in known else f"sha256:{known.lower()}"


def unavailable(entry: Remote, home: Path, reason: str, url: str | None = None) -> FetchError:
    """The error for data that cannot be downloaded: why, the URL, the file, where to put it."""
    if entry.kind == "files":
        what = (
            f"the folder {entry.target}/ ({len(entry.files)} files; see DATASETS[{entry.name!r}]"
            ".files), e.g. data/VessMAP of a clone of github.com/chcomin/vessel_baseline at "
            f"commit {VESSMAP_COMMIT}"
        )
        where = f"{home} (so that {home / entry.target / 'train.csv'} exists)"
    else:
        what = f"{entry.filename} ({entry.known_hash})"
        where = str(home)
        if entry.kind != "file":
            where += f"; fetch() then checks it and extracts {entry.target}/ (or put {entry.target}/ there)"
    return FetchError(
        f"cannot download {entry.name!r}: {reason}.\n  URL:           {url or entry.url}\n"
        f"  expected file: {what}\n  put it in:     {where}\n"
        f"or pass root= / set {ENV_DATA} to a folder that already holds {entry.target}."
    )


@contextlib.contextmanager
def _quiet_pooch() -> Iterator[None]:
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def download(
    entry: Remote, url: str, dest: Path, known: str | None, home: Path, *, progress: bool
) -> None:
    """Download ``url`` to ``dest`` through pooch (temporary file, hash check, then rename)."""
    if is_offline():
        raise unavailable(entry, home, f"{ENV_OFFLINE}=1 is set", url)
    import pooch
    import requests

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=entry.size or None, desc=entry.name, unit="B", unit_scale=True)
    try:
        with _quiet_pooch():
            pooch.retrieve(
                url, known_hash=known and norm_hash(known), fname=dest.name, path=dest.parent,
                downloader=pooch.HTTPDownloader(progressbar=bar or False),
            )  # fmt: skip
    except ValueError as exc:  # pooch: hash mismatch (its temporary file is already removed)
        raise IntegrityError(
            f"download of {entry.name!r} from {url} is corrupt and was deleted, not used: {exc}"
        ) from exc
    except (requests.RequestException, OSError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        raise unavailable(entry, home, reason, url) from exc
    finally:
        if bar is not None:
            bar.close()
