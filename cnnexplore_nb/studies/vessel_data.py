"""The vessel study's data: VessMAP's published splits, a folder of image/mask pairs or
synthetic vessels, and the training crops (random windows in the 8 dihedral orientations).

Re-exported by :mod:`cnnexplore_nb.studies.vessels`, which holds the settings per scale.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from ..data import (
    VesselArrays,
    VesselFolder,
    normalize_intensity,
    synthetic_vessels,
    train_val_split,
)

__all__ = ["DATA_ENV", "stack_images", "vessel_data"]

DATA_ENV = "CNNX_VESSEL_DATA"


def stack_images(dataset: Dataset, indices: Any = None) -> tuple[torch.Tensor, np.ndarray]:
    """Images and masks of dataset items stacked: ``(Tensor (N, C, H, W), uint8 (N, H, W))``."""
    idx = range(len(dataset)) if indices is None else [int(i) for i in indices]
    items = [dataset[i] for i in idx]
    if not items:
        raise ValueError("no items to stack: the dataset or index list is empty")
    x = torch.stack([it[0] for it in items]).float()
    m = np.stack([np.asarray(it[1], dtype=np.uint8) for it in items])
    return x, m


def _density_series(s: Mapping[str, Any], kw: dict) -> tuple[np.ndarray, np.ndarray]:
    """One image per target vessel fraction (the closest of 4 candidates), sorted by the
    fraction reached, so the three test images go from sparse to dense."""
    images, masks = [], []
    for i, target in enumerate(s["test_fractions"]):
        cand_x, cand_m = synthetic_vessels(
            4, s["size"], rng=s["seed"] + 101 + i, vessel_fraction=target, **kw
        )
        best = int(np.argmin(np.abs(cand_m.mean(axis=(1, 2)) - target)))
        images.append(cand_x[best])
        masks.append(cand_m[best])
    order = np.argsort([m.mean() for m in masks], kind="stable")
    return np.stack(images)[order], np.stack(masks)[order]


def _synthetic(settings: Mapping[str, Any]) -> dict[str, Any]:
    s = settings
    kw = {"difficulty": s["difficulty"]}
    images, masks = synthetic_vessels(
        s["n_images"], s["size"], rng=s["seed"], vessel_fraction=s["vessel_fraction"], **kw
    )
    x, _ = normalize_intensity(images)
    tr, va = train_val_split(len(images), seed=s["seed"])
    test_images, test_masks = _density_series(s, kw)
    agg_images, agg_masks = synthetic_vessels(
        s["n_aggregate"], s["size"], rng=s["seed"] + 202, vessel_fraction=s["vessel_fraction"], **kw
    )
    return {
        "source": "synthetic",
        "train": VesselArrays(x[tr], masks[tr]),
        "val": VesselArrays(x[va], masks[va]),
        "test": VesselArrays(normalize_intensity(test_images)[0], test_masks),
        "aggregate": VesselArrays(normalize_intensity(agg_images)[0], agg_masks),
        "test_all": VesselArrays(normalize_intensity(agg_images)[0], agg_masks),
        "test_display": test_images,
        "examples": (images[:4], masks[:4]),
        "train_idx": tr,
        "val_idx": va,
    }


def _folder(settings: Mapping[str, Any], data_dir: Path) -> dict[str, Any]:
    folder = VesselFolder(data_dir)
    tr, va = train_val_split(len(folder), seed=settings["seed"])
    val = Subset(folder, va.tolist())
    has_test = (data_dir / "test" / "images").is_dir() and (data_dir / "test" / "masks").is_dir()
    pool = VesselFolder(data_dir / "test") if has_test else val
    # three images of different density: lowest, median and highest vessel fraction
    examples = stack_images(folder, range(min(4, len(folder))))
    return _bundle("folder", Subset(folder, tr.tolist()), val, pool, examples, tr, va, settings)


def _random_crop(size: int | None, dihedral: bool = False):
    """A transform taking the same random ``size`` x ``size`` window (``None``: the whole
    image) of image, mask and roi, then with ``dihedral`` one of the 8 flips/rotations by
    90 degrees of the square (torch's global generator: seeded and checkpointed by the
    trainer)."""

    def crop(image: torch.Tensor, *masks: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h, w = image.shape[-2:]
        out = (image, *masks)
        if size is not None:
            top = int(torch.randint(0, h - size + 1, ()))
            left = int(torch.randint(0, w - size + 1, ()))
            out = tuple(t[..., top : top + size, left : left + size] for t in out)
        if dihedral:
            k, flip = (int(v) for v in torch.randint(0, 4, (2,)))
            if flip % 2:
                out = tuple(t.flip(-1) for t in out)
            if out[0].shape[-1] == out[0].shape[-2]:
                out = tuple(torch.rot90(t, k, dims=(-2, -1)) for t in out)
            out = tuple(t.contiguous() for t in out)
        return out

    return crop


class _Repeated(Dataset):
    """``dataset`` ``times`` over (item ``i`` is item ``i % len(dataset)``): with random
    crops, several different windows of every image per epoch."""

    def __init__(self, dataset: Dataset, times: int) -> None:
        self.dataset, self.times = dataset, int(times)

    def __len__(self) -> int:
        return len(self.dataset) * self.times

    def __getitem__(self, index: int) -> Any:
        return self.dataset[index % len(self.dataset)]


def _density_pick(pool: Dataset) -> list[int]:
    """Indices of the lowest, median and highest vessel fraction of ``pool``, in that order."""
    fractions = np.array([float(np.asarray(pool[i][1]).mean()) for i in range(len(pool))])
    order = np.argsort(fractions, kind="stable")
    picks = [int(order[0]), int(order[len(order) // 2]), int(order[-1])]
    return list(dict.fromkeys(picks))  # sparse, medium, dense (duplicates dropped)


def _vessmap(settings: Mapping[str, Any], root: Path | None) -> dict[str, Any]:
    from ..data import vessmap, vessmap_folder

    # the folder is found (fetched) and checked against the pinned hashes once, not per split
    folder = vessmap_folder(root, verify=True)
    crop, augment = settings.get("crop"), bool(settings.get("augment"))
    transform = _random_crop(crop, augment) if crop or augment else None
    train = vessmap("train", root=folder, verify=False, transform=transform)
    if int(settings.get("repeats", 1)) > 1:
        train = _Repeated(train, int(settings["repeats"]))
    plain_train = vessmap("train", root=folder, verify=False)
    val = vessmap("val", root=folder, verify=False)
    pool = vessmap("test", root=folder, verify=False)
    examples = stack_images(plain_train, range(4))
    tr, va = np.arange(len(plain_train)), np.arange(len(val))
    return _bundle("vessmap", train, val, pool, examples, tr, va, settings)


def _bundle(source, train, val, pool, examples, train_idx, val_idx, settings) -> dict:
    """The data dict of a real-image source: the test pool, its density-picked display
    images, the aggregation subset and four example images with their masks."""
    test = Subset(pool, _density_pick(pool))
    x, _ = stack_images(test)
    ex_x, ex_m = examples
    return {
        "source": source,
        "train": train,
        "val": val,
        "test": test,
        "aggregate": Subset(pool, list(range(min(len(pool), int(settings["n_aggregate"]))))),
        "test_all": pool,
        "test_display": x[:, 0].numpy(),
        "examples": (ex_x[:, 0].numpy(), ex_m),
        "train_idx": train_idx,
        "val_idx": val_idx,
    }


def _is_vessmap(path: Path) -> bool:
    from ..data import vessmap_folder

    try:
        vessmap_folder(path)
    except FileNotFoundError:
        return False
    return True


def _resolve_dir(settings: Mapping[str, Any], data_dir: Any) -> Path | None:
    data_dir = data_dir or os.environ.get(DATA_ENV) or None
    if data_dir is None:
        if settings["source"] == "folder":
            raise ValueError(
                "this scale trains on a folder of image/mask pairs (root/images, root/masks): "
                f"pass data_dir=... (DATA_DIR in the notebooks) or set {DATA_ENV}; got none"
            )
        return None
    path = Path(data_dir).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"data_dir {str(path)!r} is not a folder")
    return path


def vessel_data(settings: Mapping[str, Any], data_dir: str | os.PathLike | None = None) -> dict:
    """Training, validation and test data of the study.

    Parameters
    ----------
    settings : dict
        One entry of :data:`VESSEL_SETTINGS` (see :func:`vessel_settings`).
    data_dir : path, optional
        A folder ``images/`` + ``masks/`` (see :class:`~cnnexplore_nb.data.VesselFolder`),
        optionally with ``test/images`` + ``test/masks``. Default: the environment variable
        ``CNNX_VESSEL_DATA``. A folder holding ``VessMAP/`` (or that folder) is read with
        its published splits. Without either: synthetic vessels (smoke, embedded) or
        VessMAP from the cache, downloaded on first use (cpu, full).

    Returns
    -------
    dict
        ``source`` ("synthetic", "vessmap" or "folder"); Datasets ``train`` and ``val``
        (VessMAP's published lists, else the thesis 80/20 split with the settings' seed;
        VessMAP's training images as random crops when the settings give ``crop``), ``test``
        (three images of low, medium and high vessel density for Table 5), ``aggregate``
        (images for the aggregated correlation study, never used in training: VessMAP's test
        list); ``test_all`` (the whole test pool where the scores are reported: VessMAP's
        50 test images, the folder's ``test/`` or validation images, the synthetic
        aggregate images); ``test_display`` (ndarray (3, H, W), the test images
        for figures), ``examples`` (raw images and masks of up to 4 training images),
        ``train_idx``, ``val_idx``. Synthetic images are z-scored per image.
    """
    path = _resolve_dir(settings, data_dir)
    if settings["source"] == "synthetic" and path is None:
        return _synthetic(settings)
    if path is None or _is_vessmap(path):
        if settings["source"] == "synthetic":
            raise ValueError(f"data_dir {str(path)!r} is VessMAP; use SCALE='cpu' or 'full'")
        return _vessmap(settings, path)
    return _folder(settings, path)
