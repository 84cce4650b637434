"""VessMAP: 100 fluorescence-microscopy images of mouse-brain vessels with expert labels.

The public data set of the thesis's lab (github.com/chcomin/vessel_baseline, ``data/VessMAP``;
da Silva et al., PLOS ONE 2025), the nearest public relative of the thesis's own images.
Layout as published::

    VessMAP/images/<id>.tiff              8-bit grey TIFF, 256 x 256
    VessMAP/annotator1/labels/<id>.png    expert label, 8-bit TIFF 0/255 despite the suffix
    VessMAP/mask/<id>.png                 region mask (PNG): where the label is valid
    VessMAP/{train,val,test,test_all}.csv columns im_paths, gt_paths, mask_paths

Every file is pinned by its sha256 at the published commit (``data/VessMAP.sha256`` in the
package): a folder with a changed or missing file is refused, naming the file, whether it
was fetched or given as ``root``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from .._checks import check_choice
from ._sources import VESSMAP_SPLITS
from ._vessel_folder import VesselFolder

__all__ = ["VESSMAP_SPLITS", "vessmap", "vessmap_folder"]

_HOW = (
    "call vessmap(root=None) to download it into the cache (cnnexplore_nb.data.fetch('vessmap')),"
    " or copy data/VessMAP of github.com/chcomin/vessel_baseline into that folder"
)


def vessmap_folder(
    root: str | os.PathLike | None = None, *, progress: bool = True, verify: bool = False
) -> Path:
    """The ``VessMAP`` folder: under ``root`` (or ``root`` itself), else the fetched cache.

    ``root`` may hold ``VessMAP/``, be that folder, or be a clone of vessel_baseline
    (``root/data/VessMAP``). ``root=None`` uses :func:`~cnnexplore_nb.data.fetch.fetch`
    (which always verifies). ``verify=True`` checks a ``root`` folder against the pinned
    hashes (:func:`~cnnexplore_nb.data.fetch.verify`).
    """
    if root is None:
        from .fetch import fetch

        return fetch("vessmap", progress=progress)
    root = Path(root).expanduser()
    for cand in (root / "VessMAP", root, root / "data" / "VessMAP"):
        if cand.name == "VessMAP" and (cand / VESSMAP_SPLITS["train"]).is_file():
            if verify:
                from .fetch import verify as verify_folder

                verify_folder("vessmap", cand)
            return cand
    raise FileNotFoundError(
        f"VessMAP not found under {str(root)!r}: expected {str(root / 'VessMAP')!r} with "
        f"images/, annotator1/labels/, mask/ and {', '.join(VESSMAP_SPLITS.values())}. "
        f"How to obtain it: {_HOW}."
    )


def vessmap(
    split: Literal["train", "val", "test", "all"] = "train",
    *,
    root: str | os.PathLike | None = None,
    progress: bool = True,
    verify: bool = True,
    **folder_options: Any,
) -> VesselFolder:
    """VessMAP as a Dataset of ``(image, mask, roi)`` items for one published split.

    Parameters
    ----------
    split : {"train", "val", "test", "all"}
        The published lists: ``train.csv`` (40 images), ``val.csv`` (10), ``test.csv`` (50)
        or ``test_all.csv`` (all 100), in their order.
    root : str or PathLike, optional
        A folder holding ``VessMAP/`` as published (or that folder); never downloaded into.
        ``None``: the cache, filled on first use by ``fetch("vessmap")`` (about 14 MB).
    progress : bool
        Show the download progress (first use only).
    verify : bool
        Check every file of a ``root`` folder against the published sha256 pins (about
        50 ms) and refuse a changed or missing one, naming it. ``False`` reads a folder in
        VessMAP's layout that is not the published set (your own images or labels).
    **folder_options
        Passed to :class:`VesselFolder`: ``normalize`` (default per-image z-score),
        ``stats``, ``as_gray``, ``transform``.

    Raises
    ------
    IntegrityError
        With ``verify``: a file of the folder is missing or differs from its pin.
    FetchError
        ``root=None``, VessMAP not in the cache and offline (``CNNX_OFFLINE=1``).

    Returns
    -------
    VesselFolder
        Items ``(image float32 (1, 256, 256), mask int64 (256, 256) in {0, 1}, roi bool
        (256, 256))``; ``names`` holds the image ids in list order.

    Examples
    --------
    >>> train = vessmap("train")  # doctest: +SKIP
    >>> image, mask, roi = train[0]  # doctest: +SKIP
    >>> len(train), tuple(image.shape)  # doctest: +SKIP
    (40, (1, 256, 256))
    """
    split = check_choice("split", split, list(VESSMAP_SPLITS))
    folder = vessmap_folder(root, progress=progress, verify=verify)
    return VesselFolder(folder, split=VESSMAP_SPLITS[split], **folder_options)
