"""Torch Datasets of vessel images and binary masks: over arrays and over a folder.

Both yield ``(image, mask)`` or, with regions of interest, ``(image, mask, roi)``:
image float32 tensor (C, H, W), mask int64 tensor (H, W) in {0, 1}, roi bool tensor (H, W).
Re-exported by :mod:`cnnexplore_nb.data.vessels`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_choice

__all__ = ["VesselArrays", "VesselFolder", "IMAGE_SUFFIXES"]

#: file suffixes read by :class:`VesselFolder` (anything scikit-image / imageio reads)
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm")


def _binary(values: np.ndarray, what: str) -> np.ndarray:
    """Map a mask stored as bool, {0, 1} or {0, 255} to uint8 {0, 1}; else ValueError."""
    arr = np.asarray(values)
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{what} must be numeric or bool, got dtype {arr.dtype}")
    uniq = np.unique(arr)
    if set(uniq.tolist()) <= {0, 1} or set(uniq.tolist()) <= {0, 255}:
        return (arr > 0).astype(np.uint8)
    shown = ", ".join(str(v) for v in uniq[:10]) + (", ..." if uniq.size > 10 else "")
    raise ValueError(
        f"{what} is not binary: expected values {{0, 1}} or {{0, 255}} (or bool), found "
        f"{uniq.size} distinct values: {shown}. Store masks losslessly (PNG, TIFF), not JPEG."
    )


def _as_image_tensor(image: np.ndarray) -> torch.Tensor:
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    return torch.from_numpy(np.ascontiguousarray(arr))


class VesselArrays(Dataset):
    """A Dataset over in-memory arrays, e.g. the output of ``synthetic_vessels``.

    Parameters
    ----------
    images : ndarray of shape (N, H, W) or (N, C, H, W)
        Images (already normalised if wanted, see ``normalize_intensity``).
    masks : ndarray of shape (N, H, W)
        Binary masks: bool, {0, 1} or {0, 255}.
    rois : ndarray of shape (N, H, W), optional
        Binary regions of interest; items then are ``(image, mask, roi)``.

    Items
    -----
    ``(image float32 (C, H, W), mask int64 (H, W))`` or with ``rois`` also a bool roi (H, W).
    """

    def __init__(
        self, images: np.ndarray, masks: np.ndarray, *, rois: np.ndarray | None = None
    ) -> None:
        images = np.asarray(images)
        if images.ndim not in (3, 4) or not np.issubdtype(images.dtype, np.number):
            raise ValueError(
                f"images must be numeric of shape (N, H, W) or (N, C, H, W), got shape "
                f"{images.shape} and dtype {images.dtype}"
            )
        masks = _binary(masks, "masks")
        if masks.shape != (images.shape[0], *images.shape[-2:]):
            raise ValueError(
                f"masks must have shape (N, H, W) = {(images.shape[0], *images.shape[-2:])} "
                f"to match images of shape {images.shape}, got {masks.shape}"
            )
        if rois is not None:
            rois = _binary(rois, "rois")
            if rois.shape != masks.shape:
                raise ValueError(f"rois must have shape {masks.shape}, got {rois.shape}")
        self.images = images.astype(np.float32, copy=False)
        self.masks = masks
        self.rois = rois

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        item = (
            _as_image_tensor(self.images[index]),
            torch.from_numpy(self.masks[index].astype(np.int64)),
        )
        if self.rois is None:
            return item
        return (*item, torch.from_numpy(self.rois[index].astype(bool)))


def _list_folder(folder: Path, label: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{label} folder {str(folder)!r} does not exist")
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        others = sorted(p.name for p in folder.iterdir())[:5]
        raise ValueError(
            f"{label} folder {str(folder)!r} holds no image files (suffixes "
            f"{', '.join(IMAGE_SUFFIXES)}); found: {others or 'nothing'}"
        )
    by_stem: dict[str, Path] = {}
    for p in files:
        if p.stem in by_stem:
            raise ValueError(
                f"{label} folder {str(folder)!r} has two files with stem {p.stem!r}: "
                f"{by_stem[p.stem].name!r} and {p.name!r}"
            )
        by_stem[p.stem] = p
    return by_stem


def _read(path: Path) -> np.ndarray:
    from skimage import io

    try:
        return np.asarray(io.imread(str(path)))
    except Exception as exc:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"cannot read image file {str(path)!r}: {exc}") from exc


def _read_mask(path: Path, what: str) -> np.ndarray:
    arr = _read(path)
    if arr.ndim == 3:  # a mask saved as RGB(A): fine if the colour channels agree
        rgb = arr[..., :3]
        if not (rgb == rgb[..., :1]).all():
            raise ValueError(f"{what} {str(path)!r} is a colour image with differing channels")
        arr = rgb[..., 0]
    return _binary(arr, f"{what} {str(path)!r}")


class VesselFolder(Dataset):
    """A Dataset over a folder of image/mask pairs matched by file stem.

    Layout: ``root/<images>/a.png``, ``root/<masks>/a.png`` (any suffix scikit-image
    reads, e.g. ``a.tif`` beside ``a.png``) and optionally ``root/<roi>/a.png``.

    Parameters
    ----------
    root : str or PathLike
        Folder holding the sub-folders.
    images, masks : str
        Sub-folder names of the images and the masks (0/1, 0/255 or bool).
    roi : str, optional
        Sub-folder of binary region-of-interest masks (e.g. a field of view).
    normalize : {"image", "dataset", "none"}
        Per-image z-score, a z-score with the statistics of the whole folder (or of
        ``stats`` from a training folder), or the raw intensities scaled to [0, 1]
        (integer files are divided by their dtype's maximum).
    stats : dict, optional
        ``{"mean": (C,), "std": (C,)}`` for ``normalize="dataset"``; see ``self.stats``.
    as_gray : bool
        Convert colour images to one grey channel (else RGB gives C = 3).
    transform : callable, optional
        Applied to the item tuple of tensors, returning a tuple of the same form.

    Raises
    ------
    FileNotFoundError
        Missing root or sub-folder.
    ValueError
        Empty folder, duplicate or unmatched stems (listed), non-binary masks (values
        shown), image/mask size mismatch (shapes shown).

    Notes
    -----
    Every file is read once at construction to check it, and again when its item is
    requested (nothing is cached, so folders of any size fit).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        images: str = "images",
        masks: str = "masks",
        roi: str | None = None,
        normalize: Literal["image", "dataset", "none"] = "image",
        stats: dict[str, Any] | None = None,
        as_gray: bool = False,
        transform: Callable[..., tuple[torch.Tensor, ...]] | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"root folder {str(self.root)!r} does not exist")
        self.normalize = check_choice("normalize", normalize, ["image", "dataset", "none"])
        self.as_gray = bool(as_gray)
        self.transform = transform
        found = {"image": _list_folder(self.root / images, "images")}
        found["mask"] = _list_folder(self.root / masks, "masks")
        if roi is not None:
            found["roi"] = _list_folder(self.root / roi, "roi")
        stems = set(found["image"])
        problems = []
        for kind, files in found.items():
            if kind != "image" and set(files) != stems:
                missing = sorted(stems - set(files))
                extra = sorted(set(files) - stems)
                if missing:
                    problems.append(f"images without a {kind}: {missing}")
                if extra:
                    problems.append(f"{kind}s without an image: {extra}")
        if problems:
            raise ValueError(
                "unmatched file stems in " + f"{str(self.root)!r}: " + "; ".join(problems)
            )
        self.names = sorted(stems)
        self._files = found
        self.stats = None
        sums = None
        for name in self.names:  # validate everything once, gathering dataset moments
            image, *_ = self._load(name)
            if normalize == "dataset" and stats is None:
                x = image.reshape(image.shape[0], -1).astype(np.float64)
                s = np.stack([x.sum(1), (x**2).sum(1), np.full(len(x), x.shape[1])])
                sums = s if sums is None else sums + s
        if normalize == "dataset":
            if stats is None:
                mean = sums[0] / sums[2]
                std = np.sqrt(np.maximum(sums[1] / sums[2] - mean**2, 0.0))
                stats = {"mean": mean, "std": std}
            self.stats = {
                k: np.atleast_1d(np.asarray(stats[k], dtype=np.float64)) for k in ("mean", "std")
            }

    def _load(self, name: str) -> tuple[np.ndarray, ...]:
        from skimage.color import rgb2gray
        from skimage.util import img_as_float32

        path = self._files["image"][name]
        raw = _read(path)
        if raw.ndim == 3 and raw.shape[-1] == 4:
            raw = raw[..., :3]
        if raw.ndim not in (2, 3) or (raw.ndim == 3 and raw.shape[-1] != 3):
            raise ValueError(
                f"image {str(path)!r} must be grey (H, W) or RGB (H, W, 3), got {raw.shape}"
            )
        image = img_as_float32(raw) if raw.dtype.kind in "uib" else raw.astype(np.float32)
        if raw.ndim == 3 and self.as_gray:
            image = rgb2gray(image).astype(np.float32)
        image = image[None] if image.ndim == 2 else np.moveaxis(image, -1, 0)
        out = [image]
        for kind in ("mask", "roi"):
            if kind in self._files:
                other = _read_mask(self._files[kind][name], kind)
                if other.shape != image.shape[1:]:
                    raise ValueError(
                        f"size mismatch for {name!r}: image {path.name!r} is {image.shape[1:]} "
                        f"(H, W) but {kind} {self._files[kind][name].name!r} is {other.shape}"
                    )
                out.append(other)
        return tuple(out)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        image, mask, *roi = self._load(self.names[index])
        if self.normalize == "image":
            mean = image.mean(axis=(1, 2), keepdims=True)
            std = image.std(axis=(1, 2), keepdims=True)
            image = (image - mean) / np.where(std > 0, std, 1.0)
        elif self.normalize == "dataset":
            mean, std = self.stats["mean"], self.stats["std"]
            if mean.size != image.shape[0]:
                raise ValueError(f"stats hold {mean.size} channel(s), images have {image.shape[0]}")
            image = (image - mean[:, None, None]) / np.where(std > 0, std, 1.0)[:, None, None]
        item = (_as_image_tensor(image), torch.from_numpy(mask.astype(np.int64)))
        if roi:
            item = (*item, torch.from_numpy(roi[0].astype(bool)))
        if self.transform is not None:
            item = tuple(self.transform(*item))
        return item
